package ami_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/asteriskconf/ami/amitest"
)

const fixtureRaw = "../../testdata/asterisk/ami/transcript.raw"

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig(addr string) ami.Config {
	return ami.Config{
		Addr: addr, Username: "peer", Secret: "peerpass",
		DialTimeout: 2 * time.Second, PingInterval: -1,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		Logger: quietLogger(),
	}
}

func dial(t *testing.T, cfg ami.Config) *ami.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ami.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplayTranscript drives the client through the whole captured
// session: every request must equal the captured one (ActionID aside) and
// every answer, events included, is Asterisk's own bytes.
func TestReplayTranscript(t *testing.T) {
	tr, err := amitest.LoadTranscript(fixtureRaw)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var scriptErrs []error
	srv := amitest.NewServerWithBanner(t, tr.Banner, tr.Replay(func(err error) {
		mu.Lock()
		scriptErrs = append(scriptErrs, err)
		mu.Unlock()
	}))
	c := dial(t, testConfig(srv.Addr))
	events, stop := c.Subscribe(100, nil)
	defer stop()
	consumed := 0

	// Requests 2.. are replayed in order; Login was the first and Logoff
	// comes from Close.
	for _, ex := range tr.Exchanges[1 : len(tr.Exchanges)-1] {
		name := ex.Request.Get("Action")
		t.Run(ex.ActionID(), func(t *testing.T) {
			req := ex.Request.Clone()
			req.Del("ActionID")
			var resp ami.Packet
			var err error
			if ex.ActionID() == "msg-2" {
				// Our builder must produce exactly what was captured.
				err = c.MessageSend(ctxT(t, 2*time.Second), ami.MessageSendRequest{
					To: "pjsip:1000", From: `"SMS 5551234" <sip:5551234@127.0.0.1>`,
					Body:      "Zażółć gęślą jaźń 😀\nline2",
					Variables: map[string]string{"X-Test": "1", "X-SMS-Ref": "abc123"},
				})
			} else {
				resp, err = c.Do(ctxT(t, 2*time.Second), req)
			}
			wantMsg := map[string]string{
				"msg-err-1": "Message failed to send.",
				"msg-err-2": "Message technology not found.",
				"msg-err-3": "Message technology not found.",
				"msg-err-4": "No 'To' address specified.",
				"orig-2":    "Originate failed",
				"bad-1":     "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands.",
			}[ex.ActionID()]
			var re *ami.ResponseError
			switch {
			case wantMsg != "":
				if !errors.As(err, &re) || re.Message != wantMsg || re.Action != name {
					t.Fatalf("err = %v, want ResponseError %q", err, wantMsg)
				}
			case err != nil:
				t.Fatalf("%s: %v", name, err)
			}
			switch ex.ActionID() {
			case "ping-1":
				if resp.Get("Ping") != "Pong" || resp.Get("Timestamp") != "1795239732.736834" {
					t.Errorf("Ping response %q", resp)
				}
			case "orig-1":
				if resp.Get("Message") != "Originate successfully queued" {
					t.Errorf("Originate response %q", resp)
				}
				// The OriginateResponse event carries our ActionID; it is an
				// event, not a second reply.
				for {
					select {
					case ev := <-events:
						consumed++
						if ev.Get("Event") != "OriginateResponse" {
							continue
						}
						if ev.Get("ActionID") != resp.Get("ActionID") || ev.Get("Reason") != "4" {
							t.Errorf("OriginateResponse %q for ActionID %s", ev, resp.Get("ActionID"))
						}
						return
					case <-time.After(2 * time.Second):
						t.Fatal("no OriginateResponse event")
					}
				}
			}
		})
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close sent the captured Logoff; the server saw every request.
	waitFor(t, "session end", func() bool { return len(srv.Sessions()) == 0 })
	mu.Lock()
	defer mu.Unlock()
	for _, err := range scriptErrs {
		t.Error(err)
	}
	n := consumed
	for range events {
		n++
	}
	if n != 26 || c.DroppedEvents() != 0 {
		t.Errorf("subscriber saw %d events (dropped %d), want the 26 captured", n, c.DroppedEvents())
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name    string
		md5     bool
		secret  string
		wantErr error
	}{
		{"plain", false, "peerpass", nil},
		{"plain wrong secret", false, "wrong", ami.ErrAuthFailed},
		{"md5", true, "peerpass", nil},
		{"md5 wrong secret", true, "wrong", ami.ErrAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sawSecret bool
			var mu sync.Mutex
			srv := amitest.NewServer(t, func(s *amitest.Session, req ami.Packet) {
				mu.Lock()
				sawSecret = sawSecret || req.Has("Secret")
				mu.Unlock()
				amitest.Login("peer", "peerpass", nil)(s, req)
			})
			cfg := testConfig(srv.Addr)
			cfg.UseMD5, cfg.Secret = tt.md5, tt.secret
			c, err := ami.Dial(ctxT(t, 5*time.Second), cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Dial err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				var re *ami.ResponseError
				if !errors.As(err, &re) || re.Message != amitest.MsgAuthFailed {
					t.Errorf("err %v lacks Asterisk's message", err)
				}
				return
			}
			defer c.Close()
			if c.State() != ami.StateConnected {
				t.Errorf("state %v", c.State())
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.md5 && sawSecret {
				t.Error("MD5 login sent the secret")
			}
		})
	}
}

func TestDialBadBanner(t *testing.T) {
	srv := amitest.NewServerWithBanner(t, "SSH-2.0-OpenSSH_9.2", func(*amitest.Session, ami.Packet) {})
	_, err := ami.Dial(ctxT(t, 5*time.Second), testConfig(srv.Addr))
	if !errors.Is(err, ami.ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

func TestDialSilentServerRespectsContext(t *testing.T) {
	srv := amitest.NewServerWithBanner(t, "", func(*amitest.Session, ami.Packet) {})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := ami.Dial(ctx, testConfig(srv.Addr))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial took %v", d)
	}
}

// TestConcurrentOutOfOrder sends 100 MessageSends at once; the server
// collects them all, then answers in random order with events between the
// replies. Every caller must get its own reply.
func TestConcurrentOutOfOrder(t *testing.T) {
	const n = 100
	var mu sync.Mutex
	var held []ami.Packet
	var sess *amitest.Session
	release := make(chan struct{})
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		mu.Lock()
		held = append(held, req)
		sess = s
		full := len(held) == n
		mu.Unlock()
		if full {
			close(release)
		}
	}))
	c := dial(t, testConfig(srv.Addr))
	events, stop := c.Subscribe(4*n, func(p ami.Packet) bool { return p.Get("Event") == "ContactStatus" })
	defer stop()

	go func() {
		<-release
		mu.Lock()
		defer mu.Unlock()
		rand.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		for i, req := range held {
			_ = sess.Send(amitest.ContactStatusEvent("1000", "sip:1000@127.0.0.1:5070", "Reachable"))
			to := req.Get("To")
			if strings.HasSuffix(to, "7") {
				_ = sess.Send(amitest.Response(req, "Error", "Message", "Message failed to send.", "X-Echo", to))
			} else {
				_ = sess.Send(amitest.Response(req, "Success", "Message", amitest.MsgSent, "X-Echo", to))
			}
			_ = i
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("pjsip:%d", 1000+i)
			req, err := ami.MessageSendRequest{To: to, From: "sip:5551234@127.0.0.1", Body: fmt.Sprint("msg ", i)}.Packet()
			if err != nil {
				errs <- err
				return
			}
			resp, err := c.Do(ctxT(t, 10*time.Second), req)
			var re *ami.ResponseError
			switch {
			case strings.HasSuffix(to, "7"):
				if !errors.As(err, &re) || re.Packet.Get("X-Echo") != to {
					errs <- fmt.Errorf("%s: got %v", to, err)
				}
			case err != nil:
				errs <- fmt.Errorf("%s: %w", to, err)
			case resp.Get("X-Echo") != to:
				errs <- fmt.Errorf("%s got the reply for %s", to, resp.Get("X-Echo"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, "all events", func() bool { return len(events) == n })
	if c.DroppedEvents() != 0 {
		t.Errorf("dropped %d events", c.DroppedEvents())
	}
}

func TestSubscriberNeverBlocksReader(t *testing.T) {
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", nil))
	c := dial(t, testConfig(srv.Addr))
	slow, stop := c.Subscribe(1, nil)
	defer stop()
	other, stop2 := c.Subscribe(100, func(p ami.Packet) bool { return p.Get("Event") == "Other" })
	defer stop2()
	for i := range 50 {
		srv.Broadcast(ami.Packet{{Key: "Event", Value: "Tick"}, {Key: "N", Value: fmt.Sprint(i)}})
	}
	srv.Broadcast(ami.Packet{{Key: "Event", Value: "Other"}})
	// The Ping reply comes after all 51 events on the wire; getting it
	// proves the reader was never stuck on the full subscriber.
	if _, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Ping")); err != nil {
		t.Fatal(err)
	}
	if got := c.DroppedEvents(); got != 50 {
		t.Errorf("dropped %d, want 50 (51 events, buffer 1)", got)
	}
	if p := <-slow; p.Get("N") != "0" {
		t.Errorf("slow subscriber kept %q, want the first event", p)
	}
	if p := <-other; p.Get("Event") != "Other" {
		t.Errorf("filtered subscriber got %q", p)
	}
	stop()
	if _, ok := <-slow; ok {
		t.Error("channel still open after unsubscribe")
	}
}

func TestDropMidReply(t *testing.T) {
	var dropped atomic.Bool
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		if req.Get("Action") == "MessageSend" && dropped.CompareAndSwap(false, true) {
			_ = s.WriteRaw([]byte("Response: Success\r\nActionID: " + req.Get("ActionID") + "\r\nMess"))
			s.Close()
			return
		}
		_ = s.Send(amitest.Response(req, "Success", "Message", amitest.MsgSent))
	}))
	c := dial(t, testConfig(srv.Addr))
	err := c.MessageSend(ctxT(t, 2*time.Second), ami.MessageSendRequest{To: "pjsip:1000", Body: "x"})
	if !errors.Is(err, ami.ErrDisconnected) || errors.Is(err, ami.ErrNotSent) || !ami.IsTemporary(err) {
		t.Fatalf("err = %v, want ErrDisconnected (sent, outcome unknown)", err)
	}
	// It reconnects and logs in again by itself.
	waitFor(t, "reconnect", func() bool { return srv.Accepted() == 2 && c.State() == ami.StateConnected })
	if err := c.MessageSend(ctxT(t, 2*time.Second), ami.MessageSendRequest{To: "pjsip:1000", Body: "x"}); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func TestServerNeverAnswers(t *testing.T) {
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(*amitest.Session, ami.Packet) {}))
	c := dial(t, testConfig(srv.Addr))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	err := c.MessageSend(ctx, ami.MessageSendRequest{To: "pjsip:1000", Body: "x"})
	if !errors.Is(err, context.DeadlineExceeded) || !ami.IsTemporary(err) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v for a 150ms deadline", d)
	}
	// The connection itself is fine.
	if _, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Ping")); err != nil {
		t.Fatal(err)
	}
}

