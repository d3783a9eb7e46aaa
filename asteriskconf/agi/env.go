package agi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
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
	index  map[string]int
}

// Fields returns every line of the block in order. The slice is a copy.
func (e Env) Fields() []EnvField {
	return append([]EnvField(nil), e.fields...)
}

// Lookup returns the value of key (e.g. "agi_channel") and whether it was sent.
func (e Env) Lookup(key string) (string, bool) {
	i, ok := e.index[key]
	if !ok {
		return "", false
	}
	return e.fields[i].Value, true
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
		v, ok := e.Lookup("agi_arg_" + strconv.Itoa(n))
		if !ok {
			return args
		}
		args = append(args, v)
	}
}

// ReadEnv reads the environment block up to and including its empty line,
// and no further: the replies that follow stay in br. It fails on a block
// above maxBytes (DefaultMaxEnvBytes when <= 0), a line above
// MaxEnvLineBytes, a line that is not "key: value", a repeated key, or a
// stream that ends first (io.ErrUnexpectedEOF; io.EOF when nothing came).
// Deadlines are the caller's: set one on the connection.
func ReadEnv(br *bufio.Reader, maxBytes int) (Env, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxEnvBytes
	}
	env := Env{index: make(map[string]int, 32)}
	total := 0
	for {
		line, err := readLine(br, min(MaxEnvLineBytes, maxBytes-total))
		if err != nil {
			switch {
			case errors.Is(err, ErrLineTooLong) && total+MaxEnvLineBytes > maxBytes:
				return Env{}, fmt.Errorf("agi: environment after %d bytes: %w", total, ErrEnvTooLarge)
			case errors.Is(err, io.EOF) && total > 0:
				return Env{}, fmt.Errorf("agi: environment line %d: %w", len(env.fields)+1, io.ErrUnexpectedEOF)
			}
			return Env{}, fmt.Errorf("agi: environment line %d: %w", len(env.fields)+1, err)
		}
		total += len(line) + 1
		if line == "" {
			return env, nil
		}
		key, value, err := splitEnvLine(line)
		if err != nil {
			return Env{}, fmt.Errorf("agi: environment line %d: %w", len(env.fields)+1, err)
		}
		if _, dup := env.index[key]; dup {
			// A second agi_network_script could steer routing; Asterisk
			// never repeats a key, so a repeat means the peer is not Asterisk.
			return Env{}, fmt.Errorf("agi: environment line %d: key %q repeated", len(env.fields)+1, key)
		}
		env.index[key] = len(env.fields)
		env.fields = append(env.fields, EnvField{Key: key, Value: value})
	}
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

func isKeyByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// readLine returns the next line without its LF. More than max bytes before
// an LF fail with ErrLineTooLong, so memory stays bounded whatever arrives.
func readLine(br *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			n := len(frag) - 1
			if len(buf)+n > max {
				return "", fmt.Errorf("more than %d bytes: %w", max, ErrLineTooLong)
			}
			if buf == nil {
				return string(frag[:n]), nil
			}
			return string(append(buf, frag[:n]...)), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(buf)+len(frag) > max {
				return "", fmt.Errorf("more than %d bytes: %w", max, ErrLineTooLong)
			}
			buf = append(buf, frag...)
		case errors.Is(err, io.EOF) && len(buf)+len(frag) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}
