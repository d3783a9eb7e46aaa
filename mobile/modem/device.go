package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warthog618/modem/at"
)

// Config is one modem.
type Config struct {
	// Port is the device, best a stable /dev/serial/by-id/... link: it
	// disappears when the stick is unplugged and comes back when it is
	// plugged in again, whatever ttyUSB number it then gets.
	Port string
	Baud int // default 115200
	// PIN unlocks the SIM when it asks. A PIN the SIM refuses is never tried
	// again by this Device: three refusals would lock the SIM.
	PIN string
	// SMSC is the service centre number put into every PDU; empty uses the
	// one on the SIM (read with AT+CSCA? and shown in Status).
	SMSC string
	// Storage is where received messages are kept and read: "SM" (SIM,
	// default), "ME" (the modem) or "MT" (both).
	Storage string
	// SweepEvery is how often the whole storage is listed (AT+CMGL=4), so
	// nothing waits on a lost +CMTI; registration and signal are read then
	// too. Default 60s.
	SweepEvery time.Duration
	// CommandTimeout bounds one AT command (default 10s); a modem that does
	// not answer in time is closed and opened again.
	CommandTimeout time.Duration
	// SendTimeout bounds one AT+CMGS (default 60s: the network can be slow).
	SendTimeout time.Duration
	// ReopenMin and ReopenMax bound the backoff between opens (1s, 30s).
	ReopenMin, ReopenMax time.Duration
	// StatusReports asks the network for a status report of every part sent.
	StatusReports bool
	// Validity, when positive, is the relative validity period of sent texts.
	Validity time.Duration
	// MaxParts caps the parts of one text (default 255).
	MaxParts int
	// Handler receives every message the modem holds, each in a goroutine of
	// its own; it must call Message.Ack (stored) or Message.Release.
	Handler func(*Message)
	Logger  *slog.Logger
}

func (c *Config) defaults() error {
	if c.Port == "" {
		return errors.New("modem: no port")
	}
	if c.Handler == nil {
		return errors.New("modem: no Handler")
	}
	if c.Baud == 0 {
		c.Baud = 115200
	}
	if _, ok := bauds[c.Baud]; !ok {
		return fmt.Errorf("modem: unsupported baud rate %d", c.Baud)
	}
	switch c.Storage {
	case "":
		c.Storage = "SM"
	case "SM", "ME", "MT":
	default:
		return fmt.Errorf("modem: unknown storage %q (SM, ME or MT)", c.Storage)
	}
	if c.PIN != "" && !digits(c.PIN) {
		return errors.New("modem: the PIN must be digits")
	}
	if c.SMSC != "" && !validNumber(c.SMSC) {
		return fmt.Errorf("modem: SMSC %q is not a number", c.SMSC)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SweepEvery, time.Minute)
	def(&c.CommandTimeout, 10*time.Second)
	def(&c.SendTimeout, time.Minute)
	def(&c.ReopenMin, time.Second)
	def(&c.ReopenMax, 30*time.Second)
	if c.ReopenMax < c.ReopenMin {
		c.ReopenMax = c.ReopenMin
	}
	if c.MaxParts <= 0 || c.MaxParts > 255 {
		c.MaxParts = 255
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Status is what doctor and metrics show of a modem.
type Status struct {
	Open      bool
	Since     time.Time // when it was opened, or lost
	LastError string
	Reopens   int
	// Registration is the +CREG (or, when that says nothing, +CEREG) stat:
	// 0 not registered, 1 home, 2 searching, 3 denied, 4 unknown, 5 roaming.
	Registration int
	Registered   bool
	// RSSI is +CSQ's 0..31 (99: unknown); SignalDBm is its value in dBm
	// (0 when unknown).
	RSSI      int
	SignalDBm int
	SMSC      string // the SMSC in use: configured, or read from the SIM
	Held      int    // messages handed over and not yet acknowledged
}

// Device is one GSM modem: Run keeps it open; Send sends; Config.Handler
// receives.
type Device struct {
	cfg Config
	log *slog.Logger

	sendMu sync.Mutex
	refs   atomic.Uint32

	mu        sync.Mutex
	sess      *session
	st        Status
	held      map[slot]*Message // handed over, not settled
	toDelete  map[slot][]byte   // acknowledged while closed: delete when open
	pinFailed bool
}

type slot struct {
	storage string
	index   int
}

// session is one open of the port.
type session struct {
	a    *at.AT
	f    *os.File
	tap  *tap
	sick chan error // a command timed out: reopen
	once sync.Once
}

func (s *session) fail(err error) {
	s.once.Do(func() {
		s.sick <- err
		s.f.Close()
	})
}

// New checks cfg; nothing is opened before Run.
func New(cfg Config) (*Device, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, log: cfg.Logger.With("modem", cfg.Port), held: map[slot]*Message{}, toDelete: map[slot][]byte{}}
	d.refs.Store(uint32(time.Now().UnixNano()))
	return d, nil
}

// Status reports the device's state.
func (d *Device) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.st
	s.Held = len(d.held)
	return s
}

