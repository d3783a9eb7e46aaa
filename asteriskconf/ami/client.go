package ami

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ConnState is the state of the client's connection.
type ConnState int32

// Connection states, in the order a client normally passes through them.
const (
	StateConnecting   ConnState = iota // dialling or logging in
	StateConnected                     // logged in, requests are sent
	StateDisconnected                  // lost; waiting to reconnect, requests fail fast
	StateClosed                        // Close was called
)

func (s ConnState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return "ConnState(" + strconv.Itoa(int(s)) + ")"
}

// Config configures a Client. Zero durations take the defaults noted.
type Config struct {
	Addr     string // host:port of the manager interface, e.g. "127.0.0.1:5038"
	Username string
	Secret   string
	// UseMD5 logs in with the MD5 challenge (Action: Challenge) so the
	// secret never crosses the wire.
	UseMD5 bool
	// Events is the Login "Events:" value: "off" (the default when empty)
	// or a class list such as "system" (ContactStatus events).
	Events string

	DialTimeout  time.Duration // TCP connect + banner + login; default 10s
	WriteTimeout time.Duration // one packet write; default 10s
	// PingInterval is how often a Ping checks the peer; default 30s,
	// negative disables. A Ping without reply within PingTimeout (default
	// 10s) drops the connection and starts a reconnect.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// Reconnect backoff: starts at ReconnectMin (default 500ms), doubles up
	// to ReconnectMax (default 30s), with ±20 % jitter; it starts over once
	// a session has lasted ReconnectMax.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	Logger *slog.Logger // default slog.Default()
	// OnStateChange, if set, is called synchronously and in order on every
	// state change; it must return quickly and must not call Close. A change to
	// StateConnected after StateDisconnected means events may have been
	// missed: re-read whatever state you track.
	OnStateChange func(ConnState)
}

func (cfg *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.PingInterval, 30*time.Second)
	def(&cfg.PingTimeout, 10*time.Second)
	def(&cfg.ReconnectMin, 500*time.Millisecond)
	def(&cfg.ReconnectMax, 30*time.Second)
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = cfg.ReconnectMin
	}
	if cfg.Events == "" {
		cfg.Events = "off"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// MaxListItems bounds the events collected for one list response, so a
// peer that never completes a list cannot grow memory without end.
const MaxListItems = 100000

// Client is a logged-in AMI connection shared by many goroutines. Create it
// with Dial; all methods are safe for concurrent use.
type Client struct {
	cfg      Config
	log      *slog.Logger
	idPrefix string
	seq      atomic.Uint64

	life      context.Context // cancelled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	closing   atomic.Bool // set by Close before its Logoff, so the hang-up is not mistaken for a failure
	wg        sync.WaitGroup

	mu    sync.Mutex
	cur   *conn // nil while disconnected
	state ConnState

	subMu     sync.RWMutex
	subs      map[*subscription]struct{}
	subClosed bool
	dropped   atomic.Uint64
}

type subscription struct {
	ch    chan Packet
	match func(Packet) bool
}

// conn is one TCP session. A new one is made for every reconnect, so a
// late reply from a dead session can never reach a request of a new one.
type conn struct {
	nc  net.Conn
	rd  *Reader
	wmu sync.Mutex // serialises writes

	mu       sync.Mutex
	pending  map[string]*call
	dead     chan struct{}
	deadOnce sync.Once
	err      error // why it died; written before dead is closed
}

type call struct {
	action string
	list   bool
	done   chan struct{} // closed when resp (and items) are complete
	resp   Packet
	items  []Packet
	err    error
}

// Dial connects to Asterisk, checks the banner, logs in and returns a
// client that keeps the session alive until Close. The first connection is
// made synchronously so that wrong credentials or addresses are reported
// here (errors.Is(err, ErrAuthFailed)); later failures are handled by
// reconnecting.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("ami dial: no address")
	}
	cfg.setDefaults()
	var rb [6]byte
	_, _ = rand.Read(rb[:]) // never fails (crypto/rand panics instead)
	c := &Client{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "ami", "addr", cfg.Addr),
		idPrefix: "smsr-" + hex.EncodeToString(rb[:]) + "-",
		subs:     make(map[*subscription]struct{}),
	}
	c.life, c.cancel = context.WithCancel(context.Background())
	c.setState(StateConnecting)
	cn, err := c.connect(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.publish(cn)
	c.wg.Add(1)
	go c.run(cn)
	return c, nil
}

// State returns the current connection state.
func (c *Client) State() ConnState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// DroppedEvents returns how many events were dropped, over all
// subscriptions, because a subscriber's buffer was full.
func (c *Client) DroppedEvents() uint64 { return c.dropped.Load() }

