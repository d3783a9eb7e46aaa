package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smsrouter/internal/testdb"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// journalServer is the API over a real journal (SQLite and MariaDB), with the
// times in Warsaw's zone.
func journalServer(t *testing.T, dsn string, mod func(*Config)) (*httptest.Server, *router.Journal, *router.Store) {
	t.Helper()
	st, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	warsaw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		t.Fatal(err)
	}
	j := router.NewJournal(st)
	reqs := dlr.NewStore(st)
	srv, _, _ := newServer(t, func(c *Config) {
		c.Journal, c.Location, c.Reports = j, warsaw, reqs.Of
		c.Locate = func(id string) (router.Spooled, bool, error) {
			if strings.HasSuffix(id, "-00000000aa") {
				return router.Spooled{ID: id, Where: "held", Due: time.Date(2026, 12, 1, 12, 10, 0, 0, time.UTC)}, true, nil
			}
			return router.Spooled{}, false, nil
		}
		if mod != nil {
			mod(c)
		}
	})
	return srv, j, st
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, body := do(t, "GET", url, "", "Bearer "+token, "")
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v in %q", url, err, body)
	}
	return resp.StatusCode
}

func TestGetMessageShowsItsStory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		srv, j, st := journalServer(t, dsn, nil)
		ctx := context.Background()
		recv := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		id := fmt.Sprintf("%013d-%010x", recv.UnixMilli(), 1)
		part := fmt.Sprintf("%013d-%010x", recv.UnixMilli(), 2)
		notice := fmt.Sprintf("%013d-%010x", recv.UnixMilli()+5000, 3)
		// Deferred once, then delivered; it was joined from two parts; a notice
		// was sent about an expired call.
		put := func(r router.Record) {
			if err := j.Put(ctx, "", []router.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
		put(router.Record{ID: id, Received: recv, Updated: recv.Add(time.Second), OA: "5550001", DA: "5551001", Letter: "S",
			State: router.StateDeferred, Attempts: 1, NextAttempt: recv.Add(time.Minute), LastError: "database down", Detail: "{}", Text: "Zażółć", Try: 1, Parts: []string{part}})
		put(router.Record{ID: id, Received: recv, Updated: recv.Add(2 * time.Minute), OA: "5550001", DA: "5551001", Letter: "S",
			State: router.StateDelivered, Attempts: 1, Try: 2,
			Detail: fmt.Sprintf(`{"files":["outgoing/smsrouter.mttx.5551001.%s.call"],"calls":[{"file":"smsrouter.mttx.5551001.%s.call","status":"Expired","attempts":2}],"evidence_notice_id":%q}`, id, id, notice)})
		put(router.Record{ID: notice, Received: recv.Add(5 * time.Second), Updated: recv.Add(3 * time.Minute), OA: "9001", DA: "5550001", Letter: "S", State: router.StateDelivered, Detail: "{}"})
		if err := dlr.NewStore(st).Add(ctx, dlr.Request{ID: part, Kind: KindKannel, Target: "http://x/", Mask: 3}); err != nil {
			t.Fatal(err)
		}

		var v map[string]any
		if code := getJSON(t, srv.URL+"/v1/messages/"+id, &v); code != 200 {
			t.Fatalf("%d %v", code, v)
		}
		if v["state"] != "delivered" || v["final"] != true || v["text"] != "Zażółć" || v["from"] != "5550001" || v["letter"] != "S" {
			t.Fatalf("view %v", v)
		}
		if v["received"] != "2026-12-01T13:00:00+01:00" {
			t.Fatalf("received %v: not in the configured zone with its offset", v["received"])
		}
		tries := v["tries"].([]any)
		if len(tries) != 2 || tries[0].(map[string]any)["state"] != "deferred" || tries[0].(map[string]any)["reason"] != "database down" ||
			tries[1].(map[string]any)["state"] != "delivered" || tries[0].(map[string]any)["at"] != "2026-12-01T13:00:01+01:00" {
			t.Fatalf("tries %v", tries)
		}
		if calls := v["calls"].([]any); len(calls) != 1 || calls[0].(map[string]any)["status"] != "Expired" {
			t.Fatalf("calls %v", v["calls"])
		}
		if files := v["files"].([]any); len(files) != 1 {
			t.Fatalf("files %v", v["files"])
		}
		if rel := v["related"].([]any); len(rel) != 1 || rel[0].(map[string]any)["id"] != notice || rel[0].(map[string]any)["state"] != "delivered" || rel[0].(map[string]any)["kind"] != "notice" {
			t.Fatalf("related %v", v["related"])
		}
		if parts := v["parts"].([]any); len(parts) != 2 || parts[0] != id || parts[1] != part {
			t.Fatalf("parts %v", v["parts"])
		}

		// The part's id finds the joined message, with its own report request.
		var pv map[string]any
		getJSON(t, srv.URL+"/v1/messages/"+part, &pv)
		if pv["id"] != part || pv["joined_into"] != id || pv["state"] != "delivered" {
			t.Fatalf("part view %v", pv)
		}
		if reps := pv["reports"].([]any); len(reps) != 1 || reps[0].(map[string]any)["state"] != "pending" || reps[0].(map[string]any)["mask"] != 3.0 {
			t.Fatalf("reports %v", pv["reports"])
		}

		// Not in the journal yet: the spool says where it waits.
		held := fmt.Sprintf("%013d-00000000aa", recv.UnixMilli())
		var hv map[string]any
		if code := getJSON(t, srv.URL+"/v1/messages/"+held, &hv); code != 200 || hv["state"] != "held" || hv["final"] != false ||
			hv["next_attempt"] != "2026-12-01T13:10:00+01:00" || hv["received"] != "2026-12-01T13:00:00+01:00" {
			t.Fatalf("held view %d %v", code, hv)
		}
	})
}

