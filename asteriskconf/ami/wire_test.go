package ami

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

const fixtureRaw = "../../testdata/asterisk/ami/transcript.raw"

func TestAppendPacket(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	many := func(n int) Packet {
		p := NewAction("Ping")
		for len(p) < n {
			p.Add("Variable", "a=b")
		}
		return p
	}
	tests := []struct {
		name    string
		p       Packet
		want    string
		wantErr error
	}{
		{"ping", NewAction("Ping", "ActionID", "1"), "Action: Ping\r\nActionID: 1\r\n\r\n", nil},
		{"repeated and empty", Packet{{"Action", "X"}, {"Variable", "a=1"}, {"Variable", "b=2"}, {"Empty", ""}},
			"Action: X\r\nVariable: a=1\r\nVariable: b=2\r\nEmpty: \r\n\r\n", nil},
		{"raw utf8 allowed", NewAction("MessageSend", "Body", "Zażółć"), "Action: MessageSend\r\nBody: Zażółć\r\n\r\n", nil},
		{"CRLF injection", NewAction("MessageSend", "Body", "hi\r\nAction: Originate"), "", ErrInvalidPacket},
		{"bare LF", NewAction("MessageSend", "Body", "a\nb"), "", ErrInvalidPacket},
		{"bare CR", NewAction("MessageSend", "Body", "a\rb"), "", ErrInvalidPacket},
		{"NUL", NewAction("MessageSend", "Body", "a\x00b"), "", ErrInvalidPacket},
		{"empty key", Packet{{"Action", "X"}, {"", "v"}}, "", ErrInvalidPacket},
		{"colon in key", Packet{{"Action", "X"}, {"A:b", "v"}}, "", ErrInvalidPacket},
		{"space in key", Packet{{"Action", "X"}, {"A b", "v"}}, "", ErrInvalidPacket},
		{"empty packet", Packet{}, "", ErrInvalidPacket},
		// "Body: " + value + CRLF = 1024 bytes exactly fits; one more does not.
		{"line at limit", NewAction("M", "Body", long(1024-8)), "Action: M\r\nBody: " + long(1016) + "\r\n\r\n", nil},
		{"line over limit", NewAction("M", "Body", long(1024-7)), "", ErrLineTooLong},
		{"128 headers", many(128), "", nil},
		{"129 headers", many(129), "", ErrInvalidPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendPacket(nil, tt.p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && tt.want != "" && string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadPacket(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Packet
		wantErr error // after the packets in want
	}{
		{"crlf", "Response: Success\r\nActionID: 1\r\nMessage: ok\r\n\r\n",
			[]Packet{{{"Response", "Success"}, {"ActionID", "1"}, {"Message", "ok"}}}, io.EOF},
		{"bare lf and stray blank lines", "\n\r\nEvent: A\nX: 1\n\n\nEvent: B\r\n\r\n",
			[]Packet{{{"Event", "A"}, {"X", "1"}}, {{"Event", "B"}}}, io.EOF},
		{"value spacing and colons", "Key:value\r\nK2:   a: b \r\nEmpty:\r\n\r\n",
			[]Packet{{{"Key", "value"}, {"K2", "a: b "}, {"Empty", ""}}}, io.EOF},
		{"repeated keys", "Event: X\r\nVariable: a=1\r\nVariable: b=2\r\n\r\n",
			[]Packet{{{"Event", "X"}, {"Variable", "a=1"}, {"Variable", "b=2"}}}, io.EOF},
		{"line without colon kept under empty key", "Event: X\r\njunk\r\n\r\n",
			[]Packet{{{"Event", "X"}, {"", "junk"}}}, io.EOF},
		{"legacy command output", "Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\nName: value line\r\n\r\nsecond: x\r\n--END COMMAND--\r\n\r\nEvent: Y\r\n\r\n",
			[]Packet{
				{{"Response", "Follows"}, {"Privilege", "Command"}, {"ActionID", "7"}, {"Output", "Name: value line"}, {"Output", ""}, {"Output", "second: x"}},
				{{"Event", "Y"}},
			}, io.EOF},
		{"legacy marker glued to output", "Response: Follows\r\nActionID: 8\r\nlast line--END COMMAND--\r\n\r\n",
			[]Packet{{{"Response", "Follows"}, {"ActionID", "8"}, {"Output", "last line"}}}, io.EOF},
		{"eof inside packet", "Event: X\r\nA: 1\r\n", nil, io.ErrUnexpectedEOF},
		{"eof inside line", "Event: X\r\nA: 1", nil, io.ErrUnexpectedEOF},
		{"line too long", "Event: " + strings.Repeat("x", MaxReadLine) + "\r\n\r\n", nil, ErrLineTooLong},
		{"too many headers", "Event: X\r\n" + strings.Repeat("A: 1\r\n", MaxReadHeaders) + "\r\n", nil, ErrProtocol},
		{"packet too big", "Event: X\r\n" + strings.Repeat("A: "+strings.Repeat("y", 4000)+"\r\n", 20) + "\r\n", nil, ErrProtocol},
		{"follows without end is bounded", "Response: Follows\r\n" + strings.Repeat("\r\n", MaxReadHeaders+1), nil, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			for i, want := range tt.want {
				got, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if got.String() != want.String() || len(got) != len(want) {
					t.Fatalf("packet %d:\ngot  %q\nwant %q", i, got, want)
				}
			}
			_, err := r.ReadPacket()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("final err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadBanner(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{"Asterisk Call Manager/11.0.0\r\n", "11.0.0", nil},
		{"Asterisk Call Manager/2.10.6\n", "2.10.6", nil},
		{"SSH-2.0-OpenSSH_9.2\r\n", "", ErrProtocol},
		{"", "", io.EOF},
	}
	for _, tt := range tests {
		got, err := NewReader(strings.NewReader(tt.in)).ReadBanner()
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ReadBanner(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// endless yields the same byte forever: a peer that never sends a newline.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestReadPacketHostileLineIsCheap(t *testing.T) {
	// A 1 MB line must fail after about MaxReadLine bytes, without reading
	// the rest or allocating per byte.
	r := NewReader(io.MultiReader(strings.NewReader("Event: "), io.LimitReader(endless('x'), 1<<20)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := r.ReadPacket()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLineTooLong) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrLineTooLong and ErrProtocol", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("allocated %d bytes for a hostile line", n)
	}
	// And a peer that never ends its line at all cannot hold us either.
	if _, err := NewReader(endless('y')).ReadPacket(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("endless line: err = %v", err)
	}
}

// TestReadFixtureStream reads every byte Asterisk sent in the captured
// session (requests removed) and checks the packet sequence.
func TestReadFixtureStream(t *testing.T) {
	raw, err := os.ReadFile(fixtureRaw)
	if err != nil {
		t.Fatal(err)
	}
	var server bytes.Buffer
	inReq := false
	for _, line := range bytes.SplitAfter(raw, []byte("\r\n")) {
		if bytes.HasPrefix(line, []byte(">>> ")) {
			inReq = true
		}
		if !inReq {
			server.Write(line)
		}
		if inReq && string(line) == "\r\n" {
			inReq = false
		}
	}
	r := NewReader(&server)
	if v, err := r.ReadBanner(); err != nil || v != "11.0.0" {
		t.Fatalf("banner %q, %v", v, err)
	}
	var responses, events int
	var origResp Packet
	for {
		p, err := r.ReadPacket()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d packets: %v", responses+events, err)
		}
		if p.IsEvent() {
			events++
			if p.Get("Event") == "OriginateResponse" {
				origResp = p
			}
		} else {
			responses++
		}
	}
	// 15 requests, each answered once; the events are those of Originate.
	if responses != 15 || events != 26 {
		t.Errorf("responses=%d events=%d, want 15 and 26", responses, events)
	}
	if origResp.Get("ActionID") != "orig-1" || origResp.Get("Response") != "Success" || origResp.Get("reason") != "4" {
		t.Errorf("OriginateResponse = %q", origResp)
	}
}

func FuzzReadPacket(f *testing.F) {
	if raw, err := os.ReadFile(fixtureRaw); err == nil && len(raw) > 600 {
		f.Add(raw[:600])
	}
	f.Add([]byte("Response: Success\r\nActionID: 1\r\nMessage: ok\r\n\r\n"))
	f.Add([]byte("Event: A\nX: 1\n\nEvent: B\r\nk:v\r\n\r\n"))
	f.Add([]byte("Response: Follows\r\nActionID: 7\r\nout\r\n\r\n--END COMMAND--\r\n\r\n"))
	f.Add([]byte("\r\n\r\n:\r\nx\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for range 1000 {
			p, err := r.ReadPacket()
			if err != nil {
				return
			}
			if len(p) == 0 || len(p) > MaxReadHeaders {
				t.Fatalf("packet with %d headers", len(p))
			}
			for _, h := range p {
				if strings.ContainsAny(h.Key+h.Value, "\n") || len(h.Key)+len(h.Value) > MaxReadLine {
					t.Fatalf("bad header %q", h)
				}
			}
			// What we can write, we must read back identically.
			var clean Packet
			for _, h := range p {
				if h.Key != "" && strings.TrimLeft(h.Value, " \t") == h.Value && !strings.ContainsAny(h.Key, " \t") {
					clean = append(clean, h)
				}
			}
			if len(clean) == 0 || strings.EqualFold(clean[0].Key, "Response") && strings.EqualFold(clean[0].Value, "Follows") {
				continue
			}
			wire, err := AppendPacket(nil, clean)
			if err != nil {
				continue
			}
			back, err := NewReader(bytes.NewReader(wire)).ReadPacket()
			if err != nil || back.String() != clean.String() {
				t.Fatalf("round trip of %q: got %q, %v", clean, back, err)
			}
		}
	})
}
