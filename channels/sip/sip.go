// Package sip delivers messages for letter T as SIP instant messages: AMI
// MessageSend to the recipient's PJSIP endpoint, through one long-lived AMI
// connection (asteriskconf/ami) per process.
//
// Asterisk answers MessageSend with Success as soon as the SIP MESSAGE is handed
// to its SIP stack, whether or not a phone is there to take it (SPEC.md §5.2),
// so a message to an offline softphone would be lost. The channel therefore
// stores and forwards: before sending it asks Asterisk whether the endpoint has
// a reachable contact (PJSIPShowEndpoint). If not, Deliver returns a temporary
// error, so the router keeps the message in deferred/ and retries it on its
// backoff until its validity ends, when the sender is told. Meanwhile the
// channel listens for ContactStatus events and, when an endpoint it holds
// messages for becomes reachable, calls the Wake callback (the router's Wake)
// so the held messages go out at once. Which numbers wait on which endpoint is
// kept in memory only: after a restart the deferred files are still there and
// are retried on their backoff, they just miss the early wake-up.
//
// Nothing is sent twice: after each Success the channel records a marker file
// per message id and part (see markers), and skips parts already marked, so a
// crash between the send and the router's journal commit cannot repeat a
// message. The one case that can repeat is a connection that breaks after
// MessageSend was written but before its reply arrived: Asterisk may or may not
// have sent it, and AMI offers no way to ask. The channel then retries, taking
// a possible duplicate over a possible loss, and logs the doubt.
package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"text/template"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/channels"
)

// Config configures the T channel.
type Config struct {
	// AMI is how to reach Asterisk. Events is forced to include "system", the
	// class of ContactStatus events.
	AMI ami.Config
	// From is a Go template for MessageSend's From over .From (the sender's
	// number) and .To (the recipient's number), e.g.
	// `"SMS {{.From}}" <sip:{{.From}}@pbx.example>`. Default "{{.From}}": a bare
	// number, which PJSIP turns into a URI on the endpoint's own domain.
	From string
	// MarkerDir holds the sent markers; required (e.g. <work_dir>/sip-sent).
	MarkerDir string
	// MarkerAge is how long markers are kept; default 7 days. It must be longer
	// than any message's validity.
	MarkerAge time.Duration
	// Sync flushes each marker to disk before Deliver returns.
	Sync bool
	// MaxParts bounds how many SIP messages one text may become; default 10.
	MaxParts int
	// ReachableTTL is how long a reachability answer is reused for an endpoint
	// (ContactStatus events and reconnects clear it sooner); default 5s.
	ReachableTTL time.Duration
	// Wake is called with a recipient number when an endpoint holding messages
	// for it becomes reachable. Optional.
	Wake func(number string)
	// CheckTimeout bounds the reachability re-check after a reconnect; default 10s.
	CheckTimeout time.Duration
	Logger       *slog.Logger
}

// DefaultFrom is the From template used when none is configured.
const DefaultFrom = "{{.From}}"

// redialAfter is how long a failed first connection is remembered: messages in
// the same batch fail fast instead of each waiting for a dial timeout.
const redialAfter = 10 * time.Second

