package main

// serve as a service, through the real binary: the same validation as doctor,
// SIGHUP reloads in the middle of a drain, a reload refused, a database that is
// down when serve starts.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/internal/smsctest"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// waitLog waits until serve's output contains want and returns the output.
func (p *serveProc) waitLog(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := p.out.String()
		if strings.Contains(out, want) {
			return out
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve ended (%v) before logging %q:\n%s", err, want, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log %q within %s:\n%s", want, within, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hup sends serve SIGHUP and waits for the outcome line of that reload.
func (p *serveProc) hup(t *testing.T, want string) string {
	t.Helper()
	n := strings.Count(p.out.String(), "reloading the configuration")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := p.out.String()
		if i := nthIndex(out, "reloading the configuration", n); i >= 0 {
			rest := out[i:]
			if strings.Contains(rest, "configuration reloaded") || strings.Contains(rest, "reload refused") {
				if !strings.Contains(rest, want) {
					t.Fatalf("the reload did not log %q:\n%s", want, rest)
				}
				return rest
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload outcome within a minute:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nthIndex is the index of the n-th (0-based) occurrence of sub, or -1.
func nthIndex(s, sub string, n int) int {
	off := 0
	for i := 0; ; i++ {
		j := strings.Index(s[off:], sub)
		if j < 0 {
			return -1
		}
		if i == n {
			return off + j
		}
		off += j + len(sub)
	}
}

// runDoctor runs `doctor` through the binary and returns its output, its exit
// code and its "config" failures.
func runDoctor(t *testing.T, conf string, extra ...string) (string, int, []string) {
	t.Helper()
	out, errOut, code := runBin(t, context.Background(), nil, append([]string{"doctor", "--config", conf}, extra...)...)
	var fails []string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "FAIL  config         "); ok {
			fails = append(fails, rest)
		}
	}
	return out + errOut, code, fails
}

// TestDoctorAndServeAgree is the table the issue asks for: every configuration
// that doctor passes starts serve (it reaches "serving"), and every one whose
// configuration doctor fails is refused by serve, exit 2, with the same
// reasons, word for word.
func TestDoctorAndServeAgree(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	loose := filepath.Join(b.root, "loose-secrets.toml")
	writeFile(t, loose, []byte("tokens = [\"0123456789abcdef0123\"]\n"))
	os.Chmod(loose, 0o644)
	private := filepath.Join(b.root, "secrets.toml")
	writeFile(t, private, []byte("tokens = [\"0123456789abcdef0123\"]\n"))
	os.Chmod(private, 0o600)
	font := "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
	// An AMI that takes the login and answers MessageSend without a recipient
	// as Asterisk does: doctor's probe of the T channel's user.
	amiSrv := amitest.NewServer(t, amitest.Login("smsrouter", "s3cret", func(s *amitest.Session, req ami.Packet) {
		_ = s.Send(amitest.Response(req, "Error", "Message", "To must be specified"))
	}))
	for _, c := range []struct {
		name  string
		toml  string
		flags []string // for doctor and serve alike
		bad   []string // what both must say; none: serve must start
	}{
		{name: "the bed's minimal configuration"},
		{name: "everything configured", toml: `
[queue]
rescan = "5s"
batch_size = 64
[notices]
unknown = "{{.To}}? No such number. ({{.From}})"
[fax]
resolution = "fine"
font_file = "` + font + `"
header = "{{.From}} {{.Date}} page {{.Page}}/{{.Pages}}"
[voice]
engine = "espeak-ng"
default_lang = "en"
[command]
[[command.rule]]
keyword = "PING"
action = "reply"
reply = "pong"
[sip]
ami_addr = "{{AMI}}"
username = "smsrouter"
secret = "s3cret"
[agi]
listen = "{{AGI}}"
[http]
listen = "{{HTTP}}"
secrets_file = "` + private + `"
[metrics]
listen = "{{HTTP}}"
[log]
level = "debug"
format = "json"
[dialplan]
smsc_exten = ["9000", "9002"]
`},
		{name: "the example configuration", flags: []string{"--spool", "{{SPOOL}}", "--db", "{{DB}}"}, toml: "{{EXAMPLE}}"},
		{name: "a fax resolution", toml: "[fax]\nresolution = \"ultra\"\n", bad: []string{"[fax] resolution"}},
		{name: "an SMSC number that is not one", toml: "{{SMSC}}smsc_number = \"nine-oh\"\n", bad: []string{"SMSC number"}},
		{name: "a short token", toml: "[http]\nlisten = \"{{HTTP}}\"\ntokens = [\"short\"]\n", bad: []string{"[http] token 1 is shorter than 16 characters"}},
		{name: "a missing secrets file", toml: "[http]\nlisten = \"{{HTTP}}\"\nsecrets_file = \"/nonexistent/secrets.toml\"\n", bad: []string{"http secrets_file"}},
		{name: "a secrets file others can read", toml: "[http]\nlisten = \"{{HTTP}}\"\nsecrets_file = \"" + loose + "\"\n", bad: []string{"readable by others"}},
		{name: "an HTTP API without credentials", toml: "[http]\nlisten = \"{{HTTP}}\"\n", bad: []string{"no tokens or users"}},
		{name: "a time zone", toml: "{{TZ}}timezone = \"Mars/Olympus_Mons\"\n", bad: []string{"timezone \"Mars/Olympus_Mons\""}},
		{name: "a notice that does not parse", toml: "[notices]\nunknown = \"{{.To\"\n", bad: []string{"notice unknown"}},
		{name: "a notice field that does not exist", toml: "[notices]\nexpired = \"{{.Sender}} expired\"\n", bad: []string{"notice expired"}},
		{name: "log settings", toml: "[log]\noutput = \"carrier-pigeon\"\nlevel = \"loud\"\n", bad: []string{`[log] output = "carrier-pigeon"`, `[log] level = "loud"`}},
		{name: "a SIP secret without a user", toml: "[sip]\nsecret = \"x\"\n", bad: []string{"secret given but no username"}},
		{name: "sent markers kept too briefly", toml: "[sip]\nusername = \"u\"\nsecret = \"x\"\nmarker_age = \"1h\"\n", bad: []string{"marker_age 1h0m0s is shorter"}},
		{name: "a speech timeout", toml: "[voice]\ntimeout = \"2m\"\n", bad: []string{"[voice] timeout 2m0s must be shorter"}},
		{name: "a relative recordings folder", toml: "[voice]\ndir = \"voice\"\n", bad: []string{"[voice] folder \"voice\" is not absolute"}},
		{name: "a command rule", toml: "[command]\n[[command.rule]]\nregex = \"(\"\naction = \"echo\"\n", bad: []string{"[command]"}},
		{name: "a FastAGI address", toml: "[agi]\nlisten = \"nonsense\"\n", bad: []string{"[agi] listen \"nonsense\""}},
		{name: "a metrics address", toml: "[metrics]\nlisten = \"nope\"\n", bad: []string{"[metrics] listen address \"nope\""}},
		{name: "a database kind", flags: []string{"--db", "postgres://localhost/x"}, bad: []string{"bad database DSN"}},
		{name: "a spool that is not there", flags: []string{"--spool", "/nonexistent/spool"}, bad: []string{"spool /nonexistent/spool is not a folder"}},
		{name: "a dialplan context", toml: "[dialplan]\nsmsc_context = \"sms centre\"\n", bad: []string{"[dialplan] context name \"sms centre\""}},
		{name: "a fax font", toml: "[fax]\nfont_file = \"/nonexistent/font.ttf\"\n", bad: []string{"[fax] font: open /nonexistent/font.ttf"}},
		{name: "a link without an address", toml: "[[link]]\nname = \"op\"\nkind = \"smpp\"\nnumber = \"+48221234567\"\n", bad: []string{`[[link]] "op": addr and system_id are required`}},
		{name: "a link's missing secrets file", toml: "[[link]]\nname = \"op\"\nkind = \"smpp\"\nnumber = \"+48221234567\"\naddr = \"127.0.0.1:1\"\nsystem_id = \"x\"\nsecrets_file = \"/nonexistent/link.toml\"\n",
			bad: []string{`[[link]] "op": secrets_file`}},
		{name: "a route to no link", toml: "[[route]]\nlink = \"nope\"\n", bad: []string{`[[route]] 1: link = "nope" names no [[link]]`}},
		{name: "several at once", toml: "{{SMSC}}smsc_number = \"x\"\n[fax]\nresolution = \"ultra\"\n[agi]\nlisten = \"nonsense\"\n",
			bad: []string{"SMSC number", "[fax] resolution", "[agi] listen"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fill := strings.NewReplacer("{{AGI}}", freePort(t), "{{HTTP}}", freePort(t), "{{SPOOL}}", b.spool, "{{DB}}", b.dsn, "{{AMI}}", amiSrv.Addr)
			conf := filepath.Join(t.TempDir(), "smsrouter.toml")
			text := fmt.Sprintf("spool = %q\ndb = %q\n", b.spool, b.dsn)
			if !strings.Contains(c.toml, "{{SMSC}}") {
				text += "smsc_number = \"9001\"\n"
			}
			if !strings.Contains(c.toml, "{{TZ}}") {
				text += "timezone = \"UTC\"\n"
			}
			text += strings.NewReplacer("{{SMSC}}", "", "{{TZ}}", "").Replace(c.toml)
			if c.toml == "{{EXAMPLE}}" {
				example, err := os.ReadFile(filepath.Join("..", "..", "smsrouter.example.toml"))
				if err != nil {
					t.Fatal(err)
				}
				text = string(example)
			}
			writeFile(t, conf, []byte(fill.Replace(text)))
			var flags []string
			for _, f := range c.flags {
				flags = append(flags, fill.Replace(f))
			}

			docOut, docCode, fails := runDoctor(t, conf, flags...)
			if len(c.bad) == 0 {
				if len(fails) > 0 || docCode != exitOK {
					t.Fatalf("doctor: exit %d, config failures %q\n%s", docCode, fails, docOut)
				}
			} else {
				if docCode == exitOK {
					t.Fatalf("doctor passed it:\n%s", docOut)
				}
				for _, want := range c.bad {
					if !containsAny(fails, want) {
						t.Errorf("doctor's config failures %q lack %q\n%s", fails, want, docOut)
					}
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p := startServeArgs(t, append([]string{"serve", "--config", conf}, flags...)...)
			if len(c.bad) == 0 {
				p.waitLog(t, "serving", 20*time.Second) // msg=serving, or "msg":"serving" in JSON
				p.stop(t)
				if code := p.cmd.ProcessState.ExitCode(); code != exitOK {
					t.Fatalf("serve exit %d after SIGTERM:\n%s", code, p.out.String())
				}
				return
			}
			select {
			case <-p.done:
			case <-ctx.Done():
				t.Fatalf("serve did not refuse the configuration:\n%s", p.out.String())
			}
			out := p.out.String()
			if code := p.cmd.ProcessState.ExitCode(); code != exitUsage {
				t.Fatalf("serve exit %d, want %d:\n%s", code, exitUsage, out)
			}
			// Word for word: each config failure doctor lists is a line of serve's.
			for _, f := range fails {
				if !strings.Contains(out, "smsrouter: "+f+"\n") {
					t.Errorf("serve did not say %q:\n%s", f, out)
				}
			}
			if strings.Contains(out, "msg=serving") {
				t.Errorf("serve went on serving:\n%s", out)
			}
		})
	}
	// A file that does not parse: both exit 2, saying where.
	conf := filepath.Join(t.TempDir(), "broken.toml")
	writeFile(t, conf, []byte("spool = \n"))
	docOut, docCode, _ := runDoctor(t, conf)
	_, serveErr, serveCode := runBin(t, context.Background(), nil, "serve", "--config", conf)
	if docCode != exitUsage || serveCode != exitUsage || !strings.Contains(docOut, conf) || !strings.Contains(serveErr, conf) {
		t.Errorf("unparseable config: doctor %d, serve %d\n%s\n%s", docCode, serveCode, docOut, serveErr)
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// startServeArgs is startServe with any arguments.
func startServeArgs(t *testing.T, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = newCmd(args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// notices reads the notices (messages from the SMS Centre, 9001) waiting in
// sms/mttx: their ids and texts.
func (b *bed) notices() map[string]string {
	b.t.Helper()
	out := map[string]string{}
	texts, _ := b.delivered()
	entries, _ := os.ReadDir(b.mttx)
	for _, e := range entries {
		m := mttxName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.mttx, e.Name()))
		if err != nil {
			b.t.Fatal(err)
		}
		if msg, err := smsq.Parse(data, time.UTC); err == nil && msg.OA == "9001" {
			out[m[2]] = texts[m[2]]
		}
	}
	return out
}

// TestReloadDuringDrain: SIGHUP with a new notice text while serve drains
// 5,000 messages, a quarter of them to an unknown number. Every message is
// handled exactly once, every unknown one gets exactly one notice, the notices
// written before the reload took effect have the old text and every one after
// it the new text. Then a broken configuration on SIGHUP is refused with the
// reason in the log, and serve goes on routing with the configuration in force.
func TestReloadDuringDrain(t *testing.T) {
	const n = 5000
	b := newBed(t, "", "", stdEntries...)
	// 1250 notices to two senders: far more than the loop guard lets through.
	const noLoopGuard = "[guards]\npair_limit = -1\n"
	b.writeConfig(noLoopGuard + "[notices]\nunknown = \"OLD: {{.To}} does not exist.\"\n")
	// Every fourth message goes to a number nobody has.
	want := map[string]bool{}
	unknown := map[string]bool{}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range n {
		oa := []string{"5550001", "5550002"}[i%2]
		da := []string{"5551001", "5551002", "5551003", "5559999"}[i%4]
		text := fmt.Sprintf("message %04d", i)
		if da == "5559999" {
			unknown[text] = true
		} else {
			want[text] = true
		}
		writeFile(t, filepath.Join(b.morx, fmt.Sprintf("%s.%d", oa, i)),
			fmt.Appendf(nil, "oa=%s\nda=%s\nud=%s\nscts=%s\n", oa, da, text, base.Format("2006-01-02T15:04:05")))
	}
	p := startServe(t, b)
	p.waitLog(t, "msg=serving", 20*time.Second)
	// Wait for some progress, then reload with a new text.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if len(b.list("sms/mttx")) >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress:\n%s", p.out.String())
		}
	}
	b.writeConfig(noLoopGuard + "[notices]\nunknown = \"NEW: {{.To}} is unknown here.\"\n")
	p.hup(t, "changed=notices")
	for deadline := time.Now().Add(5 * time.Minute); !b.idle(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not finish:\n%s", tail(p.out.String(), 3000))
		}
	}

	// Exactly once: each known message delivered once, each unknown one bounced
	// once with one notice.
	texts, _ := b.delivered()
	count := map[string]int{}
	for _, text := range texts {
		count[text]++
	}
	for text := range want {
		if count[text] != 1 {
			t.Errorf("%q delivered %d times", text, count[text])
		}
	}
	states := b.journalStates()
	bounced := 0
	for _, st := range states {
		if st == router.StateBounced {
			bounced++
		}
	}
	notices := b.notices()
	if bounced != len(unknown) || len(notices) != len(unknown) {
		t.Fatalf("%d bounced, %d notices; want %d of each", bounced, len(notices), len(unknown))
	}
	// Old texts first, then new ones: ids begin with the time they were written.
	var ids []string
	for id := range notices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var oldN, newN int
	lastOld, firstNew := "", ""
	for _, id := range ids {
		switch text := notices[id]; text {
		case "OLD: 5559999 does not exist.":
			oldN++
			lastOld = id[:13]
		case "NEW: 5559999 is unknown here.":
			newN++
			if firstNew == "" {
				firstNew = id[:13]
			}
		default:
			t.Fatalf("notice %s: %q", id, text)
		}
	}
	if oldN == 0 || newN == 0 || lastOld > firstNew {
		t.Fatalf("%d old and %d new notices, the last old at %s, the first new at %s: want old ones, then only new ones", oldN, newN, lastOld, firstNew)
	}
	t.Logf("%d notices with the old text, then %d with the new", oldN, newN)

	// A broken configuration: refused with the reason, the one in force stays.
	b.writeConfig("[notices]\nunknown = \"BROKEN {{.To\"\n")
	p.hup(t, `reload refused; the configuration in force stays" why="router: notice unknown`)
	writeFile(t, filepath.Join(b.morx, "5550001.after"), []byte("oa=5550001\nda=5559999\nud=after the broken reload\n"))
	for deadline := time.Now().Add(time.Minute); len(b.notices()) != len(unknown)+1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no notice for the message after the refused reload:\n%s", tail(p.out.String(), 3000))
		}
	}
	newN = 0
	for _, text := range b.notices() {
		if text == "NEW: 5559999 is unknown here." {
			newN++
		}
	}
	if newN != len(unknown)-oldN+1 {
		t.Fatalf("after the refused reload the notice was not the text in force")
	}
	p.stop(t)
	if !regexp.MustCompile(`msg="smsrouter stopped" why="terminated signal received" handled=\d+`).MatchString(p.out.String()) {
		t.Errorf("no stop line:\n%s", tail(p.out.String(), 2000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestReloadMovesListenersAndDatabase: a reload that moves the FastAGI and
// metrics listeners to other ports and the directory to another database:
// the old ports close, the new ones answer, and lookups read the new database.
func TestReloadMovesListenersAndDatabase(t *testing.T) {
	agi1, agi2, met1, met2 := freePort(t), freePort(t), freePort(t), freePort(t)
	b := newBed(t, "", fmt.Sprintf("[agi]\nlisten = %q\n[metrics]\nlisten = %q\n", agi1, met1),
		router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"})
	// A second database, where 5551001 is a fax.
	other := filepath.Join(b.root, "other.db")
	if _, errOut, code := runBin(t, context.Background(), nil, "migrate", "--config", b.conf, "--db", "sqlite:"+other); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := runBin(t, context.Background(), nil, "number", "set", "5551001", "F", "Local/1001@fax", "--config", b.conf, "--db", "sqlite:"+other); code != 0 {
		t.Fatal(errOut)
	}
	p := startServe(t, b)
	p.waitLog(t, "msg=serving", 20*time.Second)
	vars := map[string]string{}
	agiCall(t, agi1, agiEnv("chaninfo", "5551001"), vars)
	if vars["MSG_CHAN_OPT"] != "S" {
		t.Fatalf("chaninfo before: %v", vars)
	}
	get(t, "http://"+met1+"/healthz", 200)

	conf := fmt.Sprintf("spool = %q\ndb = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n[agi]\nlisten = %q\n[metrics]\nlisten = %q\n", b.spool, "sqlite:"+other, agi2, met2)
	writeFile(t, b.conf, []byte(conf))
	p.hup(t, `changed="db, agi, metrics"`)
	vars = map[string]string{}
	agiCall(t, agi2, agiEnv("chaninfo", "5551001"), vars)
	if vars["MSG_CHAN_OPT"] != "F" || vars["MSG_CHAN_EXT"] != "Local/1001@fax" {
		t.Fatalf("chaninfo after the reload: %v", vars)
	}
	if body := get(t, "http://"+met2+"/metrics", 200); !strings.Contains(body, `smsrouter_dependency_up{dependency="db"} 1`) {
		t.Errorf("metrics on the new port lack the database")
	}
	for _, addr := range []string{agi1, met1} {
		if c, err := dialTCP(addr); err == nil {
			c.Close()
			t.Errorf("%s still listens after the reload moved it", addr)
		}
	}
	// A message now goes by the new database's letter.
	id := sendCLI(t, b, "5550001", "5551001", "to the fax now")
	waitJournalState(t, b, "sqlite:"+other, id, router.StateDelivered)

	// Another spool needs a restart: refused, and nothing changes.
	elsewhere := t.TempDir()
	os.MkdirAll(filepath.Join(elsewhere, "sms", "morx"), 0o755)
	writeFile(t, b.conf, []byte(strings.Replace(conf, b.spool, elsewhere, 1)))
	p.hup(t, "restart needed: spool "+elsewhere)
	if opt, err := chaninfo(agi2, "5551001"); err != nil || opt != "F" {
		t.Fatalf("chaninfo after the refused reload: %q %v", opt, err)
	}
}

// sendCLI queues a message with `smsrouter send` and returns its id.
func sendCLI(t *testing.T, b *bed, from, to, text string) string {
	t.Helper()
	out, errOut, code := runBin(t, context.Background(), nil, "send", "--config", b.conf, "--from", from, "--to", to, text)
	if code != 0 {
		t.Fatalf("send: %s", errOut)
	}
	return strings.TrimSpace(out)
}

// waitJournalState waits until the journal in dsn has message id in state st.
func waitJournalState(t *testing.T, b *bed, dsn, id string, st router.State) {
	t.Helper()
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	j := router.NewJournal(store)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rec, err := j.Get(context.Background(), id)
		if err == nil && rec.State == st {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %+v %v, want %s", id, rec, err, st)
		}
	}
}

// TestServeWaitsForDatabase: serve started while MariaDB is down starts, says
// that it waits, reports it in /healthz and the metrics, answers chaninfo with
// E and queues postsms; once MariaDB is started it delivers every message,
// exactly once.
func TestServeWaitsForDatabase(t *testing.T) {
	db := testdb.Private(t)
	agiAddr, metAddr := freePort(t), freePort(t)
	b := newBed(t, db.DSN, fmt.Sprintf("[agi]\nlisten = %q\n[metrics]\nlisten = %q\n", agiAddr, metAddr), stdEntries...)
	b.store.Close() // the test's own connection would not survive the stop
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	want := seedMessages(t, b.morx, 200)
	p := startServe(t, b)
	p.waitLog(t, "waiting for the database; messages wait in the spool", 20*time.Second)
	if !strings.Contains(p.out.String(), `msg="smsrouter starting"`) {
		t.Errorf("no start line:\n%s", p.out.String())
	}
	health := get(t, "http://"+metAddr+"/healthz", 503)
	if !strings.Contains(health, "db: waiting for the database") || !strings.Contains(health, "connection refused") {
		t.Errorf("healthz while the database is down: %q", health)
	}
	if body := get(t, "http://"+metAddr+"/metrics", 200); !strings.Contains(body, `smsrouter_dependency_up{dependency="db"} 0`) {
		t.Errorf("metrics do not say the database is down")
	}
	vars := map[string]string{}
	agiCall(t, agiAddr, agiEnv("chaninfo", "5551001"), vars)
	if vars["MSG_CHAN_OPT"] != "E" {
		t.Errorf("chaninfo while the database is down: %v, want E", vars)
	}
	// A SIP MESSAGE meanwhile is queued, not lost.
	vars = map[string]string{"MESSAGE_FROM": "<sip:5550001@127.0.0.1>", "MSG_B64": "d2hpbGUgdGhlIGRhdGFiYXNlIHdhcyBkb3du"} // "while the database was down"
	agiCall(t, agiAddr, agiEnv("postsms", "5551001"), vars)
	if vars["SMSROUTER_STATUS"] != "QUEUED" {
		t.Errorf("postsms while the database is down: %v", vars)
	}
	want["while the database was down"] = true
	time.Sleep(2 * time.Second) // a retry or two
	if n := len(b.list("sms/morx")); n == 0 {
		t.Fatal("messages were taken while the database was down")
	}

	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "database answers; routing starts", 60*time.Second)
	p.waitLog(t, "msg=serving", 10*time.Second)
	for deadline := time.Now().Add(3 * time.Minute); !b.idle(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not deliver everything:\n%s", tail(p.out.String(), 3000))
		}
	}
	get(t, "http://"+metAddr+"/healthz", 200)
	p.stop(t)
	store, err := router.OpenStore(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b.store = store
	b.checkExactlyOnce(want)
}

func newCmd(args ...string) *exec.Cmd { return exec.Command(binPath, args...) }

func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) }

// TestReloadInProcess runs serve inside the test binary, so that the race
// detector watches a reload: the router, the listeners' servers, the probes
// and the logger are all swapped while requests and scrapes go on.
func TestReloadInProcess(t *testing.T) {
	agiAddr, metAddr := freePort(t), freePort(t)
	listen := fmt.Sprintf("[agi]\nlisten = %q\n[metrics]\nlisten = %q\n", agiAddr, metAddr)
	b := newBed(t, "", listen+"[notices]\nunknown = \"OLD {{.To}}\"\n", stdEntries...)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", b.conf}, out, out) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d\n%s", code, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	waitOut := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", want, out.String())
			}
		}
	}
	waitOut("msg=serving")
	// Traffic through the reload: scrapes and chaninfo requests.
	stop := make(chan struct{})
	traffic := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				traffic <- nil
				return
			default:
			}
			if opt, err := chaninfo(agiAddr, "5551001"); err != nil || opt != "S" {
				traffic <- fmt.Errorf("chaninfo during the reload: %q, %v", opt, err)
				return
			}
		}
	}()
	b.writeConfig(listen + "[notices]\nunknown = \"NEW {{.To}}\"\n[log]\nlevel = \"debug\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOut(`changed="notices, log"`)
	get(t, "http://"+metAddr+"/metrics", 200)
	close(stop)
	if err := <-traffic; err != nil {
		t.Fatal(err)
	}
	id := sendCLI(t, b, "5550001", "5559999", "to nobody")
	waitJournalState(t, b, b.dsn, id, router.StateBounced)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		texts := b.notices()
		if len(texts) == 1 {
			for _, text := range texts {
				if text != "NEW 5559999" {
					t.Fatalf("notice %q, want the reloaded text", text)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notice:\n%s", out.String())
		}
	}
	// The reloaded [log] level is in force: debug lines appear.
	if !strings.Contains(out.String(), "level=DEBUG") {
		t.Errorf("no debug line after the reload set level = debug")
	}
}

// chaninfo asks serve's FastAGI server for a number's letter, playing
// Asterisk; unlike agiCall it may run outside the test's goroutine.
func chaninfo(addr, number string) (string, error) {
	c, err := dialTCP(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(agiEnv("chaninfo", number))); err != nil {
		return "", err
	}
	opt := ""
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) >= 4 && w[0] == "SET" && w[2] == "MSG_CHAN_OPT" {
			opt = strings.Trim(w[3], `"`)
		}
		if _, err := c.Write([]byte("200 result=1\n")); err != nil {
			return opt, err
		}
	}
	return opt, sc.Err()
}

