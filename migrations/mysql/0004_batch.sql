-- One row per journal batch: the first statement of every batch's transaction inserts
-- it with committed = 1. When a commit's outcome is unknown (the connection died or
-- stalled around COMMIT), the router settles it by inserting the same id with
-- committed = 0: InnoDB makes that insert wait for the original transaction, so
-- whichever of the two takes the id first decides the batch for good.
CREATE TABLE IF NOT EXISTS smsrouter_batch (
  id        VARCHAR(120) NOT NULL,
  committed TINYINT      NOT NULL,
  created   BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY smsrouter_batch_created (created)
) DEFAULT CHARSET=utf8mb4;
