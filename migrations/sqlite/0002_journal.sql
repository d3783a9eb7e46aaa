-- One row per message: its fate and how it got there. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_journal (
  id           TEXT    NOT NULL PRIMARY KEY,
  received     INTEGER NOT NULL,
  updated      INTEGER NOT NULL,
  oa           TEXT    NOT NULL,
  da           TEXT    NOT NULL,
  letter       TEXT    NOT NULL DEFAULT '',
  state        TEXT    NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER NULL,
  last_error   TEXT    NOT NULL,
  detail       TEXT    NOT NULL,
  parent_id    TEXT    NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_journal_state ON smsrouter_journal (state, next_attempt);
CREATE INDEX IF NOT EXISTS smsrouter_journal_received ON smsrouter_journal (received);
CREATE INDEX IF NOT EXISTS smsrouter_journal_oa ON smsrouter_journal (oa);
CREATE INDEX IF NOT EXISTS smsrouter_journal_da ON smsrouter_journal (da);
