-- Self-service PIN lockout. Every wrong PIN texted to the self-service number, keyed by
-- the request's message id so that a request retried after a crash counts once; the
-- count within the configured window decides a lockout. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_pin_failure (
  id      VARCHAR(40) NOT NULL,
  Account VARCHAR(40) NOT NULL,
  at      BIGINT      NOT NULL,
  PRIMARY KEY (id),
  KEY smsrouter_pin_failure_account (Account, at)
) DEFAULT CHARSET=utf8mb4;

-- A number locked out of self-service until `until`; id is the request that locked
-- it (it alone is answered; the others while locked get no reply).
CREATE TABLE IF NOT EXISTS smsrouter_pin_lock (
  Account VARCHAR(40) NOT NULL,
  until   BIGINT      NOT NULL,
  id      VARCHAR(40) NOT NULL,
  PRIMARY KEY (Account)
) DEFAULT CHARSET=utf8mb4;
