-- The text of each message, so an admin can see what was sent (smsrouter journal show,
-- the HTTP API) and a later way to the recipient can be tried with it.
ALTER TABLE smsrouter_journal ADD COLUMN IF NOT EXISTS text MEDIUMTEXT NULL;
-- One row per try of a message: when, what came of it and why. The journal row holds
-- only the latest; this is the message's story.
CREATE TABLE IF NOT EXISTS smsrouter_attempt (
  id      VARCHAR(40) NOT NULL,
  n       INT         NOT NULL,
  at      BIGINT      NOT NULL,
  state   VARCHAR(16) NOT NULL,
  letter  VARCHAR(1)  NOT NULL DEFAULT '',
  error   TEXT        NOT NULL,
  detail  TEXT        NOT NULL,
  PRIMARY KEY (id, n),
  KEY smsrouter_attempt_at (at)
) DEFAULT CHARSET=utf8mb4;
