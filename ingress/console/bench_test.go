package console

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/ingress/httpapi"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// benchRows is the journal size the console's pages must stay fast with.
const benchRows = 100_000

// fillJournal writes n journal rows the way the router does (Put, each with
// its first try): a month of traffic among 10,000 numbers, mostly delivered,
// some deferred, bounced, expired; letters S, F, V and the links' L.
func fillJournal(tb testing.TB, j *router.Journal, n int) (someID, someNumber string) {
	tb.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	states := []router.State{router.StateDelivered, router.StateDelivered, router.StateDelivered, router.StateDelivered,
		router.StateDelivered, router.StateDelivered, router.StateDelivered, router.StateDeferred, router.StateBounced, router.StateExpired}
	letters := []string{"S", "S", "S", "S", "F", "V", "L"}
	const batch = 1000
	for done := 0; done < n; done += batch {
		recs := make([]router.Record, 0, batch)
		for i := done; i < min(n, done+batch); i++ {
			at := start.Add(time.Duration(i) * 26 * time.Second)
			st := states[r.IntN(len(states))]
			rec := router.Record{ID: fmt.Sprintf("%013d-%010x", at.UnixMilli(), i), Received: at, Updated: at.Add(time.Second),
				OA: fmt.Sprintf("555%04d", r.IntN(10000)), DA: fmt.Sprintf("555%04d", r.IntN(10000)), Letter: letters[r.IntN(len(letters))],
				State: st, Attempts: 1, Text: "a message of the benchmark, number " + fmt.Sprint(i), Try: 1,
				Detail: `{"files":["/nonexistent/spool/sms/mttx/x"]}`}
			if rec.Letter == "L" {
				rec.Detail = `{"link":"operator-a"}`
			}
			if st == router.StateDeferred {
				rec.NextAttempt = at.Add(time.Hour)
				rec.LastError = "the phone did not answer"
			}
			recs = append(recs, rec)
		}
		if err := j.Put(context.Background(), "", recs); err != nil {
			tb.Fatalf("fill journal: %v", err)
		}
		if done == n/2 {
			someID, someNumber = recs[0].ID, recs[0].DA
		}
	}
	return someID, someNumber
}

// BenchmarkConsolePages answers the console's pages over a journal of
// 100,000 rows, on SQLite and MariaDB, and reports ms/page for each (target:
// 50 ms). The state counts are computed at most every countsTTL, so a page
// usually reuses them; "counts" is what computing them costs, to be added to a
// page's figure for the worst case. api-message, the HTTP API's GET /v1/messages/{id} on the same
// journal, is the baseline the message page's figure compares with.
func BenchmarkConsolePages(b *testing.B) {
	for _, d := range []string{"sqlite", "mariadb"} {
		b.Run(d, func(b *testing.B) {
			dsn := "sqlite:" + filepath.Join(b.TempDir(), "bench.db")
			if d == "mariadb" {
				dsn = testdb.MySQL(b)
			}
			c, j, cookie := benchConsole(b, dsn)
			t0 := time.Now()
			id, number := fillJournal(b, j, benchRows)
			b.Logf("%s: %d journal rows written in %v", d, benchRows, time.Since(t0).Round(time.Millisecond))
			pages := []struct{ name, path string }{
				{"traffic", "/ui/traffic"},
				{"traffic-rows", "/ui/traffic/rows"},
				{"traffic-number", "/ui/traffic?number=" + number},
				{"traffic-deferred", "/ui/traffic?state=deferred"},
				{"traffic-letter-F", "/ui/traffic?letter=F"},
				{"traffic-link", "/ui/traffic?link=operator-a"},
				{"traffic-day", "/ui/traffic?since=2026-11-15T00:00&until=2026-11-16T00:00"},
				{"message", "/ui/messages/" + id},
			}
			// The state counts alone, as every countsTTL computes them.
			b.Run("counts", func(b *testing.B) {
				for b.Loop() {
					if _, err := c.counts(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			})
			// The baseline: the HTTP API's story of the same message (JSON).
			api, err := httpapi.New(httpapi.Config{Tokens: []string{"0123456789abcdef-bench"}, Journal: j, Location: time.UTC, Rate: 1e9, Burst: 1e9,
				Submit: func(context.Context, httpapi.Message) (string, error) { return "", fmt.Errorf("not in the benchmark") }})
			if err != nil {
				b.Fatal(err)
			}
			b.Run("api-message", func(b *testing.B) {
				req := httptest.NewRequest("GET", "/v1/messages/"+id, nil)
				req.Header.Set("Authorization", "Bearer 0123456789abcdef-bench")
				for b.Loop() {
					w := httptest.NewRecorder()
					api.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("api: %d %s", w.Code, w.Body.String())
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			})
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					want := "</html>" // a whole page; the live fragment ends with its table
					if strings.HasSuffix(p.path, "/rows") {
						want = "</table>"
					}
					req := httptest.NewRequest("GET", p.path, nil)
					req.AddCookie(cookie)
					for b.Loop() {
						w := httptest.NewRecorder()
						c.ServeHTTP(w, req)
						if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
							b.Fatalf("%s: %d\n%.500s", p.path, w.Code, w.Body.String())
						}
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
				})
			}
		})
	}
}

// openSpoolAndStore migrates the database at dsn and makes an Admin over an
// empty spool: what a console reads and acts through.
func openSpoolAndStore(tb testing.TB, dsn string) (*router.Store, *router.Journal, *router.Admin) {
	tb.Helper()
	store, err := router.OpenStore(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	j := router.NewJournal(store)
	admin, err := router.NewAdmin(router.Config{Spool: tb.TempDir(), SMSCNumber: "9001", Location: time.UTC}, j)
	if err != nil {
		tb.Fatal(err)
	}
	return store, j, admin
}

// benchConsole is a console over a migrated database, with an admin's
// session cookie.
func benchConsole(tb testing.TB, dsn string) (*Console, *router.Journal, *http.Cookie) {
	tb.Helper()
	store, j, admin := openSpoolAndStore(tb, dsn)
	hash, err := HashPassword("bench-password")
	if err != nil {
		tb.Fatal(err)
	}
	c, err := New(Config{Users: []User{{Name: "bench", PasswordHash: hash, Role: RoleAdmin}}, Store: store, Journal: j, Admin: admin,
		Submit: func(context.Context, string, string, string) (string, error) {
			return "", fmt.Errorf("not in the benchmark")
		},
		Location: time.UTC})
	if err != nil {
		tb.Fatal(err)
	}
	s := c.sessions.start("bench", RoleAdmin)
	return c, j, &http.Cookie{Name: sessionCookie, Value: s.id}
}
