package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fsnotify/fsnotify"

	"smsrouter/asteriskconf/dialplan"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDoctorHealthySetup(t *testing.T) {
	b := newBed(t, "", "")
	os.MkdirAll(b.mttx, 0o755)
	out, code := runHere(t, "doctor", "--config", b.conf)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"ok    morx", "ok    work dir", "ok    schema", "ok    free space", "skip  ami", "skip  fastagi", "ok    tts", "ok    queue"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestDoctorBrokenSetup(t *testing.T) {
	root := t.TempDir()
	spool := filepath.Join(root, "spool")
	os.MkdirAll(filepath.Join(spool, "sms", "morx"), 0o755)
	os.MkdirAll(filepath.Join(spool, "outgoing"), 0o755)
	// work_dir is a file: nothing can be claimed.
	writeFile(t, filepath.Join(root, "work"), []byte("not a folder"))
	// An AMI "server" that is not AMI.
	fake, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	go func() {
		for {
			c, err := fake.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH\r\n"))
			c.Close()
		}
	}()
	// An empty file is an SQLite database without smsrouter's schema.
	os.MkdirAll(filepath.Join(root, "db"), 0o755)
	writeFile(t, filepath.Join(root, "db", "unmigrated.db"), nil)
	conf := filepath.Join(root, "smsrouter.toml")
	writeFile(t, conf, []byte(`spool = "`+spool+`"
work_dir = "`+filepath.Join(root, "work")+`"
db = "sqlite:`+filepath.Join(root, "db", "unmigrated.db")+`"
[agi]
listen = "`+closedPort(t)+`"
[http]
listen = "127.0.0.1:0"
[voice]
argv = ["/nonexistent/tts", "{{.Text}}"]
[fax]
font_file = "/nonexistent/font.ttf"
[sip]
ami_addr = "`+fake.Addr().String()+`"
username = "smsrouter"
secret = "x"
[log]
output = "carrier-pigeon"
[quiet]
default = "25-07"
time_zone = "Mars/Olympus_Mons"
[guards]
pair_limit = -5
[selfservice]
enabled = true
number = "../x"
`))
	out, code := runHere(t, "doctor", "--config", conf)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, c := range []struct{ line, fix string }{
		{`FAIL  config .*\[log\] output = "carrier-pigeon"`, `"stderr"`},
		{`warn  mttx .*does not exist yet`, "smsrouter drain"},
		{`FAIL  work dir .*not a folder`, "install -d"},
		{`FAIL  schema .*no smsrouter schema`, "smsrouter migrate"},
		{`FAIL  ami .*does not speak AMI|FAIL  ami `, "manager"},
		{`warn  fastagi .*nothing answers`, "serve"},
		{`FAIL  config .*\[http\] listen is set but no tokens`, "tokens"},
		{`warn  tts .*/nonexistent/tts not found \(no number has letter V`, "apt-get install"},
		{`FAIL  config .*\[fax\] font: open /nonexistent/font.ttf: no such file`, "fonts-dejavu-core"},
		{`FAIL  config .*\[quiet\] default: bad quiet window: hour in "25"`, "[quiet]"},
		{`FAIL  config .*\[quiet\] time_zone "Mars/Olympus_Mons": not a known time zone`, "[quiet]"},
		{`FAIL  config .*\[guards\] pair_limit -5`, "[guards]"},
		{`FAIL  config .*\[selfservice\] number`, "[selfservice]"},
	} {
		re := regexp.MustCompile(`(?m)^` + c.line + `.*\n      fix: .*` + regexp.QuoteMeta(c.fix))
		if !re.MatchString(out) {
			t.Errorf("no line matching %q with fix %q in\n%s", c.line, c.fix, out)
		}
	}
	// A config that does not parse is a usage error, with a fix too.
	writeFile(t, conf, []byte("spool = \n"))
	if out, code := runHere(t, "doctor", "--config", conf); code != 2 || !strings.Contains(out, "fix:") {
		t.Fatalf("bad config: %d\n%s", code, out)
	}
}

// TestDoctorProbeIsInvisibleToAsterisk runs doctor again and again while a
// stand-in for pbx_spool deletes every regular file the moment it appears in
// outgoing/, as the real one does with a file it cannot parse (issue 12 item 7).
// doctor must never report a false FAIL, and nothing at all may appear there.
func TestDoctorProbeIsInvisibleToAsterisk(t *testing.T) {
	b := newBed(t, "", "")
	os.MkdirAll(b.mttx, 0o755)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var watched []string
	for _, dir := range []string{b.outgoing, b.morx, b.mttx} {
		if err := w.Add(dir); err != nil {
			t.Fatal(err)
		}
		watched = append(watched, dir)
	}
	// The work dir is ours and doctor writes a probe there; a cleaner that
	// removes it first must not turn into a FAIL either (ENOENT on cleanup).
	if err := w.Add(b.work); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	saw := func(path string) {
		if filepath.Dir(path) == b.work {
			if strings.HasPrefix(filepath.Base(path), ".smsrouter-doctor-") {
				os.Remove(path)
			}
			return
		}
		mu.Lock()
		seen = append(seen, path)
		mu.Unlock()
		if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() {
			os.Remove(path) // "Invalid file contents …, deleting"
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // inotify, as pbx_spool
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case ev := <-w.Events:
				if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
					saw(ev.Name)
				}
			case <-w.Errors:
			}
		}
	}()
	go func() { // and a tight rescan, in case inotify coalesced something
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, dir := range append(watched, b.work) {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					saw(filepath.Join(dir, e.Name()))
				}
			}
		}
	}()
	const runs = 40
	for i := range runs {
		out, code := runHere(t, "doctor", "--config", b.conf)
		if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "ok    outgoing") || !strings.Contains(out, "ok    work dir") {
			t.Errorf("run %d: exit %d\n%s", i, code, out)
		}
	}
	close(stop)
	wg.Wait()
	if len(seen) > 0 {
		t.Errorf("doctor left traces where Asterisk looks: %q", seen)
	}
}

