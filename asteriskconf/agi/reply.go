package agi

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Reply codes Asterisk sends.
const (
	CodeSuccess        = 200
	CodeInvalidCommand = 510
	CodeDeadChannel    = 511
	CodeUsage          = 520
)

// DefaultMaxReplyBytes bounds one reply, continuation and usage lines
// included. A Base64 body of a long concatenated message fits easily.
const DefaultMaxReplyBytes = 256 << 10

var (
	// ErrHangup: the channel is gone. Returned for a 511 reply and when
	// Asterisk closes the connection while a reply is awaited.
	ErrHangup = errors.New("agi: channel hung up")
	// ErrInvalidCommand: Asterisk answered 510, it does not know the command.
	ErrInvalidCommand = errors.New("agi: invalid or unknown command")
	// ErrProtocol: a line that is not a reply where a reply was due. The
	// session is unusable afterwards.
	ErrProtocol = errors.New("agi: protocol error")
)

// Reply is one parsed reply.
type Reply struct {
	Code int
	// Result is N of "200 result=N"; 0 for other codes.
	Result int
	// Data is the text inside "(…)" of a 200 reply, byte for byte.
	Data string
	// HasData tells "200 result=1 ()" (empty value) from "200 result=1".
	HasData bool
	// Extra holds " key=value" fields after the data, e.g. endpos.
	Extra map[string]string
	// Text is the rest of the first line after the code, for codes other
	// than 200 ("Invalid or unknown command").
	Text string
	// Usage holds the lines between "520-…" and "520 End of proper usage.".
	Usage []string
}

// UsageError is a 520 reply: the command had the wrong number of arguments.
type UsageError struct {
	Command string
	Reply   Reply
}

func (e *UsageError) Error() string {
	msg := fmt.Sprintf("agi: %s: invalid command syntax (520)", e.Command)
	if len(e.Reply.Usage) > 0 {
		msg += ": " + e.Reply.Usage[0]
	}
	return msg
}

// ReplyError is any reply other than 200 and 520. errors.Is matches
// ErrInvalidCommand for 510 and ErrHangup for 511.
type ReplyError struct {
	Command string
	Reply   Reply
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("agi: %s: %d %s", e.Command, e.Reply.Code, e.Reply.Text)
}

// Is maps reply codes onto the sentinel errors.
func (e *ReplyError) Is(target error) bool {
	switch e.Reply.Code {
	case CodeInvalidCommand:
		return target == ErrInvalidCommand
	case CodeDeadChannel:
		return target == ErrHangup
	}
	return false
}

// ParseReply parses one complete single-line reply such as
// "200 result=1 (value) endpos=3" or "510 Invalid or unknown command".
// Multi-line replies ("520-…") and unterminated data need the stream: see
// ReadReply.
func ParseReply(line string) (Reply, error) {
	code, sep, err := replyCode(line)
	if err != nil {
		return Reply{}, err
	}
	if sep != ' ' {
		return Reply{}, fmt.Errorf("%w: multi-line reply start %.60q needs the stream", ErrProtocol, line)
	}
	r, complete, err := parseSingle(code, line)
	if err != nil {
		return Reply{}, err
	}
	if !complete {
		return Reply{}, fmt.Errorf("%w: unterminated data in %.60q", ErrProtocol, line)
	}
	return r, nil
}

