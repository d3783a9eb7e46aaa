package main

// End-to-end tests of SMPP SME acknowledgements (issue 16): a mobile phone's
// message comes in a deliver_sm whose registered_delivery asks for a delivery
// (or manual/user) acknowledgement; once the PBX delivered it, or gave up,
// the SMSC gets a submit_sm back to the originator with the esm_class of the
// acknowledgement, the user_message_reference echoed and the status text.

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/internal/smsctest"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// archiveCall does what Asterisk does with a call file marked Archive: yes
// once the call ended: it moves the call file of message id from outgoing/ to
// outgoing_done/ with the attempt and the status appended.
func (b *bed) archiveCall(id, status string) {
	b.t.Helper()
	var name string
	var data []byte
	waitUntil(b.t, 20*time.Second, "the call file of "+id, func() bool {
		for _, n := range b.list("outgoing") {
			d, err := os.ReadFile(filepath.Join(b.outgoing, n))
			if err == nil && strings.Contains(string(d), "SMSROUTER_ID="+id) {
				name, data = n, d
				return true
			}
		}
		return false
	})
	done := filepath.Join(b.spool, "outgoing_done")
	if err := os.MkdirAll(done, 0o755); err != nil {
		b.t.Fatal(err)
	}
	now := time.Now().Unix()
	tail := fmt.Sprintf("\nStartRetry: 14546 1 (%d)\n", now)
	if status != "Completed" {
		tail += fmt.Sprintf("\nEndRetry: 14546 1 (%d)\n", now)
	}
	writeFile(b.t, filepath.Join(done, name), append(data, tail+"Status: "+status+"\n"...))
	os.Remove(filepath.Join(b.outgoing, name))
}

// ackEvent waits for the acknowledgement with user_message_reference ref.
func ackEvent(t *testing.T, s *smsctest.SMSC, ref int) map[string]any {
	t.Helper()
	ev, ok := s.WaitFor("submit", func(e map[string]any) bool {
		return e["user_message_reference"] != nil && smsctest.Num(e, "user_message_reference") == ref
	}, 40*time.Second)
	if !ok {
		t.Fatalf("no acknowledgement with reference %d; submits: %v", ref, s.All("submit"))
	}
	return ev
}

func checkAck(t *testing.T, ev map[string]any, esm int, text string) {
	t.Helper()
	if smsctest.Num(ev, "esm_class") != esm || smsctest.Num(ev, "registered_delivery") != 0 ||
		ev["destination_addr"] != strings.TrimPrefix(mobileSender, "+") || smsctest.Num(ev, "dest_addr_ton") != 1 ||
		ev["source_addr"] != strings.TrimPrefix(linkNumber, "+") || smsctest.Num(ev, "source_addr_ton") != 1 {
		t.Fatalf("acknowledgement %v", ev)
	}
	if got, _ := ev["text"].(string); !strings.HasPrefix(got, text) {
		t.Fatalf("acknowledgement text %q, want %q", got, text)
	}
}

// acks counts the acknowledgements (esm_class 0x08 or 0x10) the SMSC got with
// reference ref.
func acks(s *smsctest.SMSC, ref int) int {
	n := 0
	for _, e := range s.All("submit") {
		if esm := smsctest.Num(e, "esm_class"); (esm == 0x08 || esm == 0x10) && e["user_message_reference"] != nil &&
			smsctest.Num(e, "user_message_reference") == ref {
			n++
		}
	}
	return n
}

