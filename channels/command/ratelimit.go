package command

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// limiter counts each sender's runs of each rule in a sliding window. The counts
// live in a small JSON file, because with `drain` from the dialplan every message
// is handled by a new process: counters only in memory would never limit anything.
// Concurrent processes read, update and rewrite the file under an in-process lock
// only, so two drains racing can lose a count; a limit is a brake, not an audit.
type limiter struct {
	mu      sync.Mutex
	file    string
	longest time.Duration // the longest window of any rule: older counts are dropped
}

func newLimiter(file string, longest time.Duration) *limiter {
	return &limiter{file: file, longest: longest}
}

// allow records a run for key at now and reports whether it is within limit runs
// per window. Refused runs are not recorded, so a sender who stops is free again
// once the window has passed. An error saving the counters does not refuse the run.
func (l *limiter) allow(key string, limit int, window time.Duration, now time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	state := map[string][]int64{}
	if data, err := os.ReadFile(l.file); err == nil {
		// A damaged file starts the counts afresh rather than blocking every rule.
		_ = json.Unmarshal(data, &state)
	}
	// Forget what no window reaches any more, so the file stays small.
	old := now.Add(-max(l.longest, window)).UnixMilli()
	for k, ts := range state {
		keep := ts[:0]
		for _, t := range ts {
			if t > old {
				keep = append(keep, t)
			}
		}
		if len(keep) == 0 {
			delete(state, k)
		} else {
			state[k] = keep
		}
	}
	cut, n := now.Add(-window).UnixMilli(), 0
	for _, t := range state[key] {
		if t > cut {
			n++
		}
	}
	if n >= limit {
		return false, nil
	}
	state[key] = append(state[key], now.UnixMilli())
	return true, l.save(state)
}

func (l *limiter) save(state map[string][]int64) error {
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.file), 0o770); err != nil {
		return fmt.Errorf("rate-limit folder: %w", err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", l.file, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("rate-limit file: %w", err)
	}
	if err := os.Rename(tmp, l.file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rate-limit file: %w", err)
	}
	return nil
}