// ReadReply reads the next reply from br, skipping and counting the
// unprompted "HANGUP" lines before it. Nothing after the reply is consumed.
// maxBytes bounds the reply (DefaultMaxReplyBytes when <= 0).
func ReadReply(br *bufio.Reader, maxBytes int) (r Reply, hangups int, err error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxReplyBytes
	}
	// The answer to SET VARIABLE and most commands, taken whole from the
	// buffer (a third of reading a reply, issue 17). The first read's
	// error is what the line-by-line read below would return.
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return Reply{}, 0, err
		}
	}
	if br.Buffered() >= len(setReply)+1 && maxBytes > len(setReply) {
		if b, _ := br.Peek(len(setReply) + 1); string(b[:len(setReply)]) == setReply && b[len(setReply)] == '\n' {
			br.Discard(len(b))
			return Reply{Code: CodeSuccess, Result: 1}, 0, nil
		}
	}
	var line string
	for {
		if line, err = readLine(br, maxBytes); err != nil {
			return Reply{}, hangups, err
		}
		if line != "HANGUP" {
			break
		}
		hangups++
	}
	code, sep, err := replyCode(line)
	if err != nil {
		return Reply{}, hangups, err
	}
	budget := maxBytes - len(line) - 1
	if sep == '-' {
		r, err = readMultiLine(br, code, line, budget)
		return r, hangups, err
	}
	r, complete, err := parseSingle(code, line)
	if err != nil || complete {
		return r, hangups, err
	}
	// A value with a newline arrives raw over several lines; join them
	// until one closes the parenthesis.
	var b strings.Builder
	b.WriteString(line)
	for {
		next, err := readLine(br, budget)
		if err != nil {
			return Reply{}, hangups, fmt.Errorf("reply continuation: %w", err)
		}
		budget -= len(next) + 1
		b.WriteByte('\n')
		b.WriteString(next)
		if strings.HasSuffix(next, ")") {
			r, complete, err := parseSingle(code, b.String())
			if err == nil && !complete {
				err = fmt.Errorf("%w: unterminated data", ErrProtocol)
			}
			return r, hangups, err
		}
	}
}

// readMultiLine reads "NNN-text", lines, "NNN text". Asterisk writes the
// block in one go, so a line inside it is usage text even if it says HANGUP.
func readMultiLine(br *bufio.Reader, code int, first string, budget int) (Reply, error) {
	r := Reply{Code: code, Text: first[4:]}
	end := first[:3] + " "
	for {
		line, err := readLine(br, budget)
		if err != nil {
			return Reply{}, fmt.Errorf("%d usage text: %w", code, err)
		}
		budget -= len(line) + 1
		if strings.HasPrefix(line, end) {
			return r, nil
		}
		r.Usage = append(r.Usage, line)
	}
}

// replyCode reads "NNN " or "NNN-" at the start of line.
func replyCode(line string) (code int, sep byte, err error) {
	if len(line) < 4 || line[3] != ' ' && line[3] != '-' ||
		!isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || line[0] == '0' {
		return 0, 0, fmt.Errorf("%w: not a reply: %.60q", ErrProtocol, line)
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	return code, line[3], nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseSingle parses a one-line reply. complete is false when a 200 reply
// opens "(" and nothing after it can be read as its end: more lines follow.
func parseSingle(code int, line string) (r Reply, complete bool, err error) {
	r.Code = code
	if code != CodeSuccess {
		r.Text = line[4:]
		return r, true, nil
	}
	rest, ok := strings.CutPrefix(line[4:], "result=")
	if !ok {
		return Reply{}, false, fmt.Errorf("%w: 200 without result=: %.60q", ErrProtocol, line)
	}
	num, rest, _ := strings.Cut(rest, " ")
	if r.Result, err = strconv.Atoi(num); err != nil {
		return Reply{}, false, fmt.Errorf("%w: result %.20q is not a number", ErrProtocol, num)
	}
	if rest == "" {
		return r, true, nil
	}
	if rest[0] != '(' {
		r.Extra, err = parseExtras(rest)
		return r, err == nil, err
	}
	// The data is raw and may itself hold ")" and spaces, so its end is
	// the last ")" that is either the end of the line or followed only by
	// well-formed key=value extras. GET VARIABLE never has extras, so its
	// value always runs to the line's final ")".
	if strings.HasSuffix(rest, ")") {
		r.Data, r.HasData = rest[1:len(rest)-1], true
		return r, true, nil
	}
	if i := strings.LastIndex(rest, ") "); i > 0 {
		if extra, err := parseExtras(rest[i+2:]); err == nil {
			r.Data, r.HasData, r.Extra = rest[1:i], true, extra
			return r, true, nil
		}
	}
	return Reply{}, false, nil
}

// parseExtras parses "key=value key=value".
func parseExtras(s string) (map[string]string, error) {
	m := make(map[string]string, 1)
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" || strings.IndexFunc(k, func(c rune) bool { return c > 0x7f || !isKeyByte(byte(c)) }) >= 0 {
			return nil, fmt.Errorf("%w: bad reply field %.40q", ErrProtocol, f)
		}
		m[k] = v
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: empty reply fields", ErrProtocol)
	}
	return m, nil
}
