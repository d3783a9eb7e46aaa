-- The duplicate guard: a fingerprint (sender, recipient, message reference, text) of
-- every message an SMS phone sent, with the message that first had it. A phone that
-- lost the acknowledgement sends the same message again; within the configured window
-- the copy is journaled as a duplicate and not delivered. Written in the batch's
-- journal transaction, so a crash cannot separate a fate from its fingerprint.
CREATE TABLE IF NOT EXISTS smsrouter_fingerprint (
  fp   TEXT    NOT NULL PRIMARY KEY,
  id   TEXT    NOT NULL,
  seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_fingerprint_seen ON smsrouter_fingerprint (seen);

-- The loop guard: one row per generated message (reply, notice, report) delivered
-- between two numbers, so that a pair exchanging automatic messages is stopped after
-- a configured number within a window.
CREATE TABLE IF NOT EXISTS smsrouter_generated (
  id   TEXT    NOT NULL PRIMARY KEY,
  pair TEXT    NOT NULL,
  at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_generated_pair ON smsrouter_generated (pair, at);
