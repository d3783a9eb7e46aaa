// Package metrics exposes smsrouter's health as Prometheus metrics: message fates
// by letter, the spool's depth and the age of its oldest message in each place,
// delivery latency, the state of the dependencies (database, AMI), FastAGI and
// HTTP requests, delivery reports, journal pruning, the connections the
// FastAGI and HTTP listeners hold or turn away, and the mobile links (bound,
// registered, signal, what they sent and received).
//
// Counters and histograms are fed as things happen (Fate is a router.Observer;
// ObserveAGI is the hook the FastAGI server calls). Everything that describes the
// spool or a dependency is measured when Prometheus scrapes, so a stuck queue shows
// even when the router itself is stuck.
//
// Every label has a fixed, documented set of values (the README's table lists
// them): a value from outside its set is counted as "other", so no input can
// make the number of series grow.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/httpapi"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// Probe checks one dependency; nil means up. It gets a context with a short
// deadline and is called on every scrape and /healthz.
type Probe func(ctx context.Context) error

// Metrics is one process's registry.
type Metrics struct {
	reg      *prometheus.Registry
	fates    *prometheus.CounterVec
	latency  prometheus.Histogram
	agi      *prometheus.HistogramVec
	api      *prometheus.CounterVec
	conns    *prometheus.CounterVec
	reports  *prometheus.CounterVec
	pruned   *prometheus.CounterVec
	stats    func() (router.QueueStats, error)
	pending  func(ctx context.Context) (int, time.Time, error)
	now      func() time.Time
	mu       sync.Mutex
	probes   map[string]Probe
	probeTTL time.Duration
	open     map[string]func() int // open connections by listener
	links    func() []LinkState
	linkEv   *prometheus.CounterVec
}

// LinkState is a mobile link's state at scrape time.
type LinkState struct {
	Name, Kind string
	Up         bool // bound (SMPP) or open and registered (modem)
	Reconnects int  // sessions lost since serve started
	InFlight   int  // SMPP: submits awaiting their answer
	Modem      bool // the fields below are a modem's
	Registered bool
	SignalDBm  int // 0 when unknown
	Held       int // messages handed over and not yet stored
}

// LinkEvents are the label values of smsrouter_link_events_total.
var LinkEvents = []string{"sent", "message", "receipt", "duplicate", "rejected", "failed"}

// Listeners and the reasons a connection is turned away: the label values of
// smsrouter_connections_turned_away_total, fixed so a flood cannot grow them.
var (
	connListeners = []string{"agi", "http"}
	connReasons   = []string{"refused", "timeout", "busy"}
)

// New makes a registry. stats, when not nil, is read on each scrape for the queue
// gauges (router.Admin.Stats).
func New(stats func() (router.QueueStats, error)) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_messages_total",
			Help: "Messages that reached a state, by service letter and state (delivered, deferred, bounced, expired, rejected, dropped, held, duplicate).",
		}, []string{"letter", "state"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smsrouter_delivery_latency_seconds",
			Help:    "Time from a message's receipt to its delivery (handed to its channel).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}),
		agi: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smsrouter_agi_request_duration_seconds",
			Help:    "FastAGI requests by script and result.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"script", "result"}),
		api: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_http_requests_total",
			Help: "HTTP API requests by endpoint (submit, messages, message, openapi, sendsms, other) and result (ok or the API's error code).",
		}, []string{"endpoint", "result"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_delivery_reports_total",
			Help: "Delivery-report sends by kind (kannel), type (accepted, buffered, delivered, failed, rejected) and result (sent, retry, gave_up).",
		}, []string{"kind", "type", "result"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_journal_pruned_total",
			Help: "Rows removed by journal retention, by table (messages, tries, reports, parts, batches).",
		}, []string{"table"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_connections_turned_away_total",
			Help: "Connections closed without being served, by listener (agi, http) and reason: refused (over the open-connection cap), timeout (no request within the first-bytes deadline), busy (no handler free in time).",
		}, []string{"listener", "reason"}),
		linkEv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsrouter_link_events_total",
			Help: "Mobile link events by link: sent (parts the network accepted), message (texts or parts received and queued), receipt (delivery receipts stored), duplicate (received again after a crash, not queued twice), rejected (unreadable, quarantined), failed (could not be stored; the network keeps it).",
		}, []string{"link", "event"}),
		stats:    stats,
		now:      time.Now,
		probes:   map[string]Probe{},
		probeTTL: 2 * time.Second,
		open:     map[string]func() int{},
	}
	// Every series exists from the start, so a rate() over them works before
	// the first flood.
	for _, l := range connListeners {
		for _, r := range connReasons {
			if l == "http" && r == "busy" {
				continue // net/http has no handler slots to wait for
			}
			m.conns.WithLabelValues(l, r)
		}
	}
	for _, t := range prunedTables {
		m.pruned.WithLabelValues(t)
	}
	m.reg.MustRegister(m.fates, m.latency, m.agi, m.api, m.conns, m.reports, m.pruned, m.linkEv, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), (*spoolCollector)(m))
	return m
}

