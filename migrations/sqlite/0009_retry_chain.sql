-- A failed call retried, on its way or the next, goes out as a new message (its own
-- call file, its own evidence). This says which message each retry carries on, and
-- how many retries deep: a delivery report asked for the first message follows the
-- chain to the newest (router/dlr).
CREATE TABLE IF NOT EXISTS smsrouter_retry (
  id      TEXT    NOT NULL PRIMARY KEY,
  origin  TEXT    NOT NULL,
  hop     INTEGER NOT NULL,
  UNIQUE (origin, hop)
);
