package callfile

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Bookkeeping line kinds, as Asterisk appends them to a call file.
const (
	KindStartRetry   = "StartRetry"   // an attempt begins
	KindEndRetry     = "EndRetry"     // the attempt failed; another one is scheduled
	KindAbortRetry   = "AbortRetry"   // an earlier Asterisk process died during an attempt
	KindDelayedRetry = "DelayedRetry" // a rescan found the file while its call was running
	KindRetry        = "Retry"        // legacy form; counts one retry
)

// Final states appended to an archived file (Archive: yes) in outgoing_done.
const (
	StatusCompleted = "Completed" // the call was answered (not: the application succeeded)
	StatusExpired   = "Expired"   // MaxRetries+1 attempts failed
	StatusFailed    = "Failed"    // the file could not be read or was invalid
)

// Attempt is one bookkeeping line, "<Kind>: <pid> <n> (<epoch>)".
// PID is the Asterisk process, N the attempt number, Epoch the time
// Asterisk wrote (for StartRetry: now+RetryTime). Malformed numbers are 0.
type Attempt struct {
	Kind  string // StartRetry|EndRetry|AbortRetry|DelayedRetry|Retry
	PID   int
	N     int
	Epoch int64
}

// Record is a call file as pbx_spool reads it, plus what Asterisk appended.
type Record struct {
	CallFile
	Attempts []Attempt
	Status   string // Completed|Expired|Failed, or "" while in outgoing/
	// Unknown holds the lines pbx_spool ignores with a warning, verbatim:
	// unknown keys, malformed values (a Channel without '/', a non-numeric
	// WaitTime, a Setvar without '=') and lines over MaxLine bytes.
	Unknown []string
}

// InProgress reports whether an attempt has started and not ended: a
// StartRetry with no later EndRetry, AbortRetry or Retry, and no Status.
// DelayedRetry does not end an attempt; pbx_spool writes it precisely
// because the call is still running.
func (r *Record) InProgress() bool {
	if r.Status != "" {
		return false
	}
	running := false
	for _, a := range r.Attempts {
		switch a.Kind {
		case KindStartRetry:
			running = true
		case KindEndRetry, KindAbortRetry, KindRetry:
			running = false
		}
	}
	return running
}

// Retries counts the attempts that have ended, the way pbx_spool does when
// it re-reads the file (EndRetry, AbortRetry and Retry each count one).
func (r *Record) Retries() int {
	n := 0
	for _, a := range r.Attempts {
		switch a.Kind {
		case KindEndRetry, KindAbortRetry, KindRetry:
			n++
		}
	}
	return n
}

// Parse reads a call file from outgoing/ or outgoing_done/ with
// pbx_spool's rules: keys are case-insensitive; '#' at the start of a line
// or after a blank starts a comment; ';' starts a comment unless written
// "\;"; blanks before a value and trailing blanks are dropped; a repeated
// key overrides (Setvar lines and Codecs accumulate).
//
// Parse fails only when the data cannot be a call file: larger than
// MaxSize, a NUL or other control character (TAB, CR and LF aside), or a
// non-comment line without a colon. A file pbx_spool would reject for
// missing fields still parses; its Record simply lacks them.
func Parse(data []byte) (*Record, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("callfile: parse: %d bytes, more than %d", len(data), MaxSize)
	}
	for i, b := range data {
		if (b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f {
			return nil, fmt.Errorf("callfile: parse: control character %#02x at byte %d: not a call file", b, i)
		}
	}
	r := &Record{}
	lineno := 0
	for len(data) > 0 {
		lineno++
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(raw) > MaxLine {
			r.Unknown = append(r.Unknown, string(raw))
			continue
		}
		if err := r.parseLine(string(raw)); err != nil {
			return nil, fmt.Errorf("callfile: parse: line %d: %w", lineno, err)
		}
	}
	return r, nil
}

