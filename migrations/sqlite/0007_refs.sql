-- What another system (a mobile link's SMSC or modem) called each part of a message it
-- took, and the delivery receipt it later sent about it. The router writes the names with
-- the message's fate; a receipt may arrive first and then waits here (id NULL) until they
-- come. applied = 1 once the receipt is recorded in the message's journal row.
CREATE TABLE IF NOT EXISTS smsrouter_ref (
  system    TEXT    NOT NULL,
  ref       TEXT    NOT NULL,
  id        TEXT    NULL,
  part      INTEGER NOT NULL DEFAULT 0,
  parts     INTEGER NOT NULL DEFAULT 0,
  submitted INTEGER NULL,
  stat      TEXT    NULL,
  err       TEXT    NOT NULL DEFAULT '',
  delivered INTEGER NOT NULL DEFAULT 0,
  final     INTEGER NOT NULL DEFAULT 0,
  reported  INTEGER NULL,
  applied   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (system, ref)
);
CREATE INDEX IF NOT EXISTS smsrouter_ref_id ON smsrouter_ref (id);
CREATE INDEX IF NOT EXISTS smsrouter_ref_pending ON smsrouter_ref (applied, reported);
