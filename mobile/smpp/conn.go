package smpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/pdu"
)

// errNotSent and errUncertain tell apart, for one request, "the SMSC cannot
// have it" and "it went out and no answer came".
var (
	errNotSent   = errors.New("not sent")
	errUncertain = errors.New("sent, no answer")
)

// conn is one bound SMPP session.
type conn struct {
	c    *Client
	role string // "transceiver", "transmitter", "receiver"
	nc   net.Conn
	br   *bufio.Reader
	log  *slog.Logger

	wmu sync.Mutex
	seq atomic.Uint32

	mu      sync.Mutex
	pending map[uint32]chan []byte

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func bindPDU(role string) (pdu.BindingType, uint32) {
	switch role {
	case "transmitter":
		return pdu.Transmitter, cmdBindTransmitter
	case "receiver":
		return pdu.Receiver, cmdBindReceiver
	}
	return pdu.Transceiver, cmdBindTransceiver
}

// dial connects and binds, all within BindTimeout.
func (c *Client) dial(ctx context.Context, role string) (*conn, error) {
	cfg := &c.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.BindTimeout)
	defer cancel()
	d := net.Dialer{}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", cfg.Addr, err)
	}
	if cfg.TLS != nil {
		tc := tls.Client(nc, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS with %s: %w", cfg.Addr, err)
		}
		nc = tc
	}
	deadline, _ := ctx.Deadline()
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return nil, err
	}
	// Closing the socket is the only way to interrupt a blocked read when
	// the caller gives up before the deadline.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	k := &conn{
		c: c, role: role, nc: nc, br: bufio.NewReaderSize(nc, 64<<10),
		pending: make(map[uint32]chan []byte),
		closed:  make(chan struct{}),
		log:     cfg.Logger.With("smsc", cfg.Addr, "bind", role),
	}
	bt, bindID := bindPDU(role)
	req := pdu.NewBindRequest(bt)
	req.SystemID, req.Password, req.SystemType = cfg.SystemID, cfg.Password, cfg.SystemType
	req.AddressRange = pdu.NewAddressRangeWithTonNpi(cfg.AddrTON, cfg.AddrNPI)
	req.AddressRange.AddressRange = cfg.AddressRange
	seq := k.nextSeq()
	if _, err := nc.Write(marshal(req, seq)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("bind %s: %w", role, err)
	}
	for {
		frame, err := readFrame(k.br)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("bind %s: waiting for the answer: %w", role, err)
		}
		h := header(frame)
		switch {
		case h.id == bindID|respBit && h.seq == seq, h.id == cmdGenericNack && h.seq == seq:
			if h.status != StatusOK {
				nc.Close()
				return nil, &BindError{Status: h.status}
			}
			nc.SetDeadline(time.Time{})
			k.log.Info("smpp bound", "smsc_system_id", cstringBody(frame))
			return k, nil
		case h.id == cmdEnquireLink:
			nc.Write(respondFrame(pdu.NewEnquireLinkResp(), StatusOK, h.seq))
		default:
			// Anything else before the bind is answered is out of order:
			// refuse it so the SMSC does not wait on it.
			if h.id&respBit == 0 {
				nc.Write(respondFrame(pdu.NewGenericNack(), StatusInvBindStat, h.seq))
			}
		}
	}
}

// BindError is the SMSC refusing the bind (wrong password, unknown system_id...).
type BindError struct{ Status Status }

func (e *BindError) Error() string { return "smpp: bind refused: " + e.Status.String() }

func (k *conn) nextSeq() uint32 {
	for {
		s := k.seq.Add(1) & 0x7fffffff
		if s != 0 {
			return s
		}
	}
}

// close ends the session once; every request waiting on it learns it.
func (k *conn) close(err error) {
	k.closeOnce.Do(func() {
		k.closeErr = err
		close(k.closed)
		k.nc.Close()
	})
}

