-- journal --follow and the delivery-report dispatcher read the rows changed since a
-- moment; retention prunes by the same column.
CREATE INDEX IF NOT EXISTS smsrouter_journal_updated ON smsrouter_journal (updated);
-- One row per delivery report asked for (Kannel's dlr-url and dlr-mask; issue 16's
-- status reports use their own kind): written before the message is queued, so a
-- crash cannot lose it, and moved on by serve's dispatcher as the message's journal
-- row changes. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_dlr (
  id            VARCHAR(40)  NOT NULL,
  kind          VARCHAR(16)  NOT NULL,
  target        TEXT         NOT NULL,
  mask          INT          NOT NULL,
  info          TEXT         NOT NULL,
  created       BIGINT       NOT NULL,
  sent          INT          NOT NULL DEFAULT 0,
  done          TINYINT      NOT NULL DEFAULT 0,
  recheck       TINYINT      NOT NULL DEFAULT 1,
  seen          BIGINT       NOT NULL DEFAULT 0,
  tries         INT          NOT NULL DEFAULT 0,
  next_try      BIGINT       NOT NULL DEFAULT 0,
  failing_since BIGINT       NOT NULL DEFAULT 0,
  lease_until   BIGINT       NOT NULL DEFAULT 0,
  lease_owner   VARCHAR(80)  NOT NULL DEFAULT '',
  outcome       TEXT         NOT NULL,
  updated       BIGINT       NOT NULL,
  PRIMARY KEY (id, kind),
  KEY smsrouter_dlr_due (done, next_try),
  KEY smsrouter_dlr_created (created)
) DEFAULT CHARSET=utf8mb4;
-- The parts of a concatenated message that the router joined, each under the id it
-- was queued with, and the id of the joined message (part 1's): how a part's id
-- (which an HTTP client got back for it) still finds its message.
CREATE TABLE IF NOT EXISTS smsrouter_part (
  id         VARCHAR(40) NOT NULL,
  message_id VARCHAR(40) NOT NULL,
  PRIMARY KEY (id),
  KEY smsrouter_part_message (message_id)
) DEFAULT CHARSET=utf8mb4;
