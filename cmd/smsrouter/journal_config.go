package main

import (
	"fmt"
	"time"

	"smsrouter/internal/timespec"
	"smsrouter/router"
)

// JournalConfig is [journal]: how long the journal keeps what happened.
type JournalConfig struct {
	// Retention is how long a message's row (with its tries and delivery
	// reports) is kept after its last change; serve prunes older ones every
	// PruneEvery, and `journal prune` on demand. Default 90 days.
	Retention  duration `toml:"retention"`
	PruneEvery duration `toml:"prune_every"` // default 1h
}

// retention is the configured retention, checked.
func (j JournalConfig) retention() (time.Duration, error) {
	r := j.Retention.Duration
	if r == 0 {
		return router.DefaultRetention, nil
	}
	if r < router.MinRetention {
		return 0, fmt.Errorf("[journal] retention %s is shorter than %s: a message's row must outlive any process still holding the message", timespec.FormatDuration(r), router.MinRetention)
	}
	return r, nil
}

func (j JournalConfig) pruneEvery() time.Duration {
	if j.PruneEvery.Duration <= 0 {
		return time.Hour
	}
	return j.PruneEvery.Duration
}
