package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"smsrouter/channels"
	"smsrouter/router"
)

// pageRows is how many messages the traffic page lists.
const pageRows = 100

// states are the journal states in the order the page shows them.
var states = []router.State{router.StateDeferred, router.StateHeld, router.StateDelivered, router.StateBounced,
	router.StateExpired, router.StateRejected, router.StateDropped}

// trafficFilter is the traffic page's query, as the form sends it.
type trafficFilter struct {
	Number, State, Letter, Link, Since, Until string
}

// timeForm is the value format of <input type=datetime-local>.
const timeForm = "2006-01-02T15:04"

func (c *Console) readFilter(r *http.Request) (trafficFilter, router.Filter, string) {
	q := r.URL.Query()
	tf := trafficFilter{Number: strings.TrimSpace(q.Get("number")), State: q.Get("state"), Letter: strings.ToUpper(q.Get("letter")),
		Link: strings.TrimSpace(q.Get("link")), Since: q.Get("since"), Until: q.Get("until")}
	f := router.Filter{Limit: pageRows}
	var bad []string
	if tf.Number != "" {
		if router.CheckNumber("number", tf.Number) != nil {
			bad = append(bad, "number: digits only, with an optional +")
		} else {
			f.Number = tf.Number
		}
	}
	if tf.State != "" {
		ok := false
		for _, s := range states {
			ok = ok || string(s) == tf.State
		}
		if ok {
			f.State = router.State(tf.State)
		} else {
			bad = append(bad, "state: not one of the journal's states")
		}
	}
	if tf.Letter != "" {
		if len(tf.Letter) == 1 && strings.Contains(router.Letters+string(router.LetterLink), tf.Letter) {
			f.Letter = tf.Letter
		} else {
			bad = append(bad, "letter: one of S F V C T N L")
		}
	}
	if tf.Link != "" {
		if channels.ValidLinkName(tf.Link) {
			f.Link = tf.Link
		} else {
			bad = append(bad, "link: a link's name (a-z, 0-9, - and _)")
		}
	}
	for _, t := range []struct {
		v   string
		dst *time.Time
		n   string
	}{{tf.Since, &f.Since, "from"}, {tf.Until, &f.Until, "until"}} {
		if t.v == "" {
			continue
		}
		at, err := time.ParseInLocation(timeForm, t.v, c.cfg.Location)
		if err != nil {
			bad = append(bad, t.n+": a date and time like 2026-12-01T08:30")
			continue
		}
		*t.dst = at
	}
	return tf, f, strings.Join(bad, "; ")
}

// query is the filter as a URL query, for the live refresh.
func (tf trafficFilter) query() string {
	v := url.Values{}
	for k, x := range map[string]string{"number": tf.Number, "state": tf.State, "letter": tf.Letter, "link": tf.Link, "since": tf.Since, "until": tf.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

// stateCount is one state's line in the counts: how many messages are in it
// and which one has been in it longest.
type stateCount struct {
	State          string
	N              int
	OldestID       string
	OldestReceived time.Time
}

type trafficRow struct {
	ID, From, To, Letter, State, Error, Text string
	Received                                 time.Time
	Attempts                                 int
	HideText                                 bool
}

type trafficData struct {
	Filter  trafficFilter
	Query   string
	Bad     string
	States  []router.State
	Counts  []stateCount
	Rows    []trafficRow
	Total   int
	Shown   int
	Updated time.Time
}

func (c *Console) traffic(ctx context.Context, r *http.Request, s *session) (trafficData, error) {
	tf, f, bad := c.readFilter(r)
	d := trafficData{Filter: tf, Query: tf.query(), Bad: bad, States: states, Updated: c.cfg.Now().In(c.cfg.Location)}
	counts, err := c.countsCached(ctx)
	if err != nil {
		return d, err
	}
	d.Counts = counts
	for _, sc := range counts {
		d.Total += sc.N
	}
	if bad != "" {
		return d, nil
	}
	recs, err := c.cfg.Journal.List(ctx, f)
	if err != nil {
		return d, err
	}
	hide := c.hideText(s)
	for _, rec := range recs {
		d.Rows = append(d.Rows, trafficRow{ID: rec.ID, From: rec.OA, To: rec.DA, Letter: rec.Letter, State: string(rec.State),
			Error: rec.LastError, Text: clipRunes(rec.Text, 60), Received: rec.Received.In(c.cfg.Location), Attempts: rec.Attempts, HideText: hide})
	}
	d.Shown = len(d.Rows)
	return d, nil
}

// countsTTL is how long the state counts are reused: counting 100,000 rows
// costs more than the rest of the page, and every open traffic page asks
// every two seconds. The list of messages itself is read anew every time.
const countsTTL = 2 * time.Second

// countsCached is counts, computed at most once per countsTTL whoever asks.
func (c *Console) countsCached(ctx context.Context) ([]stateCount, error) {
	c.countsMu.Lock()
	defer c.countsMu.Unlock()
	now := c.cfg.Now()
	if c.countsAt.IsZero() || now.Sub(c.countsAt) >= countsTTL || now.Before(c.countsAt) {
		counts, err := c.counts(ctx)
		if err != nil {
			return nil, err
		}
		c.countsVal, c.countsAt = counts, now
	}
	return c.countsVal, nil
}

// counts reads how many messages each state holds and the oldest of each
// (the index on state, received answers both without reading the table).
func (c *Console) counts(ctx context.Context) ([]stateCount, error) {
	db := c.cfg.Store.DB
	n := map[string]int{}
	rows, err := db.QueryContext(ctx, "SELECT state, COUNT(*) FROM smsrouter_journal GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("count states: %w", err)
	}
	for rows.Next() {
		var st string
		var k int
		if err := rows.Scan(&st, &k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count states: %w", err)
		}
		n[st] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count states: %w", err)
	}
	var out []stateCount
	for _, st := range states {
		sc := stateCount{State: string(st), N: n[string(st)]}
		if sc.N > 0 {
			var ms int64
			err := db.QueryRowContext(ctx, "SELECT id, received FROM smsrouter_journal WHERE state = ? ORDER BY received, id LIMIT 1", string(st)).Scan(&sc.OldestID, &ms)
			if err == nil {
				sc.OldestReceived = time.UnixMilli(ms).In(c.cfg.Location)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

func (c *Console) trafficPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.traffic(r.Context(), r, s)
	if err != nil {
		c.internal(w, r, s, "read the journal", err)
		return
	}
	c.render(w, r, s, http.StatusOK, "traffic", d)
}

// trafficRows is the live part of the traffic page alone, for the script
// that refreshes it.
func (c *Console) trafficRows(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.traffic(r.Context(), r, s)
	if err != nil {
		c.cfg.Log.Warn("console: read the journal", "err", err)
		http.Error(w, "the journal did not answer", http.StatusServiceUnavailable)
		return
	}
	c.fragment(w, "traffic", "live", view{User: s.user, Role: s.role, Data: d})
}

func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
