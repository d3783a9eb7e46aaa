package router

import (
	"context"
	"database/sql"
	"sync"

	"modernc.org/sqlite"
)

// walCheckpointer copies a SQLite store's write-ahead log back into the
// database in the background, between two journal transactions, instead of
// inside a commit (issue 17). SQLite checkpoints in the commit that takes the
// log past its threshold: during a drain of 100,000 messages that was every
// few batches, with two fsyncs each time, on the path every batch waits on.
//
// The checkpoint starts right after the commit that took the journal's own
// writes past checkpointFrames, and runs while the router claims and reads the
// next batch. The next journal transaction waits for it to end: the log is
// rewound to its start only by a write that begins after a checkpoint copied
// all of it, so a checkpoint racing the next write would let the log grow
// batch after batch. SQLite's own checkpoint (wal_autocheckpoint, set higher
// in openSQLite) still catches every other writer.
type walCheckpointer struct {
	mu      sync.Mutex
	frames  int           // log frames the journal's commits wrote since the last checkpoint
	running chan struct{} // closed when the running checkpoint ends; nil when none runs
}

// checkpointFrames is how many log frames (pages) the journal writes before a
// checkpoint: each copies the latest of every page once, so the same index
// pages dirtied batch after batch are copied once for several batches.
const checkpointFrames = 4000

// wait returns once no checkpoint runs.
func (c *walCheckpointer) wait() {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running != nil {
		<-running
	}
}

// wrote counts the frames a commit on conn wrote and starts a checkpoint when
// they are due. The count is SQLite's own, per connection, read and reset
// here, so it includes what other statements on conn wrote since.
func (c *walCheckpointer) wrote(db *sql.DB, conn *sql.Conn) {
	var frames int
	err := conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return nil
		}
		n, _, err := st.Status(sqlite.DBStatusCacheWrite, true)
		frames = n
		return err
	})
	if err != nil {
		return // SQLite's own checkpoint still runs at its threshold
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames += frames
	if c.frames < checkpointFrames || c.running != nil {
		return
	}
	c.frames = 0
	done := make(chan struct{})
	c.running = done
	go func() {
		// PASSIVE never waits for readers or writers. Whatever it could not
		// copy stays in the log for the next one. Not the caller's
		// context: a cancelled drain has no reason to stop it halfway.
		db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)") //nolint:errcheck // see above
		c.mu.Lock()
		c.running = nil
		c.mu.Unlock()
		close(done)
	}()
}
