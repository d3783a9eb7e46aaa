//go:build unix

package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smsrouter/router"
)

// needFiles makes sure this process may hold n open files, raising the soft
// limit up to the hard one if it must.
func needFiles(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("the test holds %d connections: open-file limit %d/%d is too low (raise the hard limit: ulimit -Hn)", n, lim.Cur, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// holdIdle opens n connections to addr that never send a byte and keeps them
// until the test ends.
func holdIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d idle connections could not be opened", f, n)
	}
	return conns
}

// floodServe runs `smsrouter serve` in this process with the send API on
// apiAddr, the metrics on their own port and extra config, and returns the
// serveInProcess runs the real serve with conf in this process until the test
// ends, and returns its log.
func serveInProcess(t *testing.T, conf string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", conf}, io.Discard, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d\n%s", code, out.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return out
}

// metrics URL once the API answers.
func floodServe(t *testing.T, apiAddr, extra string) (metricsURL string) {
	t.Helper()
	metricsAddr := closedPort(t)
	b := newBed(t, "", "", router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"})
	secrets := filepath.Join(b.root, "secrets.toml")
	writeFile(t, secrets, []byte("tokens = [\"0123456789abcdef-secret\"]\n"))
	os.Chmod(secrets, 0o600)
	b.writeConfig("[http]\nlisten = \"" + apiAddr + "\"\nsecrets_file = \"" + secrets + "\"\n" + extra +
		"[metrics]\nlisten = \"" + metricsAddr + "\"\n")
	out := serveInProcess(t, b.conf)
	for i := 0; ; i++ {
		if code, _, err := post(apiAddr); err == nil && code == http.StatusAccepted {
			break
		}
		if i == 200 {
			t.Fatalf("the API never answered\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + metricsAddr + "/metrics"
}

// post queues one message over the API on a fresh connection.
func post(addr string) (code int, took time.Duration, err error) {
	start := time.Now()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/messages", strings.NewReader(`{"from":"5550001","to":"5551001","text":"through the flood"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer 0123456789abcdef-secret")
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// metricValue reads one sample from a scrape, -1 when it is missing.
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	body := get(t, url, 200)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitMetric(t *testing.T, url, series string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := metricValue(t, url, series)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 30 s", series, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHTTPFloodIdleConnections is issue 12 item 6 for the send API: with 2,000
// connections held open that never send a byte, a POST /v1/messages is still
// answered promptly. The bound is generous (a loaded 2-core machine); the
// measured latency is printed.
func TestHTTPFloodIdleConnections(t *testing.T) {
	const idle = 2000
	needFiles(t, 2*idle+512)
	apiAddr := closedPort(t)
	// The idle connections must still be open during the POSTs however slowly
	// they were opened: this is about serving, not the first-bytes deadline.
	metrics := floodServe(t, apiAddr, "header_timeout = \"1m\"\n")
	start := time.Now()
	holdIdle(t, apiAddr, idle)
	waitMetric(t, metrics, `smsrouter_connections_open{listener="http"}`, func(v float64) bool { return v >= idle })
	t.Logf("%d idle connections open after %v", idle, time.Since(start).Round(time.Millisecond))
	for i := range 5 {
		code, took, err := post(apiAddr)
		t.Logf("POST %d answered %d in %v with %d idle connections held", i+1, code, took.Round(time.Microsecond), idle)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("POST %d: %d %v", i+1, code, err)
		}
		if took > 5*time.Second {
			t.Errorf("POST %d took %v behind %d idle connections", i+1, took, idle)
		}
	}
	if v := metricValue(t, metrics, `smsrouter_connections_turned_away_total{listener="http",reason="refused"}`); v != 0 {
		t.Errorf("%v connections refused under the default cap", v)
	}
}

// TestListenerCapsInMetrics: over the [http] and [agi] caps a connection is
// turned away at once (HTTP with a 503) and counted in the metrics.
func TestListenerCapsInMetrics(t *testing.T) {
	const maxConns = 10
	apiAddr, agiAddr := closedPort(t), closedPort(t)
	metrics := floodServe(t, apiAddr, "max_conns = 10\nheader_timeout = \"1m\"\n[agi]\nlisten = \""+agiAddr+"\"\nmax_conns = 10\nenv_timeout = \"1m\"\n")

	held := holdIdle(t, apiAddr, maxConns)
	// The gauge counts the metrics port's connections too (the same server).
	waitMetric(t, metrics, `smsrouter_connections_open{listener="http"}`, func(v float64) bool { return v >= maxConns })
	over, err := net.Dial("tcp", apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	over.Write([]byte("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("connection over the cap: %v (want a 503)", err)
	}
	resp.Body.Close()
	t.Logf("connection over the cap answered %d after %v", resp.StatusCode, time.Since(start).Round(time.Microsecond))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d %v, want 503 with Retry-After", resp.StatusCode, resp.Header)
	}
	waitMetric(t, metrics, `smsrouter_connections_turned_away_total{listener="http",reason="refused"}`, func(v float64) bool { return v == 1 })
	// One place freed: the API answers again.
	held[0].Close()
	waitMetric(t, metrics, `smsrouter_connections_open{listener="http"}`, func(v float64) bool { return v < maxConns+1 })
	if code, _, err := post(apiAddr); err != nil || code != http.StatusAccepted {
		t.Errorf("after a connection closed: %d %v", code, err)
	}

	// FastAGI: the same cap, counted under listener="agi".
	holdIdle(t, agiAddr, maxConns)
	waitMetric(t, metrics, `smsrouter_connections_open{listener="agi"}`, func(v float64) bool { return v == maxConns })
	extra, err := net.Dial("tcp", agiAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("FastAGI connection over the cap: read %d, %v; want it closed at once", n, err)
	}
	waitMetric(t, metrics, `smsrouter_connections_turned_away_total{listener="agi",reason="refused"}`, func(v float64) bool { return v == 1 })
	if v := metricValue(t, metrics, `smsrouter_connections_turned_away_total{listener="agi",reason="busy"}`); v != 0 {
		t.Errorf("busy = %v", v)
	}
}

// TestHTTPFirstBytesTimeout: connections that send nothing are closed at
// header_timeout and counted; one that asks in time is served.
func TestHTTPFirstBytesTimeout(t *testing.T) {
	apiAddr := closedPort(t)
	metrics := floodServe(t, apiAddr, "header_timeout = \"300ms\"\n")
	held := holdIdle(t, apiAddr, 5)
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("silent connection not closed by the server: %v", err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("closed only after %v", d)
		}
	}
	waitMetric(t, metrics, `smsrouter_connections_turned_away_total{listener="http",reason="timeout"}`, func(v float64) bool { return v == 5 })
	if code, _, err := post(apiAddr); err != nil || code != http.StatusAccepted {
		t.Errorf("after the timeouts: %d %v", code, err)
	}
	if v := metricValue(t, metrics, `smsrouter_connections_turned_away_total{listener="http",reason="timeout"}`); v != 5 {
		t.Errorf("a served request was counted as a timeout: %v", v)
	}
}