// TestReloadClosesTheOldAMISession: the T channel holds an AMI session; a
// reload rebuilds the channel and closes the old session, and the new channel
// logs in afresh (with the new settings) when it next has a T message.
func TestReloadClosesTheOldAMISession(t *testing.T) {
	srv := amitest.NewServer(t, amitest.Login("smsrouter", "s3cret", func(s *amitest.Session, req ami.Packet) {
		// No such endpoint: the message bounces, the session stays.
		_ = s.Send(amitest.Response(req, "Error", "Message", "Unable to retrieve endpoint 1002"))
	}))
	sipConf := func(from string) string {
		return fmt.Sprintf("[sip]\nami_addr = %q\nusername = \"smsrouter\"\nsecret = \"s3cret\"\nfrom = %q\n", srv.Addr, from)
	}
	b := newBed(t, "", sipConf("{{.From}}"), router.Entry{Number: "5550001", Letter: 'S', Extension: "PJSIP/5550001"},
		router.Entry{Number: "5551002", Letter: 'T', Extension: "PJSIP/1002"})
	p := startServe(t, b)
	p.waitLog(t, "msg=serving", 20*time.Second)
	sendCLI(t, b, "5550001", "5551002", "over SIP")
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d accepted, %d open\n%s", what, srv.Accepted(), len(srv.Sessions()), tail(p.out.String(), 2000))
			}
		}
	}
	waitFor("the T channel's session", func() bool { return len(srv.Sessions()) == 1 })

	b.writeConfig(sipConf("\"SMS {{.From}}\" <sip:{{.From}}@pbx.example.org>"))
	p.hup(t, "changed=sip")
	waitFor("the old session closed", func() bool { return srv.Accepted() == 1 && len(srv.Sessions()) == 0 })
	sendCLI(t, b, "5550001", "5551002", "over SIP again")
	waitFor("a new session for the next T message", func() bool { return srv.Accepted() == 2 && len(srv.Sessions()) == 1 })
}

