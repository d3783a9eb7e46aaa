// Package smslog reads the log app_sms appends to <astlogdir>/sms, one entry per
// message it sent or received (SPEC.md §1.6):
//
//	<local time> <status><I|O><S|M><mr> <queue> <oa or -> <da or -> <text>
//
// The log is evidence that a message crossed the FSK link (status Y), was refused
// (N) or was cut off at hangup (?). It is not a source of message content: app_sms
// logs only the low byte of each UTF-16 unit, and a unit whose low byte is 0 ends
// the entry early, so the next entry is glued onto the same line. The parser
// therefore finds entries by their shape rather than by newlines, and keeps the
// text as the raw bytes it is.
package smslog

import (
	"bytes"
	"strconv"
	"time"
)

// Status values.
const (
	StatusOK         = 'Y' // acknowledged
	StatusError      = 'N' // NACK or error
	StatusIncomplete = '?' // the call ended before the message was acknowledged
)

// Entry is one logged message.
type Entry struct {
	Time      time.Time
	Status    byte // Y, N or ?
	Direction byte // I received, O sent
	Role      byte // S as SMSC, M as mobile (phone)
	MR        int  // message reference, -1 when not logged
	Queue     string
	OA, DA    string // "" when logged as "-"
	Text      []byte // as logged: not UTF-8, see the package doc
	Glued     bool   // the entry did not start a line: the one before lost its end
}

// Sent reports whether the entry is a message this side delivered.
func (e Entry) Sent() bool { return e.Direction == 'O' }

const stampLen = len("2006-01-02T15:04:05")

// Parse reads a whole log (or a tail of one). Times are read in loc. It never
// fails: what does not look like an entry is counted in skipped and ignored.
func Parse(data []byte, loc *time.Location) (entries []Entry, skipped int) {
	if loc == nil {
		loc = time.Local
	}
	starts := entryStarts(data)
	if len(starts) == 0 || starts[0] != 0 {
		if len(bytes.TrimSpace(data[:firstOr(starts, len(data))])) > 0 {
			skipped++
		}
	}
	for i, s := range starts {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		e, ok := parseEntry(bytes.TrimRight(data[s:end], "\r\n\x00"), loc)
		if !ok {
			skipped++
			continue
		}
		e.Glued = s > 0 && data[s-1] != '\n'
		entries = append(entries, e)
	}
	return entries, skipped
}

func firstOr(s []int, def int) int {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// entryStarts finds every offset where an entry begins: a timestamp followed by a
// blank and a status triple. Only there, so text that happens to contain a date
// does not start an entry unless it has the whole shape.
func entryStarts(data []byte) []int {
	var out []int
	for i := 0; i+stampLen+4 <= len(data); i++ {
		if data[i] != '2' && data[i] != '1' { // years 1xxx–2xxx; cheap pre-check
			continue
		}
		if looksLikeStart(data[i:]) {
			out = append(out, i)
			i += stampLen
		}
	}
	return out
}

func looksLikeStart(b []byte) bool {
	if len(b) < stampLen+4 {
		return false
	}
	for j := 0; j < stampLen; j++ {
		c := b[j]
		switch j {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != 'T' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	s := b[stampLen:]
	return s[0] == ' ' && (s[1] == 'Y' || s[1] == 'N' || s[1] == '?') &&
		(s[2] == 'I' || s[2] == 'O') && (s[3] == 'S' || s[3] == 'M')
}

func parseEntry(b []byte, loc *time.Location) (Entry, bool) {
	if !looksLikeStart(b) {
		return Entry{}, false
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", string(b[:stampLen]), loc)
	if err != nil {
		return Entry{}, false
	}
	e := Entry{Time: t, Status: b[stampLen+1], Direction: b[stampLen+2], Role: b[stampLen+3], MR: -1}
	rest := b[stampLen+4:]
	// mr: up to two hex digits glued to the triple.
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 || sp > 2 {
		return Entry{}, false
	}
	if sp > 0 {
		v, err := strconv.ParseUint(string(rest[:sp]), 16, 8)
		if err != nil {
			return Entry{}, false
		}
		e.MR = int(v)
	}
	rest = rest[sp+1:]
	var fields [3][]byte
	for k := range fields {
		f, r, ok := bytes.Cut(rest, []byte{' '})
		if !ok && k < 2 {
			return Entry{}, false
		}
		fields[k], rest = f, r
	}
	e.Queue = string(fields[0])
	if string(fields[1]) != "-" {
		e.OA = string(fields[1])
	}
	if string(fields[2]) != "-" {
		e.DA = string(fields[2])
	}
	if e.Queue == "" {
		return Entry{}, false
	}
	e.Text = bytes.Clone(rest)
	return e, true
}

// Latin1 shows logged text for humans: each byte as the code point of the same
// value, which is what app_sms's low-byte logging preserves best.
func Latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
