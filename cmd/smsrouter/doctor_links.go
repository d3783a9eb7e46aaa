package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
)

// statusFresh is how old a link's status file may be and still show a running
// serve's view (serve writes it every statusEvery).
const statusFresh = 4 * statusEvery

// probeWait bounds doctor's own bind or open of a link serve is not running.
const probeWait = 8 * time.Second

// checkLinks reports each mobile link: the state the running serve wrote for
// it, or, when no serve runs it, a short bind (SMPP) or open (modem) of its
// own. A probe takes nothing from the link: deliveries that arrive during an
// SMPP probe are refused for now (the SMSC delivers them again), and texts
// the modem holds stay on it.
func (d *doctor) checkLinks(ctx context.Context) {
	if len(d.cfg.Links) == 0 {
		d.add(checkSkip, "links", "no [[link]] configured (no mobile network)", "")
		return
	}
	rc, err := d.cfg.routerConfig()
	if err != nil {
		return // a config problem, listed already (prepare)
	}
	specs, err := d.cfg.linkSpecs(rc.Plan, true)
	if err != nil {
		return // likewise
	}
	if len(d.cfg.Routes) == 0 {
		d.add(checkWarn, "routes", "links are configured but no [[route]]: only send --via reaches the mobile network", "add a [[route]] (a last one without prefix takes every number)")
	}
	for _, s := range specs {
		name := "link " + s.Name
		if st, err := readLinkStatus(d.cfg.statusFile(s.Name)); err == nil && time.Since(st.Written) < statusFresh {
			detail := fmt.Sprintf("%s (serve): %s", s.Kind, st.State)
			if st.Reconnects > 0 {
				detail += fmt.Sprintf(", %d reconnects", st.Reconnects)
			}
			if st.Up {
				d.add(checkOK, name, detail, "")
			} else {
				d.add(checkFail, name, detail+": "+st.LastError, linkFix(s.Kind, st.LastError))
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeWait)
		switch s.Kind {
		case "smpp":
			d.probeSMPP(pctx, name, s)
		case "modem":
			d.probeModem(pctx, name, s)
		}
		cancel()
	}
}

func linkFix(kind, lastError string) string {
	switch {
	case kind == "smpp" && strings.Contains(lastError, "ESME_RINVPASWD"), strings.Contains(lastError, "ESME_RINVSYSID"):
		return "check system_id and the password (secrets_file)"
	case kind == "smpp":
		return "check addr, the network and the SMSC; serve keeps binding again with backoff"
	case strings.Contains(lastError, "PIN"):
		return "set pin (in secrets_file), or unlock the SIM in a phone"
	}
	return "check port (best /dev/serial/by-id/...), the SIM and the antenna; serve keeps reopening it"
}

func (d *doctor) probeSMPP(ctx context.Context, name string, s linkSpec) {
	cfg := s.smpp
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ReconnectMin, cfg.ReconnectMax = probeWait, probeWait
	if cfg.Bind != smpp.Transmitter {
		cfg.Handler = func(dl *smpp.Delivery) { dl.Ack(fmt.Errorf("doctor is only probing")) }
	}
	c, err := smpp.New(cfg)
	if err != nil {
		d.add(checkFail, name, err.Error(), "fix the [[link]] section")
		return
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	for {
		bound, all := 0, c.Status()
		last := ""
		for _, b := range all {
			if b.Bound {
				bound++
			} else if b.LastError != "" {
				last = b.LastError
			}
		}
		switch {
		case bound == len(all):
			d.add(checkOK, name, fmt.Sprintf("smpp: bound to %s as %s (%s; serve is not running it)", cfg.Addr, cfg.SystemID, cfg.Bind), "")
			return
		case last != "":
			d.add(checkFail, name, fmt.Sprintf("smpp: %s: %s", cfg.Addr, last), linkFix("smpp", last))
			return
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			d.add(checkFail, name, fmt.Sprintf("smpp: no bind with %s within %v", cfg.Addr, probeWait), linkFix("smpp", ""))
			return
		}
	}
}

func (d *doctor) probeModem(ctx context.Context, name string, s linkSpec) {
	cfg := s.modem
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.ReopenMin, cfg.ReopenMax = probeWait, probeWait
	cfg.Handler = func(m *modem.Message) { m.Release() }
	dev, err := modem.New(cfg)
	if err != nil {
		d.add(checkFail, name, err.Error(), "fix the [[link]] section")
		return
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { dev.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	for {
		st := dev.Status()
		switch {
		case st.Open:
			detail := fmt.Sprintf("modem %s: %s, SMSC %s (serve is not running it)", cfg.Port, modemState(st), orDefault(st.SMSC, "unknown"))
			switch {
			case !st.Registered:
				d.add(checkFail, name, detail, "check the SIM's subscription and the antenna; messages wait until it registers")
			case st.SMSC == "":
				d.add(checkFail, name, detail, "set smsc = \"+…\" in the [[link]]: the SIM holds no SMSC number")
			case st.SignalDBm != 0 && st.SignalDBm < -105:
				d.add(checkWarn, name, detail, "the signal is weak: move the stick or add an antenna")
			default:
				d.add(checkOK, name, detail, "")
			}
			return
		case st.LastError != "":
			d.add(checkFail, name, fmt.Sprintf("modem %s: %s", cfg.Port, st.LastError), linkFix("modem", st.LastError))
			return
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			d.add(checkFail, name, fmt.Sprintf("modem %s: did not open within %v", cfg.Port, probeWait), linkFix("modem", ""))
			return
		}
	}
}