// Run keeps the modem open until ctx ends: it opens the port, sets the modem
// up (PIN, PDU mode, indications), lists what is stored, and opens it again
// with backoff whenever it is unplugged or stops answering.
func (d *Device) Run(ctx context.Context) error {
	backoff := d.cfg.ReopenMin
	for ctx.Err() == nil {
		opened, err := d.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A session that lived a while earns a quick reopen; one that
		// dies at once keeps the backoff growing.
		if !opened.IsZero() && time.Since(opened) > d.cfg.ReopenMax {
			backoff = d.cfg.ReopenMin
		}
		d.log.Warn("modem closed", "err", err, "reopen_in", backoff)
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, d.cfg.ReopenMax)
	}
	return ctx.Err()
}

func (d *Device) setClosed(err error, wasOpen bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sess = nil
	if wasOpen {
		d.st.Reopens++
		d.st.Since = time.Now()
	}
	d.st.Open = false
	d.st.Registered = false
	if err != nil {
		d.st.LastError = err.Error()
	}
}

// session opens the port and serves it until it fails; opened is when it
// was ready, zero if it never was.
func (d *Device) session(ctx context.Context) (opened time.Time, err error) {
	f, err := openSerial(d.cfg.Port, d.cfg.Baud)
	if err != nil {
		d.setClosed(err, false)
		return time.Time{}, err
	}
	s := &session{f: f, tap: &tap{rw: f}, sick: make(chan error, 1)}
	s.a = at.New(s.tap, at.WithTimeout(d.cfg.CommandTimeout), at.WithCmds("E0", "+CMEE=1"))
	defer f.Close()
	if err := d.setup(s); err != nil {
		err = fmt.Errorf("set up: %w", err)
		d.setClosed(err, false)
		return time.Time{}, err
	}
	// Registration first, so a Send that sees the device open also sees
	// whether it may send.
	d.poll(s)
	opened = time.Now()
	d.mu.Lock()
	d.sess = s
	d.st.Open, d.st.Since, d.st.LastError = true, opened, ""
	d.mu.Unlock()
	d.log.Info("modem open", "smsc", d.Status().SMSC)

	d.deletePending(s)
	d.sweep(s)
	t := time.NewTicker(d.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.setClosed(nil, true)
			return opened, nil
		case <-s.a.Closed():
			err := errors.New("the port closed (unplugged?)")
			select {
			case e := <-s.sick:
				err = e
			default:
			}
			d.setClosed(err, true)
			return opened, err
		case err := <-s.sick:
			d.setClosed(err, true)
			return opened, err
		case <-t.C:
			d.deletePending(s)
			d.poll(s)
			d.sweep(s)
		}
	}
}

// command runs an AT command; a timeout condemns the session.
func (d *Device) command(s *session, cmd string, opts ...at.CommandOption) ([]string, error) {
	info, err := s.a.Command(cmd, opts...)
	if errors.Is(err, at.ErrDeadlineExceeded) {
		s.fail(fmt.Errorf("AT%s: no answer in time", cmd))
	}
	if err != nil {
		return info, fmt.Errorf("AT%s: %w", cmd, err)
	}
	return info, nil
}

var cnmiChoices = []string{
	"+CNMI=2,1,0,2,0", // +CMTI for texts, +CDSI for stored status reports
	"+CNMI=2,1,0,1,0", // +CMTI, status reports passed through as +CDS
	"+CNMI=1,1,0,2,0",
	"+CNMI=1,1,0,0,0", // +CMTI only; the sweep finds status reports
}

