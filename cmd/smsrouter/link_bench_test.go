package main

// Speed of the mobile link, on the real binary (make bench, E2E list):
//
//	go test -run '^$' -bench 'Link' -benchtime 1x ./cmd/smsrouter/
//
// BenchmarkLinkSubmit: messages queued in serve's inbox leave through an SMPP
// link (window 10) to the node SMSC, beside the same number of texts through
// Kannel to another node SMSC in the same run. BenchmarkLinkMOLatency: a
// deliver_sm to a PBX SMS phone until its mttx file is in place, beside the
// same message dropped into sms/morx as Asterisk's SMS() would.

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"smsrouter/internal/smsctest"
	"smsrouter/router"
)

// benchServe is serve on a fresh spool (under SMSROUTER_BENCH_DIR when set)
// with the embedded SQLite directory and extra configuration.
type benchServe struct {
	spool, conf, work string
	cmd               *exec.Cmd
	out               *syncBuffer
}

func startBenchServe(b *testing.B, extra string, entries ...router.Entry) *benchServe {
	b.Helper()
	root, err := os.MkdirTemp(os.Getenv("SMSROUTER_BENCH_DIR"), "smsrouter-linkbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	s := &benchServe{spool: filepath.Join(root, "spool"), conf: filepath.Join(root, "smsrouter.toml"), out: &syncBuffer{}}
	s.work = filepath.Join(s.spool, "smsrouter")
	for _, d := range []string{filepath.Join(s.spool, "sms", "morx"), filepath.Join(s.spool, "outgoing")} {
		if err := os.MkdirAll(d, 0o770); err != nil {
			b.Fatal(err)
		}
	}
	conf := fmt.Sprintf("spool = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n%s\n", s.spool, extra)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(binPath, "migrate", "--config", s.conf).CombinedOutput(); err != nil {
		b.Fatalf("migrate: %v\n%s", err, out)
	}
	store, err := router.OpenStore("sqlite:" + filepath.Join(s.work, "smsrouter.db"))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if err := store.Set(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	store.Close()
	s.start(b)
	return s
}

// start runs serve until stop or the end of the benchmark.
func (s *benchServe) start(b *testing.B) {
	b.Helper()
	s.cmd = exec.Command(binPath, "serve", "--config", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	cmd := s.cmd
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
}

// stop ends serve with SIGTERM and waits for it.
func (s *benchServe) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// BenchmarkLinkSubmit reports submits/s through smsrouter's SMPP link with a
// window of 10 (issue 14's target: ≥ 1,000/s), with the configuration's
// defaults otherwise ([queue] sync on): a backlog of queued messages, from
// serve's start to the SMSC's last submit_sm (claim, route, submit, journal).
// Beside it, kannel_submits/s: Kannel bound to the same kind of SMSC with
// max-pending-submits 10, texts entering through its sendsms as fast as 32
// clients give them, and the ratio of the two.
func BenchmarkLinkSubmit(b *testing.B) {
	const n = 3000
	s := smsctest.Start(b)
	s.Timeout = 2 * time.Minute
	s.Send(map[string]any{"cmd": "quiet", "on": true})
	s.Wait("quiet", nil)
	srv := startBenchServe(b, fmt.Sprintf(`
[queue]
parallel = 32
[log]
level = "warn"
[[link]]
name = "operator"
kind = "smpp"
number = "+48221234567"
addr = %q
system_id = "smsrouter"
password = "secret"
window = 10
[[route]]
link = "operator"
`, s.Addr()))
	s.Wait("bind", nil)
	srv.stop()

	ks := smsctest.Start(b)
	ks.Timeout = 2 * time.Minute
	ks.Send(map[string]any{"cmd": "quiet", "on": true})
	ks.Wait("quiet", nil)
	k := smsctest.StartKannel(b, ks, 10)
	ks.WaitCount(1, 30*time.Second) // the warm-up text

	inbox := router.InboxDir(srv.work)
	var ours, theirs time.Duration
	total := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i := range n {
			if _, err := router.SubmitTo(inbox, "1001", fmt.Sprintf("+486%08d", i), "benchmark text through the link", time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		total += n
		start := time.Now()
		srv.start(b)
		waitCountOr(b, s, total, srv.out)
		ours += time.Since(start)
		srv.stop()

		start = time.Now()
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for i := next.Add(1); i <= n; i = next.Add(1) {
					if err := k.Send("1001", fmt.Sprintf("486%08d", i), "benchmark text through kannel"); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d sendsms requests failed", failed.Load())
		}
		ks.WaitCount(total+1, 2*time.Minute)
		theirs += time.Since(start)
	}
	b.StopTimer()
	rate := float64(total) / ours.Seconds()
	krate := float64(total) / theirs.Seconds()
	b.ReportMetric(rate, "submits/s")
	b.ReportMetric(krate, "kannel_submits/s")
	b.ReportMetric(rate/krate, "ratio")
}

func waitCountOr(b *testing.B, s *smsctest.SMSC, want int, out *syncBuffer) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if s.Count() >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("the SMSC did not see %d submits\n%s", want, out.String())
}

// BenchmarkLinkMOLatency reports the time from a deliver_sm leaving the SMSC
// to the PBX SMS phone's mttx file being in place (mo_p50_ms, mo_p99_ms), and
// beside it the same for a message Asterisk's SMS() drops into sms/morx
// (morx_p50_ms, morx_p99_ms): the difference is what the link adds. Messages
// go one at a time, each after the previous one arrived.
func BenchmarkLinkMOLatency(b *testing.B) {
	const samples = 200
	s := smsctest.Start(b)
	srv := startBenchServe(b, fmt.Sprintf(`
[log]
level = "warn"
[[link]]
name = "operator"
kind = "smpp"
number = "+48221234567"
inbound = "1001"
addr = %q
system_id = "smsrouter"
password = "secret"
`, s.Addr()), router.Entry{Number: "1001", Letter: 'S', Extension: "PJSIP/1001"})
	s.Wait("bind", nil)
	time.Sleep(100 * time.Millisecond)
	mttx := filepath.Join(srv.spool, "sms", "mttx")
	morx := filepath.Join(srv.spool, "sms", "morx")
	w, err := fsnotify.NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if err := os.MkdirAll(mttx, 0o770); err != nil {
		b.Fatal(err)
	}
	if err := w.Add(mttx); err != nil {
		b.Fatal(err)
	}
	// arrived waits for an mttx file whose text holds tag.
	arrived := func(tag string) {
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev := <-w.Events:
				if ev.Op&(fsnotify.Create|fsnotify.Rename) == 0 {
					continue
				}
				data, err := os.ReadFile(ev.Name)
				if err == nil && bytes.Contains(data, []byte(tag)) {
					return
				}
			case err := <-w.Errors:
				b.Fatal(err)
			case <-deadline:
				b.Fatalf("%q never arrived\n%s", tag, srv.out.String())
			}
		}
	}
	// Text in hex (ud#) as the router writes it: look for the tag's hex.
	hexTag := func(tag string) string {
		var sb strings.Builder
		for _, r := range tag {
			fmt.Fprintf(&sb, "%02X", r)
		}
		return sb.String()
	}
	var mo, mx []time.Duration
	b.ResetTimer()
	for it := range b.N {
		for i := range samples {
			tag := fmt.Sprintf("mo%d-%04d", it, i)
			start := time.Now()
			s.Send(map[string]any{"cmd": "deliver", "source": "48600999888", "dest": "48221234567",
				"sm_hex": hex.EncodeToString([]byte("latency " + tag))})
			arrived(hexTag(tag))
			mo = append(mo, time.Since(start))

			tag = fmt.Sprintf("mx%d-%04d", it, i)
			name := fmt.Sprintf("1002.%s-%d", time.Now().UTC().Format("2006-01-02T15:04:05"), i)
			body := fmt.Sprintf("oa=1002\nda=1001\nscts=%s\nud=latency %s\n", time.Now().UTC().Format("2006-01-02T15:04:05"), tag)
			start = time.Now()
			tmp := filepath.Join(morx, "."+name)
			if err := os.WriteFile(tmp, []byte(body), 0o640); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(morx, name)); err != nil {
				b.Fatal(err)
			}
			arrived(hexTag(tag))
			mx = append(mx, time.Since(start))
			// Asterisk takes the files and the call away.
			consume(b, mttx)
			consume(b, filepath.Join(srv.spool, "outgoing"))
		}
	}
	b.StopTimer()
	slices.Sort(mo)
	slices.Sort(mx)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(mo[len(mo)/2]), "mo_p50_ms")
	b.ReportMetric(ms(mo[len(mo)*99/100]), "mo_p99_ms")
	b.ReportMetric(ms(mx[len(mx)/2]), "morx_p50_ms")
	b.ReportMetric(ms(mx[len(mx)*99/100]), "morx_p99_ms")
}