// Channel is the T delivery channel. It is safe for concurrent use.
type Channel struct {
	cfg     Config
	from    *template.Template
	markers *markers
	log     *slog.Logger

	dialMu  sync.Mutex // one dial at a time
	mu      sync.Mutex
	client  *ami.Client
	dialErr error
	dialAt  time.Time
	closed  bool
	wasDown bool

	// held maps an endpoint to the recipient numbers with messages waiting for it.
	held  map[string]map[string]struct{}
	reach map[string]reachability

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type reachability struct {
	usable bool
	at     time.Time
}

// New checks the configuration. It does not connect: the AMI connection is made
// by the first Deliver, so a drain that has no T message never logs in.
func New(cfg Config) (*Channel, error) {
	cfg, from, err := cfg.check()
	if err != nil {
		return nil, err
	}
	c := &Channel{cfg: cfg, from: from, log: cfg.Logger.With("channel", "sip"),
		held: map[string]map[string]struct{}{}, reach: map[string]reachability{}}
	mk, err := newMarkers(cfg.MarkerDir, cfg.Sync)
	if err != nil {
		return nil, err
	}
	c.markers = mk
	c.life, c.cancel = context.WithCancel(context.Background())
	user := cfg.AMI.OnStateChange
	c.cfg.AMI.OnStateChange = func(s ami.ConnState) {
		c.stateChanged(s)
		if user != nil {
			user(s)
		}
	}
	return c, nil
}

// Check validates cfg as New does, without creating the sent-marker folder
// or anything else: for `smsrouter doctor`.
func Check(cfg Config) error {
	_, _, err := cfg.check()
	return err
}

// check fills in the defaults and validates; it touches nothing.
func (cfg Config) check() (Config, *template.Template, error) {
	if cfg.AMI.Addr == "" {
		return cfg, nil, errors.New("sip: no AMI address (ami_addr)")
	}
	if cfg.AMI.Username == "" {
		return cfg, nil, errors.New("sip: no AMI username")
	}
	if cfg.MarkerDir == "" {
		return cfg, nil, errors.New("sip: no folder for sent markers")
	}
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	if cfg.MarkerAge <= 0 {
		cfg.MarkerAge = 7 * 24 * time.Hour
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	if cfg.ReachableTTL <= 0 {
		cfg.ReachableTTL = 5 * time.Second
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.AMI.Events = withSystem(cfg.AMI.Events)
	from, err := template.New("from").Option("missingkey=error").Parse(cfg.From)
	if err != nil {
		return cfg, nil, fmt.Errorf("sip: from template: %w", err)
	}
	// Try the template once so a mistake shows at start-up, not per message.
	trial := &Channel{cfg: cfg, from: from}
	if _, err := trial.fromHeader("+4915112345678", "5551000"); err != nil {
		return cfg, nil, err
	}
	return cfg, from, nil
}

// withSystem adds the "system" class (ContactStatus) to a Login Events value.
func withSystem(ev string) string {
	switch strings.ToLower(strings.TrimSpace(ev)) {
	case "", "off", "no", "false", "0":
		return "system"
	case "on", "yes", "true", "all":
		return ev
	}
	for _, class := range strings.Split(ev, ",") {
		if strings.EqualFold(strings.TrimSpace(class), "system") {
			return ev
		}
	}
	return ev + ",system"
}

func (c *Channel) fromHeader(from, to string) (string, error) {
	var b strings.Builder
	if err := c.from.Execute(&b, struct{ From, To string }{from, to}); err != nil {
		return "", fmt.Errorf("sip: from template: %w", err)
	}
	s := b.String()
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", errors.New("sip: from template produced a line break or NUL")
	}
	return s, nil
}

// publicNoSIP is the sender's reason when Asterisk cannot send SIP messages at all.
const publicNoSIP = "SIP messaging is not available."

// Deliver sends m as one SIP MESSAGE per part, or holds it (a temporary error)
// while the recipient's endpoint has no reachable contact.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	endpoint, uri, err := MessageURI(m.Extension)
	if err != nil {
		return channels.Result{}, channels.PermanentBecause(channels.PublicNotSetUp, err)
	}
	parts := Split(m.Text, ami.MaxBase64Body)
	if len(parts) > c.cfg.MaxParts {
		return channels.Result{}, channels.PermanentBecause("The message is too long for a SIP message.",
			fmt.Errorf("the message is too long for SIP: %d parts, at most %d", len(parts), c.cfg.MaxParts))
	}
	from, err := c.fromHeader(m.From, m.To)
	if err != nil {
		return channels.Result{}, channels.Permanent(err)
	}
	todo := make([]int, 0, len(parts))
	for i := range parts {
		done, err := c.markers.sent(m.ID, i+1)
		if err != nil {
			return channels.Result{}, err
		}
		if !done {
			todo = append(todo, i)
		}
	}
	detail := map[string]any{"sip_to": uri, "parts": len(parts)}
	if len(todo) == 0 {
		// Sent before a crash or a failed journal write: only the commit was missing.
		detail["already_sent"] = true
		return channels.Result{Detail: detail}, nil
	}
	cl, err := c.connect(ctx)
	if err != nil {
		return channels.Result{}, channels.Because(channels.CauseAMIDown, err)
	}
	ok, err := c.reachable(ctx, cl, endpoint)
	if err != nil {
		return channels.Result{}, err
	}
	if !ok {
		c.hold(endpoint, m.To)
		return channels.Result{}, channels.Because(channels.CauseSIP480, fmt.Errorf("held: %s has no reachable contact", endpoint))
	}
	for _, i := range todo {
		err := cl.MessageSend(ctx, ami.MessageSendRequest{To: uri, From: from, Body: parts[i]})
		if err != nil {
			return channels.Result{}, c.sendError(m, endpoint, i+1, len(parts), err)
		}
		if err := c.markers.mark(m.ID, i+1); err != nil {
			// Sent, but unrecorded: a retry may repeat this part. Report it and
			// let the router retry rather than claim a success we cannot prove
			// will not be repeated silently.
			c.log.Error("sent but could not record it; a retry may repeat this part", "id", m.ID, "part", i+1, "err", err)
			return channels.Result{}, err
		}
	}
	if len(todo) < len(parts) {
		detail["resumed_at_part"] = todo[0] + 1
	}
	c.reachableNow(endpoint)
	return channels.Result{Detail: detail}, nil
}

// sendError sorts a failed MessageSend into permanent and temporary.
func (c *Channel) sendError(m channels.Message, endpoint string, part, total int, err error) error {
	var re *ami.ResponseError
	if errors.As(err, &re) {
		msg := strings.TrimSpace(re.Message)
		switch {
		case strings.EqualFold(msg, "Message technology not found."):
			// We always send pjsip:, so res_pjsip_messaging is not loaded.
			return channels.PermanentBecause(publicNoSIP, errors.New("Asterisk cannot send SIP messages (res_pjsip_messaging is not loaded)"))
		case strings.EqualFold(msg, "No 'To' address specified."):
			return channels.PermanentBecause(channels.PublicNotSetUp, fmt.Errorf("Asterisk found no SIP address for %s", endpoint))
		case strings.EqualFold(msg, "Message failed to send."):
			// The endpoint existed a moment ago (PJSIPShowEndpoint) and had a
			// reachable contact, so this is most likely the contact going away
			// in between: hold and retry rather than bounce.
			c.hold(endpoint, m.To)
			return channels.Because(channels.CauseSIP480, fmt.Errorf("held: Asterisk could not send to %s (part %d of %d): %w", endpoint, part, total, err))
		}
		// Anything else (Permission denied: the AMI user lacks the message
		// class) is a configuration problem an admin fixes; keep the message.
		return channels.Because(channels.CauseAMIDown, fmt.Errorf("MessageSend to %s refused: %w", endpoint, err))
	}
	if errors.Is(err, ami.ErrLineTooLong) || errors.Is(err, ami.ErrInvalidPacket) {
		return channels.PermanentBecause(publicNoSIP, fmt.Errorf("the message cannot be sent over AMI: %w", err))
	}
	if !errors.Is(err, ami.ErrNotSent) {
		// The request left; whether Asterisk acted on it is unknown. Retrying
		// may duplicate this part, not retrying may lose it: we retry.
		c.log.Warn("MessageSend outcome unknown; the retry may repeat this part", "id", m.ID, "part", part, "endpoint", endpoint, "err", err)
	}
	return channels.Because(channels.CauseAMIDown, fmt.Errorf("MessageSend to %s (part %d of %d): %w", endpoint, part, total, err))
}

// connect returns the shared client, dialling it on first use.
func (c *Channel) connect(ctx context.Context) (*ami.Client, error) {
	c.mu.Lock()
	cl, closed := c.client, c.closed
	c.mu.Unlock()
	if closed {
		return nil, ami.ErrClosed
	}
	if cl != nil {
		return cl, nil
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	c.mu.Lock()
	if c.client != nil || c.closed {
		cl, closed := c.client, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ami.ErrClosed
		}
		return cl, nil
	}
	if c.dialErr != nil && time.Since(c.dialAt) < redialAfter {
		err := c.dialErr
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()

	cl, err := ami.Dial(ctx, c.cfg.AMI)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dialErr, c.dialAt = fmt.Errorf("AMI connection to %s: %w", c.cfg.AMI.Addr, err), time.Now()
		return nil, c.dialErr
	}
	if c.closed { // Close ran while we dialled
		cl.Close()
		return nil, ami.ErrClosed
	}
	c.client, c.dialErr = cl, nil
	events, _ := cl.Subscribe(256, func(p ami.Packet) bool {
		return strings.EqualFold(p.Get("Event"), "ContactStatus")
	})
	c.wg.Add(1)
	go c.watch(events)
	c.log.Info("AMI connected", "addr", c.cfg.AMI.Addr)
	return cl, nil
}

// reachable asks (or remembers) whether endpoint has a contact that can take a
// message now. An endpoint Asterisk does not know is a permanent error: the
// directory points at something that does not exist.
func (c *Channel) reachable(ctx context.Context, cl *ami.Client, endpoint string) (bool, error) {
	c.mu.Lock()
	r, ok := c.reach[endpoint]
	c.mu.Unlock()
	if ok && time.Since(r.at) < c.cfg.ReachableTTL {
		return r.usable, nil
	}
	asked := time.Now()
	items, err := cl.PJSIPShowEndpoint(ctx, endpoint)
	if err != nil {
		var re *ami.ResponseError
		if errors.As(err, &re) && strings.HasPrefix(strings.ToLower(re.Message), "unable to retrieve endpoint") {
			return false, channels.Because(channels.CauseSIP404,
				channels.PermanentBecause(channels.PublicNotSetUp, fmt.Errorf("SIP endpoint %s does not exist in Asterisk", endpoint)))
		}
		return false, channels.Because(channels.CauseAMIDown, fmt.Errorf("reachability of %s: %w", endpoint, err))
	}
	usable := false
	for _, it := range items {
		if cs, ok := ami.ParseContactStatus(it); ok && cs.Usable() {
			usable = true
		}
	}
	c.mu.Lock()
	// An event that arrived while we asked is newer than our answer: keep it.
	if cur, ok := c.reach[endpoint]; !ok || !cur.at.After(asked) {
		c.reach[endpoint] = reachability{usable: usable, at: asked}
	}
	c.mu.Unlock()
	return usable, nil
}

func (c *Channel) reachableNow(endpoint string) {
	c.mu.Lock()
	numbers := c.held[endpoint]
	delete(c.held, endpoint)
	c.mu.Unlock()
	c.wake(endpoint, numbers)
}

func (c *Channel) hold(endpoint, number string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[endpoint] == nil {
		c.held[endpoint] = map[string]struct{}{}
	}
	c.held[endpoint][number] = struct{}{}
}

// Held returns the recipient numbers with messages held for endpoint, as far as
// this process knows.
func (c *Channel) Held(endpoint string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.held[endpoint]))
	for n := range c.held[endpoint] {
		out = append(out, n)
	}
	return out
}

