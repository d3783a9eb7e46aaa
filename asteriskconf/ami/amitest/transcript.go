package amitest

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"smsrouter/asteriskconf/ami"
)

// Exchange is one request of a captured session and the exact bytes
// Asterisk sent after it, up to the next request (events included).
type Exchange struct {
	Request ami.Packet
	Reply   []byte
}

// ActionID is the ActionID the capture client used.
func (e Exchange) ActionID() string { return e.Request.Get("ActionID") }

// Transcript is a captured AMI session in the transcript.raw format:
// Asterisk's bytes verbatim, each of our requests prefixed with ">>> ".
type Transcript struct {
	Banner    string
	Exchanges []Exchange
}

// LoadTranscript reads and parses a transcript.raw file.
func LoadTranscript(path string) (*Transcript, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load transcript: %w", err)
	}
	tr, err := ParseTranscript(raw)
	if err != nil {
		return nil, fmt.Errorf("load transcript %s: %w", path, err)
	}
	return tr, nil
}

// ParseTranscript parses the transcript.raw format.
func ParseTranscript(raw []byte) (*Transcript, error) {
	banner, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	if !ok {
		return nil, fmt.Errorf("no banner line")
	}
	tr := &Transcript{Banner: string(banner)}
	const mark = ">>> "
	if !bytes.HasPrefix(rest, []byte(mark)) {
		return nil, fmt.Errorf("expected %q after the banner", mark)
	}
	for len(rest) > 0 {
		rest = rest[len(mark):]
		end := bytes.Index(rest, []byte("\r\n\r\n"))
		if end < 0 {
			return nil, fmt.Errorf("request %d not terminated", len(tr.Exchanges)+1)
		}
		req, err := ami.NewReader(bytes.NewReader(rest[:end+4])).ReadPacket()
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", len(tr.Exchanges)+1, err)
		}
		rest = rest[end+4:]
		next := bytes.Index(rest, []byte("\n"+mark))
		var reply []byte
		if next < 0 {
			reply, rest = rest, nil
		} else {
			reply, rest = rest[:next+1], rest[next+1:]
		}
		tr.Exchanges = append(tr.Exchanges, Exchange{Request: req, Reply: reply})
	}
	return tr, nil
}

// ByActionID returns the exchange whose request had the ActionID id.
func (tr *Transcript) ByActionID(id string) (Exchange, bool) {
	for _, e := range tr.Exchanges {
		if e.ActionID() == id {
			return e, true
		}
	}
	return Exchange{}, false
}

// ReplyFor returns e's captured reply with the captured ActionID replaced
// by the one req carries, in responses and events alike.
func (e Exchange) ReplyFor(req ami.Packet) []byte {
	old, id := e.ActionID(), req.Get("ActionID")
	if old == "" {
		return e.Reply
	}
	return bytes.ReplaceAll(e.Reply, []byte("ActionID: "+old+"\r\n"), []byte("ActionID: "+id+"\r\n"))
}

// Replay returns a handler that expects the transcript's requests in order
// on each session and answers each with its captured reply. Requests are
// compared without their ActionID and regardless of header order (repeated
// headers keep their relative order). A request that differs, or one past
// the end of the script, is passed to report and answered with nothing, so
// the client under test times out rather than passing by accident.
func (tr *Transcript) Replay(report func(error)) Handler {
	return func(s *Session, req ami.Packet) {
		n, _ := strconv.Atoi(s.State["replay"])
		if n >= len(tr.Exchanges) {
			report(fmt.Errorf("%w: request %d past the end: %s", ErrScript, n+1, req))
			return
		}
		want := tr.Exchanges[n]
		s.State["replay"] = strconv.Itoa(n + 1)
		if !SameRequest(want.Request, req) {
			report(fmt.Errorf("%w: request %d:\ngot:\n%swant:\n%s", ErrScript, n+1, req, want.Request))
			return
		}
		_ = s.WriteRaw(want.ReplyFor(req))
	}
}

// SameRequest compares two requests ignoring ActionID and header order.
func SameRequest(a, b ami.Packet) bool {
	return slices.Equal(normalise(a), normalise(b))
}

func normalise(p ami.Packet) []ami.Header {
	out := make([]ami.Header, 0, len(p))
	for _, h := range p {
		if strings.EqualFold(h.Key, "ActionID") {
			continue
		}
		out = append(out, ami.Header{Key: strings.ToLower(h.Key), Value: h.Value})
	}
	slices.SortStableFunc(out, func(x, y ami.Header) int { return strings.Compare(x.Key, y.Key) })
	return out
}
