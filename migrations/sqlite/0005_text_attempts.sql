-- The text of each message, so an admin can see what was sent (smsrouter journal show,
-- the HTTP API) and a later way to the recipient can be tried with it.
ALTER TABLE smsrouter_journal ADD COLUMN text TEXT NULL;
-- One row per try of a message: when, what came of it and why. The journal row holds
-- only the latest; this is the message's story.
CREATE TABLE IF NOT EXISTS smsrouter_attempt (
  id      TEXT    NOT NULL,
  n       INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  state   TEXT    NOT NULL,
  letter  TEXT    NOT NULL DEFAULT '',
  error   TEXT    NOT NULL,
  detail  TEXT    NOT NULL,
  PRIMARY KEY (id, n)
);
CREATE INDEX IF NOT EXISTS smsrouter_attempt_at ON smsrouter_attempt (at);