// TestDoctorListsBadRows seeds an adopted PBXNumbers (no key, as old
// installations made it by hand) with each kind of row the router cannot use
// as meant, and checks that doctor lists every one with the row and a fix,
// in text and in --json, and leaves the good rows alone.
func TestDoctorListsBadRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		pre, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		ddl := `CREATE TABLE PBXNumbers (Account TEXT, Message TEXT, Extension TEXT)`
		if pre.Dialect == "mysql" {
			ddl = `CREATE TABLE PBXNumbers (Account VARCHAR(32), Message VARCHAR(8), Extension VARCHAR(255))`
		}
		if _, err := pre.DB.Exec(ddl); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][3]any{
			{"5550001", "S", "PJSIP/5550001"}, // good
			{"1000", "C", ""},                 // good: a rule serves it
			{nil, "S", "PJSIP/1"},             // NULL number
			{"", "S", "PJSIP/2"},              // empty number
			{"12a", "S", "PJSIP/3"},           // not a number
			{"5551003", nil, "PJSIP/1003"},    // NULL letter
			{"5551004", "", "PJSIP/1004"},     // empty letter
			{"5551005", "Q", "PJSIP/1005"},    // no such letter
			{"5551007", "S", nil},             // S without an Extension
			{"5551008", "F", "1008"},          // F that cannot dial
			{"5551009", "T", "SIP/1009"},      // T that is not a PJSIP endpoint
			{"5551010", "S", "PJSIP/1010"},    // the same row twice
			{"5551010", "S", "PJSIP/1010"},
			{"5551011", "S", "PJSIP/1011"}, // two rows that disagree
			{"5551011", "F", "Local/1011@fax"},
			{"5551012", "C", ""},            // C that no rule serves
			{"5551013", "T", "PJSIP/alice"}, // T without [sip]
			{"5551014", "V", "PJSIP/1014"},  // V in a language the engine lacks
		} {
			if _, err := pre.DB.Exec(`INSERT INTO PBXNumbers VALUES (?, ?, ?)`, r[0], r[1], r[2]); err != nil {
				t.Fatal(err)
			}
		}
		pre.Close()
		b := newBed(t, dsn, "[command]\n[[command.rule]]\nnumbers = [\"1000\"]\nkeyword = \"PING\"\naction = \"reply\"\nreply = \"pong\"\n")
		if _, errOut, code := b.run(context.Background(), "number", "voice", "--no-check", "5551014", "zz", "--config", b.conf); code != 0 {
			t.Fatalf("number voice: %s", errOut)
		}
		out, code := runHere(t, "doctor", "--config", b.conf)
		if code != exitPartial {
			t.Fatalf("doctor exit %d, want %d\n%s", code, exitPartial, out)
		}
		for _, c := range []struct{ line, fix string }{
			{`FAIL  directory .*13 numbers in 18 PBXNumbers rows, 14 findings`, "below"},
			{`FAIL  directory +PBXNumbers row with Account NULL \(Message 'S', Extension 'PJSIP/1'\)`, "WHERE Account IS NULL"},
			{`FAIL  directory +PBXNumbers row with an empty Account \(Message 'S', Extension 'PJSIP/2'\)`, "TRIM(Account) = ''"},
			{`FAIL  directory +PBXNumbers row Account='12a' .*not a number|FAIL  directory +PBXNumbers row Account='12a'`, "or delete the row"},
			{`FAIL  directory +PBXNumbers row Account='5551003': Message is NULL`, "smsrouter number set 5551003 S"},
			{`FAIL  directory +PBXNumbers row Account='5551004': Message is empty`, "smsrouter number set 5551004"},
			{`FAIL  directory +PBXNumbers row Account='5551005': Message "Q" is not a service letter`, "letters: S F V C T N"},
			{`FAIL  directory +PBXNumbers row Account='5551007': Extension is NULL, but letter S needs one`, "smsrouter number set 5551007 S"},
			{`FAIL  directory +PBXNumbers row Account='5551008': Extension "1008" is not a dialable channel`, "smsrouter number set 5551008 F"},
			{`FAIL  directory +PBXNumbers row Account='5551009': .*not a PJSIP endpoint`, "smsrouter number set 5551009 T"},
			{`warn  directory +number 5551010 is in PBXNumbers 2 times .*the rows agree`, "DELETE FROM PBXNumbers WHERE Account = '5551010'"},
			{`FAIL  directory +number 5551011 is in PBXNumbers 2 times .*the rows differ \(S PJSIP/1011; F Local/1011@fax\)`, "smsrouter number set 5551011"},
			{`FAIL  directory +number 5551012 has letter C, but no \[\[command.rule\]\] serves it`, `numbers = ["5551012"]`},
			{`FAIL  directory +number 5551013 has letter T, but \[sip\] is not configured`, "[sip]"},
			{`FAIL  directory +numbers 5551014 \(letter V\) are read in language zz`, "smsrouter number voice"},
		} {
			re := regexp.MustCompile(`(?m)^(` + c.line + `).*\n      fix: .*` + regexp.QuoteMeta(c.fix))
			if !re.MatchString(out) {
				t.Errorf("no line matching %q with fix %q", c.line, c.fix)
			}
		}
		for _, good := range []string{"5550001", "'1000'", "number 1000"} {
			if strings.Contains(out, good) {
				t.Errorf("a good row is listed (%s):\n%s", good, out)
			}
		}
		if t.Failed() {
			t.Logf("doctor said:\n%s", out)
		}

		// The same for monitoring.
		jsonOut, code := runHere(t, "doctor", "--json", "--config", b.conf)
		var checks []jsonCheck
		if err := json.Unmarshal([]byte(jsonOut), &checks); err != nil || code != exitPartial {
			t.Fatalf("--json: exit %d, %v\n%s", code, err, jsonOut)
		}
		byStatus := map[string]int{}
		for _, c := range checks {
			if c.Name == "directory" {
				byStatus[c.Status]++
			}
			if c.Status != "ok" && c.Status != "warn" && c.Status != "fail" {
				t.Errorf("status %q", c.Status)
			}
			if c.Status == "fail" && c.Fix == "" {
				t.Errorf("a failure without a fix: %+v", c)
			}
		}
		if byStatus["fail"] != 14 || byStatus["warn"] != 1 {
			t.Errorf("--json directory checks %v, want 14 failures (the summary and 13 rows) and 1 warning", byStatus)
		}
	})
}

