//go:build unix

package voice

import (
	"fmt"
	"os"
	"syscall"
)

// sameFilesystem checks that a and b are on one filesystem: the router hands
// artefacts over by rename, which cannot cross filesystems.
func sameFilesystem(a, b string) error {
	sa, err := os.Stat(a)
	if err != nil {
		return err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return err
	}
	da, okA := sa.Sys().(*syscall.Stat_t)
	db, okB := sb.Sys().(*syscall.Stat_t)
	if okA && okB && da.Dev != db.Dev {
		return fmt.Errorf("%s and %s are on different filesystems; files are handed over by rename", a, b)
	}
	return nil
}
