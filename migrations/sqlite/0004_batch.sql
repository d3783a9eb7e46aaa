-- One row per journal batch: the first statement of every batch's transaction inserts
-- it with committed = 1. When a commit's outcome is unknown, the router settles it by
-- inserting the same id with committed = 0; whichever takes the id first decides the
-- batch for good.
CREATE TABLE IF NOT EXISTS smsrouter_batch (
  id        TEXT    NOT NULL PRIMARY KEY,
  committed INTEGER NOT NULL,
  created   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_batch_created ON smsrouter_batch (created);
