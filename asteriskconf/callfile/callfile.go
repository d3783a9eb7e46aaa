package callfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxLine is the longest line, in bytes and without its newline, that
	// pbx_spool reads. It reads with fgets into a 1024-byte buffer, so a
	// line of 1023 bytes plus '\n' no longer fits and the whole line is
	// skipped with only a warning in the Asterisk log.
	MaxLine = 1022

	// MaxSize is the largest call file Marshal writes and Parse accepts.
	// Real call files are a few hundred bytes; anything near this size is
	// not one of ours.
	MaxSize = 64 << 10

	// maxCallerIDPart is the longest caller ID name or number that survives
	// ast_callerid_split, which copies each into an 80-byte buffer.
	maxCallerIDPart = 79
)

// ErrInvalid is wrapped by every *FieldError, so callers can tell "this call
// could never be written" (a permanent failure) from I/O trouble.
var ErrInvalid = errors.New("invalid call file")

// FieldError reports a value that Marshal refuses to write, naming the field.
type FieldError struct {
	Field  string // call file key, e.g. "Data" or "Setvar[2]"
	Reason string
}

func (e *FieldError) Error() string { return "callfile: " + e.Field + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// CallFile is one Asterisk call file (pbx_spool).
//
// The numeric fields use 0 for "line omitted": pbx_spool then applies its
// default (WaitTime 45 s, RetryTime 300 s, MaxRetries 0). Nothing is lost by
// this: pbx_spool itself replaces a WaitTime or RetryTime below 1 with the
// default, and MaxRetries 0 is the default. Negative values are refused.
type CallFile struct {
	Channel     string // Tech/dest, required, must contain '/'
	CallerID    string // e.g. `SMS <9001>` or `"Name" <num>`
	Application string // with Data, or Context+Extension(+Priority); exactly one of Application and Extension
	Data        string

	Context, Extension string
	Priority           string // positive decimal integer, or "" for pbx_spool's default 1

	WaitTime, MaxRetries, RetryTime int // seconds / count; 0 = omitted (Asterisk default), negative = error

	Account      string
	Codecs       string // allow list, e.g. "slin,ulaw"
	Archive      bool   // move to outgoing_done and append Status
	AlwaysDelete *bool  // nil = omitted (Asterisk default yes)
	EarlyMedia   bool   // connect on early media; extension form only
	Vars         []Var  // Setvar lines in order
}

// Var is one channel variable set on the call (a Setvar line). A "__"
// prefix makes the variable inherit across a Local channel pair.
type Var struct{ Name, Value string }

// Validate reports the first value that Marshal would refuse.
func (c *CallFile) Validate() error {
	_, err := c.Marshal()
	return err
}

// Marshal renders the call file: lines "Key: value\n" in the order smsq
// uses (Channel, Callerid, Application, Data, MaxRetries, RetryTime,
// WaitTime), then Context, Extension, Priority, Account, Codecs, the Setvar
// lines, Archive, AlwaysDelete and Early_media.
//
// Every value is checked against what pbx_spool would read back; anything
// that would change meaning is refused with a *FieldError, never altered.
// The only rewrite is pbx_spool's own escape: ';' is written as "\;".
// There is no escape for '#': pbx_spool cuts a line at a '#' that follows
// a blank (before it looks at backslashes), so such values are refused.
func (c *CallFile) Marshal() ([]byte, error) {
	if err := c.checkShape(); err != nil {
		return nil, err
	}
	w := writer{buf: make([]byte, 0, 256)}
	w.field("Channel", c.Channel, true)
	w.field("Callerid", c.CallerID, false)
	w.field("Application", c.Application, false)
	w.field("Data", c.Data, false)
	w.number("MaxRetries", c.MaxRetries)
	w.number("RetryTime", c.RetryTime)
	w.number("WaitTime", c.WaitTime)
	w.field("Context", c.Context, false)
	w.field("Extension", c.Extension, false)
	w.field("Priority", c.Priority, false)
	w.field("Account", c.Account, false)
	w.field("Codecs", c.Codecs, false)
	for i, v := range c.Vars {
		w.setvar(i, v)
	}
	if c.Archive {
		w.field("Archive", "yes", true)
	}
	if c.AlwaysDelete != nil {
		w.field("AlwaysDelete", yesNo(*c.AlwaysDelete), true)
	}
	if c.EarlyMedia {
		w.field("Early_media", "yes", true)
	}
	if w.err != nil {
		return nil, w.err
	}
	if len(w.buf) > MaxSize {
		return nil, &FieldError{Field: "file", Reason: fmt.Sprintf("%d bytes, more than %d", len(w.buf), MaxSize)}
	}
	return w.buf, nil
}

// checkShape checks the combination of fields and the fields with a syntax
// of their own; writer checks what every value must satisfy.
func (c *CallFile) checkShape() error {
	if c.Channel == "" {
		return &FieldError{"Channel", "required"}
	}
	tech, dest, ok := strings.Cut(c.Channel, "/")
	if !ok || tech == "" || dest == "" {
		return &FieldError{"Channel", fmt.Sprintf("%q is not Tech/dest", c.Channel)}
	}
	switch {
	case c.Application == "" && c.Extension == "":
		// pbx_spool would remove the file with Status: Failed.
		return &FieldError{"Application", "neither Application nor Extension is set"}
	case c.Application != "" && c.Extension != "":
		// pbx_spool would run the application and silently ignore the
		// dialplan location: refuse the ambiguity.
		return &FieldError{"Extension", "both Application and Extension are set; pbx_spool would ignore the extension"}
	case c.Data != "" && c.Application == "":
		return &FieldError{"Data", "set without Application; pbx_spool would ignore it"}
	case c.Context != "" && c.Extension == "":
		return &FieldError{"Context", "set without Extension; pbx_spool would ignore it"}
	case c.Priority != "" && c.Extension == "":
		return &FieldError{"Priority", "set without Extension; pbx_spool would ignore it"}
	case c.EarlyMedia && c.Extension == "":
		return &FieldError{"Early_media", "only honoured with Extension"}
	}
	if c.Priority != "" && !canonicalPositive(c.Priority) {
		return &FieldError{"Priority", fmt.Sprintf("%q is not a positive decimal integer", c.Priority)}
	}
	if name, num := splitCallerID(c.CallerID); len(name) > maxCallerIDPart || len(num) > maxCallerIDPart {
		return &FieldError{"Callerid", fmt.Sprintf("name or number longer than %d bytes would be truncated by Asterisk", maxCallerIDPart)}
	}
	for i, v := range c.Vars {
		if !validVarName(v.Name) {
			return &FieldError{fmt.Sprintf("Setvar[%d]", i), fmt.Sprintf("%q is not a variable name (letters, digits, '_', optional '_' or '__' prefix) or function call such as FAXOPT(ecm)", v.Name)}
		}
	}
	return nil
}

// writer appends checked lines and keeps the first error.
type writer struct {
	buf []byte
	err error
}

// field writes "key: value" unless value is empty (an empty value and an
// absent line mean the same to pbx_spool).
func (w *writer) field(key, value string, required bool) {
	if w.err != nil || (value == "" && !required) {
		return
	}
	if fe := checkValue(value, true); fe != nil {
		fe.Field = key
		w.err = fe
		return
	}
	if fe := w.line(key+": ", value); fe != nil {
		fe.Field = key
		w.err = fe
	}
}

func (w *writer) number(key string, n int) {
	if w.err != nil || n == 0 {
		return
	}
	if n < 0 {
		w.err = &FieldError{key, fmt.Sprintf("%d is negative; use 0 for the Asterisk default", n)}
		return
	}
	if n > 1<<31-1 {
		w.err = &FieldError{key, fmt.Sprintf("%d does not fit a C int", n)}
		return
	}
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, ": "...)
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, '\n')
}

