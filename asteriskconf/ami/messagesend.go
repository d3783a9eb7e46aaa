package ami

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxBase64Body is the longest message body, in bytes, that fits one
// "Base64Body: " line within MaxLineLength (SPEC.md §5.2). Longer texts must
// be split by the caller.
const MaxBase64Body = (MaxLineLength - len("Base64Body: ") - 2) / 4 * 3

// MessageSendRequest is one AMI MessageSend (SPEC.md §5.2).
type MessageSendRequest struct {
	To          string // destination URI, "tech:rest", e.g. "pjsip:1000"
	Destination string // optional; when set it routes and To only overrides the SIP To header
	From        string // e.g. `"SMS 5551234" <sip:5551234@pbx>`; optional
	Body        string // sent as Base64Body, byte-exact
	// Variables become message variables, which PJSIP adds as SIP headers
	// (X-SMS-Ref=abc → "X-SMS-Ref: abc"). Sent sorted by name.
	Variables map[string]string
}

// Packet builds the action, refusing what Asterisk would mangle: a body
// whose Base64Body line exceeds MaxLineLength, variable names containing
// '=', and anything containing CR, LF or NUL.
func (r MessageSendRequest) Packet() (Packet, error) {
	if r.To == "" && r.Destination == "" {
		return nil, fmt.Errorf("%w: MessageSend without To or Destination", ErrInvalidPacket)
	}
	if len(r.Body) > MaxBase64Body {
		return nil, fmt.Errorf("MessageSend: body of %d bytes exceeds the %d bytes one AMI line carries as Base64Body: %w",
			len(r.Body), MaxBase64Body, ErrLineTooLong)
	}
	p := NewAction("MessageSend")
	if r.Destination != "" {
		p.Add("Destination", r.Destination)
	}
	if r.To != "" {
		p.Add("To", r.To)
	}
	if r.From != "" {
		p.Add("From", r.From)
	}
	p.Add("Base64Body", base64.StdEncoding.EncodeToString([]byte(r.Body)))
	names := make([]string, 0, len(r.Variables))
	for k := range r.Variables {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%w: MessageSend variable name %q", ErrInvalidPacket, k)
		}
		p.Add("Variable", k+"="+r.Variables[k])
	}
	// Validate here too, so the caller learns before any network wait; the
	// ActionID added later is short and fixed-size.
	if _, err := AppendPacket(nil, p); err != nil {
		return nil, fmt.Errorf("MessageSend: %w", err)
	}
	return p, nil
}

// MessageSend sends one message. nil means only that Asterisk handed the
// SIP MESSAGE to its stack, not that it was delivered (SPEC.md §5.2). A
// "Response: Error" returns a *ResponseError whose Message says why
// ("Message technology not found.", "Message failed to send.", …);
// transport failures wrap ErrDisconnected.
func (c *Client) MessageSend(ctx context.Context, req MessageSendRequest) error {
	p, err := req.Packet()
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, p)
	return err
}

// Contact is one PJSIP contact as reported by PJSIPShowContacts
// (ContactList events).
type Contact struct {
	Endpoint       string // Endpoint:
	ObjectName     string // sorcery id, "aor;@hash"
	URI            string // Uri:
	Status         string // Reachable, Unreachable, NonQualified, Unknown
	RoundtripUsec  string
	UserAgent      string
	ExpirationTime string // Unix seconds
	Event          Packet // the whole event
}

// Usable reports whether the contact can take a message now; see
// ContactStatus.Usable.
func (ct Contact) Usable() bool { return ContactStatus{Status: ct.Status}.Usable() }

// PJSIPShowContacts lists every registered or static contact. Asterisk
// answers "No Contacts found" with an error when there are none; that is
// returned as an empty list.
func (c *Client) PJSIPShowContacts(ctx context.Context) ([]Contact, error) {
	_, items, err := c.DoList(ctx, NewAction("PJSIPShowContacts"))
	var re *ResponseError
	if errors.As(err, &re) && strings.Contains(strings.ToLower(re.Message), "no contacts") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(items))
	for _, e := range items {
		if !strings.EqualFold(e.Get("Event"), "ContactList") {
			continue
		}
		out = append(out, Contact{
			Endpoint:       e.Get("Endpoint"),
			ObjectName:     e.Get("ObjectName"),
			URI:            e.Get("Uri"),
			Status:         e.Get("Status"),
			RoundtripUsec:  e.Get("RoundtripUsec"),
			UserAgent:      e.Get("UserAgent"),
			ExpirationTime: e.Get("ExpirationTime"),
			Event:          e,
		})
	}
	return out, nil
}

// PJSIPShowEndpoint returns the detail events of one endpoint
// (EndpointDetail, AorDetail, AuthDetail, ContactStatusDetail, …). An
// unknown endpoint is a *ResponseError.
func (c *Client) PJSIPShowEndpoint(ctx context.Context, endpoint string) ([]Packet, error) {
	_, items, err := c.DoList(ctx, NewAction("PJSIPShowEndpoint", "Endpoint", endpoint))
	return items, err
}

// ContactStatus is a contact state change: the real-time ContactStatus
// event (class "system"), or a ContactStatusDetail item of
// PJSIPShowEndpoint. Both are read by ParseContactStatus.
type ContactStatus struct {
	Endpoint      string // EndpointName:
	AOR           string
	URI           string
	Status        string // Reachable, Unreachable, Created, Removed, Updated, NonQualified, Unknown
	RoundtripUsec string
}

// ParseContactStatus reads a ContactStatus or ContactStatusDetail event;
// ok is false for any other packet.
func ParseContactStatus(p Packet) (cs ContactStatus, ok bool) {
	switch ev := p.Get("Event"); {
	case strings.EqualFold(ev, "ContactStatus"):
		cs.Status = p.Get("ContactStatus")
	case strings.EqualFold(ev, "ContactStatusDetail"):
		cs.Status = p.Get("Status")
	default:
		return cs, false
	}
	cs.Endpoint = p.Get("EndpointName")
	cs.AOR = p.Get("AOR")
	cs.URI = p.Get("URI")
	cs.RoundtripUsec = p.Get("RoundtripUsec")
	return cs, true
}

// Usable reports whether a message can be handed to the contact now:
// qualified as Reachable, or registered without qualify (NonQualified),
// or just (re)registered (Created, Updated).
func (cs ContactStatus) Usable() bool {
	switch strings.ToLower(cs.Status) {
	case "reachable", "nonqualified", "created", "updated":
		return true
	}
	return false
}
