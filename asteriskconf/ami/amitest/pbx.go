package amitest

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"smsrouter/asteriskconf/ami"
)

// EndpointListMessage is what res_pjsip answers PJSIPShowEndpoint with.
const EndpointListMessage = "Following are Events for each object associated with the the Endpoint"

// PBX is a scripted Asterisk for the T channel: after Login, PJSIPShowEndpoint
// answers from the endpoints set (endpoint → contact status, "" for one without
// contacts), and MessageSend is recorded and answered Success (or by the Reply
// set). Every other action gets Asterisk's "Invalid/unknown command".
type PBX struct {
	t      testing.TB
	Server *Server

	mu        sync.Mutex
	endpoints map[string]string
	sends     []ami.Packet
	shows     int
	reply     func(s *Session, req ami.Packet) ami.Packet
}

// NewPBX starts a PBX that accepts user with secret; t.Cleanup closes it.
func NewPBX(t testing.TB, user, secret string) *PBX {
	p := &PBX{t: t, endpoints: map[string]string{}}
	p.Server = NewServer(t, Login(user, secret, p.handle))
	return p
}

func (p *PBX) handle(s *Session, req ami.Packet) {
	switch strings.ToLower(req.Get("Action")) {
	case "pjsipshowendpoint":
		ep := req.Get("Endpoint")
		p.mu.Lock()
		p.shows++
		status, ok := p.endpoints[ep]
		p.mu.Unlock()
		if !ok {
			// res_pjsip's astman_send_error_va text, its trailing newline trimmed.
			_ = s.Send(Response(req, "Error", "Message", "Unable to retrieve endpoint "+ep))
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
		_ = s.SendList(req, EndpointListMessage, items, "EndpointDetailComplete")
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
		_ = s.Send(Response(req, "Success", "Message", MsgSent))
	default:
		_ = s.Send(Response(req, "Error", "Message", "Invalid/unknown command: "+req.Get("Action")+". Use Action: ListCommands to show available commands."))
	}
}

// Set gives endpoint a contact with status ("Reachable"…), or none with "".
func (p *PBX) Set(endpoint, status string) {
	p.mu.Lock()
	p.endpoints[endpoint] = status
	p.mu.Unlock()
}

// Online makes endpoint reachable and tells the clients, as res_pjsip does
// when a softphone registers and answers its first qualify.
func (p *PBX) Online(endpoint string) {
	p.Set(endpoint, "Reachable")
	p.Server.Broadcast(ContactStatusEvent(endpoint, "sip:"+endpoint+"@127.0.0.1:5070", "Reachable"))
}

// SetReply answers MessageSend with reply instead of Success; a reply that
// returns nil sends nothing (it may have closed the session). nil restores
// Success.
func (p *PBX) SetReply(reply func(s *Session, req ami.Packet) ami.Packet) {
	p.mu.Lock()
	p.reply = reply
	p.mu.Unlock()
}

// Requests returns the MessageSend requests so far.
func (p *PBX) Requests() []ami.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ami.Packet(nil), p.sends...)
}

// Shows counts the PJSIPShowEndpoint requests so far.
func (p *PBX) Shows() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shows
}

// Sent is one MessageSend, its body decoded.
type Sent struct{ To, From, Body, B64 string }

// Sent returns the MessageSends so far.
func (p *PBX) Sent() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Sent, 0, len(p.sends))
	for _, r := range p.sends {
		body, err := base64.StdEncoding.DecodeString(r.Get("Base64Body"))
		if err != nil {
			p.t.Errorf("Base64Body %q: %v", r.Get("Base64Body"), err)
		}
		out = append(out, Sent{To: r.Get("To"), From: r.Get("From"), Body: string(body), B64: r.Get("Base64Body")})
	}
	return out
}
