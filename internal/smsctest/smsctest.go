// Package smsctest runs the independent SMSC the tests talk to: the npm smpp
// package's server, scripted by mobile/smpp/testdata/smsc.js, as a real node
// process. A test commands it with one JSON object per line (see the script's
// header) and reads the events it prints. The mobile/smpp tests and the
// end-to-end tests of the binary share it. Tests skip when node or the npm
// package is missing; .ci/run installs both.
package smsctest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/mobile/smstext"
)

// Script is the path of smsc.js, found beside this package's source.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "mobile", "smpp", "testdata", "smsc.js")
}

// SMSC is one running node SMSC.
type SMSC struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Port   int
	mu     sync.Mutex
	events []map[string]any
	notify chan struct{}
	// Timeout bounds Wait; default 10s.
	Timeout time.Duration
	stop    sync.Once
}

// Start runs the SMSC on a free loopback port; extra are its arguments
// (--tls KEY CERT). It stops when the test ends.
func Start(t testing.TB, extra ...string) *SMSC {
	t.Helper()
	return StartOn(t, 0, extra...)
}

// StartOn is Start on a given port (0: any), to bring an SMSC back where a
// stopped one was.
func StartOn(t testing.TB, port int, extra ...string) *SMSC {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (.ci/run installs nodejs)")
	}
	script := Script()
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "smpp")); err != nil {
		t.Skip("npm smpp not installed: run npm ci in mobile/smpp/testdata (.ci/run does)")
	}
	s := &SMSC{t: t, notify: make(chan struct{}, 1), Timeout: 10 * time.Second}
	s.cmd = exec.Command(node, append([]string{script, "--port", fmt.Sprint(port)}, extra...)...)
	s.cmd.Stderr = os.Stderr
	s.stdin, _ = s.cmd.StdinPipe()
	out, _ := s.cmd.StdoutPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}()
	ev := s.Wait("listening", nil)
	s.Port = int(ev["port"].(float64))
	return s
}

// Stop ends the SMSC (its connections with it) and waits for it to exit.
func (s *SMSC) Stop() {
	s.stop.Do(func() {
		s.stdin.Close()
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
}

// Addr is the SMSC's host:port.
func (s *SMSC) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Send gives the SMSC one command.
func (s *SMSC) Send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("smsc command: %v", err)
	}
}

// Wait returns the first event named ev that match accepts and that no
// earlier Wait returned, failing the test after Timeout.
func (s *SMSC) Wait(ev string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	e, ok := s.WaitFor(ev, match, s.Timeout)
	if !ok {
		s.t.Fatalf("no %q event from the SMSC in %v", ev, s.Timeout)
	}
	return e
}

// WaitFor is Wait with a limit of its own that reports a timeout instead of
// failing the test.
func (s *SMSC) WaitFor(ev string, match func(map[string]any) bool, limit time.Duration) (map[string]any, bool) {
	deadline := time.After(limit)
	for {
		s.mu.Lock()
		for i, e := range s.events {
			if e["ev"] == ev && e["_taken"] == nil && (match == nil || match(e)) {
				s.events[i]["_taken"] = true
				s.mu.Unlock()
				return e, true
			}
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return nil, false
		}
	}
}

// All returns every event named ev so far.
func (s *SMSC) All(ev string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, e := range s.events {
		if e["ev"] == ev {
			out = append(out, e)
		}
	}
	return out
}

// Count asks the SMSC how many submit_sm it has seen.
func (s *SMSC) Count() int {
	s.Send(map[string]any{"cmd": "count"})
	ev := s.Wait("count", nil)
	return Num(ev, "submits")
}

// WaitCount polls the SMSC until it has seen want submit_sm in all.
func (s *SMSC) WaitCount(want int, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if s.Count() >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("the SMSC did not see %d submits in %v", want, limit)
}

// Num reads a number field of an event.
func Num(ev map[string]any, k string) int {
	f, _ := ev[k].(float64)
	return int(f)
}

// Kannel is Debian's Kannel (bearerbox + smsbox) bound to an SMSC as a second,
// independent ESME, taking texts through smsbox's sendsms HTTP interface.
type Kannel struct {
	t        testing.TB
	sendPort int
}

