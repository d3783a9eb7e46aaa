-- What another system (a mobile link's SMSC or modem) called each part of a message it
-- took, and the delivery receipt it later sent about it. The router writes the names with
-- the message's fate; a receipt may arrive first and then waits here (id NULL) until they
-- come. applied = 1 once the receipt is recorded in the message's journal row.
CREATE TABLE IF NOT EXISTS smsrouter_ref (
  system    VARCHAR(40)  NOT NULL,
  ref       VARCHAR(80)  NOT NULL,
  id        VARCHAR(40)  NULL,
  part      INT          NOT NULL DEFAULT 0,
  parts     INT          NOT NULL DEFAULT 0,
  submitted BIGINT       NULL,
  stat      VARCHAR(16)  NULL,
  err       VARCHAR(16)  NOT NULL DEFAULT '',
  delivered TINYINT      NOT NULL DEFAULT 0,
  final     TINYINT      NOT NULL DEFAULT 0,
  reported  BIGINT       NULL,
  applied   TINYINT      NOT NULL DEFAULT 0,
  PRIMARY KEY (system, ref),
  KEY smsrouter_ref_id (id),
  KEY smsrouter_ref_pending (applied, reported)
) DEFAULT CHARSET=utf8mb4;