func TestReconnect(t *testing.T) {
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", nil))
	var mu sync.Mutex
	var states []ami.ConnState
	cfg := testConfig(srv.Addr)
	cfg.ReconnectMin, cfg.ReconnectMax = 300*time.Millisecond, time.Second
	cfg.OnStateChange = func(s ami.ConnState) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	}
	c := dial(t, cfg)
	srv.DropAll()
	waitFor(t, "disconnect", func() bool { return c.State() == ami.StateDisconnected })
	// Fail fast while disconnected, and say the request was not sent.
	start := time.Now()
	_, err := c.Do(ctxT(t, 5*time.Second), ami.NewAction("Ping"))
	if !errors.Is(err, ami.ErrDisconnected) || !errors.Is(err, ami.ErrNotSent) {
		t.Fatalf("err = %v, want ErrDisconnected+ErrNotSent", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Error("Do waited while disconnected")
	}
	waitFor(t, "reconnect", func() bool { return c.State() == ami.StateConnected })
	if _, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Ping")); err != nil {
		t.Fatal(err)
	}
	if srv.Accepted() != 2 {
		t.Errorf("accepted %d connections", srv.Accepted())
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	want := []ami.ConnState{ami.StateConnected, ami.StateDisconnected, ami.StateConnecting, ami.StateConnected, ami.StateClosed}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", states, want)
	}
}