func (c *Client) setState(s ConnState) {
	c.mu.Lock()
	changed := c.state != s
	c.state = s
	c.mu.Unlock()
	if changed && c.cfg.OnStateChange != nil {
		c.cfg.OnStateChange(s)
	}
}

// publish makes cn the session requests go to.
func (c *Client) publish(cn *conn) {
	c.mu.Lock()
	c.cur = cn
	c.mu.Unlock()
	c.setState(StateConnected)
}

func (c *Client) current() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// run owns the connection: it is the one reader goroutine of the current
// session, and between sessions it reconnects with backoff.
func (c *Client) run(cn *conn) {
	defer c.wg.Done()
	delay := c.cfg.ReconnectMin
	for {
		began := time.Now()
		c.serve(cn)
		// A peer that accepts the login and drops us at once must not get
		// a reconnect storm: only a session that lasted resets the backoff.
		if time.Since(began) >= c.cfg.ReconnectMax {
			delay = c.cfg.ReconnectMin
		}
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		if c.closing.Load() || c.life.Err() != nil {
			return
		}
		c.setState(StateDisconnected)
		c.log.Warn("AMI connection lost", "err", cn.err)
		for {
			t := time.NewTimer(jitter(delay))
			select {
			case <-c.life.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(delay*2, c.cfg.ReconnectMax)
			c.setState(StateConnecting)
			next, err := c.connect(c.life)
			if err == nil {
				cn = next
				c.log.Info("AMI reconnected")
				c.publish(cn)
				break
			}
			if c.life.Err() != nil {
				return
			}
			c.setState(StateDisconnected)
			c.log.Warn("AMI reconnect failed", "err", err, "retry_in", delay)
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*mathrand.Float64()))
}

// serve reads the session until it dies, with a keepalive beside it.
func (c *Client) serve(cn *conn) {
	// Close may cancel at any moment, even before cn was published as
	// current; AfterFunc also fires when life is already done.
	stop := context.AfterFunc(c.life, func() { cn.kill(ErrClosed) })
	defer stop()
	var kw sync.WaitGroup
	if c.cfg.PingInterval > 0 {
		kw.Add(1)
		go func() {
			defer kw.Done()
			c.keepalive(cn)
		}()
	}
	err := c.readLoop(cn)
	if c.closing.Load() || c.life.Err() != nil {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	cn.kill(err)
	kw.Wait()
}

func (c *Client) keepalive(cn *conn) {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-cn.dead:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.life, c.cfg.PingTimeout)
		_, err := c.roundTrip(ctx, cn, NewAction("Ping"), false)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			c.log.Warn("AMI peer did not answer Ping; dropping the connection", "timeout", c.cfg.PingTimeout)
			cn.kill(fmt.Errorf("%w: no reply to Ping within %s", ErrDisconnected, c.cfg.PingTimeout))
			return
		}
	}
}

func (cn *conn) kill(err error) {
	cn.deadOnce.Do(func() {
		// Under mu, so that roundTrip's check-and-register is atomic with
		// respect to the death of the session.
		cn.mu.Lock()
		cn.err = err
		close(cn.dead)
		cn.mu.Unlock()
		_ = cn.nc.Close()
	})
}

func (cn *conn) write(buf []byte, timeout time.Duration) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	select {
	case <-cn.dead:
		return errors.New("connection closed")
	default:
	}
	if err := cn.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := cn.nc.Write(buf)
	return err
}

// connect dials, checks the banner and logs in. Events that arrive during
// login are passed to subscribers like any other.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ami dial %s: %w", c.cfg.Addr, err)
	}
	cn := &conn{nc: nc, rd: NewReader(nc), pending: make(map[string]*call), dead: make(chan struct{})}
	// The handshake is synchronous on this goroutine; a cancelled context
	// interrupts blocked reads and writes through the deadline.
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(cn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Only ctx's deadline (or DialTimeout) sets one during the handshake.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	if !stop() || err != nil {
		_ = nc.Close()
		if err == nil || ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("ami login to %s: %w", c.cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return cn, nil
}

func (c *Client) handshake(cn *conn) error {
	version, err := cn.rd.ReadBanner()
	if err != nil {
		return err
	}
	login := NewAction("Login", "Username", c.cfg.Username)
	if c.cfg.UseMD5 {
		resp, err := c.syncRequest(cn, NewAction("Challenge", "AuthType", "MD5"))
		if err != nil {
			return err
		}
		challenge := resp.Get("Challenge")
		if challenge == "" {
			return fmt.Errorf("%w: Challenge response without a challenge", ErrProtocol)
		}
		sum := md5.Sum([]byte(challenge + c.cfg.Secret))
		login = append(login, Header{"AuthType", "MD5"}, Header{"Key", hex.EncodeToString(sum[:])})
	} else {
		login = append(login, Header{"Secret", c.cfg.Secret})
	}
	login = append(login, Header{"Events", c.cfg.Events})
	if _, err := c.syncRequest(cn, login); err != nil {
		var re *ResponseError
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		return err
	}
	c.log.Debug("AMI logged in", "version", version, "md5", c.cfg.UseMD5)
	return nil
}

// syncRequest sends one request and reads until its response, before the
// reader goroutine exists.
func (c *Client) syncRequest(cn *conn, action Packet) (Packet, error) {
	id := c.nextID()
	p := withActionID(action, id)
	buf, err := AppendPacket(nil, p)
	if err != nil {
		return nil, fmt.Errorf("ami %s: %w", action.Get("Action"), err)
	}
	if _, err := cn.nc.Write(buf); err != nil {
		return nil, fmt.Errorf("ami %s: write: %w", action.Get("Action"), err)
	}
	for {
		resp, err := cn.rd.ReadPacket()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("ami %s: read: %w", action.Get("Action"), err)
		}
		if resp.IsEvent() {
			c.broadcast(resp)
			continue
		}
		if resp.Get("ActionID") != id {
			continue
		}
		if strings.EqualFold(resp.Get("Response"), "Error") {
			return resp, &ResponseError{Action: action.Get("Action"), Message: resp.Get("Message"), Packet: resp}
		}
		return resp, nil
	}
}