func (c *Channel) wake(endpoint string, numbers map[string]struct{}) {
	if len(numbers) == 0 || c.cfg.Wake == nil {
		return
	}
	for n := range numbers {
		c.log.Info("endpoint reachable; waking held messages", "endpoint", endpoint, "number", n)
		c.cfg.Wake(n)
	}
}

// watch reads ContactStatus events until the client closes.
func (c *Channel) watch(events <-chan ami.Packet) {
	defer c.wg.Done()
	for ev := range events {
		cs, ok := ami.ParseContactStatus(ev)
		if !ok || cs.Endpoint == "" {
			continue
		}
		c.mu.Lock()
		c.reach[cs.Endpoint] = reachability{usable: cs.Usable(), at: time.Now()}
		var numbers map[string]struct{}
		if cs.Usable() {
			numbers = c.held[cs.Endpoint]
			delete(c.held, cs.Endpoint)
		}
		c.mu.Unlock()
		c.wake(cs.Endpoint, numbers)
	}
}

// stateChanged runs on the AMI client's goroutine and must return quickly.
// After a reconnect, events may have been missed: forget what we knew and
// re-check every endpoint holding messages.
func (c *Channel) stateChanged(s ami.ConnState) {
	switch s {
	case ami.StateDisconnected:
		c.mu.Lock()
		c.wasDown = true
		c.reach = map[string]reachability{}
		c.mu.Unlock()
	case ami.StateConnected:
		c.mu.Lock()
		again := c.wasDown && !c.closed
		c.wasDown = false
		if again {
			c.wg.Add(1) // under mu, so Close cannot be waiting already
		}
		c.mu.Unlock()
		if again {
			go func() {
				defer c.wg.Done()
				c.recheck()
			}()
		}
	}
}

func (c *Channel) recheck() {
	c.mu.Lock()
	cl := c.client
	endpoints := make([]string, 0, len(c.held))
	for e := range c.held {
		endpoints = append(endpoints, e)
	}
	c.mu.Unlock()
	if cl == nil {
		return
	}
	for _, e := range endpoints {
		ctx, cancel := context.WithTimeout(c.life, c.cfg.CheckTimeout)
		ok, err := c.reachable(ctx, cl, e)
		cancel()
		if err != nil {
			c.log.Warn("re-check after reconnect failed", "endpoint", e, "err", err)
			continue
		}
		if ok {
			c.reachableNow(e)
		}
	}
}

// Cleanup removes sent markers older than MarkerAge (channels.Janitor).
func (c *Channel) Cleanup(ctx context.Context, now time.Time) error {
	return c.markers.cleanup(ctx, now.Add(-c.cfg.MarkerAge))
}

// Close logs off and stops the channel's goroutines. Deliver fails
// (temporarily) afterwards.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cl := c.client
	c.mu.Unlock()
	c.cancel()
	var err error
	if cl != nil {
		err = cl.Close()
	}
	c.wg.Wait()
	return err
}