// SetReports sets the source of the pending delivery-report gauges
// (dlr.Store.Pending), read at each scrape.
func (m *Metrics) SetReports(pending func(ctx context.Context) (int, time.Time, error)) {
	m.pending = pending
}

// SetStats sets the queue gauges' source after construction (the spool is known
// only once the router is configured). Call it before serving.
func (m *Metrics) SetStats(stats func() (router.QueueStats, error)) { m.stats = stats }

// Registry is the underlying registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddProbe registers a dependency ("db", "ami") whose state is exported as
// smsrouter_dependency_up and checked by /healthz.
func (m *Metrics) AddProbe(name string, p Probe) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probes[name] = p
}

// RemoveProbe stops reporting a dependency (one no longer configured).
func (m *Metrics) RemoveProbe(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.probes, name)
}

// Fate counts one message's fate; it makes Metrics a router.Observer.
func (m *Metrics) Fate(o router.Outcome, received time.Time) {
	letter := o.Letter
	if letter == "" {
		letter = "-"
	}
	m.fates.WithLabelValues(letter, string(o.State)).Inc()
	if o.State == router.StateDelivered && !received.IsZero() {
		m.latency.Observe(max(m.now().Sub(received).Seconds(), 0))
	}
}

// AGIResults are the values of the FastAGI result label.
var AGIResults = []string{"ok", "hangup", "timeout", "protocol", "error"}

// ObserveAGI records one FastAGI request; the FastAGI server calls it when a
// request ends. The error is reduced to a fixed set (AGIResults): err nil is
// "ok", a caller that hung up "hangup", a deadline "timeout", a peer that
// spoke no AGI "protocol", anything else "error".
func (m *Metrics) ObserveAGI(script string, d time.Duration, err error) {
	m.agi.WithLabelValues(script, agiResult(err)).Observe(d.Seconds())
}

func agiResult(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, agi.ErrHangup):
		return "hangup"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, agi.ErrProtocol), errors.Is(err, agi.ErrInvalidCommand), errors.Is(err, agi.ErrLineTooLong), errors.Is(err, agi.ErrEnvTooLarge):
		return "protocol"
	}
	return "error"
}

// ObserveConn counts one connection a listener ("agi", "http") turned away, for
// reason "refused", "timeout" or "busy". Other values are counted as "other", so
// the label set stays bounded.
func (m *Metrics) ObserveConn(listener, reason string) {
	if !slices.Contains(connListeners, listener) {
		listener = "other"
	}
	if !slices.Contains(connReasons, reason) {
		reason = "other"
	}
	m.conns.WithLabelValues(listener, reason).Inc()
}

// TrackOpen exports open() as smsrouter_connections_open{listener}, read at
// each scrape. A second call for the same listener replaces the first.
func (m *Metrics) TrackOpen(listener string, open func() int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open[listener] = open
}

// TrackLinks exports the mobile links' states, read at each scrape, and
// makes every link a probe of /healthz. names are the links, so that their
// event counters exist from the start.
func (m *Metrics) TrackLinks(names []string, states func() []LinkState) {
	m.mu.Lock()
	m.links = states
	m.mu.Unlock()
	for _, n := range names {
		for _, ev := range LinkEvents {
			m.linkEv.WithLabelValues(n, ev)
		}
	}
}

