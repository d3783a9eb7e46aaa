-- A failed call retried, on its way or the next, goes out as a new message (its own
-- call file, its own evidence). This says which message each retry carries on, and
-- how many retries deep: a delivery report asked for the first message follows the
-- chain to the newest (router/dlr).
CREATE TABLE IF NOT EXISTS smsrouter_retry (
  id      VARCHAR(40) NOT NULL,
  origin  VARCHAR(40) NOT NULL,
  hop     INT         NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY smsrouter_retry_origin (origin, hop)
) DEFAULT CHARSET=utf8mb4;
