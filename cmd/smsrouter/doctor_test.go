package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fsnotify/fsnotify"
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
`))
	out, code := runHere(t, "doctor", "--config", conf)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, c := range []struct{ line, fix string }{
		{`FAIL  log .*carrier-pigeon`, `"stderr"`},
		{`warn  mttx .*does not exist yet`, "smsrouter drain"},
		{`FAIL  work dir .*not a folder`, "install -d"},
		{`FAIL  schema .*no smsrouter schema`, "smsrouter migrate"},
		{`FAIL  ami .*does not speak AMI|FAIL  ami `, "manager"},
		{`warn  fastagi .*nothing answers`, "serve"},
		{`FAIL  http auth .*no tokens`, "tokens"},
		{`FAIL  tts .*/nonexistent/tts not found`, "apt-get install"},
		{`FAIL  fax font .*no such file`, "fonts-dejavu-core"},
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
