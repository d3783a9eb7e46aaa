package sip_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"smsrouter/asteriskconf/ami"
	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/channels"
	"smsrouter/channels/sip"
)

func msg(id, text string) channels.Message {
	return channels.Message{ID: id, From: "5550001", To: "5551000", Text: text, Letter: 'T',
		Extension: "PJSIP/1000", Attempt: 1, Validity: time.Now().Add(time.Hour)}
}

func TestMessageURI(t *testing.T) {
	for _, c := range []struct {
		ext, endpoint, uri, err string
	}{
		{"PJSIP/1000", "1000", "pjsip:1000", ""},
		{"pjsip/alice.home-2_b", "alice.home-2_b", "pjsip:alice.home-2_b", ""},
		{"SIP/1000", "", "", "not a PJSIP endpoint"},
		{"IAX2/1000", "", "", "not a PJSIP endpoint"},
		{"Local/1000@phones", "", "", "not a PJSIP endpoint"},
		{"1000", "", "", "not a PJSIP endpoint"},
		{"", "", "", "not a PJSIP endpoint"},
		{"PJSIP/", "", "", "names no endpoint"},
		{"PJSIP/1000/sip:1000@10.0.0.1", "", "", "may only hold"},
		{"PJSIP/1000@trunk", "", "", "may only hold"},
		{"PJSIP/1000\r\nAction: Originate", "", "", "may only hold"},
		{"PJSIP/../../x", "", "", "may only hold"},
		{"PJSIP/" + strings.Repeat("9", 10000), "", "", "longer than"},
	} {
		ep, uri, err := sip.MessageURI(c.ext)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%.30q: err %v, want %q", c.ext, err, c.err)
			}
			if err != nil && len(err.Error()) > 160 {
				t.Errorf("%.30q: error text too long for a notice: %d bytes", c.ext, len(err.Error()))
			}
			continue
		}
		if err != nil || ep != c.endpoint || uri != c.uri {
			t.Errorf("%q → %q %q %v, want %q %q", c.ext, ep, uri, err, c.endpoint, c.uri)
		}
	}
}

func TestSplit(t *testing.T) {
	polish := strings.Repeat("Zażółć gęślą jaźń 😀 ", 100) // 2-, 3- and 4-byte sequences
	for _, c := range []struct {
		name  string
		text  string
		limit int
		parts int
	}{
		{"empty", "", 756, 1},
		{"fits exactly", strings.Repeat("a", 756), 756, 1},
		{"one over", strings.Repeat("a", 757), 756, 2},
		{"polish", polish, 756, 5},
		{"no spaces", strings.Repeat("ż", 1000), 756, 3},
		{"ten or more parts", strings.Repeat("abc ", 300), 100, 14},
		{"tiny limit", strings.Repeat("😀", 20), 16, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts := sip.Split(c.text, c.limit)
			if len(parts) != c.parts {
				t.Fatalf("%d parts, want %d: %q", len(parts), c.parts, parts)
			}
			checkParts(t, c.text, c.limit, parts)
		})
	}
}

// checkParts asserts the split invariants: each part fits, is valid UTF-8,
// carries its "(i/n) " prefix when there are several, and together they are
// the text.
func checkParts(t *testing.T, text string, limit int, parts []string) {
	t.Helper()
	if len(parts) == 1 {
		if parts[0] != text {
			t.Fatalf("single part %q differs from text", parts[0])
		}
		return
	}
	var joined strings.Builder
	for i, p := range parts {
		if len(p) > limit {
			t.Fatalf("part %d is %d bytes, limit %d", i+1, len(p), limit)
		}
		if !utf8.ValidString(p) {
			t.Fatalf("part %d is not valid UTF-8: %q", i+1, p)
		}
		prefix := fmt.Sprintf("(%d/%d) ", i+1, len(parts))
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			t.Fatalf("part %d lacks prefix %q: %.20q", i+1, prefix, p)
		}
		joined.WriteString(rest)
	}
	if joined.String() != text {
		t.Fatalf("parts do not add up to the text")
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("Zażółć gęślą jaźń 😀", 16)
	f.Add(strings.Repeat("x y", 400), 756)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if !utf8.ValidString(text) || limit < 16 || limit > 2000 || len(text) > 20000 {
			return
		}
		checkParts(t, text, limit, sip.Split(text, limit))
	})
}

