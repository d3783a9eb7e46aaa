package sip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// markers remembers, durably, which parts of which messages Asterisk already
// accepted. MessageSend is a side effect that happens inside Deliver, before the
// router commits the message's fate to its journal; if the process dies (or the
// journal write fails) in between, the router delivers the message again. The
// marker, written right after "Response: Success", turns that second delivery
// into a no-op for the parts already sent.
//
// One empty file per part, <dir>/<id>.<part>, is the whole store: creating a
// file is atomic, needs no schema, and the router's work folder is already
// where smsrouter keeps state that must survive a crash.
type markers struct {
	dir  string
	sync bool
}

func newMarkers(dir string, sync bool) (*markers, error) {
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return nil, fmt.Errorf("sip: sent-marker folder: %w", err)
	}
	return &markers{dir: dir, sync: sync}, nil
}

// name maps a message id and part to a file name. Router ids are safe as file
// names already; anything else is hashed so no id can name a path.
func (mk *markers) name(id string, part int) string {
	safe := id != "" && len(id) <= 64
	for i := 0; safe && i < len(id); i++ {
		c := id[i]
		safe = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
	}
	if !safe {
		sum := sha256.Sum256([]byte(id))
		id = "h" + hex.EncodeToString(sum[:16])
	}
	return filepath.Join(mk.dir, id+"."+strconv.Itoa(part))
}

// sent reports whether part was marked sent.
func (mk *markers) sent(id string, part int) (bool, error) {
	_, err := os.Lstat(mk.name(id, part))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("sip: read sent marker: %w", err)
}

// mark records part as sent. With sync the file and its folder are flushed,
// so the marker survives a power cut, not only a crash of the process.
func (mk *markers) mark(id string, part int) error {
	f, err := os.OpenFile(mk.name(id, part), os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("sip: write sent marker: %w", err)
	}
	if mk.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && mk.sync {
		err = syncDir(mk.dir)
	}
	if err != nil {
		return fmt.Errorf("sip: write sent marker: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cleanup removes markers older than cutoff: by then the message's validity
// has ended and the router will never deliver it again.
func (mk *markers) cleanup(ctx context.Context, cutoff time.Time) error {
	entries, err := os.ReadDir(mk.dir)
	if err != nil {
		return fmt.Errorf("sip: clean sent markers: %w", err)
	}
	var firstErr error
	for _, e := range entries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(mk.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = fmt.Errorf("sip: clean sent markers: %w", err)
		}
	}
	return firstErr
}