func TestLinkSMPPAcknowledgements(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		s := smsctest.Start(t)
		s.Timeout = 30 * time.Second
		port := s.Port
		pbx := amitest.NewPBX(t, "smsrouter", "s3cret")
		pbx.Set("1004", "Reachable")
		b := newBed(t, dsn, linkTOML(pbx.Server.Addr)+fmt.Sprintf(`
[sms]
archive = true

[evidence]
every = "200ms"

[retry.no_answer]
attempts = 0

[[link]]
name = "mobile"
kind = "smpp"
number = %q
addr = %q
system_id = "smsrouter"
password = "secret"
reconnect_min = "100ms"
reconnect_max = "300ms"
`, linkNumber, s.Addr()), linkEntries...)
		srv := startServe(t, b)
		s.Wait("bind", nil)
		deliver := func(s *smsctest.SMSC, text string, rd, ref int) {
			cmd := map[string]any{"cmd": "deliver", "source": strings.TrimPrefix(mobileSender, "+"), "dest": strings.TrimPrefix(linkNumber, "+"),
				"dest_ton": 1, "registered_delivery": rd, "sm_hex": hex.EncodeToString([]byte(text))}
			if ref > 0 {
				cmd["user_message_reference"] = ref
			}
			s.Send(cmd)
		}
		row := func(text string, pred func(router.Record) bool) router.Record {
			t.Helper()
			var out router.Record
			waitUntilOr(t, 30*time.Second, "the row of "+text, func() { t.Logf("serve:\n%s", srv.out.String()) }, func() bool {
				for _, r := range b.rows(func(r router.Record) bool { return r.Text == text && r.OA == mobileSender }) {
					if pred(r) {
						out = r
						return true
					}
				}
				return false
			})
			return out
		}
		delivered := func(r router.Record) bool { return r.State == router.StateDelivered }
		// The MO row says the report went, and names it; the report's own row
		// went through the link as the acknowledgement.
		reported := func(text, outcome string) {
			t.Helper()
			var d map[string]any
			r := row(text, func(r router.Record) bool {
				d = detailMap(t, r)
				return d["report"] == outcome
			})
			na, _ := d["network_ack"].(map[string]any)
			id, _ := d["report_id"].(string)
			if na == nil || na["state"] != "queued" || id == "" {
				t.Fatalf("%s: detail %v", r.ID, d)
			}
			waitUntil(t, 20*time.Second, "the report's row", func() bool {
				rep := b.journalRow(id)
				return rep != nil && rep.State == router.StateDelivered && rep.Letter == "L" && rep.DA == mobileSender &&
					detailString(rep.Detail, "acknowledgement") != ""
			})
		}

		// 1. T: final when the softphone took it.
		deliver(s, "1004 to the softphone", 0x04, 41)
		checkAck(t, ackEvent(t, s, 41), 0x08, "Delivered to 1004 by SIP message, ")
		reported("to the softphone", "delivered")

		// 2. No acknowledgement asked for: none sent, none recorded.
		deliver(s, "1004 nothing asked", 0, 0)
		if r := row("nothing asked", delivered); strings.Contains(r.Detail, "network_ack") || strings.Contains(r.Detail, "report") {
			t.Fatalf("detail %s", r.Detail)
		}

		// 3. A number nobody has: manual/user acknowledgement asked, the
		// failure told with the notice's reason.
		deliver(s, "1099 nobody home", 0x08, 42)
		checkAck(t, ackEvent(t, s, 42), 0x10, "Not delivered to 1099: Number does not exist.")
		reported("nobody home", "failed")

		// 4. S: pending until the call was answered.
		deliver(s, "1001 to the SMS phone", 0x04, 43)
		r := row("to the SMS phone", delivered)
		if na, _ := detailMap(t, r)["network_ack"].(map[string]any); na == nil || na["state"] != "pending" {
			t.Fatalf("S before the call ended: %s", r.Detail)
		}
		time.Sleep(500 * time.Millisecond)
		if n := acks(s, 43); n != 0 {
			t.Fatalf("acknowledged before the call ended: %d", n)
		}
		b.archiveCall(r.ID, "Completed")
		checkAck(t, ackEvent(t, s, 43), 0x08, "Delivered to 1001 by SMS, ")
		reported("to the SMS phone", "delivered")

		// 5. S, the call not answered (no retry: [retry.no_answer] attempts = 0).
		deliver(s, "1001 unanswered", 0x04, 44)
		r = row("unanswered", delivered)
		b.archiveCall(r.ID, "Expired")
		checkAck(t, ackEvent(t, s, 44), 0x08, "Not delivered to 1001: The call was not answered.")
		reported("unanswered", "failed")

		// 6. The link is down when the acknowledgement is due: it waits, and
		// goes once the SMSC is back.
		deliver(s, "1001 while the link is down", 0x04, 45)
		r = row("while the link is down", delivered)
		s.Stop()
		b.archiveCall(r.ID, "Completed")
		var ackID string
		row("while the link is down", func(r router.Record) bool {
			ackID, _ = detailMap(t, r)["report_id"].(string)
			return ackID != ""
		})
		waitUntil(t, 20*time.Second, "the acknowledgement deferred", func() bool {
			a := b.journalRow(ackID)
			return a != nil && a.State == router.StateDeferred
		})
		s2 := smsctest.StartOn(t, port)
		s2.Timeout = 30 * time.Second
		checkAck(t, ackEvent(t, s2, 45), 0x08, "Delivered to 1001 by SMS, ")
		reported("while the link is down", "delivered")
		time.Sleep(2 * time.Second) // a second copy would have come by now

		// Each acknowledgement went exactly once, and nothing else asked for one.
		for ref, smsc := range map[int]*smsctest.SMSC{41: s, 42: s, 43: s, 44: s, 45: s2} {
			if n := acks(smsc, ref); n != 1 {
				t.Errorf("reference %d acknowledged %d times", ref, n)
			}
		}
		n := 0
		for _, smsc := range []*smsctest.SMSC{s, s2} {
			for _, e := range smsc.All("submit") {
				if esm := smsctest.Num(e, "esm_class"); esm == 0x08 || esm == 0x10 {
					n++
				}
			}
		}
		if n != 5 {
			t.Errorf("%d acknowledgements in all, want 5", n)
		}
		// Nothing left behind: the request files go with their messages.
		waitUntil(t, 10*time.Second, "the request files removed", func() bool {
			return len(b.list("smsrouter/acks")) == 0 && len(b.list("smsrouter/acks-out")) == 0
		})
		srv.stop(t)
	})
}
