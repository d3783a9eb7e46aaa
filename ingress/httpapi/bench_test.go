package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/router"
)

// apiBenchRequests is how many requests one benchmark iteration sends, so that
// `make bench` (-benchtime 1x) still measures a meaningful p99.
const (
	apiBenchRequests = 3000
	apiBenchClients  = 8
)

// BenchmarkSendAPI measures POST /v1/messages end to end: a real HTTP server on
// loopback, bearer authentication, JSON, and the message written into a real morx
// folder (router.SubmitTo: create, write, rename). Target: ≥ 3,000 req/s with
// p99 ≤ 10 ms.
//
// Two baselines are measured in the same run, on the same machine: http_floor
// is the same clients against a handler that does nothing, fs_floor is a bare
// create+write+rename loop in the same folder. The API cannot beat the smaller of
// the two; the spool=shm case (tmpfs, when /dev/shm exists) shows the API's own
// cost when the filesystem is not the bottleneck.
func BenchmarkSendAPI(b *testing.B) {
	spools := []struct{ name, dir string }{{"disk", b.TempDir()}}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "smsrouter-bench-"); err == nil {
			defer os.RemoveAll(d)
			spools = append(spools, struct{ name, dir string }{"shm", d})
		}
	}
	for _, sp := range spools {
		b.Run("spool="+sp.name, func(b *testing.B) { benchSendAPI(b, sp.dir) })
	}
}

func benchSendAPI(b *testing.B, morx string) {
	api, err := New(Config{
		Tokens: []string{token}, Rate: 1e9, Burst: 1e9,
		Submit: func(_ context.Context, m Message) (string, error) {
			return router.SubmitTo(morx, m.From, m.To, m.Text, time.Now())
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	var lat []time.Duration
	var elapsed, httpFloor, fsFloor time.Duration
	for range b.N {
		l, d := hammer(b, api)
		lat = append(lat, l...)
		elapsed += d
		b.StopTimer()
		_, f := hammer(b, noop)
		httpFloor += f
		fsFloor += createRenameLoop(b, morx, apiBenchRequests)
		b.StartTimer()
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q int) float64 { return float64(lat[min(len(lat)-1, len(lat)*q/100)].Microseconds()) / 1000 }
	n := float64(b.N * apiBenchRequests)
	b.ReportMetric(n/elapsed.Seconds(), "req/s")
	b.ReportMetric(p(50), "p50_ms")
	b.ReportMetric(p(99), "p99_ms")
	b.ReportMetric(n/httpFloor.Seconds(), "http_floor_req/s")
	b.ReportMetric(n/fsFloor.Seconds(), "fs_floor_files/s")
}

// createRenameLoop is the filesystem work of one submission without anything
// else: create a file, write it, rename it.
func createRenameLoop(b *testing.B, dir string, n int) time.Duration {
	sub, err := os.MkdirTemp(dir, "floor-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(sub)
	data := []byte("oa=5551001\nda=5551002\nud=Benchmark message\n")
	start := time.Now()
	for i := range n {
		p := filepath.Join(sub, ".t"+strconv.Itoa(i))
		if err := os.WriteFile(p, data, 0o640); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(p, filepath.Join(sub, strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// hammer sends apiBenchRequests from apiBenchClients keep-alive clients and
// returns each request's latency and the wall time of the whole burst.
func hammer(b *testing.B, h http.Handler) ([]time.Duration, time.Duration) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: apiBenchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := `{"from":"5551001","to":"5551002","text":"Benchmark message"}`
	lat := make([]time.Duration, apiBenchRequests)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range apiBenchClients {
		wg.Go(func() {
			for i := c; i < apiBenchRequests; i += apiBenchClients {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", srv.URL+"/v1/messages", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start)
}
