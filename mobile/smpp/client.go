package smpp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/pdu"
	"golang.org/x/time/rate"
)

// Client is one SMPP account. Create it with New, keep it bound with Run,
// and call Submit from any number of goroutines.
type Client struct {
	cfg     Config
	window  chan struct{}
	limiter *rate.Limiter
	unacked chan struct{}
	refs    atomic.Uint32

	mu       sync.Mutex
	tx       *conn         // the session submits go on
	txReady  chan struct{} // closed when tx is set
	binds    map[string]*BindStatus
	thrUntil time.Time
	thrStep  time.Duration
}

// New checks cfg and makes a client; nothing connects before Run.
func New(cfg Config) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		window:  make(chan struct{}, cfg.Window),
		unacked: make(chan struct{}, cfg.MaxUnacked),
		txReady: make(chan struct{}),
		binds:   make(map[string]*BindStatus),
	}
	if cfg.Rate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	c.refs.Store(uint32(time.Now().UnixNano()))
	for _, r := range c.roles() {
		c.binds[r] = &BindStatus{Role: r}
	}
	return c, nil
}

func (c *Client) roles() []string {
	switch c.cfg.Bind {
	case TransmitterReceiver:
		return []string{"transmitter", "receiver"}
	case Transmitter:
		return []string{"transmitter"}
	}
	return []string{"transceiver"}
}

// BindStatus is the state of one bind, for health checks and metrics.
type BindStatus struct {
	Role       string // transceiver, transmitter or receiver
	Bound      bool
	Since      time.Time // when it was bound, or lost
	LastError  string    // why the last bind or session failed
	Reconnects int       // sessions lost since Run started
}

// Status reports every bind of the account.
func (c *Client) Status() []BindStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BindStatus, 0, len(c.binds))
	for _, r := range c.roles() {
		out = append(out, *c.binds[r])
	}
	return out
}

// InFlight reports the submit_sm awaiting their response.
func (c *Client) InFlight() int { return len(c.window) }

// Run keeps every bind of the account up until ctx ends, reconnecting with
// exponential backoff, and unbinds on the way out. It returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range c.roles() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keep(ctx, r)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (c *Client) keep(ctx context.Context, role string) {
	log := c.cfg.Logger.With("smsc", c.cfg.Addr, "bind", role)
	backoff := c.cfg.ReconnectMin
	for ctx.Err() == nil {
		k, err := c.dial(ctx, role)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setBind(role, nil, err)
			log.Warn("smpp bind failed", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, c.cfg.ReconnectMax)
			continue
		}
		bound := time.Now()
		c.setBind(role, k, nil)
		err = k.serve(ctx)
		c.setBind(role, nil, err)
		if ctx.Err() != nil {
			log.Info("smpp unbound")
			return
		}
		// A session that lived a while earns a quick reconnect; one that
		// dies at once keeps the backoff growing.
		if time.Since(bound) > c.cfg.ReconnectMax {
			backoff = c.cfg.ReconnectMin
		}
		log.Warn("smpp session lost", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, c.cfg.ReconnectMax)
	}
}

func (c *Client) setBind(role string, k *conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.binds[role]
	if k != nil {
		b.Bound, b.Since, b.LastError = true, time.Now(), ""
	} else {
		if b.Bound {
			b.Reconnects++
			b.Since = time.Now()
		}
		b.Bound = false
		if err != nil {
			b.LastError = err.Error()
		}
	}
	if role == "receiver" {
		return
	}
	switch {
	case k != nil:
		c.tx = k
		close(c.txReady)
	case c.tx != nil:
		c.tx = nil
		c.txReady = make(chan struct{})
	}
}

// session returns the bound session for submits, waiting up to BindWait.
func (c *Client) session(ctx context.Context) (*conn, error) {
	var timer <-chan time.Time
	for {
		c.mu.Lock()
		k, ready := c.tx, c.txReady
		c.mu.Unlock()
		if k != nil {
			select {
			case <-k.closed:
				// Lost a moment ago; keep() will clear it.
				time.Sleep(time.Millisecond)
				continue
			default:
				return k, nil
			}
		}
		if timer == nil {
			t := time.NewTimer(c.cfg.BindWait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ready:
		case <-timer:
			return nil, ErrNotBound
		case <-ctx.Done():
			return nil, ErrNotBound
		}
	}
}

// deliver hands a deliver_sm or data_sm to the handler, with the right to
// answer it on the session it came on.
func (c *Client) deliver(k *conn, frame []byte) {
	h := header(frame)
	var resp func() pdu.PDU
	if h.id == cmdDataSM {
		resp = func() pdu.PDU { return pdu.NewDataSMResp() }
	} else {
		resp = func() pdu.PDU { return pdu.NewDeliverSMResp() }
	}
	if c.cfg.Handler == nil {
		k.respond(resp(), StatusInvBindStat, h.seq)
		return
	}
	select {
	case c.unacked <- struct{}{}:
	default:
		// Too many waiting for the application: let the SMSC keep it.
		k.respond(resp(), StatusMsgQFull, h.seq)
		return
	}
	d := parseDelivery(frame, time.Now())
	d.Bind = k.role
	d.ack = func(st Status) error {
		defer func() { <-c.unacked }()
		if err := k.respond(resp(), st, h.seq); err != nil {
			return errors.Join(ErrAckLost, err)
		}
		return nil
	}
	go c.cfg.Handler(d)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