// TestReloadKeepsLinkSessions: a reload that does not touch the mobile links
// keeps their sessions with the operator (no new bind); one that changes a
// link unbinds it and binds it again with the new settings, and messages
// routed to the link afterwards go out through the new session.
func TestReloadKeepsLinkSessions(t *testing.T) {
	s := smsctest.Start(t)
	linkConf := func(systemType string) string {
		return fmt.Sprintf("[numbers]\ncountry_code = \"48\"\nextension_length = 4\n[[link]]\nname = \"mobile\"\nkind = \"smpp\"\nnumber = %q\naddr = %q\nsystem_id = \"smsrouter\"\npassword = \"secret\"\nsystem_type = %q\nreconnect_min = \"100ms\"\n[[route]]\nprefix = \"+48\"\nlink = \"mobile\"\n", linkNumber, s.Addr(), systemType)
	}
	b := newBed(t, "", linkConf("first"), router.Entry{Number: "1001", Letter: 'S', Extension: "PJSIP/1001"})
	p := startServe(t, b)
	p.waitLog(t, "msg=serving", 20*time.Second)
	s.Wait("bind", nil)

	b.writeConfig(linkConf("first") + "[notices]\nunknown = \"No such number: {{.To}}\"\n")
	p.hup(t, "changed=notices")
	b.morxFrom("1001", "0601000001", "after a reload that kept the link", false)
	submits(t, s, 1, 30*time.Second)
	if n := len(s.All("bind")); n != 1 {
		t.Fatalf("%d binds after a reload that did not touch the link, want the first one only", n)
	}

	b.writeConfig(linkConf("second"))
	p.hup(t, `changed="notices, link"`)
	ev := s.Wait("bind", func(ev map[string]any) bool { return ev["system_type"] == "second" })
	if ev == nil {
		t.Fatal("no bind with the new settings")
	}
	first := s.All("bind")[0]["session"]
	if _, ok := s.WaitFor("close", func(ev map[string]any) bool { return ev["session"] == first }, 10*time.Second); !ok {
		t.Error("the old session was not closed")
	}
	b.morxFrom("1001", "0601000002", "after a reload that changed the link", false)
	submits(t, s, 1, 30*time.Second) // the next one after the first message's
	subs := s.All("submit")
	if last := subs[len(subs)-1]; last["session"] != ev["session"] {
		t.Errorf("the second message went out on session %v, want the new one %v", last["session"], ev["session"])
	}
}
