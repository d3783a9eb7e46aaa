-- The web console (ingress/console): its traffic page lists the newest messages of
-- one state or letter and names the oldest message of each state; these indexes let
-- both read a few rows however long the journal is. The newest-first listing (the
-- console, `journal`, GET /v1/messages) orders by received, id: with the index on
-- received alone MariaDB sorts the whole table for it (55 ms at 100,000 rows).
CREATE INDEX IF NOT EXISTS smsrouter_journal_received_id ON smsrouter_journal (received, id);
CREATE INDEX IF NOT EXISTS smsrouter_journal_state_received ON smsrouter_journal (state, received);
CREATE INDEX IF NOT EXISTS smsrouter_journal_letter_received ON smsrouter_journal (letter, received);
-- Every change made in the console (send, retry, drop, directory edits), with who
-- made it. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_admin_action (
  seq     BIGINT       NOT NULL AUTO_INCREMENT,
  at      BIGINT       NOT NULL,
  user    VARCHAR(64)  NOT NULL,
  action  VARCHAR(32)  NOT NULL,
  target  VARCHAR(64)  NOT NULL,
  detail  TEXT         NOT NULL,
  PRIMARY KEY (seq),
  KEY smsrouter_admin_action_at (at)
) DEFAULT CHARSET=utf8mb4;
