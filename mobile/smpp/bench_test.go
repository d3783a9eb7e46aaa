package smpp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSubmits is how many texts one benchmark iteration submits: enough for
// a rate, few enough for `make bench` on a small machine.
const benchSubmits = 5000

// waitCount polls the SMSC until it has seen want submit_sm in all.
func (s *smsc) waitCount(b testing.TB, want int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s.send(map[string]any{"cmd": "count"})
		ev := s.wait("count", nil)
		if num(ev, "submits") >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("the SMSC did not see %d submits in %v", want, limit)
}

// BenchmarkSubmit measures single-part submits per second to the node SMSC
// with a window of 10: the target is 1,000/s. BenchmarkSubmitKannel drives
// the same SMSC through Kannel for comparison.
func BenchmarkSubmit(b *testing.B) {
	s := startSMSC(b)
	s.send(map[string]any{"cmd": "quiet", "on": true})
	s.wait("quiet", nil)
	c := runClient(b, s, Config{Window: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Submit(ctx, Message{From: "100", To: "200", Text: "warm up"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 32 { // more submitters than slots: the window stays full
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= benchSubmits {
					if _, err := c.Submit(ctx, Message{From: "100", To: "+48600111222", Text: "benchmark text"}); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("%d submits failed", failed.Load())
		}
	}
	b.ReportMetric(float64(benchSubmits*b.N)/elapsed.Seconds(), "submits/s")
}

// BenchmarkSubmitKannel runs Debian's Kannel (bearerbox + smsbox) bound to
// the same node SMSC with max-pending-submits 10, and measures submits per
// second as the SMSC sees them, texts entering through smsbox's sendsms
// HTTP interface. It is skipped where Kannel is not installed.
func BenchmarkSubmitKannel(b *testing.B) {
	bearerbox, err := exec.LookPath("bearerbox")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/bearerbox"); serr != nil {
			b.Skip("kannel not installed (.ci/run installs it)")
		}
		bearerbox = "/usr/sbin/bearerbox"
	}
	smsbox := filepath.Join(filepath.Dir(bearerbox), "smsbox")
	s := startSMSC(b)
	s.send(map[string]any{"cmd": "quiet", "on": true})
	s.wait("quiet", nil)

	dir := b.TempDir()
	admin, boxPort, sendPort := freePort(b), freePort(b), freePort(b)
	conf := fmt.Sprintf(`group = core
admin-port = %d
admin-password = bench
smsbox-port = %d
log-file = "%s/bearerbox.log"
log-level = 2
sms-resend-retry = 0

group = smsc
smsc = smpp
smsc-id = node
host = 127.0.0.1
port = %d
transceiver-mode = true
smsc-username = smsrouter
smsc-password = secret
system-type = "VMA"
max-pending-submits = 10
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %d
sendsms-port = %d
log-file = "%s/smsbox.log"
log-level = 2

group = sendsms-user
username = bench
password = bench

group = sms-service
keyword = default
text = "unused"
`, admin, boxPort, dir, s.Port, boxPort, sendPort, dir)
	confFile := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, bin := range []string{bearerbox, smsbox} {
		cmd := exec.Command(bin, confFile)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		if bin == bearerbox {
			s.wait("bind", nil)
		}
	}
	send := func(text string) error {
		q := url.Values{"username": {"bench"}, "password": {"bench"}, "from": {"100"}, "to": {"48600111222"}, "text": {text}}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms?%s", sendPort, q.Encode()))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("sendsms: %s", resp.Status)
		}
		return nil
	}
	// smsbox listens a moment after it starts.
	for i := 0; ; i++ {
		if err := send("warm up"); err == nil {
			break
		} else if i > 100 {
			b.Fatalf("smsbox does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.waitCount(b, 1, 30*time.Second)
	b.ResetTimer()
	var elapsed time.Duration
	total := 1
	for range b.N {
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= benchSubmits {
					if err := send("benchmark text"); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d sendsms requests failed", failed.Load())
		}
		total += benchSubmits
		s.waitCount(b, total, 2*time.Minute)
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(benchSubmits*b.N)/elapsed.Seconds(), "submits/s")
}

func freePort(b testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