// StartKannel runs Kannel bound to s with a window of window submits,
// waits until smsbox answers and the warm-up text reached s, and stops it
// when the test ends. It skips the test where Kannel is not installed.
func StartKannel(t testing.TB, s *SMSC, window int) *Kannel {
	t.Helper()
	bearerbox, err := exec.LookPath("bearerbox")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/bearerbox"); serr != nil {
			t.Skip("kannel not installed (.ci/run installs it)")
		}
		bearerbox = "/usr/sbin/bearerbox"
	}
	smsbox := filepath.Join(filepath.Dir(bearerbox), "smsbox")
	dir := t.TempDir()
	admin, boxPort, sendPort := FreePort(t), FreePort(t), FreePort(t)
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
max-pending-submits = %d
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
`, admin, boxPort, dir, s.Port, window, boxPort, sendPort, dir)
	confFile := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{bearerbox, smsbox} {
		cmd := exec.Command(bin, confFile)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		if bin == bearerbox {
			s.Wait("bind", nil)
		}
	}
	k := &Kannel{t: t, sendPort: sendPort}
	// smsbox listens a moment after it starts.
	for i := 0; ; i++ {
		if err := k.Send("100", "48600111222", "warm up"); err == nil {
			break
		} else if i > 100 {
			t.Fatalf("smsbox does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return k
}

// Send hands one text to smsbox's sendsms.
func (k *Kannel) Send(from, to, text string) error {
	q := url.Values{"username": {"bench"}, "password": {"bench"}, "from": {from}, "to": {to}, "text": {text}}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms?%s", k.sendPort, q.Encode()))
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

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Submit is one submit_sm as the SMSC reported it, its short message decoded.
type Submit struct {
	Source, Dest string
	Coding       int    // data_coding
	UDH          []byte // with its length octet; nil when none
	Text         string
	MessageID    string // what the SMSC answered, "" when it did not accept it
	Registered   bool   // registered_delivery asked for a receipt
}

// ParseSubmit decodes a "submit" event: GSM 7-bit (the npm package leaves the
// septets unpacked, one per octet, as SMPP carries them) or UCS-2.
func ParseSubmit(ev map[string]any) (Submit, error) {
	raw, err := hex.DecodeString(fmt.Sprint(ev["sm_hex"]))
	if err != nil {
		return Submit{}, err
	}
	if len(raw) == 0 {
		if raw, err = hex.DecodeString(fmt.Sprint(ev["payload_hex"])); err != nil {
			return Submit{}, err
		}
	}
	s := Submit{Source: fmt.Sprint(ev["source_addr"]), Dest: fmt.Sprint(ev["destination_addr"]), Coding: Num(ev, "data_coding"),
		Registered: Num(ev, "registered_delivery")&1 == 1}
	if id, ok := ev["message_id"].(string); ok {
		s.MessageID = id
	}
	if Num(ev, "esm_class")&0x40 != 0 && len(raw) > 0 {
		n := int(raw[0]) + 1
		if n > len(raw) {
			return Submit{}, fmt.Errorf("UDH length %d beyond %d octets", n, len(raw))
		}
		s.UDH, raw = raw[:n], raw[n:]
	}
	txt, _, err := smstext.Decode(byte(s.Coding), raw)
	if err != nil {
		return Submit{}, err
	}
	s.Text = txt
	return s, nil
}

// Concat returns the part's place from its UDH (8- or 16-bit reference).
func (s Submit) Concat() smstext.Concat {
	c, _, _ := smstext.ConcatFromUDH(s.UDH)
	return c
}

// Joined groups submits by destination and concatenation reference and
// returns each destination's texts, parts joined in order.
func Joined(subs []Submit) map[string][]string {
	type key struct {
		dest string
		ref  uint16
		n    int
	}
	groups := map[key][]Submit{}
	var order []key
	for i, s := range subs {
		c := s.Concat()
		k := key{s.Dest, c.Ref, c.Total}
		if !c.Valid() {
			k = key{s.Dest, 0, -i - 1} // a whole message of its own
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	out := map[string][]string{}
	for _, k := range order {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool { return g[i].Concat().Seq < g[j].Concat().Seq })
		var b strings.Builder
		for _, s := range g {
			b.WriteString(s.Text)
		}
		out[k.dest] = append(out[k.dest], b.String())
	}
	return out
}