func (w *writer) setvar(i int, v Var) {
	if w.err != nil {
		return
	}
	// pbx_spool splits at the first '=' and keeps the value as it is,
	// leading blanks included, so only the trailing side is trimmed.
	fe := checkValue(v.Value, false)
	if fe == nil {
		fe = w.line("Setvar: "+v.Name+"=", v.Value)
	}
	if fe != nil {
		fe.Field = fmt.Sprintf("Setvar[%d] %s", i, v.Name)
		w.err = fe
	}
}

// line appends prefix and value with ';' escaped, or reports (without a
// field name) a line pbx_spool would skip.
func (w *writer) line(prefix, value string) *FieldError {
	n := len(prefix) + len(value) + strings.Count(value, ";")
	if n > MaxLine {
		return &FieldError{Reason: fmt.Sprintf("line would be %d bytes; pbx_spool skips lines longer than %d", n, MaxLine)}
	}
	w.buf = append(w.buf, prefix...)
	for i := 0; i < len(value); i++ {
		if value[i] == ';' {
			w.buf = append(w.buf, '\\')
		}
		w.buf = append(w.buf, value[i])
	}
	w.buf = append(w.buf, '\n')
	return nil
}

// checkValue refuses what pbx_spool would not read back unchanged; the
// caller fills in the field name.
// afterBlank is true when the value follows "Key: ": pbx_spool then skips
// leading blanks, and a leading '#' would start a comment.
func checkValue(v string, afterBlank bool) *FieldError {
	if v == "" {
		if afterBlank {
			return &FieldError{Reason: "empty"}
		}
		return nil
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < 0x20 || b == 0x7f {
			// CR/LF would start a new line ("1000\nApplication: System"),
			// NUL would end it; other controls are never legitimate here.
			return &FieldError{Reason: fmt.Sprintf("control character %#02x at byte %d", b, i)}
		}
		if b == '#' && ((i == 0 && afterBlank) || (i > 0 && v[i-1] == ' ')) {
			return &FieldError{Reason: fmt.Sprintf("'#' after a blank at byte %d would start a comment (pbx_spool has no escape for it)", i)}
		}
	}
	if afterBlank && v[0] == ' ' {
		return &FieldError{Reason: "leading blank would be skipped by pbx_spool"}
	}
	if v[len(v)-1] == ' ' {
		return &FieldError{Reason: "trailing blank would be trimmed by pbx_spool"}
	}
	return nil
}