func FuzzMessageURI(f *testing.F) {
	for _, s := range []string{"PJSIP/1000", "SIP/1", "PJSIP/a\r\nb", "pjsip/x.y-z_1", "PJSIP/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ext string) {
		ep, uri, err := sip.MessageURI(ext)
		if err != nil {
			return
		}
		if uri != "pjsip:"+ep || ep == "" || strings.ContainsAny(ep, "\r\n\x00:/@ ") {
			t.Fatalf("%q → %q %q", ext, ep, uri)
		}
		// Whatever passes must make a valid AMI request.
		if _, err := (ami.MessageSendRequest{To: uri, Body: "x"}).Packet(); err != nil {
			t.Fatalf("%q: %v", ext, err)
		}
	})
}

func TestDeliverSendsExactMessageSend(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	text := "Zażółć gęślą jaźń 😀\nline 2"
	res, err := ch.Deliver(context.Background(), msg("1795240000123-8f3a2c1d0e", text))
	if err != nil {
		t.Fatal(err)
	}
	got := pbx.Sent()
	want := []sentMsg{{To: "pjsip:1000", From: `"SMS 5550001" <sip:5550001@pbx.example>`, Body: text,
		B64: base64.StdEncoding.EncodeToString([]byte(text))}}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
	// Nothing else rides along: Body must not be sent besides Base64Body.
	req := pbx.Requests()[0]
	if req.Has("Body") || req.Has("Destination") || req.Has("Variable") {
		t.Fatalf("unexpected headers in %s", req)
	}
	if res.Detail["sip_to"] != "pjsip:1000" || res.Detail["parts"] != 1 || len(res.Artefacts) != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestDeliverSplitsLongText(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "NonQualified") // registered, qualify off: usable
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	text := strings.Repeat("Zażółć gęślą jaźń – ", 80) // 2,480 bytes
	if _, err := ch.Deliver(context.Background(), msg("1795240000123-000000000a", text)); err != nil {
		t.Fatal(err)
	}
	got := pbx.Sent()
	bodies := make([]string, len(got))
	for i, s := range got {
		bodies[i] = s.Body
		if s.To != "pjsip:1000" || len(s.B64) > ami.MaxLineLength-len("Base64Body: ")-2 {
			t.Fatalf("part %d: To %q, base64 %d bytes", i+1, s.To, len(s.B64))
		}
	}
	if len(bodies) != 4 {
		t.Fatalf("%d parts: %q", len(bodies), bodies)
	}
	checkParts(t, text, ami.MaxBase64Body, bodies)
}

func TestDeliverRefusesTooManyParts(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	cfg := pbxConfig(pbx, t, nil)
	cfg.MaxParts = 2
	ch := newChannel(t, cfg)
	_, err := ch.Deliver(context.Background(), msg("1795240000123-000000000b", strings.Repeat("a ", 1000)))
	if !channels.IsPermanent(err) || !strings.Contains(err.Error(), "3 parts, at most 2") {
		t.Fatalf("err %v", err)
	}
	if n := len(pbx.Sent()); n != 0 {
		t.Fatalf("%d MessageSends", n)
	}
}

func TestDeliverErrorClassification(t *testing.T) {
	for _, c := range []struct {
		name      string
		ext       string
		status    string // contact status of endpoint 1000; "-" = unknown endpoint
		reply     string // MessageSend's Message for Response: Error; "" = Success
		permanent bool
		want      string
		held      bool
	}{
		{name: "tech not found", ext: "PJSIP/1000", status: "Reachable", reply: "Message technology not found.", permanent: true, want: "res_pjsip_messaging"},
		{name: "no To", ext: "PJSIP/1000", status: "Reachable", reply: "No 'To' address specified.", permanent: true, want: "no SIP address"},
		{name: "failed to send", ext: "PJSIP/1000", status: "Reachable", reply: "Message failed to send.", want: "held: Asterisk could not send to 1000", held: true},
		{name: "permission denied", ext: "PJSIP/1000", status: "Reachable", reply: "Permission denied", want: "refused"},
		{name: "unknown endpoint", ext: "PJSIP/1000", status: "-", permanent: true, want: "SIP endpoint 1000 does not exist in Asterisk"},
		{name: "offline", ext: "PJSIP/1000", status: "Unreachable", want: "held: 1000 has no reachable contact", held: true},
		{name: "no contact", ext: "PJSIP/1000", status: "", want: "held: 1000 has no reachable contact", held: true},
		{name: "qualify pending", ext: "PJSIP/1000", status: "Unknown", want: "held: 1000 has no reachable contact", held: true},
		{name: "other tech", ext: "SIP/1000", permanent: true, want: "not a PJSIP endpoint"},
		{name: "hostile", ext: "PJSIP/1000\nAction: Originate", permanent: true, want: "may only hold"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pbx := newPBX(t)
			if c.status != "-" {
				pbx.Set("1000", c.status)
			}
			if c.reply != "" {
				pbx.SetReply(func(_ *amitest.Session, req ami.Packet) ami.Packet {
					return amitest.Response(req, "Error", "Message", c.reply)
				})
			}
			ch := newChannel(t, pbxConfig(pbx, t, nil))
			m := msg("1795240000123-00000000c1", "hello")
			m.Extension = c.ext
			_, err := ch.Deliver(context.Background(), m)
			if err == nil || channels.IsPermanent(err) != c.permanent || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v (permanent %v), want %q permanent %v", err, channels.IsPermanent(err), c.want, c.permanent)
			}
			if got := ch.Held("1000"); c.held != (len(got) == 1 && got[0] == "5551000") {
				t.Fatalf("held %v, want held=%v", got, c.held)
			}
			if c.reply == "" && len(pbx.Sent()) != 0 {
				t.Fatalf("a message was sent: %+v", pbx.Sent())
			}
		})
	}
}

