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
  seq     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,
  user    TEXT    NOT NULL,
  action  TEXT    NOT NULL,
  target  TEXT    NOT NULL,
  detail  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_admin_action_at ON smsrouter_admin_action (at);