func (r *Record) parseLine(raw string) error {
	line := stripComments(raw)
	line = strings.TrimRightFunc(line, func(c rune) bool { return c < 33 })
	if line == "" {
		return nil
	}
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("no colon in %q", truncate(line))
	}
	value = strings.TrimLeftFunc(value, func(c rune) bool { return c < 33 })

	// Keys are compared byte-wise in ASCII, as strcasecmp does; Unicode case
	// folding would accept keys pbx_spool ignores.
	switch asciiLower(key) {
	case "channel":
		if !strings.Contains(value, "/") {
			r.Unknown = append(r.Unknown, raw)
			return nil
		}
		r.Channel = value
	case "callerid":
		r.CallerID = value
	case "application":
		r.Application = value
	case "data":
		r.Data = value
	case "context":
		r.Context = value
	case "extension":
		r.Extension = value
	case "account":
		r.Account = value
	case "codecs":
		// Each Codecs line adds to the allow list.
		if r.Codecs != "" && value != "" {
			r.Codecs += "," + value
		} else if value != "" {
			r.Codecs = value
		}
	case "maxretries":
		// pbx_spool resets the field to its default on a bad value, even
		// after an earlier good line.
		n, ok := scanInt(value)
		if !ok {
			n = 0
			r.Unknown = append(r.Unknown, raw)
		}
		r.MaxRetries = n
	case "retrytime":
		r.RetryTime = r.positive(value, raw)
	case "waittime":
		r.WaitTime = r.positive(value, raw)
	case "priority":
		if n := r.positive(value, raw); n > 0 {
			r.Priority = strconv.Itoa(n)
		} else {
			r.Priority = ""
		}
	case "setvar", "set":
		name, val, ok := strings.Cut(value, "=")
		if !ok {
			r.Unknown = append(r.Unknown, raw)
			return nil
		}
		r.Vars = append(r.Vars, Var{Name: name, Value: val})
	case "archive":
		r.Archive = astTrue(value)
	case "alwaysdelete":
		b := astTrue(value)
		r.AlwaysDelete = &b
	case "early_media":
		r.EarlyMedia = astTrue(value)
	case "startretry":
		r.Attempts = append(r.Attempts, parseAttempt(KindStartRetry, value))
	case "endretry":
		r.Attempts = append(r.Attempts, parseAttempt(KindEndRetry, value))
	case "abortretry":
		r.Attempts = append(r.Attempts, parseAttempt(KindAbortRetry, value))
	case "delayedretry":
		r.Attempts = append(r.Attempts, parseAttempt(KindDelayedRetry, value))
	case "retry":
		r.Attempts = append(r.Attempts, parseAttempt(KindRetry, value))
	case "status":
		// Written by pbx_spool after archiving; unknown to its reader.
		r.Status = value
	default:
		r.Unknown = append(r.Unknown, raw)
	}
	return nil
}

// positive parses WaitTime, RetryTime and Priority: pbx_spool replaces a
// value that is not a number, or is below 1, by its default (0 here).
func (r *Record) positive(value, raw string) int {
	n, ok := scanInt(value)
	if !ok || n < 1 {
		r.Unknown = append(r.Unknown, raw)
		return 0
	}
	return n
}

// stripComments applies pbx_spool's two comment rules in its order: first
// cut at a '#' that starts the line or follows a blank, then walk the ';'s,
// turning "\;" into ';' and cutting at the first unescaped one.
func stripComments(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	if !strings.Contains(line, ";") {
		return line
	}
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != ';' {
			out = append(out, c)
			continue
		}
		// The escaping backslash was already copied: replace it by the ';'.
		// pbx_spool's memmove never changes the byte in front of a later
		// ';', so testing the original line gives the same answer.
		if i > 0 && line[i-1] == '\\' {
			out[len(out)-1] = ';'
			continue
		}
		break
	}
	return string(out)
}

// scanInt mirrors sscanf("%30d"): optional sign, then digits, anything
// after them ignored. Values outside a C int are treated as invalid.
func scanInt(s string) (int, bool) {
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	start := end
	for end < len(s) && end < 30 && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == start {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:end], 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// parseAttempt reads "<pid> <n> (<epoch>)" field by field; a malformed
// field stays 0 (pbx_spool only reads the pid, and only for StartRetry).
func parseAttempt(kind, value string) Attempt {
	a := Attempt{Kind: kind}
	f := strings.Fields(value)
	if len(f) > 0 {
		if n, ok := scanInt(f[0]); ok {
			a.PID = n
		}
	}
	if len(f) > 1 {
		if n, ok := scanInt(f[1]); ok {
			a.N = n
		}
	}
	if len(f) > 2 {
		e := strings.TrimSuffix(strings.TrimPrefix(f[2], "("), ")")
		if n, err := strconv.ParseInt(e, 10, 64); err == nil {
			a.Epoch = n
		}
	}
	return a
}

// astTrue mirrors ast_true: yes, true, y, t, 1 and on, in any case.
func astTrue(s string) bool {
	switch asciiLower(s) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
