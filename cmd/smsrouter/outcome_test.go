package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/internal/testdb"
)

// With [dialplan] outcome on, the binary's S call files start in
// [smsrouter-sms]; `smsrouter agi` records what the failed extension
// reports (a busy line) over FastAGI; `smsrouter evidence` reads it with the
// archived call file and retries by the busy rule, with its own delay.
func TestOutcomeContextsEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn, "", stdEntries...)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		b.writeConfig("[dialplan]\noutcome = true\n[agi]\nlisten = \"" + addr + "\"\n[sms]\narchive = true\nmax_retries = 1\n" +
			"[retry.busy]\ndelay = \"7m\"\nattempts = 1\n")
		ctx := context.Background()
		out, errOut, code := b.run(ctx, "send", "--config", b.conf, "--from", "5550001", "--to", "5551001", "busy here?")
		if code != 0 {
			t.Fatal(errOut)
		}
		id := strings.TrimSpace(out)
		if _, code := b.drain(ctx); code != 0 {
			t.Fatal("drain failed")
		}
		calls, _ := filepath.Glob(filepath.Join(b.outgoing, "*"))
		if len(calls) != 1 {
			t.Fatalf("calls %v", calls)
		}
		call, _ := os.ReadFile(calls[0])
		for _, want := range []string{"Context: smsrouter-sms\n", "Extension: s\n", "Priority: 1\n", "Setvar: SMSROUTER_ID=" + id + "\n",
			"Setvar: SMSROUTER_DATA=5551001,s\n", "Setvar: SMSROUTER_TRIES=2\n", "Archive: yes\n"} {
			if !strings.Contains(string(call), want) {
				t.Fatalf("call file lacks %q:\n%s", want, call)
			}
		}
		if strings.Contains(string(call), "Application:") {
			t.Fatalf("call file runs the application directly:\n%s", call)
		}

		// The FastAGI server alone, as a box without serve runs it.
		actx, stop := context.WithCancel(ctx)
		agiCmd := exec.CommandContext(actx, binPath, "agi", "--config", b.conf)
		if err := agiCmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stop(); agiCmd.Wait() }()
		var c net.Conn
		for deadline := time.Now().Add(10 * time.Second); ; {
			if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The failed extension's request: OutgoingSpoolFailed, REASON 5 (busy).
		env := "agi_network: yes\nagi_network_script: callresult\nagi_request: agi://" + addr + "/callresult\n" +
			"agi_channel: OutgoingSpoolFailed\nagi_language: en\nagi_type: OutgoingSpoolFailed\nagi_uniqueid: 1795239737.96\n" +
			"agi_version: 22.10.1\nagi_callerid: 9001\nagi_calleridname: SMS\nagi_callingpres: 0\nagi_callingani2: 0\n" +
			"agi_callington: 0\nagi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: smsrouter-sms\n" +
			"agi_extension: failed\nagi_priority: 1\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140502018688706\n" +
			"agi_arg_1: " + id + "\nagi_arg_2: 2\nagi_arg_3: 2\nagi_arg_4: dial\nagi_arg_5: 5\n\n"
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, env)
		if line, err := bufio.NewReader(c).ReadString('\n'); err != io.EOF || line != "" {
			t.Fatalf("the server should close without a command: %q %v", line, err)
		}
		c.Close()
		if _, err := os.Stat(filepath.Join(b.work, "callresults", id)); err != nil {
			t.Fatal(err)
		}

		// Asterisk archives the call (two attempts, captured tail).
		expired, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", "call", "spool-behaviour", "expire-1795239855.call"))
		if err != nil {
			t.Fatal(err)
		}
		tail := string(expired)[strings.Index(string(expired), "\nStartRetry:"):]
		os.MkdirAll(filepath.Join(b.spool, "outgoing_done"), 0o755)
		writeFile(t, filepath.Join(b.spool, "outgoing_done", filepath.Base(calls[0])), append(call, tail...))
		os.Remove(calls[0])
		before := time.Now()
		out, errOut, code = b.run(ctx, "evidence", "--config", b.conf)
		if code != 0 || !strings.Contains(out, "1 call outcomes recorded") || !strings.Contains(out, "1 failed calls carried on") {
			t.Fatalf("evidence: %d %s %s", code, out, errOut)
		}
		show, _, _ := b.run(ctx, "journal", "show", "--config", b.conf, id)
		if !strings.Contains(show, "busy: the line was busy") {
			t.Fatalf("journal show:\n%s", show)
		}
		entries, _ := os.ReadDir(filepath.Join(b.work, "deferred"))
		if len(entries) != 1 {
			t.Fatalf("deferred %v", entries)
		}
		var ms int64
		for _, c := range entries[0].Name()[:13] {
			ms = ms*10 + int64(c-'0')
		}
		if due := time.UnixMilli(ms); due.Before(before.Add(7*time.Minute-time.Second)) || due.After(time.Now().Add(7*time.Minute)) {
			t.Fatalf("retry due %v, want 7m (the busy rule) after %v", due, before)
		}
		if left, _ := os.ReadDir(filepath.Join(b.work, "callresults")); len(left) != 0 {
			t.Fatalf("results left %v", left)
		}
	})
}
