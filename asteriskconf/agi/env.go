package agi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the environment block. Asterisk's own block is about 600 bytes
// plus the AGI() arguments; these bounds only stop a hostile peer.
const (
	DefaultMaxEnvBytes = 64 << 10
	MaxEnvLineBytes    = 8 << 10
)

// ErrLineTooLong reports a line longer than the limit in force.
var ErrLineTooLong = errors.New("agi: line too long")

// ErrEnvTooLarge reports an environment block above its byte limit.
var ErrEnvTooLarge = errors.New("agi: environment block too large")

// EnvField is one "key: value" line of the environment block.
type EnvField struct {
	Key, Value string
}

// Env is the environment block Asterisk sends before the first command. All
// keys are kept in the order they arrived; values are kept byte for byte.
type Env struct {
	fields []EnvField
	// index is built only for a block of more than linearFields lines (never
	// Asterisk's, which has about 20): below that a scan of the fields is
	// as quick as a map and saves allocating one per connection.
	index map[string]int
}

// linearFields is the most fields looked up, and checked for repeats, by scanning.
const linearFields = 64

// Fields returns every line of the block in order. The slice is a copy.
func (e Env) Fields() []EnvField {
	return append([]EnvField(nil), e.fields...)
}

// Lookup returns the value of key (e.g. "agi_channel") and whether it was sent.
func (e Env) Lookup(key string) (string, bool) {
	if e.index != nil {
		i, ok := e.index[key]
		if !ok {
			return "", false
		}
		return e.fields[i].Value, true
	}
	for i := range e.fields {
		if e.fields[i].Key == key {
			return e.fields[i].Value, true
		}
	}
	return "", false
}

// Get returns the value of key, or "" when it was not sent.
func (e Env) Get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// Request is agi_request: the whole first AGI() argument (the URL).
func (e Env) Request() string { return e.Get("agi_request") }

// NetworkScript is agi_network_script: the URL part after host[:port]/,
// query included. Asterisk leaves the line out when that part is empty.
func (e Env) NetworkScript() string { return e.Get("agi_network_script") }

// Channel is agi_channel, e.g. "Local/s@agitest-0000002b;2".
func (e Env) Channel() string { return e.Get("agi_channel") }

// Type is agi_type, the channel technology ("Local", "PJSIP", "Message").
func (e Env) Type() string { return e.Get("agi_type") }

// UniqueID is agi_uniqueid, the channel's unique id.
func (e Env) UniqueID() string { return e.Get("agi_uniqueid") }

// Context is agi_context, the dialplan context AGI() ran in.
func (e Env) Context() string { return e.Get("agi_context") }

// Extension is agi_extension, the dialplan extension AGI() ran in.
func (e Env) Extension() string { return e.Get("agi_extension") }

// Priority is agi_priority.
func (e Env) Priority() string { return e.Get("agi_priority") }

// CallerID is agi_callerid; Asterisk sends "unknown" when none is set.
func (e Env) CallerID() string { return e.Get("agi_callerid") }

// CallerIDName is agi_calleridname; "unknown" when none is set.
func (e Env) CallerIDName() string { return e.Get("agi_calleridname") }

// Version is agi_version, the Asterisk version.
func (e Env) Version() string { return e.Get("agi_version") }

// Args returns the extra AGI() arguments agi_arg_1, agi_arg_2, … in order,
// up to the first missing number. Spaces are kept; Asterisk does not quote.
func (e Env) Args() []string {
	var args []string
	for n := 1; ; n++ {
		v, ok := e.arg(n)
		if !ok {
			return args
		}
		args = append(args, v)
	}
}

// Arg returns agi_arg_n (counting from 1), as Args()[n-1] would, without
// building the list.
func (e Env) Arg(n int) (string, bool) {
	for i := 1; i < n; i++ {
		if _, ok := e.arg(i); !ok {
			return "", false
		}
	}
	return e.arg(n)
}

func (e Env) arg(n int) (string, bool) {
	var key [len("agi_arg_") + 20]byte
	k := strconv.AppendInt(append(key[:0], "agi_arg_"...), int64(n), 10)
	return e.Lookup(string(k))
}

// ReadEnv reads the environment block up to and including its empty line,
// and no further: the replies that follow stay in br. It fails on a block
// above maxBytes (DefaultMaxEnvBytes when <= 0), a line above
// MaxEnvLineBytes, a line that is not "key: value", a repeated key, or a
// stream that ends first (io.ErrUnexpectedEOF; io.EOF when nothing came).
// Deadlines are the caller's: set one on the connection.
//
// The block is read into one string that every key and value points into,
// so a connection costs three allocations here, not two per line.
func ReadEnv(br *bufio.Reader, maxBytes int) (Env, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxEnvBytes
	}
	if env, ok, err := readEnvBuffered(br, maxBytes); ok {
		return env, err
	}
	var block strings.Builder
	block.Grow(1024)     // Asterisk's block is about 600 bytes
	lines, total := 0, 0 // total: bytes of the complete lines
	for {
		line, err := appendLine(&block, br, min(MaxEnvLineBytes, maxBytes-total))
		if err != nil {
			switch {
			case errors.Is(err, ErrLineTooLong) && total+MaxEnvLineBytes > maxBytes:
				return Env{}, fmt.Errorf("agi: environment after %d bytes: %w", total, ErrEnvTooLarge)
			case errors.Is(err, io.EOF) && total > 0:
				return Env{}, fmt.Errorf("agi: environment line %d: %w", lines+1, io.ErrUnexpectedEOF)
			}
			return Env{}, fmt.Errorf("agi: environment line %d: %w", lines+1, err)
		}
		total += line + 1
		if line == 0 {
			break
		}
		lines++
	}
	return parseEnv(block.String(), lines)
}

