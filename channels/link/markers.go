package link

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// markers keep what happened to each part of each message, durably, in one
// append-only log per link (<dir>/markers.log) with an index in memory. Every
// event is one line, written whole in one write(2), so a crash leaves at most a
// torn last line, which is ignored:
//
//	<id> S <part>/<parts> <unix ms>          about to send the part
//	<id> A <part>/<parts> <unix ms> <ref>    the network accepted it and named it ref
//	<id> N <part>/<parts> <unix ms>          certainly not sent (not bound, refused)
//	<id> U <part>/<parts> <unix ms> <why>    sent and unanswered: the network may have it
//	<id> D 0/0 <unix ms>                     the router recorded its fate: forget it
//
// A part with an S and nothing after it was being sent when the process died:
// as uncertain as a U. One log rather than a file per message: creating a file
// costs more than sending the part on a busy spool, and a link sends
// thousands a second. Cleanup rewrites the log without the messages that are
// done or older than the markers' age.
type markers struct {
	dir  string
	sync bool

	mu      sync.Mutex
	f       *os.File
	lines   map[string][]string // id → its lines, in order
	last    map[string]time.Time
	written uint64 // lines appended so far

	// syncMu lets one fsync at a time run; synced is how many lines the
	// last one covered. Concurrent deliveries share fsyncs (group commit).
	syncMu sync.Mutex
	synced uint64
}

const markerLog = "markers.log"

func newMarkers(dir string, sync bool) (*markers, error) {
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return nil, fmt.Errorf("marker folder: %w", err)
	}
	mk := &markers{dir: dir, sync: sync, lines: map[string][]string{}, last: map[string]time.Time{}}
	path := filepath.Join(dir, markerLog)
	// A compaction that died after writing the new log and before renaming
	// it in left the old log whole: the new one is simply dropped.
	os.Remove(path + ".new")
	if f, err := os.Open(path); err == nil {
		err = mk.read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("markers %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("markers: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("markers: %w", err)
	}
	mk.f = f
	return mk, nil
}

// read loads a log. Lines that cannot be read (torn by a crash, or not ours)
// are skipped, never fatal: a damaged log must not keep serve from starting.
func (mk *markers) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // far too long: not ours
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			mk.readLine(strings.TrimSuffix(string(line), "\n"))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (mk *markers) readLine(line string) {
	id, rest, ok := strings.Cut(line, " ")
	if !ok || !safeID(id) {
		return
	}
	ev, ok := parseEvent(rest)
	if !ok {
		return // torn
	}
	if ev.kind == "D" {
		delete(mk.lines, id)
		delete(mk.last, id)
		return
	}
	mk.lines[id] = append(mk.lines[id], rest)
	mk.last[id] = ev.at
}

// key maps a message id to the name it is logged under. Router ids are safe
// already; anything else is hashed, so no id can break a line.
func key(id string) string {
	if safeID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(sum[:16])
}

func safeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type event struct {
	kind        string
	part, parts int
	at          time.Time
	rest        string
}

