package main

// The one-shot `drain` is what the dialplan's System() pays after every received
// SMS, so its latency is measured on the real binary, started as Asterisk starts
// it. Issue 2's target is ≤ 10 ms per run with one message queued; the cost of
// merely starting the binary (`smsrouter version`) is measured in the same loop, so
// that the difference shows what smsrouter itself adds.
//
//	go test -run '^$' -bench OneShot -benchtime 1x ./cmd/smsrouter/

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smsrouter/router"
)

// BenchmarkOneShotDrain runs `smsrouter drain` with one morx file present, many
// times per iteration (each iteration takes `samples` paired runs, so that
// -benchtime 1x still yields a median), against an embedded SQLite directory of a
// thousand numbers. Between runs the files drain wrote are removed, as Asterisk
// consumes them, so every run places a fresh call file.
func BenchmarkOneShotDrain(b *testing.B) {
	const samples = 40
	bin := buildAsShipped(b)
	for _, syncFiles := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%v", syncFiles), func(b *testing.B) {
			root := b.TempDir()
			spool := filepath.Join(root, "spool")
			morx := filepath.Join(spool, "sms", "morx")
			for _, d := range []string{morx, filepath.Join(spool, "outgoing")} {
				if err := os.MkdirAll(d, 0o770); err != nil {
					b.Fatal(err)
				}
			}
			conf := filepath.Join(root, "smsrouter.toml")
			toml := fmt.Sprintf("spool = %q\ndb = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n\n[queue]\nsync = %v\n",
				spool, "sqlite:"+filepath.Join(root, "smsrouter.db"), syncFiles)
			if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
				b.Fatal(err)
			}
			seedDirectory(b, "sqlite:"+filepath.Join(root, "smsrouter.db"))

			var drains, starts []time.Duration
			b.StopTimer() // the runs are timed by hand; setup between them is not
			sent := 0     // numbers every message's text: a repeat would be a phone's resend (duplicate guard)
			for range b.N {
				for i := range samples {
					sent++
					starts = append(starts, timeRun(b, bin, "version"))
					ts := time.Now().Format("2006-01-02T15:04:05") // app_sms writes local time
					name := fmt.Sprintf("5550%03d.%s-%d", i%1000, ts, i)
					body := fmt.Sprintf("oa=5550%03d\nda=5552%03d\nud=Hello from an FSK phone, message %d\nscts=%s\nmr=%d\n",
						i%1000, i%1000, sent, ts, i%256)
					if err := os.WriteFile(filepath.Join(morx, name), []byte(body), 0o640); err != nil {
						b.Fatal(err)
					}
					drains = append(drains, timeRun(b, bin, "drain", "-q", "--config", conf))
					if n := consume(b, filepath.Join(spool, "outgoing")); n != 1 {
						b.Fatalf("run %d: %d call files, want 1", i, n)
					}
					consume(b, filepath.Join(spool, "sms", "mttx"))
				}
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			slices.Sort(drains)
			slices.Sort(starts)
			// ns/op is the mean drain run, timed by hand; the rest is in the metrics.
			b.ReportMetric(float64(mean(drains).Nanoseconds()), "ns/op")
			b.ReportMetric(ms(median(drains)), "drain_p50_ms")
			b.ReportMetric(ms(drains[len(drains)*9/10]), "drain_p90_ms")
			b.ReportMetric(ms(median(starts)), "version_p50_ms")
			b.ReportMetric(ms(median(drains)-median(starts)), "own_p50_ms")
		})
	}
}

// BenchmarkStartup is what every run of the binary pays before it does any
// work: a bare Go program (hello world, built here by the same toolchain),
// `smsrouter version`, and a one-shot `drain` of an empty spool on the embedded
// SQLite directory, started in turn (bare, version, drain, bare, …) so that a
// machine whose speed drifts affects the three alike. Each figure is reported
// as its median and as the median of its ratios to the bare run beside it, in
// wall time and in CPU time (user+system, which load on a shared machine
// disturbs less). Issue 13 asks for drain ≤ 1.5× bare.
//
//	go test -run '^$' -bench Startup -benchtime 1x ./cmd/smsrouter/
func BenchmarkStartup(b *testing.B) {
	const samples = 60
	bin := buildAsShipped(b)
	bare := buildBare(b)
	_, _, conf := plainSetup(b)
	timeRun(b, bin, "migrate", "--config", conf)
	type run struct{ wall, cpu time.Duration }
	var bares, versions, drains []run
	measure := func(name string, args ...string) run {
		cmd := exec.Command(name, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
		}
		wall := time.Since(start)
		return run{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	}
	b.StopTimer() // the runs are timed by hand
	for range b.N {
		for range samples {
			bares = append(bares, measure(bare))
			versions = append(versions, measure(bin, "version"))
			drains = append(drains, measure(bin, "drain", "-q", "--config", conf))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	med := func(rs []run, f func(run) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return median(ds)
	}
	ratio := func(rs []run, f func(run) time.Duration) float64 {
		xs := make([]float64, len(rs))
		for i := range rs {
			xs[i] = float64(f(rs[i])) / float64(max(f(bares[i]), 1))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	wall := func(r run) time.Duration { return r.wall }
	cpu := func(r run) time.Duration { return r.cpu }
	b.ReportMetric(float64(med(drains, wall).Nanoseconds()), "ns/op")
	b.ReportMetric(ms(med(bares, wall)), "bare_p50_ms")
	b.ReportMetric(ms(med(versions, wall)), "version_p50_ms")
	b.ReportMetric(ms(med(drains, wall)), "drain_p50_ms")
	b.ReportMetric(ratio(versions, wall), "version/bare")
	b.ReportMetric(ratio(drains, wall), "drain/bare")
	b.ReportMetric(ratio(versions, cpu), "version/bare_cpu")
	b.ReportMetric(ratio(drains, cpu), "drain/bare_cpu")
}

// buildAsShipped builds the binary as `make build` does (static, no cgo).
func buildAsShipped(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "smsrouter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// buildBare builds the baseline: a Go program that prints one line, by the
// same toolchain and the same way.
func buildBare(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module bare\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "bare")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the bare program: %v\n%s", err, out)
	}
	return bin
}

// seedDirectory migrates a fresh SQLite file and puts a thousand senders and
// recipients in it, all letter S.
func seedDirectory(b *testing.B, dsn string) {
	b.Helper()
	ctx := context.Background()
	store, err := router.OpenStore(dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var q strings.Builder
	var args []any
	q.WriteString("INSERT INTO PBXNumbers (Account, Message, Extension) VALUES ")
	for i := range 1000 {
		for _, n := range []string{fmt.Sprintf("5550%03d", i), fmt.Sprintf("5552%03d", i)} {
			if len(args) > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?)")
			args = append(args, n, "S", "PJSIP/"+n)
		}
	}
	if _, err := store.DB.ExecContext(ctx, q.String(), args...); err != nil {
		b.Fatalf("seed directory: %v", err)
	}
}

// timeRun execs the binary and returns its wall time; a non-zero exit fails.
func timeRun(b *testing.B, bin string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return d
}

// consume removes every file in dir, as Asterisk does with what it picks up, and
// says how many there were.
func consume(b *testing.B, dir string) int {
	b.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
	return len(entries)
}

func median(sorted []time.Duration) time.Duration { return sorted[len(sorted)/2] }

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
