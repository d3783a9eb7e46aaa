package channels

import (
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
)

func TestSpoolNameRoundTrip(t *testing.T) {
	id := NewID(time.Now())
	for depth := 0; depth <= MaxDepth; depth++ {
		name := SpoolName("+4860123", id, depth)
		gotID, gotDepth, ok := ParseSpoolName(name)
		if !ok || gotID != id || gotDepth != depth {
			t.Fatalf("%s → %q %d %v", name, gotID, gotDepth, ok)
		}
	}
	for _, bad := range []string{"5550001.2026-11-21T05:39:34-0", "x.smsrouter-1~x", "x.smsrouter-1~-1", "x.smsrouter-1~100"} {
		if id, _, ok := ParseSpoolName(bad); ok && bad != "x.smsrouter-1" {
			t.Errorf("%q parsed as ours (id %q)", bad, id)
		}
	}
}

func TestNewMessageIsARoutableSpoolFile(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	a, id, err := NewMessage("/spool/sms/morx", "9001", "5550001", "Cannot deliver SMS to 5559999. Zażółć 😀", 2, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Dir != "/spool/sms/morx" || a.Name != SpoolName("5550001", id, 2) {
		t.Fatalf("artefact %+v", a)
	}
	m, err := smsq.Parse(a.Data, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if m.OA != "9001" || m.DA != "5550001" || m.Text != "Cannot deliver SMS to 5559999. Zażółć 😀" || !m.SCTS.Equal(now) {
		t.Fatalf("parsed %+v", m)
	}
	if _, _, err := NewMessage("/x", "9001", "../etc", "x", 1, now); err == nil {
		t.Fatal("a hostile recipient must be refused")
	}
}

func TestPermanent(t *testing.T) {
	if IsPermanent(nil) || Permanent(nil) != nil {
		t.Fatal("nil is not an error")
	}
	base := smsq.ErrTooLong
	if err := Permanent(base); !IsPermanent(err) || err.Error() != base.Error() {
		t.Fatalf("%v", err)
	}
}
