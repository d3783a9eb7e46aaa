// Package tomlduration is a time.Duration that configuration files write as
// text ("30s", "10m", "24h", "90d", "1w"); both the main config and the command
// rules use it.
package tomlduration

import (
	"time"

	"smsrouter/internal/timespec"
)

// Duration decodes from TOML text; negative durations are refused.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string, with days (d) and weeks (w) too.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := timespec.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
