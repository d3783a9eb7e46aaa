package smpp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// BindMode says how the client binds.
type BindMode int

const (
	// Transceiver: one connection both ways (bind_transceiver).
	Transceiver BindMode = iota
	// TransmitterReceiver: two connections, bind_transmitter for submits and
	// bind_receiver for deliveries, for SMSCs without transceiver support.
	TransmitterReceiver
	// Transmitter: submits only; the account receives nothing.
	Transmitter
)

func (m BindMode) String() string {
	switch m {
	case Transceiver:
		return "transceiver"
	case TransmitterReceiver:
		return "transmitter+receiver"
	case Transmitter:
		return "transmitter"
	}
	return fmt.Sprintf("bindmode(%d)", int(m))
}

// Config is one SMPP account. Zero durations and counts take the defaults
// given on each field.
type Config struct {
	Addr       string // host:port of the SMSC
	SystemID   string
	Password   string
	SystemType string
	Bind       BindMode
	// AddrTON, AddrNPI and AddressRange go into the bind (the numbers a
	// receiver bind asks to be given).
	AddrTON, AddrNPI byte
	AddressRange     string
	// Type of number and numbering plan of submitted addresses that are
	// neither "+digits" (always international, 1/1) nor alphanumeric
	// (always 5/0).
	SourceTON, SourceNPI byte
	DestTON, DestNPI     byte
	ServiceType          string

	// TLS, when set, wraps the connection (see NewTLSConfig).
	TLS *tls.Config

	// EnquireLink is the interval of enquire_link (default 30s); a
	// connection that stays silent for EnquireLink+ResponseTimeout, or
	// leaves an enquire_link unanswered, is closed and bound again.
	EnquireLink time.Duration
	// ResponseTimeout bounds the wait for any response (default 10s). A
	// submit_sm without an answer by then is reported as uncertain.
	ResponseTimeout time.Duration
	// BindTimeout bounds connecting, the TLS handshake and the bind (default 10s).
	BindTimeout time.Duration
	// WriteTimeout bounds writing one PDU (default 10s).
	WriteTimeout time.Duration
	// BindWait is how long Submit waits for a bound session before it
	// returns ErrNotBound (default 5s, never beyond the caller's context).
	BindWait time.Duration

	// Window is the most submit_sm awaiting their response (default 10).
	Window int
	// Rate caps submit_sm per second (0: no cap).
	Rate float64
	// ReconnectMin and ReconnectMax bound the backoff between binds
	// (default 1s and 60s).
	ReconnectMin, ReconnectMax time.Duration
	// ThrottleMin and ThrottleMax bound the pause after ESME_RTHROTTLED or
	// ESME_RMSGQFUL (default 1s and 30s); it doubles while throttling lasts.
	ThrottleMin, ThrottleMax time.Duration

	// UsePayload sends a long text whole in message_payload instead of
	// concatenated parts.
	UsePayload bool
	// RegisteredDelivery asks the SMSC for a delivery receipt of every
	// message (registered_delivery 1).
	RegisteredDelivery bool
	// MaxParts caps the parts of one text (default 255).
	MaxParts int

	// Handler receives every deliver_sm and data_sm, each in its own
	// goroutine; it must call Delivery.Ack. Required unless Bind is
	// Transmitter.
	Handler func(*Delivery)
	// MaxUnacked caps deliveries handed to Handler and not yet acknowledged
	// (default 256); beyond it the SMSC is answered ESME_RMSGQFUL and
	// delivers again later.
	MaxUnacked int

	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		return errors.New("smpp: no SMSC address")
	}
	if c.SystemID == "" {
		return errors.New("smpp: no system_id")
	}
	if len(c.SystemID) > 15 || len(c.Password) > 8 || len(c.SystemType) > 12 {
		return errors.New("smpp: system_id (15), password (8) or system_type (12) too long")
	}
	if c.Bind != Transmitter && c.Handler == nil {
		return fmt.Errorf("smpp: bind %v receives deliveries but has no Handler", c.Bind)
	}
	if c.Bind < Transceiver || c.Bind > Transmitter {
		return fmt.Errorf("smpp: unknown bind mode %d", int(c.Bind))
	}
	if c.Rate < 0 {
		return errors.New("smpp: negative rate")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.EnquireLink, 30*time.Second)
	def(&c.ResponseTimeout, 10*time.Second)
	def(&c.BindTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.BindWait, 5*time.Second)
	def(&c.ReconnectMin, time.Second)
	def(&c.ReconnectMax, 60*time.Second)
	def(&c.ThrottleMin, time.Second)
	def(&c.ThrottleMax, 30*time.Second)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.ThrottleMax < c.ThrottleMin {
		c.ThrottleMax = c.ThrottleMin
	}
	if c.Window <= 0 {
		c.Window = 10
	}
	if c.MaxParts <= 0 || c.MaxParts > 255 {
		c.MaxParts = 255
	}
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// NewTLSConfig trusts the PEM certificates in caFile (the system roots when
// caFile is empty) and checks the SMSC's certificate against serverName.
func NewTLSConfig(caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("smpp: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("smpp: no certificate in %s", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
