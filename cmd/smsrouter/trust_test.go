package main

// Real-binary tests of the queue under the faults a real PBX sees: a database that
// stalls for a minute while two processes work, a spool file written slowly, a
// protocol-2 phone, a message that waited past its validity, a hostile file name.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// serveProc is a running `smsrouter serve`.
type serveProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer safe to write from the process's pipe while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServe(t *testing.T, b *bed) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(binPath, "serve", "--config", b.conf), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends serve with SIGTERM, as systemd does, and waits for it.
func (p *serveProc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(90 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("serve did not stop within 90 s of SIGTERM\n%s", p.out.String())
		<-p.done
	}
}

// idle reports whether nothing waits anywhere in the spool: no incoming file, no
// deferred or held message, no undecided batch, nothing claimed.
func (b *bed) idle() bool {
	for _, rel := range []string{"sms/morx", "smsrouter/incoming", "smsrouter/deferred", "smsrouter/parts"} {
		if len(b.list(rel)) > 0 {
			return false
		}
	}
	if len(b.staged()) > 0 {
		return false
	}
	for _, owner := range b.list("smsrouter/claimed") {
		for _, name := range b.list(filepath.Join("smsrouter/claimed", owner)) {
			if name != ".lock" {
				return false
			}
		}
	}
	return true
}

// staged lists the staging folders that hold a batch: not a running serve's
// spare, whose manifest stays empty until a batch takes it.
func (b *bed) staged() []string {
	var out []string
	for _, name := range b.list("smsrouter/stage") {
		fi, err := os.Stat(filepath.Join(b.spool, "smsrouter/stage", name, "manifest.json"))
		if err == nil && fi.Size() == 0 {
			continue
		}
		out = append(out, name)
	}
	return out
}