// write sends one whole PDU. A write that fails having sent nothing is
// "not sent"; any other failure leaves the SMSC's view unknown.
func (k *conn) write(frame []byte) error {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	select {
	case <-k.closed:
		return fmt.Errorf("%w: connection closed", errNotSent)
	default:
	}
	k.nc.SetWriteDeadline(time.Now().Add(k.c.cfg.WriteTimeout))
	n, err := k.nc.Write(frame)
	if err == nil {
		return nil
	}
	k.close(fmt.Errorf("write: %w", err))
	if n == 0 {
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	return fmt.Errorf("%w: written %d of %d octets: %w", errUncertain, n, len(frame), err)
}

// request sends p and waits for its response frame. Errors wrap errNotSent
// or errUncertain.
func (k *conn) request(ctx context.Context, p pdu.PDU, timeout time.Duration) ([]byte, error) {
	seq := k.nextSeq()
	frame := marshal(p, seq)
	ch := make(chan []byte, 1)
	k.mu.Lock()
	k.pending[seq] = ch
	k.mu.Unlock()
	forget := func() {
		k.mu.Lock()
		delete(k.pending, seq)
		k.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		forget()
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	if err := k.write(frame); err != nil {
		forget()
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var why error
	select {
	case resp := <-ch:
		return resp, nil
	case <-k.closed:
		why = fmt.Errorf("connection lost: %w", k.closeErr)
	case <-t.C:
		why = fmt.Errorf("no response in %v", timeout)
	case <-ctx.Done():
		why = ctx.Err()
	}
	forget()
	select { // the answer may have raced the give-up
	case resp := <-ch:
		return resp, nil
	default:
	}
	return nil, fmt.Errorf("%w: sequence %d: %w", errUncertain, seq, why)
}

// respond answers a request of the SMSC.
func (k *conn) respond(p pdu.PDU, status Status, seq uint32) error {
	return k.write(respondFrame(p, status, seq))
}

// serve reads until the connection ends, keeps it alive with enquire_link,
// and unbinds when ctx ends. It returns why the session ended.
func (k *conn) serve(ctx context.Context) error {
	cfg := &k.c.cfg
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		k.readLoop()
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.EnquireLink)
		defer t.Stop()
		for {
			select {
			case <-k.closed:
				return
			case <-ctx.Done():
				k.unbind()
				return
			case <-t.C:
				if _, err := k.request(context.Background(), pdu.NewEnquireLink(), cfg.ResponseTimeout); err != nil {
					k.close(fmt.Errorf("enquire_link: %w", err))
					return
				}
			}
		}
	}()
	wg.Wait()
	return k.closeErr
}

// unbind ends the session politely, waiting a short while for unbind_resp.
func (k *conn) unbind() {
	wait := k.c.cfg.ResponseTimeout
	if wait > 2*time.Second {
		wait = 2 * time.Second
	}
	_, err := k.request(context.Background(), pdu.NewUnbind(), wait)
	k.close(fmt.Errorf("unbound: %w", context.Canceled))
	if err != nil {
		k.log.Debug("smpp unbind not answered", "err", err)
	}
}

func (k *conn) readLoop() {
	cfg := &k.c.cfg
	idle := cfg.EnquireLink + cfg.ResponseTimeout
	for {
		k.nc.SetReadDeadline(time.Now().Add(idle))
		frame, err := readFrame(k.br)
		if err != nil {
			k.close(fmt.Errorf("read: %w", err))
			return
		}
		h := header(frame)
		switch {
		case h.id&respBit != 0:
			k.mu.Lock()
			ch, ok := k.pending[h.seq]
			delete(k.pending, h.seq)
			k.mu.Unlock()
			if ok {
				ch <- frame
			} else if h.id == cmdSubmitSM|respBit {
				// The caller was told "uncertain"; this is the answer it
				// did not wait for. The log is what settles it.
				k.log.Warn("smpp late submit_sm_resp", "seq", h.seq, "status", h.status.String(), "message_id", cstringBody(frame))
			} else {
				k.log.Debug("smpp unexpected response", "command_id", fmt.Sprintf("%#x", h.id), "seq", h.seq)
			}
		case h.id == cmdEnquireLink:
			k.respond(pdu.NewEnquireLinkResp(), StatusOK, h.seq)
		case h.id == cmdUnbind:
			k.respond(pdu.NewUnbindResp(), StatusOK, h.seq)
			k.close(errors.New("the SMSC unbound"))
			return
		case h.id == cmdDeliverSM || h.id == cmdDataSM:
			k.c.deliver(k, frame)
		case h.id == cmdAlertNotification:
			// Needs no answer, and this client does not track availability.
		default:
			k.respond(pdu.NewGenericNack(), StatusInvCmdID, h.seq)
		}
	}
}
