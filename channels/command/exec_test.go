package command

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"smsrouter/channels"
)

// dumpScript writes a script that records its arguments (NUL-terminated) and its
// stdin into files: it dumps argv, it never evaluates it.
func dumpScript(t *testing.T) (script, argsFile, stdinFile string) {
	dir := sharedDir(t)
	argsFile, stdinFile = filepath.Join(dir, "args"), filepath.Join(dir, "stdin")
	script = writeScript(t, dir, "dump.sh", `for a in "$@"; do printf '%s\0' "$a"; done > '`+argsFile+`'
cat > '`+stdinFile+`'
echo "ran with $# arguments"
`)
	return
}

func readArgs(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the program did not run: %v", err)
	}
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

func TestExecHostileTextReachesTheProgramVerbatim(t *testing.T) {
	script, argsFile, stdinFile := dumpScript(t)
	canary := filepath.Join(sharedDir(t), "pwned")
	c := newTestChannel(t, Config{Rules: []Rule{{
		Action: "exec",
		Argv:   []string{"/bin/sh", script, "fixed", "--", "{{.Text}}", "{{arg 0 .Args}}", "{{.Rest}}"},
	}}})
	big := strings.Repeat("A$(id)`id`;", 64<<10/11)
	for _, text := range []string{
		"run ; rm -rf /",
		"run $(touch " + canary + ")",
		"run `touch " + canary + "`",
		"run -rf /",
		"run --help",
		"run 'quoted' \"double\" \\back\\slash | cat && touch " + canary,
		"run line1\nline2; touch " + canary + "\n",
		"run " + big,
		"run \xff\xfe invalid \xc3",
		"run *  ~ $HOME ${PATH} %s %n",
	} {
		os.Remove(argsFile)
		m := msg("5551001", "1000", text)
		got, _ := deliver(t, c, m)
		d := newData(m, fixedNow)
		want := []string{"fixed", "--", text, d.Args[0], d.Rest}
		if args := readArgs(t, argsFile); !equalStrings(args, want) {
			t.Errorf("%.40q: argv %.200q, want %.200q", text, args, want)
		}
		if stdin, _ := os.ReadFile(stdinFile); !bytes.Equal(stdin, []byte(text)) {
			t.Errorf("%.40q: stdin %.80q", text, stdin)
		}
		if got != "ran with 5 arguments" {
			t.Errorf("%.40q: reply %q", text, got)
		}
		if _, err := os.Stat(canary); err == nil {
			t.Fatalf("%.40q: a shell ran the text", text)
		}
	}
}

func TestExecRefusesMessageValuesThatLookLikeOptions(t *testing.T) {
	script, argsFile, _ := dumpScript(t)
	c := newTestChannel(t, Config{Rules: []Rule{
		{Keyword: "A", Action: "exec", Argv: []string{"/bin/sh", script, "{{arg 0 .Args}}"}},
		{Keyword: "B", Action: "exec", Argv: []string{"/bin/sh", script, "--count={{arg 0 .Args}}", "-x", "--", "{{arg 0 .Args}}"}},
		// The PySMS PING rule of the example: the host comes after "--".
		{Keyword: "PING", MinArgs: 1, Action: "exec", Argv: []string{"/bin/sh", script, "-c", "1", "--", "{{arg 0 .Args}}"}},
	}})
	for _, tc := range []struct {
		text  string
		args  []string // nil: the program must not run
		reply string
	}{
		{"A -rf", nil, "Command failed."},
		{"A --output=/etc/passwd", nil, "Command failed."},
		{"A host", []string{"host"}, "ran with 1 arguments"},
		{"B -rf", []string{"--count=-rf", "-x", "--", "-rf"}, "ran with 4 arguments"},
		{"PING -f", []string{"-c", "1", "--", "-f"}, "ran with 4 arguments"},
		{"PING example.org", []string{"-c", "1", "--", "example.org"}, "ran with 4 arguments"},
	} {
		os.Remove(argsFile)
		got, _ := deliver(t, c, msg("5551001", "1000", tc.text))
		if got != tc.reply {
			t.Errorf("%q: reply %q, want %q", tc.text, got, tc.reply)
		}
		if tc.args == nil {
			if _, err := os.Stat(argsFile); err == nil {
				t.Errorf("%q: the program ran", tc.text)
			}
			continue
		}
		if args := readArgs(t, argsFile); !equalStrings(args, tc.args) {
			t.Errorf("%q: argv %q, want %q", tc.text, args, tc.args)
		}
	}
}