func parseEvent(line string) (event, bool) {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 3 {
		return event{}, false
	}
	ps, ts, ok := strings.Cut(f[1], "/")
	part, err1 := strconv.Atoi(ps)
	parts, err2 := strconv.Atoi(ts)
	ms, err3 := strconv.ParseInt(f[2], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return event{}, false
	}
	ev := event{kind: f[0], part: part, parts: parts, at: time.UnixMilli(ms)}
	if len(f) == 4 {
		ev.rest = f[3]
	}
	switch ev.kind {
	case "D":
		return ev, true
	case "S", "A", "N", "U":
		if part < 1 || parts < part || parts > 255 || (ev.kind == "A" && ev.rest == "") {
			return event{}, false
		}
		return ev, true
	}
	return event{}, false
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

// load returns what the markers say about a message; nothing for one never sent.
func (mk *markers) load(id string) (*sendState, error) {
	mk.mu.Lock()
	lines := append([]string(nil), mk.lines[key(id)]...)
	mk.mu.Unlock()
	st := &sendState{acc: map[int]acceptance{}, doubt: map[int]string{}, resend: map[int]string{}}
	open := map[int]bool{}
	for _, l := range lines {
		ev, ok := parseEvent(l)
		if !ok {
			continue
		}
		switch ev.kind {
		case "S":
			st.parts = ev.parts
			open[ev.part] = true
		case "A":
			st.parts = ev.parts
			delete(open, ev.part)
			if why, ok := st.doubt[ev.part]; ok {
				st.resend[ev.part] = why
			}
			st.acc[ev.part] = acceptance{ref: ev.rest, at: ev.at}
		case "N":
			delete(open, ev.part)
		case "U":
			delete(open, ev.part)
			why := ev.rest
			if why == "" {
				why = "no answer"
			}
			st.doubt[ev.part] = fmt.Sprintf("%s at %s", why, ev.at.UTC().Format(time.RFC3339))
		}
	}
	for p := range open {
		if _, ok := st.acc[p]; !ok {
			st.doubt[p] = "the process stopped while it was being sent"
		}
	}
	return st, nil
}

// markerWriter appends one message's events.
type markerWriter struct {
	mk *markers
	id string
}

func (mk *markers) open(id string) (*markerWriter, error) {
	return &markerWriter{mk: mk, id: key(id)}, nil
}

func (mk *markers) append(id, kind string, part, parts int, rest string) error {
	at := time.Now()
	line := fmt.Sprintf("%s %d/%d %d", kind, part, parts, at.UnixMilli())
	if rest != "" {
		line += " " + strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, rest)
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if _, err := mk.f.WriteString(id + " " + line + "\n"); err != nil {
		return err
	}
	mk.written++
	if kind == "D" {
		delete(mk.lines, id)
		delete(mk.last, id)
		return nil
	}
	mk.lines[id] = append(mk.lines[id], line)
	mk.last[id] = at
	return nil
}

func (w *markerWriter) sending(part, parts int) error {
	return w.mk.append(w.id, "S", part, parts, "")
}
func (w *markerWriter) accepted(part, parts int, ref string) error {
	if ref == "" {
		ref = "-"
	}
	return w.mk.append(w.id, "A", part, parts, strings.ReplaceAll(ref, " ", "_"))
}
func (w *markerWriter) notSent(part, parts int) error { return w.mk.append(w.id, "N", part, parts, "") }
func (w *markerWriter) uncertain(part, parts int, why string) error {
	return w.mk.append(w.id, "U", part, parts, why)
}

// close makes the lines durable (with sync). Once per Deliver rather than per
// line: a crash of the process loses nothing written either way, and a power
// cut while a part is on its way is the only case a line could be lost in,
// which at worst sends that part again. Deliveries that close at the same
// moment share one fsync.
func (w *markerWriter) close() error {
	mk := w.mk
	if !mk.sync {
		return nil
	}
	mk.mu.Lock()
	target := mk.written
	mk.mu.Unlock()
	mk.syncMu.Lock()
	defer mk.syncMu.Unlock()
	if mk.synced >= target {
		return nil // an fsync that started after our lines covered them
	}
	mk.mu.Lock()
	f, upto := mk.f, mk.written
	mk.mu.Unlock()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	} // closed: a compaction replaced the log, and fsynced its lines whole
	mk.synced = upto
	return nil
}

// forget drops a message whose fate the router recorded: a retry can no
// longer come.
func (mk *markers) forget(id string) error {
	return mk.append(key(id), "D", 0, 0, "")
}

// cleanup rewrites the log without the messages that are done or were last
// written before cut.
func (mk *markers) cleanup(ctx context.Context, cut time.Time) error {
	upto, err := mk.compact(ctx, cut)
	if err != nil {
		return err
	}
	// The new log was fsynced whole. (syncMu is never taken under mu, so
	// this waits for a running fsync without holding up the writers.)
	mk.syncMu.Lock()
	mk.synced = max(mk.synced, upto)
	mk.syncMu.Unlock()
	return nil
}

func (mk *markers) compact(ctx context.Context, cut time.Time) (uint64, error) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	for id, t := range mk.last {
		if t.Before(cut) {
			delete(mk.lines, id)
			delete(mk.last, id)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	path := filepath.Join(mk.dir, markerLog)
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("markers: compact: %w", err)
	}
	w := bufio.NewWriter(f)
	ids := make([]string, 0, len(mk.lines))
	for id := range mk.lines {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, l := range mk.lines[id] {
			w.WriteString(id + " " + l + "\n")
		}
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("markers: compact: %w", err)
	}
	nf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, fmt.Errorf("markers: reopen: %w", err)
	}
	mk.f.Close()
	mk.f = nf
	return mk.written, nil
}
