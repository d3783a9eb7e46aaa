-- The duplicate guard: a fingerprint (sender, recipient, message reference, text) of
-- every message an SMS phone sent, with the message that first had it. A phone that
-- lost the acknowledgement sends the same message again; within the configured window
-- the copy is journaled as a duplicate and not delivered. Written in the batch's
-- journal transaction, so a crash cannot separate a fate from its fingerprint.
CREATE TABLE IF NOT EXISTS smsrouter_fingerprint (
  fp   CHAR(64)    NOT NULL,
  id   VARCHAR(40) NOT NULL,
  seen BIGINT      NOT NULL,
  PRIMARY KEY (fp),
  KEY smsrouter_fingerprint_seen (seen)
) DEFAULT CHARSET=utf8mb4;

-- The loop guard: one row per generated message (reply, notice, report) delivered
-- between two numbers, so that a pair exchanging automatic messages is stopped after
-- a configured number within a window.
CREATE TABLE IF NOT EXISTS smsrouter_generated (
  id   VARCHAR(40) NOT NULL,
  pair VARCHAR(70) NOT NULL,
  at   BIGINT      NOT NULL,
  PRIMARY KEY (id),
  KEY smsrouter_generated_pair (pair, at)
) DEFAULT CHARSET=utf8mb4;