// TestDoctorComparesDialplan: doctor reads the extensions.conf [dialplan]
// names (with its #includes) and compares [smsc] and [messages] with what
// `smsrouter dialplan` prints for the same configuration.
func TestDoctorComparesDialplan(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	etc := filepath.Join(b.root, "asterisk")
	os.MkdirAll(etc, 0o755)
	ext := filepath.Join(etc, "extensions.conf")
	b.writeConfig("[dialplan]\nextensions_conf = \"" + ext + "\"\nsmsc_exten = [\"9000\", \"9002\"]\n")
	gen, errOut, code := b.run(context.Background(), "dialplan", "--config", b.conf)
	if code != 0 {
		t.Fatal(errOut)
	}
	if !strings.Contains(gen, "exten => 9002,") {
		t.Fatalf("dialplan ignores [dialplan] smsc_exten:\n%s", gen)
	}
	writeFile(t, ext, []byte("[general]\nstatic=yes\n\n#include extensions_smsrouter.conf\n"))
	writeFile(t, filepath.Join(etc, "extensions_smsrouter.conf"), []byte(gen))
	out, code := runHere(t, "doctor", "--config", b.conf)
	if !regexp.MustCompile(`(?m)^ok    dialplan +\[smsc\] and \[messages\] in .*extensions.conf \(2 files\) match smsrouter dialplan`).MatchString(out) {
		t.Fatalf("exit %d, no ok dialplan line:\n%s", code, out)
	}
	// The old hand-made dialplan: the second SMS Centre number missing, the
	// FastAGI elsewhere, a step added.
	old := strings.Replace(gen, "SMSROUTER_AGI=agi://127.0.0.1:4573", "SMSROUTER_AGI=agi://127.0.0.1:4599", 1)
	old = regexp.MustCompile(`(?m)^exten => 9002,.*\n( same => .*\n)*`).ReplaceAllString(old, "")
	old = strings.Replace(old, " same => n,Hangup()\n", " same => n,Hangup()\n same => n,NoOp(extra)\n", 1)
	writeFile(t, filepath.Join(etc, "extensions_smsrouter.conf"), []byte(old))
	out, code = runHere(t, "doctor", "--config", b.conf)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\n%s", code, exitPartial, out)
	}
	for _, want := range []string{
		`FAIL  dialplan +\[globals\]: SMSROUTER_AGI=agi://127.0.0.1:4599 \(.*extensions_smsrouter.conf:\d+\), smsrouter dialplan has SMSROUTER_AGI=agi://127.0.0.1:4573`,
		`FAIL  dialplan +\[smsc\]: missing exten => 9002,1,answer\(\)`,
		`warn  dialplan +\[smsc\]: exten => 9000,4,noop\(extra\) .* is not in smsrouter dialplan's output`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `.*\n      fix: smsrouter dialplan --config `).MatchString(out) {
			t.Errorf("no line matching %q with a fix", want)
		}
	}
	if t.Failed() {
		t.Logf("doctor said:\n%s", out)
	}
}