// validVarName accepts a variable name, an optional "_" or "__" inheritance
// prefix followed by an identifier (a letter, then letters, digits and '_'),
// or a dialplan function call NAME(ARGS) such as FAXOPT(ecm): Asterisk sets
// a name ending in ')' by writing the function (pbx_builtin_setvar_helper),
// which is how FAXOPT, CALLERID and friends are set from a call file. The
// arguments are limited to letters, digits and "_-.," so that '=' (which
// would move the split point), blanks, ';', '#', '$' and nested calls stay out.
func validVarName(s string) bool {
	if fn, args, ok := strings.Cut(s, "("); ok {
		args, closed := strings.CutSuffix(args, ")")
		return closed && isIdent(fn) && validFuncArgs(args)
	}
	for range 2 {
		s, _ = strings.CutPrefix(s, "_")
	}
	return isIdent(s)
}

// isIdent reports whether s is a letter followed by letters, digits and '_'.
func isIdent(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isLetter(b) && !(b >= '0' && b <= '9') && b != '_' {
			return false
		}
	}
	return true
}

// validFuncArgs accepts the non-empty argument list of a function name.
func validFuncArgs(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !isLetter(b) && !(b >= '0' && b <= '9') && !strings.ContainsRune("_-.,", rune(b)) {
			return false
		}
	}
	return true
}

func isLetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

// canonicalPositive accepts what Parse would read back unchanged: decimal
// digits without sign or leading zero, at least 1, fitting a C int.
func canonicalPositive(s string) bool {
	if s == "" || s[0] == '0' {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return err == nil && n >= 1 && strconv.FormatInt(n, 10) == s
}

// splitCallerID approximates ast_callerid_split closely enough to bound the
// length of the two parts: `"name" <num>`, `name <num>` or a bare value.
func splitCallerID(s string) (name, num string) {
	i := strings.LastIndexByte(s, '<')
	if i < 0 {
		return s, ""
	}
	num = s[i+1:]
	if j := strings.LastIndexByte(num, '>'); j >= 0 {
		num = num[:j]
	}
	name = strings.Trim(strings.TrimSpace(s[:i]), `"`)
	return name, num
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
