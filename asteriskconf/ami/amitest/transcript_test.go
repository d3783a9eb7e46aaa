package amitest

import (
	"strings"
	"testing"

	"smsrouter/asteriskconf/ami"
)

func TestParseTranscript(t *testing.T) {
	tests := []struct {
		name, raw string
		wantN     int
		wantErr   string
	}{
		{"two exchanges", "Asterisk Call Manager/11.0.0\r\n>>> Action: Ping\r\nActionID: p\r\n\r\nResponse: Success\r\nActionID: p\r\n\r\nEvent: X\r\n\r\n>>> Action: Logoff\r\n\r\nResponse: Goodbye\r\n\r\n", 2, ""},
		{"no banner", "", 0, "no banner"},
		{"no request", "Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n\r\n", 0, "expected"},
		{"unterminated", "Asterisk Call Manager/11.0.0\r\n>>> Action: Ping\r\n", 0, "not terminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := ParseTranscript([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(tr.Exchanges) != tt.wantN {
				t.Fatalf("got %d exchanges, %v", len(tr.Exchanges), err)
			}
			ex := tr.Exchanges[0]
			got := string(ex.ReplyFor(ami.Packet{{Key: "ActionID", Value: "mine"}}))
			if got != "Response: Success\r\nActionID: mine\r\n\r\nEvent: X\r\n\r\n" {
				t.Errorf("reply %q", got)
			}
		})
	}
}

func TestLoadFixtureTranscript(t *testing.T) {
	tr, err := LoadTranscript("../../../testdata/asterisk/ami/transcript.raw")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Banner != Banner || len(tr.Exchanges) != 15 {
		t.Fatalf("banner %q, %d exchanges", tr.Banner, len(tr.Exchanges))
	}
	if ex, ok := tr.ByActionID("msg-err-4"); !ok || !strings.Contains(string(ex.Reply), "No 'To' address specified.") {
		t.Errorf("msg-err-4: %q", ex.Reply)
	}
}

func TestSameRequest(t *testing.T) {
	a := ami.Packet{{Key: "Action", Value: "Login"}, {Key: "Username", Value: "u"}, {Key: "ActionID", Value: "1"}, {Key: "Variable", Value: "a=1"}, {Key: "Variable", Value: "b=2"}}
	b := ami.Packet{{Key: "action", Value: "Login"}, {Key: "ActionID", Value: "x"}, {Key: "Variable", Value: "a=1"}, {Key: "Username", Value: "u"}, {Key: "Variable", Value: "b=2"}}
	c := ami.Packet{{Key: "Action", Value: "Login"}, {Key: "Username", Value: "u"}, {Key: "Variable", Value: "b=2"}, {Key: "Variable", Value: "a=1"}}
	if !SameRequest(a, b) {
		t.Error("reordered headers should match")
	}
	if SameRequest(a, c) {
		t.Error("repeated headers in another order should differ")
	}
}
