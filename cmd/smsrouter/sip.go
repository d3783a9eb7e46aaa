package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/channels"
	"smsrouter/channels/sip"
	"smsrouter/router"
)

// SIPConfig is the [sip] section: letter T, SIP messages through AMI.
type SIPConfig struct {
	// Username enables the channel; without it letter T is bounced with the
	// no_service notice.
	AMIAddr    string `toml:"ami_addr"`
	Username   string `toml:"username"`
	Secret     string `toml:"secret"`
	SecretFile string `toml:"secret_file"`
	MD5        bool   `toml:"md5"`
	From       string `toml:"from"`
	MaxParts   int    `toml:"max_parts"`

	DialTimeout  duration `toml:"dial_timeout"`
	PingInterval duration `toml:"ping_interval"`
	MarkerAge    duration `toml:"marker_age"`
}

// sipSettings is the channel configuration [sip] asks for, defaults filled in;
// ok is false when the channel is not configured.
func (c Config) sipSettings() (cfg sip.Config, ok bool, err error) {
	s := c.SIP
	if s.Username == "" {
		if s.Secret != "" || s.SecretFile != "" {
			return cfg, false, errors.New("[sip]: secret given but no username")
		}
		return cfg, false, nil
	}
	if s.Secret != "" && s.SecretFile != "" {
		return cfg, false, errors.New("[sip]: give secret or secret_file, not both")
	}
	secret := s.Secret
	if s.SecretFile != "" {
		b, err := os.ReadFile(s.SecretFile)
		if err != nil {
			return cfg, false, fmt.Errorf("[sip] secret_file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	addr := s.AMIAddr
	if addr == "" {
		addr = "127.0.0.1:5038"
	}
	ping := s.PingInterval.Duration
	if ping == 0 {
		ping = 30 * time.Second
	}
	// Defaults spelled out here (the channel has the same ones) so that the
	// documented example and an empty [sip] give equal settings.
	dial, age, parts, from := s.DialTimeout.Duration, s.MarkerAge.Duration, s.MaxParts, s.From
	if dial == 0 {
		dial = 10 * time.Second
	}
	if age == 0 {
		age = 7 * 24 * time.Hour
	}
	if parts == 0 {
		parts = 10
	}
	if from == "" {
		from = sip.DefaultFrom
	}
	sync := true
	if c.Queue.Sync != nil {
		sync = *c.Queue.Sync
	}
	return sip.Config{
		AMI: ami.Config{Addr: addr, Username: s.Username, Secret: secret, UseMD5: s.MD5,
			DialTimeout: dial, PingInterval: ping},
		From:      from,
		MarkerDir: filepath.Join(c.workDir(), "sip-sent"),
		MarkerAge: age,
		Sync:      sync,
		MaxParts:  parts,
	}, true, nil
}

// sipPlan checks [sip] as building the T channel would, touching nothing; nil
// when the channel is not configured.
func sipPlan(cfg Config) (*sip.Config, error) {
	sc, ok, err := cfg.sipSettings()
	if err != nil || !ok {
		return nil, err
	}
	age, validity := sc.MarkerAge, cfg.Queue.DefaultValidity.Duration
	if validity == 0 {
		validity = 24 * time.Hour
	}
	if age < validity {
		return nil, fmt.Errorf("[sip] marker_age %s is shorter than default_validity %s: a late retry could send twice", age, validity)
	}
	if err := sip.Check(sc); err != nil {
		return nil, fmt.Errorf("[sip] %w", err)
	}
	return &sc, nil
}

// addSIP wires letter T when [sip] is configured. The channel does not connect
// here: the AMI session starts with the first T message, so a drain without one
// never logs in, and is then kept until the process ends.
func addSIP(chans map[byte]channels.Channel, cfg Config) error {
	sc, err := sipPlan(cfg)
	if err != nil || sc == nil {
		return err
	}
	return buildSIP(chans, *sc)
}

// buildSIP makes the T channel of a checked configuration (sipPlan).
func buildSIP(chans map[byte]channels.Channel, sc sip.Config) error {
	late := &lateChannel{}
	sc.Logger = slog.New(&lateHandler{target: &late.log})
	sc.AMI.Logger = sc.Logger
	sc.Wake = late.wake
	ch, err := sip.New(sc)
	if err != nil {
		return err
	}
	late.Channel = ch
	chans['T'] = late
	return nil
}

// lateChannel is the T channel plus what it needs from the router, which is
// built after its channels: Wake and the logger.
type lateChannel struct {
	*sip.Channel
	router atomic.Pointer[router.Router]
	log    atomic.Pointer[slog.Logger]
}

func (l *lateChannel) wake(number string) {
	if r := l.router.Load(); r != nil {
		if _, err := r.Wake(number); err != nil {
			if lg := l.log.Load(); lg != nil {
				lg.Warn("wake failed", "number", number, "err", err)
			}
		}
	}
}

// attachChannels gives channels the router and logger they need, and returns
// the function that closes every channel holding a connection (at exit).
func attachChannels(chans map[byte]channels.Channel, r *router.Router, log *slog.Logger) func() {
	for _, ch := range chans {
		if l, ok := ch.(*lateChannel); ok {
			l.log.Store(log)
			l.router.Store(r)
		}
	}
	return func() { closeChannels(chans, log) }
}

// closeChannels closes the channels that hold a connection (the T channel's
// AMI session).
func closeChannels(chans map[byte]channels.Channel, log *slog.Logger) {
	for letter, ch := range chans {
		if c, ok := ch.(io.Closer); ok {
			if err := c.Close(); err != nil {
				log.Warn("channel close", "letter", string(letter), "err", err)
			}
		}
	}
}

// lateHandler forwards to a logger that is set after the channel is built;
// records logged before that are dropped (the channel logs nothing until its
// first delivery).
type lateHandler struct {
	target *atomic.Pointer[slog.Logger]
	attrs  []slog.Attr
}

func (h *lateHandler) Enabled(ctx context.Context, l slog.Level) bool {
	t := h.target.Load()
	return t != nil && t.Handler().Enabled(ctx, l)
}

func (h *lateHandler) Handle(ctx context.Context, r slog.Record) error {
	t := h.target.Load()
	if t == nil {
		return nil
	}
	return t.Handler().WithAttrs(h.attrs).Handle(ctx, r)
}

func (h *lateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lateHandler{target: h.target, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup is not used by the channel or the AMI client; groups are flattened.
func (h *lateHandler) WithGroup(string) slog.Handler { return h }