// ObserveLink counts one event of a link (one of LinkEvents).
func (m *Metrics) ObserveLink(link, event string) {
	if !slices.Contains(LinkEvents, event) {
		event = "other"
	}
	m.linkEv.WithLabelValues(link, event).Inc()
}

// ObserveAPI counts one HTTP API request: its endpoint (httpapi.Endpoints) and
// result ("ok" or one of httpapi.Codes); anything else is counted as "other".
func (m *Metrics) ObserveAPI(endpoint, result string) {
	if !slices.Contains(httpapi.Endpoints, endpoint) {
		endpoint = "other"
	}
	if result != "ok" && !slices.Contains(httpapi.Codes, result) {
		result = "other"
	}
	m.api.WithLabelValues(endpoint, result).Inc()
}

// reportKinds and reportResults are the label values of the delivery-report counter.
var (
	reportKinds   = []string{httpapi.KindKannel}
	reportResults = []string{"sent", "retry", "gave_up"}
	prunedTables  = []string{"messages", "tries", "reports", "parts", "batches"}
)

// ObserveReport counts one delivery-report send (the dlr.Dispatcher's Observe).
func (m *Metrics) ObserveReport(kind string, t dlr.Type, result string) {
	if !slices.Contains(reportKinds, kind) {
		kind = "other"
	}
	if !slices.Contains(reportResults, result) {
		result = "other"
	}
	typ := "other"
	if len(t.Types()) == 1 {
		typ = t.String()
	}
	m.reports.WithLabelValues(kind, typ, result).Inc()
}

// ObservePrune counts what one retention pass removed.
func (m *Metrics) ObservePrune(r router.PruneResult, batches int64) {
	m.pruned.WithLabelValues("messages").Add(float64(r.Messages))
	m.pruned.WithLabelValues("tries").Add(float64(r.Attempts))
	m.pruned.WithLabelValues("reports").Add(float64(r.Reports))
	m.pruned.WithLabelValues("parts").Add(float64(r.Parts))
	m.pruned.WithLabelValues("batches").Add(float64(batches))
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Check runs every probe and returns the failures by name.
func (m *Metrics) Check(ctx context.Context) map[string]error {
	m.mu.Lock()
	probes := make(map[string]Probe, len(m.probes))
	for k, v := range m.probes {
		probes[k] = v
	}
	m.mu.Unlock()
	out := map[string]error{}
	var wg sync.WaitGroup
	var omu sync.Mutex
	for name, p := range probes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, m.probeTTL)
			defer cancel()
			err := p(pctx)
			omu.Lock()
			out[name] = err
			omu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Healthz answers 200 "ok" when every probe passes and the spool is readable,
// 503 with the failures otherwise.
func (m *Metrics) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var bad []string
		for name, err := range m.Check(r.Context()) {
			if err != nil {
				bad = append(bad, name+": "+err.Error())
			}
		}
		if m.stats != nil {
			if _, err := m.stats(); err != nil {
				bad = append(bad, "spool: "+err.Error())
			}
		}
		if len(bad) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, b := range bad {
				w.Write([]byte(b + "\n"))
			}
			return
		}
		w.Write([]byte("ok\n"))
	})
}