func (c *Client) nextID() string {
	return c.idPrefix + strconv.FormatUint(c.seq.Add(1), 10)
}

// withActionID returns a copy of action with our ActionID right after the
// Action header; any ActionID the caller set is replaced, since replies are
// matched on ours.
func withActionID(action Packet, id string) Packet {
	p := make(Packet, 0, len(action)+1)
	placed := false
	for _, h := range action {
		if strings.EqualFold(h.Key, "ActionID") {
			continue
		}
		p = append(p, h)
		if !placed && strings.EqualFold(h.Key, "Action") {
			p = append(p, Header{"ActionID", id})
			placed = true
		}
	}
	if !placed {
		p = append(p, Header{"ActionID", id})
	}
	return p
}

// readLoop dispatches packets until the stream fails.
func (c *Client) readLoop(cn *conn) error {
	for {
		p, err := cn.rd.ReadPacket()
		if err != nil {
			if err == io.EOF {
				return errors.New("connection closed by peer")
			}
			return err
		}
		c.dispatch(cn, p)
	}
}

func (c *Client) dispatch(cn *conn, p Packet) {
	id := p.Get("ActionID")
	if p.IsEvent() {
		if id != "" && c.listItem(cn, id, p) {
			return
		}
		c.broadcast(p)
		return
	}
	if !p.Has("Response") {
		c.log.Debug("AMI packet is neither response nor event; ignored", "packet", p.String())
		return
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cl := cn.pending[id]
	if cl == nil {
		// Most likely the caller gave up (context) before the reply came.
		c.log.Debug("AMI response for no pending request", "action_id", id, "response", p.Get("Response"))
		return
	}
	cl.resp = p
	if cl.list && strings.EqualFold(p.Get("Response"), "Success") && strings.EqualFold(p.Get("EventList"), "start") {
		return // items and the Complete event follow
	}
	delete(cn.pending, id)
	close(cl.done)
}

// listItem consumes an event that belongs to a pending list request.
func (c *Client) listItem(cn *conn, id string, p Packet) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cl := cn.pending[id]
	if cl == nil || !cl.list {
		return false
	}
	if strings.EqualFold(p.Get("EventList"), "Complete") {
		delete(cn.pending, id)
		close(cl.done)
		return true
	}
	if len(cl.items) >= MaxListItems {
		cl.err = fmt.Errorf("%w: list response longer than %d items", ErrProtocol, MaxListItems)
		delete(cn.pending, id)
		close(cl.done)
		return true
	}
	cl.items = append(cl.items, p)
	return true
}

// Do sends action and waits for its response. Events are not returned
// here (see Subscribe). An ActionID in action is replaced by the client's
// own. A "Response: Error" reply returns the packet and a *ResponseError.
//
// Do does not wait for a reconnect: while disconnected it fails at once
// with ErrDisconnected and ErrNotSent. If the connection breaks while the
// request is in flight it returns ErrDisconnected alone (Asterisk may have
// acted on it). If ctx ends first it returns ctx's error; the request may
// have been acted on too.
func (c *Client) Do(ctx context.Context, action Packet) (Packet, error) {
	cl, err := c.roundTrip(ctx, c.current(), action, false)
	if err != nil {
		return nil, err
	}
	return cl.resp, responseErr(action, cl.resp)
}