func TestHideText(t *testing.T) {
	srv, j, _ := journalServer(t, testdb.SQLite(t), func(c *Config) { c.HideText = true })
	now := time.Now()
	id := router.NewID(now)
	if err := j.Put(context.Background(), "", []router.Record{{ID: id, Received: now, OA: "1", DA: "2", State: router.StateDelivered, Detail: "{}", Text: "secret"}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"/v1/messages/" + id, "/v1/messages"} {
		_, body := do(t, "GET", srv.URL+u, "", "Bearer "+token, "")
		if strings.Contains(body, "secret") || strings.Contains(body, `"text"`) {
			t.Fatalf("%s shows the text: %s", u, body)
		}
	}
}

func TestListMessagesFiltersAndPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		srv, j, _ := journalServer(t, dsn, nil)
		base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // 13:00 in Warsaw
		var recs []router.Record
		states := []router.State{router.StateDelivered, router.StateBounced, router.StateDeferred}
		for i := range 30 {
			at := base.Add(time.Duration(i) * time.Minute)
			recs = append(recs, router.Record{ID: fmt.Sprintf("%013d-%010x", at.UnixMilli(), i), Received: at, Updated: at,
				OA: "5550001", DA: fmt.Sprintf("555100%d", i%2), State: states[i%3], Detail: "{}", Text: fmt.Sprint("t", i)})
		}
		if err := j.Put(context.Background(), "", recs); err != nil {
			t.Fatal(err)
		}
		list := func(q string) Page {
			t.Helper()
			var p Page
			if code := getJSON(t, srv.URL+"/v1/messages?"+q, &p); code != 200 {
				t.Fatalf("%s: %d", q, code)
			}
			return p
		}
		// Local times in the configured zone: 13:10 to 13:20 Warsaw = minutes 10..19.
		p := list("since=" + "2026-12-01+13:10" + "&until=2026-12-01+13:20&limit=100")
		if len(p.Messages) != 10 || p.Messages[0].ID != recs[19].ID || p.Messages[9].ID != recs[10].ID || p.NextCursor != "" {
			t.Fatalf("window: %d first %s", len(p.Messages), p.Messages[0].ID)
		}
		p = list("state=bounced&number=5551001")
		for _, m := range p.Messages {
			if m.State != "bounced" || m.To != "5551001" && m.From != "5551001" {
				t.Fatalf("filter let through %+v", m)
			}
		}
		if len(p.Messages) != 5 {
			t.Fatalf("bounced to 5551001: %d", len(p.Messages))
		}
		// Paging: 7 at a time, newest first, every message once.
		seen := map[string]bool{}
		cursor := ""
		for pages := 1; ; pages++ {
			q := "limit=7"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			p := list(q)
			for _, m := range p.Messages {
				if seen[m.ID] {
					t.Fatalf("%s twice", m.ID)
				}
				seen[m.ID] = true
			}
			if p.NextCursor == "" {
				if pages != 5 {
					t.Fatalf("%d pages", pages)
				}
				break
			}
			cursor = p.NextCursor
		}
		if len(seen) != 30 {
			t.Fatalf("paged through %d", len(seen))
		}
		if p := list("since=2026-12-01T12:29:00Z"); len(p.Messages) != 1 || p.Messages[0].Received.Format(time.RFC3339) != "2026-12-01T13:29:00+01:00" {
			t.Fatalf("RFC 3339 since: %+v", p.Messages)
		}
	})
}
