package ami

import (
	"errors"
	"fmt"
	"testing"
)

func TestPacketAccessors(t *testing.T) {
	p := Packet{{"Event", "VarSet"}, {"Variable", "a=1"}, {"variable", "b=2"}, {"Empty", ""}}
	tests := []struct {
		name, got, want string
	}{
		{"Get is case-insensitive", p.Get("EVENT"), "VarSet"},
		{"Get returns the first", p.Get("Variable"), "a=1"},
		{"Get missing", p.Get("Nope"), ""},
		{"Values keeps order", fmt.Sprint(p.Values("VARIABLE")), "[a=1 b=2]"},
		{"Has empty", fmt.Sprint(p.Has("empty"), p.Has("nope")), "true false"},
		{"IsEvent", fmt.Sprint(p.IsEvent(), NewAction("Ping").IsEvent()), "true false"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	q := p.Clone()
	q.Set("variable", "c=3")
	q.Del("Empty")
	q.Add("New", "v")
	if got, want := q.String(), "Event: VarSet\r\nVariable: c=3\r\nNew: v\r\n"; got != want {
		t.Errorf("after Set/Del/Add: %q, want %q", got, want)
	}
	if p.Get("Variable") != "a=1" || len(p) != 4 {
		t.Error("Clone shares storage with the original")
	}
	if got := NewAction("Originate", "Channel", "Local/1@x", "Async"); got.String() != "Action: Originate\r\nChannel: Local/1@x\r\nAsync: \r\n" {
		t.Errorf("NewAction: %q", got)
	}
}

func TestWithActionID(t *testing.T) {
	got := withActionID(Packet{{"Action", "Ping"}, {"ActionID", "caller"}, {"X", "1"}}, "ours")
	if got.String() != "Action: Ping\r\nActionID: ours\r\nX: 1\r\n" {
		t.Errorf("got %q", got)
	}
}

func TestMessageSendPacket(t *testing.T) {
	// The exact request of fixture msg-2 (transcript.raw).
	p, err := MessageSendRequest{
		To: "pjsip:1000", From: `"SMS 5551234" <sip:5551234@127.0.0.1>`,
		Body:      "Zażółć gęślą jaźń 😀\nline2",
		Variables: map[string]string{"X-Test": "1", "X-SMS-Ref": "abc123"},
	}.Packet()
	if err != nil {
		t.Fatal(err)
	}
	want := "Action: MessageSend\r\nTo: pjsip:1000\r\nFrom: \"SMS 5551234\" <sip:5551234@127.0.0.1>\r\n" +
		"Base64Body: WmHFvMOzxYLEhyBnxJnFm2zEhSBqYcW6xYQg8J+YgApsaW5lMg==\r\nVariable: X-SMS-Ref=abc123\r\nVariable: X-Test=1\r\n"
	if p.String() != want {
		t.Errorf("got\n%s\nwant\n%s", p, want)
	}
	// The longest body still fits a line once our ActionID is added.
	p, err = MessageSendRequest{To: "pjsip:1000", Body: string(make([]byte, MaxBase64Body))}.Packet()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendPacket(nil, withActionID(p, "smsr-0123456789ab-18446744073709551615")); err != nil {
		t.Fatal(err)
	}
	if _, err := (MessageSendRequest{To: "pjsip:1000", Body: string(make([]byte, MaxBase64Body+1))}).Packet(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("MaxBase64Body+1: %v", err)
	}
	if MaxBase64Body != 756 {
		t.Errorf("MaxBase64Body = %d, want 756 (SPEC §5.2: about 750)", MaxBase64Body)
	}
}