// readEnvBuffered is ReadEnv when the whole block has come in br's first read,
// as Asterisk's block always does: taken from the buffer in one piece instead
// of line by line (4.5 µs of a chaninfo request, issue 17). ok is false, and
// nothing consumed, when the block is not all there or breaks a limit: ReadEnv
// then reads it line by line, and says what is wrong.
func readEnvBuffered(br *bufio.Reader, maxBytes int) (env Env, ok bool, err error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return Env{}, true, fmt.Errorf("agi: environment line 1: %w", err)
		}
	}
	buf, _ := br.Peek(br.Buffered())
	end, lines := 0, 0 // end: bytes of the lines before the empty one, LFs included
	for {
		i := bytes.IndexByte(buf[end:], '\n')
		if i < 0 || i > MaxEnvLineBytes {
			return Env{}, false, nil
		}
		if i == 0 {
			break
		}
		end += i + 1
		lines++
	}
	if end+1 > maxBytes {
		return Env{}, false, nil
	}
	block := string(buf[:end])
	br.Discard(end + 1)
	env, err = parseEnv(block, lines)
	return env, true, err
}

// parseEnv splits block, lines "key: value" each ended by an LF, into an Env.
func parseEnv(rest string, lines int) (Env, error) {
	env := Env{fields: make([]EnvField, 0, lines)}
	if lines > linearFields {
		env.index = make(map[string]int, lines)
	}
	// seen has a bit per key hashed cheaply: only a key whose bit is set
	// already is looked for among the others, which for every key was
	// half the instructions of parsing the block (issue 17, callgrind).
	var seen [2]uint64
	for n := 1; n <= lines; n++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		key, value, err := splitEnvLine(line)
		if err != nil {
			return Env{}, fmt.Errorf("agi: environment line %d: %w", n, err)
		}
		h := (uint(len(key))*7 + uint(key[len(key)-1])*3 + uint(key[len(key)/2])) & 127
		bit := uint64(1) << (h & 63)
		if seen[h>>6]&bit == 0 {
			seen[h>>6] |= bit
		} else if _, dup := env.Lookup(key); dup {
			// A second agi_network_script could steer routing; Asterisk
			// never repeats a key, so a repeat means the peer is not Asterisk.
			return Env{}, fmt.Errorf("agi: environment line %d: key %q repeated", n, key)
		}
		if env.index != nil {
			env.index[key] = len(env.fields)
		}
		env.fields = append(env.fields, EnvField{Key: key, Value: value})
	}
	return env, nil
}

// splitEnvLine splits "key: value". Asterisk always writes ": "; a bare ":"
// is accepted too. Keys are restricted to what setup_env produces so that a
// stray reply or garbage is not taken for environment.
func splitEnvLine(line string) (key, value string, err error) {
	i := 0
	for i < len(line) && isKeyByte(line[i]) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return "", "", fmt.Errorf("not a \"key: value\" line: %.40q", line)
	}
	key, value = line[:i], line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return key, value, nil
}

func isKeyByte(c byte) bool { return keyBytes[c] }

var keyBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	return t
}()

// setReply is the reply to SET VARIABLE and most other commands.
const setReply = "200 result=1"

// readLine returns the next line without its LF. More than max bytes before
// an LF fail with ErrLineTooLong, so memory stays bounded whatever arrives.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line string
	var buf []byte
	_, err := readFragments(br, max, func(frag []byte, last bool) {
		switch {
		case !last:
			buf = append(buf, frag...)
		case buf != nil:
			line = string(append(buf, frag...))
		case string(frag) == setReply:
			line = setReply // every SET VARIABLE's reply: no copy
		default:
			line = string(frag)
		}
	})
	return line, err
}

// appendLine appends the next line, LF included, to b and returns its length
// without the LF: 0 for an empty line. It fails as readLine does; the bytes of
// a line that fails may be left in b.
func appendLine(b *strings.Builder, br *bufio.Reader, max int) (int, error) {
	return readFragments(br, max, func(frag []byte, last bool) {
		b.Write(frag)
		if last {
			b.WriteByte('\n')
		}
	})
}

// readFragments reads the next line in the pieces br hands out, passing each
// to take (the last, without its LF, with last set) and returning the line's
// length without the LF. A line of more than max bytes fails with
// ErrLineTooLong before take sees the piece that makes it too long; a line
// that EOF cuts short fails with io.ErrUnexpectedEOF.
func readFragments(br *bufio.Reader, max int, take func(frag []byte, last bool)) (int, error) {
	n := 0
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			frag = frag[:len(frag)-1]
			if n+len(frag) > max {
				return 0, fmt.Errorf("more than %d bytes: %w", max, ErrLineTooLong)
			}
			take(frag, true)
			return n + len(frag), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if n+len(frag) > max {
				return 0, fmt.Errorf("more than %d bytes: %w", max, ErrLineTooLong)
			}
			take(frag, false)
			n += len(frag)
		case errors.Is(err, io.EOF) && n+len(frag) > 0:
			return 0, io.ErrUnexpectedEOF
		default:
			return 0, err
		}
	}
}
