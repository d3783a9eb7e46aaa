package router

import "time"

// Observer is told every message's fate as soon as it is committed to the journal
// (metrics). It is called from the batch's goroutine and must not block.
type Observer interface {
	Fate(o Outcome, received time.Time)
}