func TestReconnectRetriesFailedLogin(t *testing.T) {
	// After a restart Asterisk refuses the login a few times (manager.conf
	// not loaded yet); the client keeps trying.
	var mu sync.Mutex
	refuse := 0
	srv := amitest.NewServer(t, func(s *amitest.Session, req ami.Packet) {
		mu.Lock()
		r := refuse
		if req.Get("Action") == "Login" && refuse > 0 {
			refuse--
		}
		mu.Unlock()
		if req.Get("Action") == "Login" && r > 0 {
			_ = s.Send(amitest.Response(req, "Error", "Message", amitest.MsgAuthFailed))
			s.Close()
			return
		}
		amitest.Login("peer", "peerpass", nil)(s, req)
	})
	c := dial(t, testConfig(srv.Addr))
	mu.Lock()
	refuse = 2
	mu.Unlock()
	srv.DropAll()
	waitFor(t, "reconnect", func() bool { return srv.Accepted() == 4 && c.State() == ami.StateConnected })
}

func TestPingDetectsDeadPeer(t *testing.T) {
	// After login the peer goes silent but keeps the socket open.
	srv := amitest.NewServer(t, func(s *amitest.Session, req ami.Packet) {
		if req.Get("Action") == "Ping" && s.State["silent"] == "" && s.State["loggedin"] != "" {
			s.State["silent"] = "yes"
		}
		if s.State["silent"] != "" {
			return
		}
		amitest.Login("peer", "peerpass", nil)(s, req)
	})
	cfg := testConfig(srv.Addr)
	cfg.PingInterval, cfg.PingTimeout = 30*time.Millisecond, 60*time.Millisecond
	c := dial(t, cfg)
	waitFor(t, "reconnect after dead peer", func() bool { return srv.Accepted() >= 2 })
	_ = c
}

