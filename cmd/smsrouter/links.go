package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"smsrouter/channels"
	"smsrouter/channels/link"
	"smsrouter/ingress/mobile"
	"smsrouter/internal/numplan"
	"smsrouter/metrics"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
	"smsrouter/router"
)

// mobileLinks are the links serve runs: for each, its protocol client, the
// channel the router delivers through and the ingress that queues what the
// network hands over. Only serve runs them; a one-shot drain hands messages
// for a link to serve (link.Elsewhere).
type mobileLinks struct {
	cfg     Config
	plan    numplan.Plan
	list    []*runningLink
	journal *router.Journal
	log     *slog.Logger
	// observe counts link events (metrics); nil when nothing counts.
	observe func(link, event string)
	kick    chan struct{} // a receipt was stored: apply it soon
}

type runningLink struct {
	spec  linkSpec
	smpp  *smpp.Client
	modem *modem.Device
	ch    *link.Channel
	rx    *mobile.Receiver
}

// elsewhereLinks are the channels of a process that runs no link.
func elsewhereLinks(cfg Config) map[string]channels.Channel {
	if len(cfg.Links) == 0 {
		return nil
	}
	out := map[string]channels.Channel{}
	for _, l := range cfg.Links {
		out[l.Name] = link.Elsewhere{Name: l.Name}
	}
	return out
}

// buildLinks makes every configured link, without connecting anything.
func buildLinks(cfg Config, rc router.Config, journal *router.Journal, log *slog.Logger) (*mobileLinks, map[string]channels.Channel, error) {
	specs, err := cfg.linkSpecs(rc.Plan, true)
	if err != nil {
		return nil, nil, err
	}
	if len(specs) == 0 {
		return &mobileLinks{}, nil, nil
	}
	ml := &mobileLinks{cfg: cfg, plan: rc.Plan, journal: journal, log: log, kick: make(chan struct{}, 1)}
	chans := map[string]channels.Channel{}
	for _, s := range specs {
		rl := &runningLink{spec: s}
		llog := log.With("link", s.Name)
		name := s.Name
		rx, err := mobile.New(mobile.Config{
			Link: s.Name, Number: s.number, Numbers: s.numbers, Plan: rc.Plan, WorkDir: cfg.workDir(),
			Location: rc.Location, Sync: rc.Sync, Receipts: journal.RecordReceipt, ReceiptIDs: s.ReceiptIDs,
			ReceiptStored: ml.receiptStored, Logger: log,
			Observe: func(what string) { ml.count(name, what) },
		})
		if err != nil {
			return nil, nil, err
		}
		rl.rx = rx
		var tr link.Transport
		switch s.Kind {
		case "smpp":
			c := s.smpp
			c.Logger = llog
			if c.Bind != smpp.Transmitter {
				c.Handler = rx.SMPP
			}
			if rl.smpp, err = smpp.New(c); err != nil {
				return nil, nil, fmt.Errorf("link %s: %w", s.Name, err)
			}
			tr = link.SMPP(rl.smpp)
		case "modem":
			c := s.modem
			c.Logger, c.Handler = llog, rx.Modem
			if rl.modem, err = modem.New(c); err != nil {
				return nil, nil, fmt.Errorf("link %s: %w", s.Name, err)
			}
			tr = link.Modem(rl.modem)
		}
		rl.ch, err = link.New(link.Config{
			Name: s.Name, Transport: tr, Number: s.number, Source: s.Source, Plan: rc.Plan, Text: s.Text,
			MarkerDir: cfg.markerDir(s.Name), Sync: rc.Sync, Logger: log,
			Accepted: func(int) { ml.count(name, "sent") },
		})
		if err != nil {
			return nil, nil, err
		}
		chans[s.Name] = rl.ch
		ml.list = append(ml.list, rl)
	}
	return ml, chans, nil
}

func (ml *mobileLinks) count(link, event string) {
	if ml.observe != nil {
		ml.observe(link, event)
	}
}

func (ml *mobileLinks) receiptStored() {
	select {
	case ml.kick <- struct{}{}:
	default:
	}
}

// names lists the links.
func (ml *mobileLinks) names() []string {
	var out []string
	for _, l := range ml.list {
		out = append(out, l.spec.Name)
	}
	return out
}