func TestDisconnectMidRequestIsTemporary(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	drop := true
	var mu sync.Mutex
	pbx.SetReply(func(s *amitest.Session, req ami.Packet) ami.Packet {
		mu.Lock()
		d := drop
		drop = false
		mu.Unlock()
		if d {
			s.Close() // Asterisk went away after reading the request
			return nil
		}
		return amitest.Response(req, "Success", "Message", amitest.MsgSent)
	})
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	m := msg("1795240000123-00000000d1", "hello")
	_, err := ch.Deliver(context.Background(), m)
	if err == nil || channels.IsPermanent(err) || !errors.Is(err, ami.ErrDisconnected) {
		t.Fatalf("err %v, want a temporary ErrDisconnected", err)
	}
	// The outcome was unknown, so no marker: the retry sends (at least once).
	waitFor(t, "reconnect", func() bool { return pbx.Server.Accepted() >= 2 && len(pbx.Server.Sessions()) == 1 })
	var res channels.Result
	waitFor(t, "delivery after reconnect", func() bool {
		res, err = ch.Deliver(context.Background(), m)
		return err == nil
	})
	if n := len(pbx.Sent()); n != 2 || res.Detail["already_sent"] != nil {
		t.Fatalf("%d MessageSends, detail %v", n, res.Detail)
	}
}

func TestAMIDownIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	pbx := newPBX(t)
	cfg := pbxConfig(pbx, t, nil)
	cfg.AMI.Addr = addr
	ch := newChannel(t, cfg)
	for range 2 { // the second fails fast from the remembered dial error
		_, err := ch.Deliver(context.Background(), msg("1795240000123-00000000e1", "hello"))
		if err == nil || channels.IsPermanent(err) || !strings.Contains(err.Error(), "AMI connection") {
			t.Fatalf("err %v", err)
		}
	}
}

func TestAuthFailureIsTemporary(t *testing.T) {
	pbx := newPBX(t)
	cfg := pbxConfig(pbx, t, nil)
	cfg.AMI.Secret = "wrong"
	ch := newChannel(t, cfg)
	_, err := ch.Deliver(context.Background(), msg("1795240000123-00000000e2", "hello"))
	if err == nil || channels.IsPermanent(err) || !errors.Is(err, ami.ErrAuthFailed) {
		t.Fatalf("err %v", err)
	}
}

