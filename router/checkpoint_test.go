package router

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestJournalCheckpointsBetweenBatches: once the journal's commits have written
// checkpointFrames log frames, a checkpoint runs in the background, and the next
// journal write, which waits for it, starts the log over. Were the write to race
// the checkpoint, the log would only ever grow until SQLite's own checkpoint at
// twice the threshold.
func TestJournalCheckpointsBetweenBatches(t *testing.T) {
	store := migratedStore(t, testdbSQLite(t))
	ctx := context.Background()
	j := NewJournal(store)
	now := time.Now()
	put := func(batch int) {
		t.Helper()
		recs := make([]Record, 256)
		for i := range recs {
			n := batch*len(recs) + i
			recs[i] = Record{ID: fmt.Sprintf("%013d-%06d", now.UnixMilli(), n), Received: now, Updated: now,
				OA: fmt.Sprintf("555%04d", n%200), DA: fmt.Sprintf("6%07d", n), State: StateDelivered,
				Detail: "{}", Fingerprint: fmt.Sprintf("%064x", uint64(n)*0x9e3779b97f4a7c15)}
		}
		if err := j.Begin(ctx, fmt.Sprintf("batch-%d", batch), recs).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	started := func() bool {
		store.checkpointer.mu.Lock()
		defer store.checkpointer.mu.Unlock()
		return store.checkpointer.running != nil
	}
	batch := 0
	for ; batch < 400 && !started(); batch++ {
		put(batch)
	}
	if !started() {
		t.Fatalf("no checkpoint started after %d batches", batch)
	}
	put(batch) // waits for the checkpoint, then writes from the log's start
	var busy, log, copied int
	if err := store.DB.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		t.Fatal(err)
	}
	if log >= checkpointFrames/2 {
		t.Fatalf("the log holds %d frames after a checkpoint and one batch: it was not started over", log)
	}
}

// TestJournalWaitsForCheckpoint: a journal write does not begin while the
// checkpointer runs, since a log written to during the checkpoint cannot start
// over (above).
func TestJournalWaitsForCheckpoint(t *testing.T) {
	store := migratedStore(t, testdbSQLite(t))
	ctx := context.Background()
	running := make(chan struct{})
	store.checkpointer.mu.Lock()
	store.checkpointer.running = running
	store.checkpointer.mu.Unlock()
	end := sync.OnceFunc(func() {
		store.checkpointer.mu.Lock()
		store.checkpointer.running = nil
		store.checkpointer.mu.Unlock()
		close(running)
	})
	defer end() // before store.Close (a cleanup), which waits for it too
	now := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- NewJournal(store).Put(ctx, "", []Record{{ID: fmt.Sprintf("%013d-000001", now.UnixMilli()), Received: now,
			Updated: now, OA: "5551000", DA: "5551001", State: StateDelivered, Detail: "{}"}})
	}()
	select {
	case err := <-done:
		t.Fatalf("Put returned (%v) while a checkpoint ran", err)
	case <-time.After(200 * time.Millisecond):
	}
	end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