// run starts one goroutine per link (its client's Run), one that applies
// delivery receipts to the journal, and one that writes the links' states
// for doctor. wait returns once all stopped after ctx ended.
func (ml *mobileLinks) run(ctx context.Context, admin *router.Admin) (wait func()) {
	var wg sync.WaitGroup
	if ml == nil || len(ml.list) == 0 {
		return wg.Wait
	}
	for _, l := range ml.list {
		wg.Go(func() {
			switch {
			case l.smpp != nil:
				l.smpp.Run(ctx)
			case l.modem != nil:
				l.modem.Run(ctx)
			}
		})
	}
	wg.Go(func() { ml.applyLoop(ctx, admin) })
	wg.Go(func() { ml.statusLoop(ctx, admin) })
	return wg.Wait
}

// receiptPoll is how often receipts still waiting for their message's
// journal row are tried again.
const receiptPoll = 5 * time.Second

func (ml *mobileLinks) applyLoop(ctx context.Context, admin *router.Admin) {
	notify := map[string]bool{}
	for _, l := range ml.list {
		notify[link.System(l.spec.Name)] = l.spec.NotifyFailed
	}
	t := time.NewTicker(receiptPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ml.kick:
			// Let a burst of receipts land first.
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return
			}
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		sum, err := admin.ApplyReceipts(actx, func(system string) bool { return notify[system] })
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			ml.log.Warn("delivery receipts not applied yet", "err", err)
		case len(sum.Notices) > 0:
			ml.log.Info("senders told of failed deliveries", "notices", len(sum.Notices))
		}
	}
}

// statusEvery is how often serve rewrites the links' states for doctor; a
// change is written within statusPoll.
const (
	statusEvery = time.Second
	statusPoll  = 100 * time.Millisecond
)