var (
	descQueue = prometheus.NewDesc("smsrouter_queue_messages",
		"What waits in the spool, by place: incoming (not taken yet), claimed (being processed), deferred (waiting for a retry), held (parts waiting for their siblings), staged (batches being published or waiting for an undecided journal write), rejected (quarantined files waiting for an admin).", []string{"where"}, nil)
	descPlaceAge = prometheus.NewDesc("smsrouter_queue_oldest_age_seconds",
		"Age of the oldest message (batch, quarantined file) in each place of smsrouter_queue_messages; 0 when the place is empty.", []string{"where"}, nil)
	descOldest = prometheus.NewDesc("smsrouter_queue_oldest_message_age_seconds",
		"Age of the oldest message waiting in the spool, any place but rejected; 0 when none waits.", nil, nil)
	descUp = prometheus.NewDesc("smsrouter_dependency_up",
		"1 when the dependency (db, ami, …) answered its probe.", []string{"dependency"}, nil)
	descSpoolUp = prometheus.NewDesc("smsrouter_spool_readable",
		"1 when the spool folders could be read at scrape time.", nil, nil)
	descOpen = prometheus.NewDesc("smsrouter_connections_open",
		"Connections open now, by listener (agi, http).", []string{"listener"}, nil)
	descLinkUp = prometheus.NewDesc("smsrouter_link_up",
		"1 when the mobile link can send: bound to its SMSC, or its modem open and registered.", []string{"link", "kind"}, nil)
	descLinkReconnects = prometheus.NewDesc("smsrouter_link_reconnects_total",
		"Sessions (SMPP binds, modem opens) lost since serve started.", []string{"link"}, nil)
	descLinkInFlight = prometheus.NewDesc("smsrouter_link_in_flight",
		"SMPP submits awaiting their submit_sm_resp.", []string{"link"}, nil)
	descModemRegistered = prometheus.NewDesc("smsrouter_modem_registered",
		"1 when the modem is registered on a network (home or roaming).", []string{"link"}, nil)
	descModemSignal = prometheus.NewDesc("smsrouter_modem_signal_dbm",
		"The modem's signal strength in dBm; 0 when it does not know.", []string{"link"}, nil)
	descModemHeld = prometheus.NewDesc("smsrouter_modem_held_messages",
		"Messages the modem handed over that are not yet stored and deleted.", []string{"link"}, nil)
	descReportsPending = prometheus.NewDesc("smsrouter_delivery_reports_pending",
		"Delivery-report requests still open (their message not final yet, or a report being retried).", nil, nil)
	descReportsAge = prometheus.NewDesc("smsrouter_delivery_reports_oldest_pending_age_seconds",
		"Age of the oldest open delivery-report request; 0 when none.", nil, nil)
)

// spoolCollector measures the spool and the dependencies at scrape time.
type spoolCollector Metrics

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descPlaceAge, descOldest, descUp, descSpoolUp, descOpen, descReportsPending, descReportsAge,
		descLinkUp, descLinkReconnects, descLinkInFlight, descModemRegistered, descModemSignal, descModemHeld} {
		ch <- d
	}
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	age := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return max(m.now().Sub(t).Seconds(), 0)
	}
	if m.stats != nil {
		s, err := m.stats()
		if err != nil {
			ch <- prometheus.MustNewConstMetric(descSpoolUp, prometheus.GaugeValue, 0)
		} else {
			ch <- prometheus.MustNewConstMetric(descSpoolUp, prometheus.GaugeValue, 1)
			for _, p := range s.Places() {
				ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(p.Count), p.Name)
				ch <- prometheus.MustNewConstMetric(descPlaceAge, prometheus.GaugeValue, age(p.Oldest), p.Name)
			}
			ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age(s.Oldest))
		}
	}
	if m.pending != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.probeTTL)
		n, oldest, err := m.pending(ctx)
		cancel()
		if err == nil { // the db probe says why not
			ch <- prometheus.MustNewConstMetric(descReportsPending, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(descReportsAge, prometheus.GaugeValue, age(oldest))
		}
	}
	for name, err := range m.Check(context.Background()) {
		up := 1.0
		if err != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name)
	}
	m.mu.Lock()
	open := make(map[string]func() int, len(m.open))
	for k, v := range m.open {
		open[k] = v
	}
	m.mu.Unlock()
	for listener, n := range open {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n()), listener)
	}
	m.mu.Lock()
	links := m.links
	m.mu.Unlock()
	if links == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, l := range links() {
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, b(l.Up), l.Name, l.Kind)
		ch <- prometheus.MustNewConstMetric(descLinkReconnects, prometheus.CounterValue, float64(l.Reconnects), l.Name)
		if l.Modem {
			ch <- prometheus.MustNewConstMetric(descModemRegistered, prometheus.GaugeValue, b(l.Registered), l.Name)
			ch <- prometheus.MustNewConstMetric(descModemSignal, prometheus.GaugeValue, float64(l.SignalDBm), l.Name)
			ch <- prometheus.MustNewConstMetric(descModemHeld, prometheus.GaugeValue, float64(l.Held), l.Name)
		} else {
			ch <- prometheus.MustNewConstMetric(descLinkInFlight, prometheus.GaugeValue, float64(l.InFlight), l.Name)
		}
	}
}
