-- journal --follow and the delivery-report dispatcher read the rows changed since a
-- moment; retention prunes by the same column.
CREATE INDEX IF NOT EXISTS smsrouter_journal_updated ON smsrouter_journal (updated);
-- One row per delivery report asked for (Kannel's dlr-url and dlr-mask; issue 16's
-- status reports use their own kind): written before the message is queued, so a
-- crash cannot lose it, and moved on by serve's dispatcher as the message's journal
-- row changes. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS smsrouter_dlr (
  id            TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  target        TEXT    NOT NULL,
  mask          INTEGER NOT NULL,
  info          TEXT    NOT NULL,
  created       INTEGER NOT NULL,
  sent          INTEGER NOT NULL DEFAULT 0,
  done          INTEGER NOT NULL DEFAULT 0,
  recheck       INTEGER NOT NULL DEFAULT 1,
  seen          INTEGER NOT NULL DEFAULT 0,
  tries         INTEGER NOT NULL DEFAULT 0,
  next_try      INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER NOT NULL DEFAULT 0,
  lease_until   INTEGER NOT NULL DEFAULT 0,
  lease_owner   TEXT    NOT NULL DEFAULT '',
  outcome       TEXT    NOT NULL,
  updated       INTEGER NOT NULL,
  PRIMARY KEY (id, kind)
);
CREATE INDEX IF NOT EXISTS smsrouter_dlr_due ON smsrouter_dlr (done, next_try);
CREATE INDEX IF NOT EXISTS smsrouter_dlr_created ON smsrouter_dlr (created);
-- The parts of a concatenated message that the router joined, each under the id it
-- was queued with, and the id of the joined message (part 1's): how a part's id
-- (which an HTTP client got back for it) still finds its message.
CREATE TABLE IF NOT EXISTS smsrouter_part (
  id         TEXT NOT NULL PRIMARY KEY,
  message_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS smsrouter_part_message ON smsrouter_part (message_id);