func TestExecExitCodes(t *testing.T) {
	dir := sharedDir(t)
	fail := writeScript(t, dir, "fail.sh", "echo 'partial output'; echo 'oops' >&2; exit 3\n")
	quiet := writeScript(t, dir, "quiet.sh", "echo 'only stderr' >&2; exit 1\n")
	c := newTestChannel(t, Config{ErrorText: "Sorry.", Rules: []Rule{
		{Keyword: "A", Action: "exec", Argv: []string{fail}},
		{Keyword: "B", Action: "exec", Argv: []string{fail}, Reply: "exit {{.Exit}}: {{.Output}}"},
		{Keyword: "C", Action: "exec", Argv: []string{fail}, OnlySuccess: true},
		{Keyword: "D", Action: "exec", Argv: []string{fail}, OnlySuccess: true, ErrorText: "D broke."},
		{Keyword: "E", Action: "exec", Argv: []string{quiet}},
		{Keyword: "F", Action: "exec", Argv: []string{filepath.Join(dir, "missing")}},
		{Keyword: "G", Action: "exec", Argv: []string{"true"}, NoReply: true},
		{Keyword: "H", Action: "exec", Argv: []string{"/bin/sh", "-c", "echo $SMS_FROM $SMS_TO; pwd"}},
	}})
	for text, want := range map[string]string{
		"A": "partial output",
		"B": "exit 3: partial output",
		"C": "Sorry.",
		"D": "D broke.",
		"E": "Sorry.",
		"F": "Sorry.",
		"G": "",
		"H": "5551001 1000\n/",
	} {
		if got, _ := deliver(t, c, msg("5551001", "1000", text)); got != want {
			t.Errorf("%s: reply %q, want %q", text, got, want)
		}
	}
}

func TestExecRunsAsUnprivilegedUserWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can switch user; as any other user the program runs as that user")
	}
	nobody := newTestChannel(t, Config{Rules: []Rule{{Action: "exec", Argv: []string{"id", "-u"}}}})
	got, _ := deliver(t, nobody, msg("5551001", "1000", "x"))
	if got == "0" || got == "" || nobody.cred == nil || got != strconv.Itoa(int(nobody.cred.uid)) {
		t.Fatalf("ran as uid %q, want nobody's", got)
	}
	if _, err := New(Config{RunAs: "root", Rules: []Rule{{Action: "exec", Argv: []string{"id"}}}}, Env{Inbox: t.TempDir()}); err == nil {
		t.Fatal("run_as = root accepted")
	}
	if _, err := New(Config{RunAs: "no-such-user-here", Rules: []Rule{{Action: "exec", Argv: []string{"id"}}}}, Env{Inbox: t.TempDir()}); err == nil {
		t.Fatal("unknown run_as user accepted")
	}
}

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := sharedDir(t)
	pidFile := filepath.Join(dir, "child.pid")
	hang := writeScript(t, dir, "hang.sh", "sleep 300 &\necho $! > '"+pidFile+"'\nwait\n")
	c := newTestChannel(t, Config{Rules: []Rule{{Action: "exec", Argv: []string{hang}, Timeout: Duration{Duration: 300 * time.Millisecond}}}})
	start := time.Now()
	_, err := c.Deliver(context.Background(), msg("5551001", "1000", "x"))
	took := time.Since(start)
	if err == nil || channels.IsPermanent(err) || !errors.Is(err, errTemporary) {
		t.Fatalf("err %v: want a temporary error, so the router retries", err)
	}
	if took > 3*time.Second {
		t.Fatalf("took %s for a 300ms timeout", took)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d (sleep 300) survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestExecHugeOutputIsCapped(t *testing.T) {
	dir := sharedDir(t)
	flood := writeScript(t, dir, "flood.sh", "yes 'all work and no play' | head -c 100000000\necho 'flood' >&2\nyes 'err' | head -c 10000000 >&2\n")
	c := newTestChannel(t, Config{Rules: []Rule{{Action: "exec", Argv: []string{flood}, Timeout: Duration{Duration: 30 * time.Second}}}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	got, _ := deliver(t, c, msg("5551001", "1000", "x"))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if n := len([]rune(got)); n != defaultMaxReply {
		t.Errorf("reply of %d characters, want the cap %d", n, defaultMaxReply)
	}
	if !strings.HasPrefix(got, "all work and no play\n") || !strings.HasSuffix(got, "…") {
		t.Errorf("reply %.60q…", got)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("allocated %d MB for 100 MB of output", alloc>>20)
	}
	if took > 15*time.Second {
		t.Errorf("took %s", took)
	}
	t.Logf("100 MB of output handled in %s, %d kB allocated", took, (after.TotalAlloc-before.TotalAlloc)>>10)
}

func TestCappedBuffer(t *testing.T) {
	var b cappedBuffer
	b.limit = 5
	for _, p := range []string{"ab", "cdef", "gh"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if b.String() != "abcde" || b.dropped != 3 {
		t.Fatalf("kept %q, dropped %d", b.String(), b.dropped)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