func (d *Device) setup(s *session) error {
	if err := s.a.Init(); err != nil {
		if errors.Is(err, at.ErrDeadlineExceeded) {
			return errors.New("no answer to AT: wrong port, or the modem is hung")
		}
		return err
	}
	if err := d.unlock(s); err != nil {
		return err
	}
	if _, err := d.command(s, "+CMGF=0"); err != nil {
		return fmt.Errorf("PDU mode: %w", err)
	}
	st := d.cfg.Storage
	if _, err := d.command(s, fmt.Sprintf(`+CPMS="%s","%s","%s"`, st, st, st)); err != nil {
		return fmt.Errorf("storage %s: %w", st, err)
	}
	smsc := d.cfg.SMSC
	if smsc == "" {
		info, err := d.command(s, "+CSCA?")
		if err != nil {
			return fmt.Errorf("read the SMSC from the SIM: %w", err)
		}
		smsc = parseCSCA(info)
		if smsc == "" {
			d.log.Warn("modem: the SIM holds no SMSC number and none is configured; sends will fail")
		}
	}
	d.mu.Lock()
	d.st.SMSC = smsc
	d.mu.Unlock()
	inds := []struct {
		prefix string
		lines  int
	}{{"+CMTI:", 0}, {"+CDSI:", 0}, {"+CMT:", 1}, {"+CDS:", 1}}
	for _, ind := range inds {
		opts := []at.IndicationOption{}
		if ind.lines > 0 {
			opts = append(opts, at.WithTrailingLines(ind.lines))
		}
		prefix := ind.prefix
		if err := s.a.AddIndication(prefix, func(lines []string) { d.indication(s, prefix, lines) }, opts...); err != nil {
			return fmt.Errorf("indication %s: %w", prefix, err)
		}
	}
	var err error
	for _, c := range cnmiChoices {
		if _, err = d.command(s, c); err == nil {
			return nil
		}
	}
	return fmt.Errorf("new-message indications: %w", err)
}

func (d *Device) unlock(s *session) error {
	for try := 0; try < 20; try++ {
		info, err := d.command(s, "+CPIN?")
		if err != nil {
			return fmt.Errorf("SIM: %w", err)
		}
		state := ""
		for _, l := range info {
			if strings.HasPrefix(l, "+CPIN:") {
				state = strings.TrimSpace(l[6:])
			}
		}
		switch state {
		case "READY":
			return nil
		case "SIM PIN":
			d.mu.Lock()
			failed := d.pinFailed
			d.mu.Unlock()
			switch {
			case d.cfg.PIN == "":
				return errors.New("the SIM asks for a PIN and none is configured")
			case failed:
				return errors.New("the SIM refused the configured PIN; not trying again (three refusals lock it)")
			}
			if _, err := d.command(s, `+CPIN="`+d.cfg.PIN+`"`); err != nil {
				var cme at.CMEError
				if errors.As(err, &cme) {
					d.mu.Lock()
					d.pinFailed = true
					d.mu.Unlock()
				}
				return fmt.Errorf("SIM PIN: %w", err)
			}
		case "SIM PUK", "SIM PUK2", "PH-SIM PIN":
			return fmt.Errorf("the SIM is locked (%s): unlock it in a phone", state)
		default:
			// The SIM is busy starting after the PIN.
		}
		time.Sleep(250 * time.Millisecond)
	}
	return errors.New("the SIM did not become ready")
}

// poll reads registration and signal.
func (d *Device) poll(s *session) {
	reg := -1
	if info, err := d.command(s, "+CREG?"); err == nil {
		reg = parseReg(info, "+CREG:")
	}
	if reg != 1 && reg != 5 {
		// LTE-only sticks register for data and say so only in +CEREG.
		if info, err := d.command(s, "+CEREG?"); err == nil {
			if r := parseReg(info, "+CEREG:"); r == 1 || r == 5 || reg < 0 {
				reg = r
			}
		}
	}
	rssi := 99
	if info, err := d.command(s, "+CSQ"); err == nil {
		rssi = parseCSQ(info)
	}
	d.mu.Lock()
	d.st.Registration = reg
	d.st.Registered = reg == 1 || reg == 5
	d.st.RSSI = rssi
	d.st.SignalDBm = 0
	if rssi >= 0 && rssi <= 31 {
		d.st.SignalDBm = -113 + 2*rssi
	}
	d.mu.Unlock()
}

// sweep lists the storage and hands over what is not held yet.
func (d *Device) sweep(s *session) {
	info, err := d.command(s, "+CMGL=4")
	if err != nil {
		d.log.Warn("modem: list messages", "err", err)
		return
	}
	list, err := parseListing(info, "+CMGL:", 0)
	if err != nil {
		d.log.Warn("modem: list messages", "err", err)
	}
	for _, l := range list {
		d.offer(l, d.cfg.Storage)
	}
}

// offer hands a stored received message to the handler unless it is held.
func (d *Device) offer(l listing, storage string) {
	if l.stat != statRecUnread && l.stat != statRecRead {
		return // texts stored for sending are not ours to take
	}
	m := decodeMessage(l.pdu, l.length)
	m.Storage, m.Index, m.d = storage, l.index, d
	k := slot{storage, l.index}
	d.mu.Lock()
	if _, ok := d.held[k]; ok {
		d.mu.Unlock()
		return
	}
	if _, ok := d.toDelete[k]; ok {
		d.mu.Unlock()
		return
	}
	d.held[k] = m
	d.mu.Unlock()
	go d.cfg.Handler(m)
}

