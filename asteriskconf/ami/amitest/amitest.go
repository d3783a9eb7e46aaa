// Package amitest provides a scripted fake Asterisk Manager Interface for
// tests: a loopback TCP server that greets with the real banner, reads
// requests with the same packet reader as the client, and answers through a
// handler. Helpers answer Login (plain and MD5), Ping and Logoff with the
// exact texts Asterisk 22 sends, build list responses in Asterisk's format,
// and replay the captured exchanges of
// testdata/asterisk/ami/transcript.raw (captured from Asterisk 22).
package amitest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"smsrouter/asteriskconf/ami"
)

// Banner is what Asterisk 22 sends after accept (SPEC.md §5.1).
const Banner = "Asterisk Call Manager/11.0.0"

// Handler answers one request. It runs on the session's goroutine, so
// requests of one session are handled in order unless the handler hands
// them to goroutines of its own.
type Handler func(s *Session, req ami.Packet)

// Server is a fake AMI listening on 127.0.0.1.
type Server struct {
	Addr string

	ln      net.Listener
	banner  string
	handler Handler
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[*Session]struct{}
	accepted int
	closed   bool
}

// Session is one client connection to the fake server.
type Session struct {
	srv  *Server
	conn net.Conn
	wmu  sync.Mutex
	// State is free for handlers (for example "logged in"); it is only
	// touched from the session's goroutine unless the handler shares it.
	State map[string]string
}

// NewServer starts a server greeting with Banner; t.Cleanup closes it.
func NewServer(t testing.TB, h Handler) *Server {
	return NewServerWithBanner(t, Banner, h)
}

// NewServerWithBanner starts a server with a custom first line; an empty
// banner sends nothing.
func NewServerWithBanner(t testing.TB, banner string, h Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("amitest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, banner: banner, handler: h, sessions: map[*Session]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		sess := &Session{srv: s, conn: c, State: map[string]string{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.sessions[sess] = struct{}{}
		s.accepted++
		s.wg.Add(1)
		s.mu.Unlock()
		go sess.serve()
	}
}

func (sess *Session) serve() {
	defer sess.srv.wg.Done()
	defer func() {
		_ = sess.conn.Close()
		sess.srv.mu.Lock()
		delete(sess.srv.sessions, sess)
		sess.srv.mu.Unlock()
	}()
	if sess.srv.banner != "" {
		if sess.WriteRaw([]byte(sess.srv.banner+"\r\n")) != nil {
			return
		}
	}
	rd := ami.NewReader(sess.conn)
	for {
		req, err := rd.ReadPacket()
		if err != nil {
			return
		}
		sess.srv.handler(sess, req)
	}
}

// Accepted returns how many connections were accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Sessions returns the open sessions.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// Broadcast sends p (usually an event) to every open session.
func (s *Server) Broadcast(p ami.Packet) {
	for _, sess := range s.Sessions() {
		_ = sess.Send(p)
	}
}

// DropAll closes every open session, as an Asterisk restart would.
func (s *Server) DropAll() {
	for _, sess := range s.Sessions() {
		sess.Close()
	}
}

// Close stops the listener, closes all sessions and waits for their
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.ln.Close()
	s.DropAll()
	s.wg.Wait()
}

// Send writes one packet. It does not check Asterisk's input limits: the
// server may send what it likes.
func (sess *Session) Send(p ami.Packet) error {
	var b []byte
	for _, h := range p {
		b = append(b, h.Key...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, "\r\n"...)
	}
	return sess.WriteRaw(append(b, "\r\n"...))
}

// WriteRaw writes bytes as they are.
func (sess *Session) WriteRaw(b []byte) error {
	sess.wmu.Lock()
	defer sess.wmu.Unlock()
	_, err := sess.conn.Write(b)
	return err
}

// Close closes the connection.
func (sess *Session) Close() { _ = sess.conn.Close() }

// Response builds "Response: <status>" with the request's ActionID echoed
// (as Asterisk does: only when the request had one), then kv pairs.
func Response(req ami.Packet, status string, kv ...string) ami.Packet {
	p := ami.Packet{{Key: "Response", Value: status}}
	if id := req.Get("ActionID"); id != "" {
		p = append(p, ami.Header{Key: "ActionID", Value: id})
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p = append(p, ami.Header{Key: kv[i], Value: kv[i+1]})
	}
	return p
}

// Texts Asterisk 22 sends (fixtures/ami/transcript*.txt).
const (
	MsgAuthAccepted = "Authentication accepted"
	MsgAuthFailed   = "Authentication failed"
	MsgSent         = "Message successfully sent"
	MsgGoodbye      = "Thanks for all the fish."
	MsgNotLoggedIn  = "Permission denied" // what manager.c answers before Login
)

