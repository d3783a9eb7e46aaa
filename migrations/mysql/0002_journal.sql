-- One row per message: its fate and how it got there. Times are Unix milliseconds
-- so that MySQL and SQLite store them alike (FROM_UNIXTIME(received/1000) reads them).
CREATE TABLE IF NOT EXISTS smsrouter_journal (
  id           VARCHAR(40)  NOT NULL,
  received     BIGINT       NOT NULL,
  updated      BIGINT       NOT NULL,
  oa           VARCHAR(32)  NOT NULL,
  da           VARCHAR(32)  NOT NULL,
  letter       VARCHAR(1)   NOT NULL DEFAULT '',
  state        VARCHAR(16)  NOT NULL,
  attempts     INT          NOT NULL DEFAULT 0,
  next_attempt BIGINT       NULL,
  last_error   TEXT         NOT NULL,
  detail       TEXT         NOT NULL,
  parent_id    VARCHAR(40)  NULL,
  PRIMARY KEY (id),
  KEY smsrouter_journal_state (state, next_attempt),
  KEY smsrouter_journal_received (received),
  KEY smsrouter_journal_oa (oa),
  KEY smsrouter_journal_da (da)
) DEFAULT CHARSET=utf8mb4;