// DoList sends an action whose reply is a list: "Response: Success" with
// "EventList: start", then events carrying the same ActionID, then an event
// with "EventList: Complete" (for example PJSIPShowContacts → ContactList …
// ContactListComplete). It returns the first response and the item events,
// without the Complete event. An action that answers with a plain response
// (including errors such as "No Contacts found") returns no items.
func (c *Client) DoList(ctx context.Context, action Packet) (Packet, []Packet, error) {
	cl, err := c.roundTrip(ctx, c.current(), action, true)
	if err != nil {
		return nil, nil, err
	}
	if err := responseErr(action, cl.resp); err != nil {
		return cl.resp, nil, err
	}
	return cl.resp, cl.items, nil
}

func responseErr(action, resp Packet) error {
	if strings.EqualFold(resp.Get("Response"), "Error") {
		return &ResponseError{Action: action.Get("Action"), Message: resp.Get("Message"), Packet: resp}
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, cn *conn, action Packet, list bool) (*call, error) {
	name := action.Get("Action")
	if name == "" {
		return nil, fmt.Errorf("%w: no Action header", ErrInvalidPacket)
	}
	if c.life.Err() != nil {
		return nil, fmt.Errorf("ami %s: %w", name, ErrClosed)
	}
	id := c.nextID()
	buf, err := AppendPacket(nil, withActionID(action, id))
	if err != nil {
		return nil, fmt.Errorf("ami %s: %w", name, err)
	}
	if cn == nil {
		return nil, fmt.Errorf("ami %s: %w: %w", name, ErrDisconnected, ErrNotSent)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ami %s: %w", name, err)
	}
	cl := &call{action: name, list: list, done: make(chan struct{})}
	cn.mu.Lock()
	select {
	case <-cn.dead:
		cn.mu.Unlock()
		return nil, fmt.Errorf("ami %s: %w: %w", name, ErrDisconnected, ErrNotSent)
	default:
	}
	cn.pending[id] = cl
	cn.mu.Unlock()
	forget := func() {
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
	}
	if err := cn.write(buf, c.cfg.WriteTimeout); err != nil {
		forget()
		// A partial packet is useless to Asterisk, and the next write would
		// be glued to it: drop the session.
		cn.kill(fmt.Errorf("%w: write: %w", ErrDisconnected, err))
		if c.life.Err() != nil {
			return nil, fmt.Errorf("ami %s: %w", name, ErrClosed)
		}
		return nil, fmt.Errorf("ami %s: %w: %w: %w", name, ErrDisconnected, ErrNotSent, err)
	}
	select {
	case <-cl.done:
		return cl, cl.err
	case <-cn.dead:
	case <-ctx.Done():
	}
	// A reply may have completed at the same moment; it wins.
	select {
	case <-cl.done:
		return cl, cl.err
	default:
	}
	forget()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ami %s: no reply: %w", name, err)
	}
	if c.life.Err() != nil {
		return nil, fmt.Errorf("ami %s: %w", name, ErrClosed)
	}
	cn.mu.Lock()
	cause := cn.err
	cn.mu.Unlock()
	return nil, fmt.Errorf("ami %s: in flight when the connection broke: %w", name, cause)
}

// Subscribe returns a channel of events for which match returns true (all
// events when match is nil), buffered to hold buffer events, and a function
// that ends the subscription and closes the channel. match runs on the
// reader goroutine and must be fast. The reader never waits for a
// subscriber: when the buffer is full the event is dropped and counted in
// DroppedEvents. Close closes every subscription's channel.
func (c *Client) Subscribe(buffer int, match func(Packet) bool) (<-chan Packet, func()) {
	s := &subscription{ch: make(chan Packet, max(buffer, 1)), match: match}
	c.subMu.Lock()
	if c.subClosed {
		c.subMu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	c.subs[s] = struct{}{}
	c.subMu.Unlock()
	return s.ch, func() {
		c.subMu.Lock()
		defer c.subMu.Unlock()
		if _, ok := c.subs[s]; ok {
			delete(c.subs, s)
			close(s.ch)
		}
	}
}

func (c *Client) broadcast(p Packet) {
	c.subMu.RLock()
	defer c.subMu.RUnlock()
	for s := range c.subs {
		if s.match != nil && !s.match(p) {
			continue
		}
		select {
		case s.ch <- p:
		default:
			c.dropped.Add(1)
		}
	}
}

// Close logs off (best effort, one second), closes the connection, stops
// every goroutine of the client and closes all subscription channels.
// Requests in flight return ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if cn := c.current(); cn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = c.roundTrip(ctx, cn, NewAction("Logoff"), false)
			cancel()
		}
		c.cancel()
		if cn := c.current(); cn != nil {
			cn.kill(ErrClosed)
		}
		c.wg.Wait()
		c.subMu.Lock()
		for s := range c.subs {
			close(s.ch)
		}
		clear(c.subs)
		c.subClosed = true
		c.subMu.Unlock()
		c.setState(StateClosed)
	})
	return nil
}