// Login wraps next with the session's standard actions: Challenge and
// Login (plain or MD5, checked against user and secret), Ping and Logoff.
// Other actions before a successful login are refused, as Asterisk does.
func Login(user, secret string, next Handler) Handler {
	return func(s *Session, req ami.Packet) {
		switch strings.ToLower(req.Get("Action")) {
		case "challenge":
			s.State["challenge"] = "840415273"
			_ = s.Send(Response(req, "Success", "Challenge", s.State["challenge"]))
		case "login":
			ok := req.Get("Username") == user
			if strings.EqualFold(req.Get("AuthType"), "MD5") {
				sum := md5.Sum([]byte(s.State["challenge"] + secret))
				ok = ok && s.State["challenge"] != "" && strings.EqualFold(req.Get("Key"), hex.EncodeToString(sum[:]))
			} else {
				ok = ok && req.Get("Secret") == secret
			}
			if !ok {
				_ = s.Send(Response(req, "Error", "Message", MsgAuthFailed))
				return
			}
			s.State["loggedin"] = "yes"
			_ = s.Send(Response(req, "Success", "Message", MsgAuthAccepted))
		case "ping":
			if s.State["loggedin"] == "" {
				_ = s.Send(Response(req, "Error", "Message", MsgNotLoggedIn))
				return
			}
			_ = s.Send(Response(req, "Success", "Ping", "Pong", "Timestamp", "1795239732.736834"))
		case "logoff":
			_ = s.Send(Response(req, "Goodbye", "Message", MsgGoodbye))
			s.Close()
		default:
			if s.State["loggedin"] == "" {
				_ = s.Send(Response(req, "Error", "Message", MsgNotLoggedIn))
				return
			}
			if next != nil {
				next(s, req)
			}
		}
	}
}

// SendList answers req with a list in Asterisk's format: "Response:
// Success", "EventList: start", message; each item with the ActionID
// added after its Event header; then completeEvent with "EventList:
// Complete" and "ListItems: n".
func (sess *Session) SendList(req ami.Packet, message string, items []ami.Packet, completeEvent string) error {
	id := req.Get("ActionID")
	if err := sess.Send(Response(req, "Success", "EventList", "start", "Message", message)); err != nil {
		return err
	}
	for _, it := range items {
		p := make(ami.Packet, 0, len(it)+1)
		for i, h := range it {
			p = append(p, h)
			if i == 0 && id != "" {
				p = append(p, ami.Header{Key: "ActionID", Value: id})
			}
		}
		if err := sess.Send(p); err != nil {
			return err
		}
	}
	complete := ami.Packet{{Key: "Event", Value: completeEvent}}
	if id != "" {
		complete = append(complete, ami.Header{Key: "ActionID", Value: id})
	}
	complete = append(complete, ami.Header{Key: "EventList", Value: "Complete"}, ami.Header{Key: "ListItems", Value: strconv.Itoa(len(items))})
	return sess.Send(complete)
}

// ContactListMessage is the list message of PJSIPShowContacts.
const ContactListMessage = "A listing of Contacts follows, presented as ContactList events"

// ContactListEvent is one ContactList item as res_pjsip writes it for a
// contact registered from uri (fields of Asterisk 22's ContactList event).
func ContactListEvent(endpoint, uri, status string) ami.Packet {
	return ami.Packet{
		{Key: "Event", Value: "ContactList"},
		{Key: "ObjectType", Value: "contact"},
		{Key: "ObjectName", Value: endpoint + ";@a1b2c3d4e5f60718293a4b5c6d7e8f90"},
		{Key: "ViaAddr", Value: "127.0.0.1"},
		{Key: "ViaPort", Value: "5070"},
		{Key: "QualifyTimeout", Value: "3.000000"},
		{Key: "CallId", Value: "1-24066@127.0.0.1"},
		{Key: "RegServer", Value: ""},
		{Key: "PruneOnBoot", Value: "false"},
		{Key: "Path", Value: ""},
		{Key: "Endpoint", Value: endpoint},
		{Key: "AuthenticateQualify", Value: "false"},
		{Key: "Uri", Value: uri},
		{Key: "QualifyFrequency", Value: "60"},
		{Key: "UserAgent", Value: "SIPp"},
		{Key: "ExpirationTime", Value: "1795243332"},
		{Key: "OutboundProxy", Value: ""},
		{Key: "Status", Value: status},
		{Key: "RoundtripUsec", Value: "1203"},
		{Key: "Qualify2xxOnly", Value: "false"},
	}
}

// ContactStatusEvent is the real-time ContactStatus event (class system)
// res_pjsip sends when a contact changes state.
func ContactStatusEvent(endpoint, uri, status string) ami.Packet {
	return ami.Packet{
		{Key: "Event", Value: "ContactStatus"},
		{Key: "Privilege", Value: "system,all"},
		{Key: "URI", Value: uri},
		{Key: "ContactStatus", Value: status},
		{Key: "AOR", Value: endpoint},
		{Key: "EndpointName", Value: endpoint},
		{Key: "RoundtripUsec", Value: "1203"},
		{Key: "UserAgent", Value: "SIPp"},
		{Key: "RegExpire", Value: "1795243332"},
		{Key: "ViaAddress", Value: "127.0.0.1:5070"},
		{Key: "CallID", Value: "1-24066@127.0.0.1"},
	}
}

// ErrScript is recorded when a replayed session receives an unexpected
// request.
var ErrScript = errors.New("amitest: request differs from the script")