// statusLoop writes each link's state to its status file, wakes the messages
// deferred for a link when it comes up, and forgets old receipt keys.
func (ml *mobileLinks) statusLoop(ctx context.Context, admin *router.Admin) {
	wasUp := map[string]bool{}
	last := map[string]linkStatus{}
	t := time.NewTicker(statusPoll)
	defer t.Stop()
	lastClean := time.Time{}
	for {
		for _, st := range ml.states() {
			prev, ok := last[st.Name]
			changed := !ok || prev.Up != st.Up || prev.State != st.State || prev.LastError != st.LastError
			if changed || st.Written.Sub(prev.Written) >= statusEvery {
				if err := writeLinkStatus(ml.cfg.statusFile(st.Name), st); err != nil && ctx.Err() == nil {
					ml.log.Warn("link status not written", "link", st.Name, "err", err)
				}
				last[st.Name] = st
			}
			if st.Up && !wasUp[st.Name] {
				ml.wake(ctx, admin, st.Name)
			}
			wasUp[st.Name] = st.Up
		}
		if time.Since(lastClean) > time.Hour {
			lastClean = time.Now()
			if err := router.CleanSeen(ml.cfg.workDir(), lastClean.Add(-mobile.SeenKeep)); err != nil {
				ml.log.Warn("old receipt keys not removed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			for _, l := range ml.list {
				os.Remove(ml.cfg.statusFile(l.spec.Name))
			}
			return
		case <-t.C:
		}
	}
}

// wake makes the messages deferred for a link that just came up due now,
// rather than at their next backoff slot (up to [queue] retry_max away).
func (ml *mobileLinks) wake(ctx context.Context, admin *router.Admin, name string) {
	recs, err := ml.journal.List(ctx, router.Filter{State: router.StateDeferred, Limit: 10000})
	if err != nil {
		ml.log.Warn("link up; deferred messages not woken", "link", name, "err", err)
		return
	}
	var ids []string
	for _, r := range recs {
		if r.Letter == string(router.LetterLink) && strings.Contains(r.Detail, fmt.Sprintf(`"link":%q`, name)) {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	done, _ := admin.RetryNow(ids) // ids taken meanwhile are being retried anyway
	if len(done) > 0 {
		ml.log.Info("link up; messages waiting for it are due now", "link", name, "messages", len(done))
	}
}

// linkStatus is a link's state as serve writes it for doctor.
type linkStatus struct {
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`
	Up           bool      `json:"up"`
	State        string    `json:"state"`
	LastError    string    `json:"last_error,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	Reconnects   int       `json:"reconnects"`
	InFlight     int       `json:"in_flight,omitempty"`
	Registration int       `json:"registration,omitempty"`
	Registered   bool      `json:"registered,omitempty"`
	SignalDBm    int       `json:"signal_dbm,omitempty"`
	SMSC         string    `json:"smsc,omitempty"`
	Held         int       `json:"held,omitempty"`
	Written      time.Time `json:"written"`
}

func (ml *mobileLinks) states() []linkStatus {
	var out []linkStatus
	for _, l := range ml.list {
		out = append(out, l.status())
	}
	return out
}

func (l *runningLink) status() linkStatus {
	st := linkStatus{Name: l.spec.Name, Kind: l.spec.Kind, Written: time.Now()}
	switch {
	case l.smpp != nil:
		st.InFlight = l.smpp.InFlight()
		var parts []string
		st.Up = true
		for _, b := range l.smpp.Status() {
			st.Reconnects += b.Reconnects
			if b.Since.After(st.Since) {
				st.Since = b.Since
			}
			if b.Bound {
				parts = append(parts, b.Role+" bound")
			} else {
				st.Up = false
				parts = append(parts, b.Role+" not bound")
				if b.LastError != "" {
					st.LastError = b.LastError
				}
			}
		}
		st.State = strings.Join(parts, ", ")
	case l.modem != nil:
		ms := l.modem.Status()
		st.Reconnects, st.Since, st.LastError = ms.Reopens, ms.Since, ms.LastError
		st.Registration, st.Registered, st.SignalDBm, st.SMSC, st.Held = ms.Registration, ms.Registered, ms.SignalDBm, ms.SMSC, ms.Held
		st.Up = ms.Open && ms.Registered
		st.State = modemState(ms)
	}
	return st
}

// modemState says in words what a modem's status means.
func modemState(ms modem.Status) string {
	if !ms.Open {
		return "closed"
	}
	reg := map[int]string{0: "not registered", 1: "registered (home)", 2: "searching for a network", 3: "registration denied",
		4: "registration unknown", 5: "registered (roaming)"}[ms.Registration]
	if reg == "" {
		reg = fmt.Sprintf("registration %d", ms.Registration)
	}
	sig := "signal unknown"
	if ms.SignalDBm != 0 {
		sig = fmt.Sprintf("signal %d dBm", ms.SignalDBm)
	}
	return "open, " + reg + ", " + sig
}

func (l *runningLink) metricState() metrics.LinkState {
	st := l.status()
	return metrics.LinkState{Name: st.Name, Kind: st.Kind, Up: st.Up, Reconnects: st.Reconnects, InFlight: st.InFlight,
		Modem: l.modem != nil, Registered: st.Registered, SignalDBm: st.SignalDBm, Held: st.Held}
}

// track exports the links in the metrics and as /healthz probes.
func (ml *mobileLinks) track(m *metrics.Metrics) {
	if ml == nil || len(ml.list) == 0 {
		return
	}
	ml.observe = m.ObserveLink
	m.TrackLinks(ml.names(), func() []metrics.LinkState {
		var out []metrics.LinkState
		for _, l := range ml.list {
			out = append(out, l.metricState())
		}
		return out
	})
	for _, l := range ml.list {
		m.AddProbe("link "+l.spec.Name, func(context.Context) error {
			st := l.status()
			if st.Up {
				return nil
			}
			if st.LastError != "" {
				return fmt.Errorf("%s (%s)", st.State, st.LastError)
			}
			return fmt.Errorf("%s", st.State)
		})
	}
}

func writeLinkStatus(path string, st linkStatus) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o770); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readLinkStatus(path string) (linkStatus, error) {
	var st linkStatus
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sortedLinks returns the configured link names in order, for messages.
func sortedLinks(cfg Config) []string {
	var out []string
	for _, l := range cfg.Links {
		out = append(out, l.Name)
	}
	sort.Strings(out)
	return out
}
