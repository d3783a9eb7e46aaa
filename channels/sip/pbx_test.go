package sip_test

import (
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/channels/sip"
)

const (
	amiUser   = "smsrouter"
	amiSecret = "s3cret"
	// endpointListMessage is what res_pjsip answers PJSIPShowEndpoint with.
	endpointListMessage = "Following are Events for each object associated with the the Endpoint"
)

// fakePBX is a scripted Asterisk: PJSIPShowEndpoint answers from endpoints
// (endpoint → contact status, "" for an endpoint without contacts), and
// MessageSend is recorded and answered by reply (Success by default).
type fakePBX struct {
	t   testing.TB
	srv *amitest.Server

	mu        sync.Mutex
	endpoints map[string]string
	sends     []ami.Packet
	shows     int
	// reply, when set, answers a MessageSend instead of Success; returning nil
	// sends nothing (the handler may have closed the session).
	reply func(s *amitest.Session, req ami.Packet) ami.Packet
}

func newPBX(t testing.TB) *fakePBX {
	p := &fakePBX{t: t, endpoints: map[string]string{}}
	p.srv = amitest.NewServer(t, amitest.Login(amiUser, amiSecret, p.handle))
	return p
}

func (p *fakePBX) handle(s *amitest.Session, req ami.Packet) {
	switch strings.ToLower(req.Get("Action")) {
	case "pjsipshowendpoint":
		ep := req.Get("Endpoint")
		p.mu.Lock()
		p.shows++
		status, ok := p.endpoints[ep]
		p.mu.Unlock()
		if !ok {
			// res_pjsip's astman_send_error_va text, its trailing newline trimmed.
			_ = s.Send(amitest.Response(req, "Error", "Message", "Unable to retrieve endpoint "+ep))
			return
		}
		items := []ami.Packet{{
			{Key: "Event", Value: "EndpointDetail"}, {Key: "ObjectType", Value: "endpoint"},
			{Key: "ObjectName", Value: ep}, {Key: "Aors", Value: ep}, {Key: "DeviceState", Value: "Not in use"},
		}, {
			{Key: "Event", Value: "AorDetail"}, {Key: "ObjectType", Value: "aor"}, {Key: "ObjectName", Value: ep},
			{Key: "TotalContacts", Value: "1"}, {Key: "EndpointName", Value: ep},
		}}
		if status != "" {
			items = append(items, ami.Packet{
				{Key: "Event", Value: "ContactStatusDetail"}, {Key: "AOR", Value: ep},
				{Key: "URI", Value: "sip:" + ep + "@127.0.0.1:5070"}, {Key: "UserAgent", Value: "SIPp"},
				{Key: "Status", Value: status}, {Key: "RoundtripUsec", Value: "1203"}, {Key: "EndpointName", Value: ep},
			})
		}
		_ = s.SendList(req, endpointListMessage, items, "EndpointDetailComplete")
	case "messagesend":
		p.mu.Lock()
		p.sends = append(p.sends, req.Clone())
		reply := p.reply
		p.mu.Unlock()
		if reply != nil {
			if r := reply(s, req); r != nil {
				_ = s.Send(r)
			}
			return
		}
		_ = s.Send(amitest.Response(req, "Success", "Message", amitest.MsgSent))
	default:
		_ = s.Send(amitest.Response(req, "Error", "Message", "Invalid/unknown command: "+req.Get("Action")+". Use Action: ListCommands to show available commands."))
	}
}

func (p *fakePBX) set(endpoint, status string) {
	p.mu.Lock()
	p.endpoints[endpoint] = status
	p.mu.Unlock()
}

// online makes endpoint reachable and tells the client, as res_pjsip does when
// a softphone registers and answers its first qualify.
func (p *fakePBX) online(endpoint string) {
	p.set(endpoint, "Reachable")
	p.srv.Broadcast(amitest.ContactStatusEvent(endpoint, "sip:"+endpoint+"@127.0.0.1:5070", "Reachable"))
}

// sent returns the MessageSends so far as (To, From, decoded body).
func (p *fakePBX) sent() []sentMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]sentMsg, 0, len(p.sends))
	for _, r := range p.sends {
		body, err := base64.StdEncoding.DecodeString(r.Get("Base64Body"))
		if err != nil {
			p.t.Errorf("Base64Body %q: %v", r.Get("Base64Body"), err)
		}
		out = append(out, sentMsg{To: r.Get("To"), From: r.Get("From"), Body: string(body), B64: r.Get("Base64Body")})
	}
	return out
}

type sentMsg struct{ To, From, Body, B64 string }

func (p *fakePBX) config(t testing.TB, wake func(string)) sip.Config {
	return sip.Config{
		AMI: ami.Config{Addr: p.srv.Addr, Username: amiUser, Secret: amiSecret, PingInterval: -1,
			ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		From:      `"SMS {{.From}}" <sip:{{.From}}@pbx.example>`,
		MarkerDir: filepath.Join(t.TempDir(), "sip-sent"),
		Wake:      wake,
		// Tests flip reachability without events too; do not let a cached answer hide it.
		ReachableTTL: time.Nanosecond,
	}
}

func newChannel(t testing.TB, cfg sip.Config) *sip.Channel {
	t.Helper()
	ch, err := sip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wakes records Wake calls.
type wakes struct {
	mu sync.Mutex
	n  []string
}

func (w *wakes) wake(number string) {
	w.mu.Lock()
	w.n = append(w.n, number)
	w.mu.Unlock()
}

func (w *wakes) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.n...)
}
