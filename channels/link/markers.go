package link

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// markers keep, per message, what happened to each part: one file per message
// id, <dir>/<id>, with one line appended per event, each written whole in one
// write(2) so a crash leaves at most a torn last line, which is ignored:
//
//	S <part>/<parts> <unix ms>             about to send the part
//	A <part>/<parts> <unix ms> <ref>       the network accepted it and named it ref
//	N <part>/<parts> <unix ms>             certainly not sent (not bound, refused)
//	U <part>/<parts> <unix ms> <why>       sent and unanswered: the network may have it
//
// A part with an S and nothing after it was being sent when the process died:
// as uncertain as a U.
type markers struct {
	dir  string
	sync bool
}

func newMarkers(dir string, sync bool) (*markers, error) {
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return nil, fmt.Errorf("marker folder: %w", err)
	}
	return &markers{dir: dir, sync: sync}, nil
}

// path maps a message id to a file. Router ids are safe file names already;
// anything else is hashed so no id can name a path.
func (mk *markers) path(id string) string {
	safe := id != "" && len(id) <= 64
	for i := 0; safe && i < len(id); i++ {
		c := id[i]
		safe = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
	}
	if !safe {
		sum := sha256.Sum256([]byte(id))
		id = "h" + hex.EncodeToString(sum[:16])
	}
	return filepath.Join(mk.dir, id)
}

type acceptance struct {
	ref string
	at  time.Time
}

// sendState is what the markers say about one message.
type sendState struct {
	parts  int
	acc    map[int]acceptance
	doubt  map[int]string // parts that were sent without an answer, and why
	open   map[int]bool   // parts with an S and no answer yet (while loading)
	resend map[int]string // doubtful parts accepted on a later send
}

func (s *sendState) accept(part, parts int, ref string, at time.Time) {
	s.parts = parts
	if why, ok := s.doubt[part]; ok {
		s.resend[part] = why
	}
	s.acc[part] = acceptance{ref: ref, at: at}
}

// complete reports every part accepted.
func (s *sendState) complete() bool {
	if s.parts == 0 {
		return false
	}
	for p := 1; p <= s.parts; p++ {
		if _, ok := s.acc[p]; !ok {
			return false
		}
	}
	return true
}

// skip is how many leading parts were accepted.
func (s *sendState) skip() int {
	n := 0
	for {
		if _, ok := s.acc[n+1]; !ok {
			return n
		}
		n++
	}
}

func (s *sendState) accepted() int { return len(s.acc) }

// resent lists the parts sent again after a send without an answer.
func (s *sendState) resent() []map[string]any {
	var parts []int
	for p := range s.resend {
		parts = append(parts, p)
	}
	sort.Ints(parts)
	var out []map[string]any
	for _, p := range parts {
		out = append(out, map[string]any{"part": p, "first_send": s.resend[p]})
	}
	return out
}

// load reads a message's markers; a missing file is a message never sent.
func (mk *markers) load(id string) (*sendState, error) {
	st := &sendState{acc: map[int]acceptance{}, doubt: map[int]string{}, open: map[int]bool{}, resend: map[int]string{}}
	f, err := os.Open(mk.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read markers of %s: %w", id, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			continue
		}
		ps, ts, ok := strings.Cut(f[1], "/")
		part, err1 := strconv.Atoi(ps)
		parts, err2 := strconv.Atoi(ts)
		ms, err3 := strconv.ParseInt(f[2], 10, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || part < 1 || parts < part || parts > 255 {
			continue
		}
		at := time.UnixMilli(ms)
		switch f[0] {
		case "S":
			st.parts = parts
			st.open[part] = true
		case "A":
			if len(f) < 4 {
				continue // torn
			}
			st.parts = parts
			delete(st.open, part)
			if why, ok := st.doubt[part]; ok {
				st.resend[part] = why
			}
			st.acc[part] = acceptance{ref: f[3], at: at}
		case "N":
			delete(st.open, part)
		case "U":
			delete(st.open, part)
			why := "no answer"
			if len(f) == 4 {
				why = f[3]
			}
			st.doubt[part] = fmt.Sprintf("%s at %s", why, at.UTC().Format(time.RFC3339))
		}
	}
	for p := range st.open {
		if _, ok := st.acc[p]; !ok {
			st.doubt[p] = "the process stopped while it was being sent"
		}
	}
	return st, sc.Err()
}

// markerWriter appends to one message's markers.
type markerWriter struct {
	f    *os.File
	sync bool
}

func (mk *markers) open(id string) (*markerWriter, error) {
	f, err := os.OpenFile(mk.path(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("markers of %s: %w", id, err)
	}
	return &markerWriter{f: f, sync: mk.sync}, nil
}

func (w *markerWriter) line(kind string, part, parts int, rest string) error {
	s := fmt.Sprintf("%s %d/%d %d", kind, part, parts, time.Now().UnixMilli())
	if rest != "" {
		s += " " + strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, rest)
	}
	if _, err := w.f.WriteString(s + "\n"); err != nil {
		return err
	}
	if w.sync {
		return w.f.Sync()
	}
	return nil
}

func (w *markerWriter) sending(part, parts int) error { return w.line("S", part, parts, "") }
func (w *markerWriter) accepted(part, parts int, ref string) error {
	if ref == "" {
		ref = "-"
	}
	return w.line("A", part, parts, strings.ReplaceAll(ref, " ", "_"))
}
func (w *markerWriter) notSent(part, parts int) error { return w.line("N", part, parts, "") }
func (w *markerWriter) uncertain(part, parts int, why string) error {
	return w.line("U", part, parts, why)
}
func (w *markerWriter) close() { w.f.Close() }

// cleanup removes markers last written before cut.
func (mk *markers) cleanup(ctx context.Context, cut time.Time) error {
	entries, err := os.ReadDir(mk.dir)
	if err != nil {
		return fmt.Errorf("markers: %w", err)
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if info.ModTime().Before(cut) {
			os.Remove(filepath.Join(mk.dir, e.Name()))
		}
	}
	return nil
}