// indication handles +CMTI/+CDSI (stored: read it) and +CMT/+CDS (passed
// through: hand it over as it is).
func (d *Device) indication(s *session, prefix string, lines []string) {
	switch prefix {
	case "+CMTI:", "+CDSI:":
		mem, idx, ok := parseCMTI(lines[0][len(prefix):])
		if !ok {
			d.log.Warn("modem: unreadable indication", "line", lines[0])
			return
		}
		if mem != d.cfg.Storage {
			// With "MT" the indication names SM or ME and the index is not
			// the combined one: the sweep of MT finds it. Anything else is
			// stored where no sweep looks; Storage must be set to match.
			if d.cfg.Storage != "MT" {
				d.log.Warn("modem: message stored outside the configured storage", "storage", mem, "index", idx)
			}
			return
		}
		info, err := d.command(s, "+CMGR="+strconv.Itoa(idx))
		if err != nil {
			d.log.Warn("modem: read new message", "index", idx, "err", err)
			return
		}
		list, err := parseListing(info, "+CMGR:", idx)
		if err != nil || len(list) == 0 {
			d.log.Warn("modem: read new message", "index", idx, "err", err)
			return
		}
		d.offer(list[0], mem)
	case "+CMT:", "+CDS:":
		if len(lines) < 2 {
			return
		}
		length := -1
		f := strings.Split(lines[0][len(prefix):], ",")
		if n, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1])); err == nil {
			length = n
		}
		m := decodeMessage(strings.TrimSpace(lines[1]), length)
		go d.cfg.Handler(m)
	}
}

func (d *Device) ack(m *Message) error {
	k := slot{m.Storage, m.Index}
	d.mu.Lock()
	s := d.sess
	if s == nil {
		d.toDelete[k] = m.TPDU
		delete(d.held, k)
		d.mu.Unlock()
		d.log.Info("modem: stored message will be deleted when the modem is back", "index", m.Index)
		return nil
	}
	d.mu.Unlock()
	err := d.deleteIfSame(s, k, m.TPDU)
	d.mu.Lock()
	delete(d.held, k)
	if err != nil {
		d.toDelete[k] = m.TPDU
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("modem: delete message %d (retried when the modem is back): %w", m.Index, err)
	}
	return nil
}

func (d *Device) release(m *Message) {
	d.mu.Lock()
	delete(d.held, slot{m.Storage, m.Index})
	d.mu.Unlock()
}

// deleteIfSame deletes the message at k if it is still the one with tpdu.
func (d *Device) deleteIfSame(s *session, k slot, tp []byte) error {
	info, err := d.command(s, "+CMGR="+strconv.Itoa(k.index))
	if err != nil {
		var cms at.CMSError
		if errors.As(err, &cms) && (cms == "321" || cms == "314") {
			return nil // gone already
		}
		return err
	}
	list, err := parseListing(info, "+CMGR:", k.index)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return nil // empty slot
	}
	if m := decodeMessage(list[0].pdu, -1); !sameTPDU(m.TPDU, tp) {
		d.log.Warn("modem: slot holds another message now; not deleting it", "index", k.index)
		return nil
	}
	_, err = d.command(s, "+CMGD="+strconv.Itoa(k.index))
	return err
}

func (d *Device) deletePending(s *session) {
	d.mu.Lock()
	pending := make(map[slot][]byte, len(d.toDelete))
	for k, v := range d.toDelete {
		pending[k] = v
	}
	d.mu.Unlock()
	for k, tp := range pending {
		if err := d.deleteIfSame(s, k, tp); err != nil {
			d.log.Warn("modem: delete acknowledged message", "index", k.index, "err", err)
			continue
		}
		d.mu.Lock()
		delete(d.toDelete, k)
		d.mu.Unlock()
	}
}

// tap remembers whether the PDU of an AT+CMGS went out (the Ctrl-Z that
// ends it was written): before that, a failure means "not sent".
type tap struct {
	rw      io.ReadWriter
	pduSent atomic.Bool
}

func (t *tap) Read(p []byte) (int, error) { return t.rw.Read(p) }

func (t *tap) Write(p []byte) (int, error) {
	n, err := t.rw.Write(p)
	if n > 0 && strings.ContainsRune(string(p[:n]), 0x1a) {
		t.pduSent.Store(true)
	}
	return n, err
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
