package ami

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of Asterisk's manager.c input parser (SPEC.md §5.1). Outgoing
// packets are checked against them before anything is written.
const (
	// MaxLineLength is the longest line Asterisk accepts, CRLF included: its
	// input buffer holds 1024 bytes and a line is only found if its
	// terminator fits in it.
	MaxLineLength = 1024
	// MaxHeaders is AST_MAX_MANHEADERS; Asterisk silently ignores headers
	// beyond it, so we refuse to send them.
	MaxHeaders = 128
)

// Bounds on what we read. Asterisk's own output is not limited to its input
// limits (long event values, command output), so these are more generous,
// but still small enough that a hostile peer cannot make us allocate much.
const (
	MaxReadLine    = 8 << 10  // bytes per line, terminator excluded
	MaxReadHeaders = 1024     // lines per packet (legacy command output counts)
	MaxReadPacket  = 64 << 10 // bytes per packet
)

const bannerPrefix = "Asterisk Call Manager/"

// AppendPacket appends the wire form of p to dst, after checking it against
// Asterisk's input limits: a key must be non-empty and free of ':', spaces
// and control characters; no value may contain CR, LF or NUL (that would let
// a message body inject headers); every line must fit MaxLineLength; at most
// MaxHeaders headers.
func AppendPacket(dst []byte, p Packet) ([]byte, error) {
	if len(p) == 0 {
		return dst, fmt.Errorf("%w: empty packet", ErrInvalidPacket)
	}
	if len(p) > MaxHeaders {
		return dst, fmt.Errorf("%w: %d headers, Asterisk reads at most %d", ErrInvalidPacket, len(p), MaxHeaders)
	}
	for _, h := range p {
		if err := checkHeader(h); err != nil {
			return dst, err
		}
	}
	for _, h := range p {
		dst = append(dst, h.Key...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...), nil
}

func checkHeader(h Header) error {
	if h.Key == "" {
		return fmt.Errorf("%w: empty header name", ErrInvalidPacket)
	}
	for i := 0; i < len(h.Key); i++ {
		c := h.Key[i]
		if c <= ' ' || c == ':' || c == 0x7f {
			return fmt.Errorf("%w: header name %q contains %q", ErrInvalidPacket, h.Key, c)
		}
	}
	if i := strings.IndexAny(h.Value, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("%w: header %s: value contains %q at byte %d", ErrInvalidPacket, h.Key, h.Value[i], i)
	}
	if n := len(h.Key) + 2 + len(h.Value) + 2; n > MaxLineLength {
		return fmt.Errorf("%w: header %s: line of %d bytes exceeds Asterisk's %d", ErrLineTooLong, h.Key, n, MaxLineLength)
	}
	return nil
}

// Reader reads AMI packets from a byte stream. It tolerates bare LF line
// endings and stray blank lines between packets, and understands the legacy
// "Response: Follows" command output (Asterisk ≤ 13), whose free-form lines
// are returned as Output headers. Every line and packet is bounded; a
// violation returns an error wrapping ErrProtocol, after which the stream is
// out of step and must be abandoned.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	// The buffer holds one maximal line plus CRLF, so ReadSlice never needs
	// to grow it: memory per connection stays fixed whatever the peer sends.
	return &Reader{br: bufio.NewReaderSize(r, MaxReadLine+2)}
}

// readLine returns the next line without its terminator. The slice is only
// valid until the next read.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: %w: more than %d bytes without a line end", ErrProtocol, ErrLineTooLong, MaxReadLine)
	case err == io.EOF && len(line) > 0:
		return nil, fmt.Errorf("%w: stream ended inside a line: %w", ErrProtocol, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > MaxReadLine {
		return nil, fmt.Errorf("%w: %w: more than %d bytes without a line end", ErrProtocol, ErrLineTooLong, MaxReadLine)
	}
	return line, nil
}

// ReadBanner reads the greeting line and returns the protocol version
// ("11.0.0" from "Asterisk Call Manager/11.0.0").
func (r *Reader) ReadBanner() (string, error) {
	line, err := r.readLine()
	if err != nil {
		return "", fmt.Errorf("read banner: %w", err)
	}
	s := string(line)
	if !strings.HasPrefix(s, bannerPrefix) {
		return "", fmt.Errorf("%w: unexpected banner %.60q, want %q…", ErrProtocol, s, bannerPrefix)
	}
	return strings.TrimSpace(strings.TrimPrefix(s, bannerPrefix)), nil
}

const endCommand = "--END COMMAND--"

// ReadPacket returns the next packet. At a clean end of stream between
// packets it returns io.EOF; an end inside a packet is io.ErrUnexpectedEOF.
func (r *Reader) ReadPacket() (Packet, error) {
	var (
		p       Packet
		size    int
		follows bool // inside legacy command output
		output  bool // free-form output lines have started
	)
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF {
				if len(p) == 0 {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("%w: stream ended inside a packet: %w", ErrProtocol, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if follows {
			if i := bytes.Index(line, []byte(endCommand)); i >= 0 && i+len(endCommand) == len(line) {
				// Old Asterisk glued the marker to the last output line when
				// the command's output lacked a final newline.
				if i > 0 {
					p = append(p, Header{"Output", string(line[:i])})
				}
				follows = false
				continue
			}
		} else if len(line) == 0 {
			if len(p) == 0 {
				continue // stray blank line between packets
			}
			return p, nil
		}
		size += len(line)
		if len(p) >= MaxReadHeaders || size > MaxReadPacket {
			return nil, fmt.Errorf("%w: packet exceeds %d lines or %d bytes", ErrProtocol, MaxReadHeaders, MaxReadPacket)
		}
		if follows && output {
			p = append(p, Header{"Output", string(line)})
			continue
		}
		k, v, ok := splitHeader(line)
		if follows && (!ok || !(strings.EqualFold(k, "ActionID") || strings.EqualFold(k, "Privilege"))) {
			output = true
			p = append(p, Header{"Output", string(line)})
			continue
		}
		if !ok {
			// Not "Key: Value". Kept under an empty key so no lookup can
			// mistake it for a real header, instead of dropping the link
			// over a cosmetic oddity.
			p = append(p, Header{"", string(line)})
			continue
		}
		p = append(p, Header{k, v})
		if len(p) == 1 && strings.EqualFold(k, "Response") && strings.EqualFold(v, "Follows") {
			follows = true
		}
	}
}

func splitHeader(line []byte) (key, value string, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", "", false
	}
	k := bytes.TrimSpace(line[:i])
	if len(k) == 0 {
		return "", "", false
	}
	v := bytes.TrimLeft(line[i+1:], " \t")
	return string(k), string(v), true
}
