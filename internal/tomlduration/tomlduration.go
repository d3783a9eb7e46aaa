// Package tomlduration is a time.Duration that configuration files write as
// text ("30s", "10m", "24h"); both the main config and the command rules use it.
package tomlduration

import (
	"fmt"
	"time"
)

// Duration decodes from TOML text; negative durations are refused.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	d.Duration = v
	return nil
}
