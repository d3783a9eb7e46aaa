-- Self-service PIN lockout. Every wrong PIN texted to the self-service number, keyed by
-- the request's message id so that a request retried after a crash counts once; the
-- count within the configured window decides a lockout. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_pin_failure (
  id      TEXT    NOT NULL PRIMARY KEY,
  Account TEXT    NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_pin_failure_account ON smsrouter_pin_failure (Account, at);

-- A number locked out of self-service until `until`; id is the request that locked
-- it (it alone is answered; the others while locked get no reply).
CREATE TABLE IF NOT EXISTS smsrouter_pin_lock (
  Account TEXT    NOT NULL PRIMARY KEY,
  until   INTEGER NOT NULL,
  id      TEXT    NOT NULL
);