// TestExampleDialplanSectionIsTheDefaults: the example's [dialplan] prints what
// no [dialplan] prints.
func TestExampleDialplanSectionIsTheDefaults(t *testing.T) {
	ex, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Dialplan.ExtensionsConf != defaultExtensionsConf {
		t.Errorf("example extensions_conf %q, default %q", ex.Dialplan.ExtensionsConf, defaultExtensionsConf)
	}
	var texts [2]string
	for i, cfg := range []Config{ex, defaultConfig()} {
		o, err := cfg.dialplanOptions()
		if err != nil {
			t.Fatal(err)
		}
		out, err := dialplan.Generate(o)
		if err != nil {
			t.Fatal(err)
		}
		texts[i] = string(out)
	}
	if texts[0] != texts[1] {
		t.Errorf("the example's [dialplan] differs from the defaults:\n%s\n---\n%s", texts[0], texts[1])
	}
}

// TestDoctorOutcomeContexts: with [dialplan] outcome on, doctor wants the
// outcome contexts in the running dialplan (and a FastAGI server to answer
// them); with it off, it suggests it.
func TestDoctorOutcomeContexts(t *testing.T) {
	b := newBed(t, "", "", stdEntries...)
	etc := filepath.Join(b.root, "asterisk")
	os.MkdirAll(etc, 0o755)
	ext := filepath.Join(etc, "extensions.conf")
	writeFile(t, ext, []byte("[general]\nstatic=yes\n\n#include extensions_smsrouter.conf\n"))
	b.writeConfig("[dialplan]\nextensions_conf = \"" + ext + "\"\n")
	plain, errOut, code := b.run(context.Background(), "dialplan", "--config", b.conf)
	if code != 0 || strings.Contains(plain, "smsrouter-fax") {
		t.Fatalf("%d %s\n%s", code, errOut, plain)
	}
	writeFile(t, filepath.Join(etc, "extensions_smsrouter.conf"), []byte(plain))
	out, _ := runHere(t, "doctor", "--config", b.conf)
	if !regexp.MustCompile(`(?m)^skip  outcome +\[dialplan\] outcome is off: a fax that fails after the answer counts as delivered.*set \[dialplan\] outcome = true`).MatchString(out) {
		t.Fatalf("no suggestion:\n%s", out)
	}

	// On, against the old dialplan: each context is missing.
	b.writeConfig("[dialplan]\nextensions_conf = \"" + ext + "\"\noutcome = true\n")
	out, code = runHere(t, "doctor", "--config", b.conf)
	for _, c := range []string{"smsrouter-sms", "smsrouter-fax", "smsrouter-voice"} {
		if !regexp.MustCompile(`(?m)^FAIL  dialplan +\[` + c + `\]: no such context`).MatchString(out) {
			t.Errorf("no failure for [%s]", c)
		}
	}
	if code != exitPartial || !strings.Contains(out, "[agi] listen is not set") {
		t.Errorf("exit %d, want %d and a word on [agi] listen\n%s", code, exitPartial, out)
	}
	// The dialplan printed again: in step.
	gen, errOut, code := b.run(context.Background(), "dialplan", "--config", b.conf)
	if code != 0 || !strings.Contains(gen, "[smsrouter-fax]") {
		t.Fatalf("%d %s\n%s", code, errOut, gen)
	}
	writeFile(t, filepath.Join(etc, "extensions_smsrouter.conf"), []byte(gen))
	out, _ = runHere(t, "doctor", "--config", b.conf)
	if !regexp.MustCompile(`(?m)^ok    dialplan +\[smsc\], \[messages\] and the outcome contexts in .* match smsrouter dialplan`).MatchString(out) ||
		strings.Contains(out, "no such context") {
		t.Fatalf("doctor said:\n%s", out)
	}
}