func TestSentMarkerStopsSecondSendAndJanitorRemovesIt(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	m := msg("1795240000123-00000000f1", strings.Repeat("word ", 400)) // 3 parts
	if _, err := ch.Deliver(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	res, err := ch.Deliver(context.Background(), m) // e.g. the journal commit failed
	if err != nil || res.Detail["already_sent"] != true {
		t.Fatalf("second delivery: %v %v", res.Detail, err)
	}
	if n := len(pbx.Sent()); n != 3 {
		t.Fatalf("%d MessageSends, want 3", n)
	}
	// Young markers survive a cleanup; old ones go.
	if err := ch.Cleanup(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Deliver(context.Background(), m); err != nil || len(pbx.Sent()) != 3 {
		t.Fatalf("after a young cleanup: %v, %d sends", err, len(pbx.Sent()))
	}
	if err := ch.Cleanup(context.Background(), time.Now().Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Deliver(context.Background(), m); err != nil || len(pbx.Sent()) != 6 {
		t.Fatalf("after the markers expired: %v, %d sends", err, len(pbx.Sent()))
	}
}

func TestPartialSendResumesAtFailedPart(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	n := 0
	pbx.SetReply(func(_ *amitest.Session, req ami.Packet) ami.Packet {
		n++ // handler calls of one session are sequential
		if n == 2 {
			return amitest.Response(req, "Error", "Message", "Message failed to send.")
		}
		return amitest.Response(req, "Success", "Message", amitest.MsgSent)
	})
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	m := msg("1795240000123-00000000f2", strings.Repeat("word ", 400))
	if _, err := ch.Deliver(context.Background(), m); err == nil || channels.IsPermanent(err) {
		t.Fatalf("first attempt: %v", err)
	}
	res, err := ch.Deliver(context.Background(), m)
	if err != nil || res.Detail["resumed_at_part"] != 2 {
		t.Fatalf("second attempt: %v %v", res.Detail, err)
	}
	var prefixes []string
	for _, s := range pbx.Sent() {
		prefixes = append(prefixes, s.Body[:6])
	}
	if want := []string{"(1/3) ", "(2/3) ", "(2/3) ", "(3/3) "}; !slices.Equal(prefixes, want) {
		t.Fatalf("sent %q, want %q", prefixes, want)
	}
}

func TestContactStatusEventWakesHeldNumbers(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Unreachable")
	var w wakes
	ch := newChannel(t, pbxConfig(pbx, t, w.wake))
	_, err := ch.Deliver(context.Background(), msg("1795240000123-0000000101", "hello"))
	if err == nil || !strings.Contains(err.Error(), "held: 1000 has no reachable contact") {
		t.Fatalf("err %v", err)
	}
	// An unrelated endpoint and a non-usable status wake nothing.
	pbx.Server.Broadcast(amitest.ContactStatusEvent("2000", "sip:2000@127.0.0.1", "Reachable"))
	pbx.Server.Broadcast(amitest.ContactStatusEvent("1000", "sip:1000@127.0.0.1", "Unreachable"))
	pbx.Online("1000")
	waitFor(t, "wake", func() bool { return len(w.got()) > 0 })
	time.Sleep(20 * time.Millisecond)
	if got := w.got(); !slices.Equal(got, []string{"5551000"}) {
		t.Fatalf("woke %q", got)
	}
	if len(ch.Held("1000")) != 0 {
		t.Fatalf("still held: %v", ch.Held("1000"))
	}
}

func TestReconnectRechecksHeldEndpoints(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "")
	var w wakes
	ch := newChannel(t, pbxConfig(pbx, t, w.wake))
	if _, err := ch.Deliver(context.Background(), msg("1795240000123-0000000102", "hello")); err == nil {
		t.Fatal("delivered to an endpoint without contacts")
	}
	// The phone registers while the AMI connection is down: the event is lost,
	// so the re-check after the reconnect must find it.
	pbx.Set("1000", "Reachable")
	pbx.Server.DropAll()
	waitFor(t, "wake after reconnect", func() bool { return len(w.got()) == 1 })
	if pbx.Server.Accepted() < 2 {
		t.Fatalf("no reconnect")
	}
}

func TestDeliverAfterCloseIsTemporary(t *testing.T) {
	pbx := newPBX(t)
	pbx.Set("1000", "Reachable")
	ch := newChannel(t, pbxConfig(pbx, t, nil))
	if _, err := ch.Deliver(context.Background(), msg("1795240000123-0000000103", "a")); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ch.Deliver(context.Background(), msg("1795240000123-0000000104", "b"))
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	base := sip.Config{AMI: ami.Config{Addr: "127.0.0.1:5038", Username: "u"}, MarkerDir: t.TempDir()}
	for _, c := range []struct {
		name   string
		mutate func(*sip.Config)
		want   string
	}{
		{"no addr", func(c *sip.Config) { c.AMI.Addr = "" }, "no AMI address"},
		{"no user", func(c *sip.Config) { c.AMI.Username = "" }, "no AMI username"},
		{"no marker dir", func(c *sip.Config) { c.MarkerDir = "" }, "sent markers"},
		{"bad template", func(c *sip.Config) { c.From = "{{.From" }, "from template"},
		{"unknown field", func(c *sip.Config) { c.From = "{{.Sender}}" }, "from template"},
		{"line break", func(c *sip.Config) { c.From = "{{.From}}\r\nAction: Originate" }, "line break"},
	} {
		cfg := base
		c.mutate(&cfg)
		ch, err := sip.New(cfg)
		if err == nil {
			ch.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}