// TestDatabaseStallsDuringDrainAndServe is promise 8: during a 10,000-message drain
// on MariaDB the database freezes (SIGSTOP of the server process) three times for
// 20 to 60 s at random moments, while a `serve` works on the same spool and drains
// keep being started as the dialplan would. Statements sent before a freeze are
// carried out when it ends, so commits land after their clients gave up on them.
// The messages arrive in four waves, one before each freeze, so that every freeze
// lands in the middle of work. Every message must be delivered exactly once, and
// nothing may be left staged.
func TestDatabaseStallsDuringDrainAndServe(t *testing.T) {
	n, stalls, minStall, maxStall := 10_000, 3, 20*time.Second, 60*time.Second
	if testing.Short() {
		n, minStall, maxStall = 2_000, 12*time.Second, 15*time.Second
	}
	srv := testdb.Private(t)
	b := newBed(t, srv.DSN, "[queue]\nretry_min = \"1s\"\nretry_max = \"5s\"\nrescan = \"1s\"\n", stdEntries...)
	wave := n / (stalls + 1)
	want := seedRange(t, b.morx, 0, wave)
	serve := startServe(t, b)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var drains sync.WaitGroup
	var drainRuns int
	var mu sync.Mutex
	drains.Go(func() {
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, binPath, "drain", "-q", "--config", b.conf)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			mu.Lock()
			drainRuns++
			mu.Unlock()
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) && ctx.Err() == nil {
				t.Errorf("drain failed: %v\n%s", err, out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	start := time.Now()
	var log []string
	for i := range stalls {
		// Freeze while the wave is being worked on.
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		d := minStall + time.Duration(rand.Int64N(int64(maxStall-minStall)+1))
		waiting := len(b.list("sms/morx"))
		if err := srv.Stall(); err != nil {
			t.Fatal(err)
		}
		log = append(log, fmt.Sprintf("stall %d at %v for %v with %d files waiting in morx",
			i+1, time.Since(start).Round(100*time.Millisecond), d.Round(time.Second), waiting))
		time.Sleep(d / 2)
		// Messages keep arriving while the database is frozen.
		for k, v := range seedRange(t, b.morx, (i+1)*wave, (i+2)*wave) {
			want[k] = v
		}
		time.Sleep(d - d/2)
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !b.idle() {
		if time.Now().After(deadline) {
			t.Fatalf("not done 5 minutes after the last stall: morx %d, deferred %d, stage %v\n%s",
				len(b.list("sms/morx")), len(b.list("smsrouter/deferred")), b.staged(), warnings(serve.out.String()))
		}
		time.Sleep(500 * time.Millisecond)
	}
	cancel()
	drains.Wait()
	serve.stop(t)
	if out, code := b.drain(context.Background()); code != 0 {
		t.Fatalf("final drain: exit %d\n%s", code, out)
	}
	b.checkExactlyOnce(want)
	mu.Lock()
	t.Logf("%d messages; %s; %d drains ran beside serve, done %v after the start",
		len(want), strings.Join(log, "; "), drainRuns, time.Since(start).Round(time.Second))
	mu.Unlock()
	if t.Failed() {
		t.Logf("serve's warnings:\n%s", warnings(serve.out.String()))
	}
}

// TestSlowWriter: a morx file written in five pieces, half a second apart, by a
// program that does not rename it into place, while serve runs: it is delivered
// once and whole, not parsed half-written.
func TestSlowWriter(t *testing.T) {
	b := newBed(t, "", "[queue]\nrescan = \"200ms\"\n", stdEntries...)
	serve := startServe(t, b)
	time.Sleep(300 * time.Millisecond) // serve is watching
	text := "a message an admin's script writes in pieces, slowly, without a rename"
	body := fmt.Sprintf("oa=5550001\nda=5551001\nud=%s\nscts=%s\n", text, time.Now().UTC().Format("2006-01-02T15:04:05"))
	f, err := os.Create(filepath.Join(b.morx, "5550001.slow-writer"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		piece := body[i*len(body)/5 : (i+1)*len(body)/5]
		if _, err := f.WriteString(piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	f.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !b.idle() || len(b.list("sms/mttx")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 20 s\n%s", serve.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything more would have come by now
	serve.stop(t)
	texts, _ := b.delivered()
	if len(texts) != 1 {
		t.Fatalf("delivered %q; want the one message once", texts)
	}
	for _, got := range texts {
		if got != text {
			t.Fatalf("delivered %q; want %q", got, text)
		}
	}
	for _, st := range b.journalStates() {
		if st != router.StateDelivered {
			t.Errorf("journal has a %s row: the half-written file was judged", st)
		}
	}
	if rej := b.list("smsrouter/rejected"); len(rej) > 0 {
		t.Errorf("rejected %v", rej)
	}
}

// TestProtocol2PhoneThroughDrain: a morx file as app_sms writes it for a protocol-2
// phone (SPEC §1.7: no oa=, the phone's UTF-8 bytes read as Latin-1) is delivered
// from the caller's number, the text repaired.
func TestProtocol2PhoneThroughDrain(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	now := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05")
	// "Zażółć" sent as UTF-8 bytes, each byte taken as one character and written
	// back as UTF-8 by app_sms.
	mangled := string([]rune{'Z', 'a', 0xC5, 0xBC, 0xC3, 0xB3, 0xC5, 0x82, 0xC4, 0x87})
	writeFile(t, filepath.Join(b.morx, "5550002."+now+"-7"), []byte("da=5551003\nud="+mangled+"\nscts="+now+"\nmr=0\n"))
	ageFiles(t, b.morx, 10*time.Second)
	if out, code := b.drain(context.Background()); code != 0 {
		t.Fatalf("drain: exit %d\n%s", code, out)
	}
	texts, queues := b.delivered()
	if len(texts) != 1 {
		t.Fatalf("delivered %q", texts)
	}
	for id, got := range texts {
		if got != "Zażółć" || queues[id] != "5551003" {
			t.Errorf("delivered %q to %s; want Zażółć to 5551003", got, queues[id])
		}
		rec, err := router.NewJournal(b.store).Get(context.Background(), id)
		if err != nil || rec.OA != "5550002" || !strings.Contains(rec.Detail, "protocol 2") {
			t.Errorf("journal %+v %v: want the caller as sender and where it came from", rec, err)
		}
	}
}

// TestValidityFromSCTSThroughDrain: a message that waited in morx past its validity
// period (counted from the SMS Centre's timestamp) is not delivered; the sender is
// told it expired.
func TestValidityFromSCTSThroughDrain(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	sent := time.Now().UTC().Add(-90 * time.Minute).Format("2006-01-02T15:04:05")
	writeFile(t, filepath.Join(b.morx, "5550001."+sent+"-1"), []byte("oa=5550001\nda=5551001\nud=too late\nscts="+sent+"\nvp=60\n"))
	b.drain(context.Background())
	b.drain(context.Background()) // the notice
	texts, queues := b.delivered()
	for id, text := range texts {
		if text == "too late" {
			t.Fatalf("delivered half an hour after its validity ended (id %s)", id)
		}
		if queues[id] != "5550001" || !strings.Contains(text, "expired") {
			t.Errorf("unexpected delivery %q to %s", text, queues[id])
		}
	}
	if len(texts) != 1 {
		t.Errorf("deliveries %q; want only the expiry notice to the sender", texts)
	}
}

// TestHostileNameCannotTakeAnID: a morx file named like one of smsrouter's own,
// carrying the id of a message already delivered, gets an id of its own; the
// delivered message's journal row is untouched.
func TestHostileNameCannotTakeAnID(t *testing.T) {
	ctx := context.Background()
	b := newBed(t, "", "", stdEntries...)
	out, errOut, code := b.run(ctx, "send", "--config", b.conf, "--from", "5550001", "--to", "5551001", "the real one")
	if code != 0 {
		t.Fatalf("send: %s", errOut)
	}
	id := strings.TrimSpace(out)
	if out, code := b.drain(ctx); code != 0 {
		t.Fatalf("drain: exit %d\n%s", code, out)
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05")
	writeFile(t, filepath.Join(b.morx, "5551002.smsrouter-"+id), []byte("oa=5550002\nda=5551002\nud=hostile\nscts="+now+"\n"))
	if out, code := b.drain(ctx); code != 0 {
		t.Fatalf("drain: exit %d\n%s", code, out)
	}
	rec, err := router.NewJournal(b.store).Get(ctx, id)
	if err != nil || rec.DA != "5551001" || rec.OA != "5550001" || rec.State != router.StateDelivered {
		t.Fatalf("journal row %s after the hostile file: %+v %v", id, rec, err)
	}
	texts, _ := b.delivered()
	if len(texts) != 2 {
		t.Fatalf("delivered %q; want both messages, each under its own id", texts)
	}
}