func TestHostilePeerLongLine(t *testing.T) {
	// A 1 MB line without newline after login: the client must give up on
	// the connection (protocol error) and reconnect, not buffer it.
	var hostile atomic.Bool
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		if hostile.CompareAndSwap(false, true) {
			go func() { _ = s.WriteRaw([]byte("Event: " + strings.Repeat("A", 1<<20))) }()
			return
		}
		_ = s.Send(amitest.Response(req, "Success"))
	}))
	c := dial(t, testConfig(srv.Addr))
	_, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Status"))
	if !errors.Is(err, ami.ErrProtocol) || !errors.Is(err, ami.ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrProtocol/ErrLineTooLong", err)
	}
	waitFor(t, "reconnect", func() bool { return srv.Accepted() == 2 && c.State() == ami.StateConnected })
	if _, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Status")); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	var mu sync.Mutex
	got := 0
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		mu.Lock()
		got++
		mu.Unlock()
		_ = s.Send(amitest.Response(req, "Success"))
	}))
	c := dial(t, testConfig(srv.Addr))
	tests := []struct {
		name    string
		req     ami.MessageSendRequest
		wantErr error
	}{
		{"header injection in To", ami.MessageSendRequest{To: "pjsip:1000\r\nAction: Originate", Body: "x"}, ami.ErrInvalidPacket},
		{"newline in From", ami.MessageSendRequest{To: "pjsip:1000", From: "a\nb", Body: "x"}, ami.ErrInvalidPacket},
		{"NUL in variable", ami.MessageSendRequest{To: "pjsip:1000", Body: "x", Variables: map[string]string{"X-A": "a\x00"}}, ami.ErrInvalidPacket},
		{"= in variable name", ami.MessageSendRequest{To: "pjsip:1000", Body: "x", Variables: map[string]string{"a=b": "c"}}, ami.ErrInvalidPacket},
		{"no destination", ami.MessageSendRequest{Body: "x"}, ami.ErrInvalidPacket},
		{"body one byte too long", ami.MessageSendRequest{To: "pjsip:1000", Body: strings.Repeat("é", ami.MaxBase64Body/2) + "x"}, ami.ErrLineTooLong},
		{"long To", ami.MessageSendRequest{To: "pjsip:" + strings.Repeat("1", 1020), Body: "x"}, ami.ErrLineTooLong},
	}
	for _, tt := range tests {
		if err := c.MessageSend(ctxT(t, time.Second), tt.req); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	// A body of exactly MaxBase64Body bytes is accepted and fits the line.
	if err := c.MessageSend(ctxT(t, time.Second), ami.MessageSendRequest{To: "pjsip:1000", Body: strings.Repeat("x", ami.MaxBase64Body)}); err != nil {
		t.Fatalf("max body: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 1 {
		t.Errorf("server received %d MessageSends, want only the valid one", got)
	}
}

// withActionID inserts an ActionID after the Event header, as Asterisk
// writes list items.
func withActionID(p ami.Packet, id string) ami.Packet {
	out := ami.Packet{p[0], {Key: "ActionID", Value: id}}
	return append(out, p[1:]...)
}

func TestPJSIPShowContacts(t *testing.T) {
	var noContacts atomic.Bool
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		if noContacts.Load() {
			_ = s.Send(amitest.Response(req, "Error", "Message", "No Contacts found"))
			return
		}
		id := req.Get("ActionID")
		_ = s.Send(amitest.Response(req, "Success", "EventList", "start", "Message", amitest.ContactListMessage))
		_ = s.Send(withActionID(amitest.ContactListEvent("1000", "sip:1000@127.0.0.1:5070", "Reachable"), id))
		// An unrelated event in the middle of the list must neither end it
		// nor be taken for an item.
		_ = s.Send(amitest.ContactStatusEvent("1001", "sip:1001@127.0.0.1:5071", "Unreachable"))
		_ = s.Send(withActionID(amitest.ContactListEvent("1001", "sip:1001@127.0.0.1:5071", "NonQualified"), id))
		_ = s.Send(ami.Packet{{Key: "Event", Value: "ContactListComplete"}, {Key: "ActionID", Value: id},
			{Key: "EventList", Value: "Complete"}, {Key: "ListItems", Value: "2"}})
	}))
	c := dial(t, testConfig(srv.Addr))
	ev, stop := c.Subscribe(10, func(p ami.Packet) bool { _, ok := ami.ParseContactStatus(p); return ok })
	defer stop()
	got, err := c.PJSIPShowContacts(ctxT(t, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Endpoint != "1000" || got[0].Status != "Reachable" ||
		got[1].Endpoint != "1001" || got[1].URI != "sip:1001@127.0.0.1:5071" || got[1].Status != "NonQualified" || got[1].ExpirationTime != "1795243332" {
		t.Fatalf("contacts %+v", got)
	}
	select {
	case p := <-ev:
		cs, _ := ami.ParseContactStatus(p)
		if cs.Endpoint != "1001" || cs.Status != "Unreachable" || cs.Usable() {
			t.Errorf("ContactStatus %+v", cs)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the ContactStatus event inside the list was not delivered")
	}
	noContacts.Store(true)
	got, err = c.PJSIPShowContacts(ctxT(t, 2*time.Second))
	if err != nil || len(got) != 0 {
		t.Fatalf("no contacts: %v, %v", got, err)
	}
}

func TestPJSIPShowEndpoint(t *testing.T) {
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		if req.Get("Endpoint") != "1000" {
			_ = s.Send(amitest.Response(req, "Error", "Message", "Unable to retrieve endpoint "+req.Get("Endpoint")))
			return
		}
		_ = s.SendList(req, "Following are Events for each object associated with the Endpoint", []ami.Packet{
			{{Key: "Event", Value: "EndpointDetail"}, {Key: "ObjectName", Value: "1000"}, {Key: "DeviceState", Value: "Not in use"}},
			{{Key: "Event", Value: "ContactStatusDetail"}, {Key: "AOR", Value: "1000"}, {Key: "URI", Value: "sip:1000@127.0.0.1:5070"},
				{Key: "Status", Value: "Reachable"}, {Key: "RoundtripUsec", Value: "812"}, {Key: "EndpointName", Value: "1000"}},
		}, "EndpointDetailComplete")
	}))
	c := dial(t, testConfig(srv.Addr))
	items, err := c.PJSIPShowEndpoint(ctxT(t, 2*time.Second), "1000")
	if err != nil || len(items) != 2 {
		t.Fatalf("items %v, err %v", items, err)
	}
	cs, ok := ami.ParseContactStatus(items[1])
	if !ok || cs.Endpoint != "1000" || cs.URI != "sip:1000@127.0.0.1:5070" || !cs.Usable() {
		t.Errorf("ContactStatusDetail %+v", cs)
	}
	_, err = c.PJSIPShowEndpoint(ctxT(t, 2*time.Second), "9999")
	var re *ami.ResponseError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "9999") {
		t.Errorf("unknown endpoint: %v", err)
	}
}

func TestCloseFailsPendingAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(*amitest.Session, ami.Packet) {}))
	cfg := testConfig(srv.Addr)
	cfg.PingInterval = 20 * time.Millisecond
	c := dial(t, cfg)
	events, _ := c.Subscribe(1, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), ami.NewAction("Status"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ami.ErrClosed) {
		t.Errorf("pending Do: %v, want ErrClosed", err)
	}
	if _, ok := <-events; ok {
		t.Error("subscription still open")
	}
	if _, err := c.Do(context.Background(), ami.NewAction("Ping")); !errors.Is(err, ami.ErrClosed) {
		t.Errorf("Do after Close: %v", err)
	}
	if c.State() != ami.StateClosed {
		t.Errorf("state %v", c.State())
	}
	_ = c.Close() // idempotent
	srv.Close()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestCloseWhileReconnecting(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", nil))
	cfg := testConfig(srv.Addr)
	cfg.ReconnectMin, cfg.ReconnectMax = time.Hour, time.Hour
	c := dial(t, cfg)
	srv.Close() // nothing to reconnect to
	waitFor(t, "disconnect", func() bool { return c.State() == ami.StateDisconnected })
	start := time.Now()
	_ = c.Close()
	if time.Since(start) > time.Second {
		t.Error("Close waited for the backoff")
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// BenchmarkMessageSend measures MessageSends per second over one
// connection with parallel callers against the fake server.
func BenchmarkMessageSend(b *testing.B) {
	srv := amitest.NewServer(b, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		_ = s.Send(amitest.Response(req, "Success", "Message", amitest.MsgSent))
	}))
	cfg := testConfig(srv.Addr)
	c, err := ami.Dial(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := ami.MessageSendRequest{To: "pjsip:1000", From: `"SMS 5551234" <sip:5551234@127.0.0.1>`, Body: "Zażółć gęślą jaźń – benchmark"}
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.MessageSend(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "MessageSends/s")
}

// TestLateReplyIgnored: a reply that arrives after its caller gave up must
// not be delivered to the next caller, and stray responses are ignored.
func TestLateReplyIgnored(t *testing.T) {
	var first atomic.Bool
	srv := amitest.NewServer(t, amitest.Login("peer", "peerpass", func(s *amitest.Session, req ami.Packet) {
		if first.CompareAndSwap(false, true) {
			late := req
			go func() {
				time.Sleep(200 * time.Millisecond)
				_ = s.Send(amitest.Response(late, "Success", "Who", "first"))
			}()
			return
		}
		time.Sleep(300 * time.Millisecond) // the late reply goes out first
		_ = s.Send(amitest.Response(ami.Packet{}, "Success", "Who", "nobody"))
		_ = s.Send(amitest.Response(req, "Success", "Who", "second"))
	}))
	c := dial(t, testConfig(srv.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, ami.NewAction("Status")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first: %v", err)
	}
	resp, err := c.Do(ctxT(t, 2*time.Second), ami.NewAction("Status"))
	if err != nil || resp.Get("Who") != "second" {
		t.Fatalf("second got %q, %v", resp, err)
	}
}
