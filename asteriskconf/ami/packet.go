package ami

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Header is one "Key: Value" line of a packet.
type Header struct {
	Key, Value string
}

// Packet is one AMI message: an action we send, or a response or event we
// receive. Headers keep their order and may repeat (Variable:, Output:), which
// a map could not express. Key lookup is case-insensitive, as in Asterisk.
//
// Packets handed to subscribers are shared between them and must be treated
// as read-only.
type Packet []Header

// NewAction returns a packet "Action: name" followed by the given key/value
// pairs. An odd trailing key gets an empty value.
func NewAction(name string, kv ...string) Packet {
	p := make(Packet, 0, 1+(len(kv)+1)/2)
	p = append(p, Header{"Action", name})
	for i := 0; i < len(kv); i += 2 {
		v := ""
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		p = append(p, Header{kv[i], v})
	}
	return p
}

// Get returns the value of the first header named key, or "".
func (p Packet) Get(key string) string {
	for _, h := range p {
		if strings.EqualFold(h.Key, key) {
			return h.Value
		}
	}
	return ""
}

// Has reports whether a header named key is present (possibly empty).
func (p Packet) Has(key string) bool {
	for _, h := range p {
		if strings.EqualFold(h.Key, key) {
			return true
		}
	}
	return false
}

// Values returns the values of every header named key, in order.
func (p Packet) Values(key string) []string {
	var out []string
	for _, h := range p {
		if strings.EqualFold(h.Key, key) {
			out = append(out, h.Value)
		}
	}
	return out
}

// Add appends a header; repeated keys are allowed.
func (p *Packet) Add(key, value string) {
	*p = append(*p, Header{key, value})
}

// Set replaces every header named key by one header with value, keeping the
// position of the first one; it appends when key is absent.
func (p *Packet) Set(key, value string) {
	out := (*p)[:0:0]
	done := false
	for _, h := range *p {
		if strings.EqualFold(h.Key, key) {
			if done {
				continue
			}
			h.Value, done = value, true
		}
		out = append(out, h)
	}
	if !done {
		out = append(out, Header{key, value})
	}
	*p = out
}

// Del removes every header named key.
func (p *Packet) Del(key string) {
	out := (*p)[:0:0]
	for _, h := range *p {
		if !strings.EqualFold(h.Key, key) {
			out = append(out, h)
		}
	}
	*p = out
}

// Clone returns a copy that shares nothing with p.
func (p Packet) Clone() Packet {
	return append(Packet(nil), p...)
}

// IsEvent reports whether the packet is an event. Some events carry a
// Response header too (OriginateResponse), so Event wins.
func (p Packet) IsEvent() bool { return p.Has("Event") }

// String renders the packet in wire form for logs and test failures.
func (p Packet) String() string {
	var b strings.Builder
	for _, h := range p {
		b.WriteString(h.Key)
		b.WriteString(": ")
		b.WriteString(h.Value)
		b.WriteString("\r\n")
	}
	return b.String()
}

// Errors callers decide on. Use errors.Is.
var (
	// ErrDisconnected means the connection was down or broke before the
	// reply arrived. It is temporary: retry later. If ErrNotSent is also in
	// the chain the request never left this process; otherwise Asterisk may
	// or may not have acted on it.
	ErrDisconnected = errors.New("ami: disconnected")
	// ErrNotSent accompanies ErrDisconnected when the request was not written.
	ErrNotSent = errors.New("ami: request not sent")
	// ErrClosed means Close was called.
	ErrClosed = errors.New("ami: client closed")
	// ErrProtocol means the peer broke AMI framing; the connection is dropped.
	ErrProtocol = errors.New("ami: protocol error")
	// ErrLineTooLong means an outgoing line would exceed Asterisk's 1024-byte
	// input line (the request is refused before sending), or an incoming
	// line exceeded MaxReadLine.
	ErrLineTooLong = errors.New("ami: line too long")
	// ErrInvalidPacket means an outgoing packet was refused: CR, LF or NUL
	// in a header, a malformed key, or too many headers.
	ErrInvalidPacket = errors.New("ami: invalid packet")
	// ErrAuthFailed means Asterisk rejected the login.
	ErrAuthFailed = errors.New("ami: authentication failed")
)

// ResponseError is a "Response: Error" reply. Message is Asterisk's text,
// which is what callers classify (for MessageSend, "Message technology not
// found." is permanent, for example).
type ResponseError struct {
	Action  string // the action that was refused
	Message string // Asterisk's Message: header
	Packet  Packet // the whole response
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("ami %s: error response: %s", e.Action, e.Message)
}

// IsTemporary reports whether err is a transport failure worth retrying
// (connection lost, or no answer before the deadline) rather than an answer.
// A deadline means Asterisk may have acted on the request after all.
func IsTemporary(err error) bool {
	return errors.Is(err, ErrDisconnected) || errors.Is(err, ErrProtocol) ||
		errors.Is(err, context.DeadlineExceeded)
}
