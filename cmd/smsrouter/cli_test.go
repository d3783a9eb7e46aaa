package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// runEnv runs the binary with extra environment variables (NAME=VALUE; a
// later one wins) and returns stdout, stderr and the exit code.
func runEnv(t *testing.T, extra []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), extra...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("smsrouter %s: did not finish within 30 s\n%s", strings.Join(args, " "), errOut.String())
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return out.String(), errOut.String(), ee.ExitCode()
	default:
		t.Fatalf("smsrouter %s: %v", strings.Join(args, " "), err)
	}
	return "", "", -1
}

// TestEveryCommandExplainsItself: each command an operator can type has a
// one-line summary, a description and examples, and every flag says what it
// does, so that `smsrouter help COMMAND` always answers.
func TestEveryCommandExplainsItself(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := c.CommandPath()
		// cobra's own help and completion commands document themselves.
		if c.Hidden || c.Name() == "help" || strings.HasPrefix(path, "smsrouter completion") {
			return
		}
		n++
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s: short %q, long %d bytes, example %q: all three are needed", path, c.Short, len(c.Long), c.Example)
		}
		for _, ex := range strings.Split(c.Example, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(ex), "smsrouter ") && !strings.Contains(ex, "| smsrouter ") && !strings.Contains(ex, "&& smsrouter") && !strings.HasPrefix(strings.TrimSpace(ex), "systemctl ") {
				t.Errorf("%s: example line %q does not run smsrouter", path, ex)
			}
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.TrimSpace(f.Usage) == "" {
				t.Errorf("%s --%s has no description", path, f.Name)
			}
		})
	}
	walk(newRoot(&env{}, nil))
	if n < 20 {
		t.Errorf("only %d commands found", n)
	}
	// The table newRoot picks a single command from names each one right.
	for _, c := range commands() {
		if got := c.build(&env{}).Name(); got != c.name {
			t.Errorf("commands lists %q for the command named %q", c.name, got)
		}
		root := newRoot(&env{}, []string{c.name})
		if len(root.Commands()) != 1 || root.Commands()[0].Name() != c.name {
			t.Errorf("newRoot for %q declared %d commands", c.name, len(root.Commands()))
		}
	}
}

// TestVersionHelpAndExitCodes runs the binary as an operator would.
func TestVersionHelpAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     []string // each must appear
		stderr     string
		emptyError bool
	}{
		{[]string{"--version"}, 0, []string{"smsrouter dev\n"}, "", true},
		{[]string{"version"}, 0, []string{"smsrouter dev\n"}, "", true},
		{[]string{"help", "drain"}, 0, []string{"held       parts waiting for the rest of a concatenated message", "Examples:", "smsrouter drain -q --config", "-q, --quiet"}, "", true},
		{[]string{"drain", "--help"}, 0, []string{"deferred   a temporary failure", "--spool"}, "", true},
		{[]string{"help", "number", "set"}, 0, []string{"LETTER is one of S", "smsrouter number set 5551001 S PJSIP/1001"}, "", true},
		{[]string{"help"}, 0, []string{"Where is my message:", "journal", "completion"}, "", true},
		{nil, 2, []string{"Usage:", "Moving messages:"}, "", true},
		{[]string{"drian"}, 2, nil, "Did you mean this?\n\tdrain", false},
		{[]string{"drain", "--bogus"}, 2, nil, "unknown flag: --bogus", false},
		{[]string{"drain", "-q", "-v"}, 2, nil, "none of the others can be", false},
		{[]string{"lookup"}, 2, nil, "usage: smsrouter lookup NUMBER…", false},
		{[]string{"send", "--to", "1", "hi"}, 2, nil, `required flag(s) "from" not set`, false},
		{[]string{"retry"}, 2, nil, "name message ids or --state deferred", false},
		{[]string{"journal", "show"}, 2, nil, "accepts 1 arg(s)", false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := runEnv(t, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tc.stderr) || tc.emptyError && errOut != "" {
				t.Errorf("stderr %q, want %q", errOut, tc.stderr)
			}
		})
	}
}

// TestShellCompletion generates each shell's script, and completes for real
// in bash: the script calls the binary back, as it does in a terminal.
func TestShellCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_smsrouter", "zsh": "#compdef smsrouter", "fish": "complete -c smsrouter",
	} {
		out, errOut, code := runEnv(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, code, errOut, want)
		}
	}
	// bash-completion provides the helpers cobra's script uses, as on any
	// Debian box where completion works at all (.ci/run installs it).
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		t.Fatalf("bash-completion is not installed (apt-get install bash-completion): %v", err)
	}
	script := filepath.Join(t.TempDir(), "smsrouter.bash")
	out, _, _ := runEnv(t, nil, "completion", "bash")
	writeFile(t, script, []byte(out))
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, fmt.Sprintf("%q", w))
		}
		prog := fmt.Sprintf(`source /usr/share/bash-completion/bash_completion
source %q
COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE=%q; COMP_POINT=${#COMP_LINE}
__start_smsrouter
printf '%%s\n' "${COMPREPLY[@]}"`, script, strings.Join(quoted, " "), len(words)-1, line)
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))
		// compopt complains outside a real completion; that goes to stderr.
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, got)
		}
		return strings.Fields(string(got))
	}
	if got := complete("smsrouter dr"); !slices.Equal(got, []string{"drain", "drop"}) {
		t.Errorf("smsrouter dr<TAB>: %q, want drain drop", got)
	}
	if got := complete("smsrouter dra"); !slices.Equal(got, []string{"drain"}) {
		t.Errorf("smsrouter dra<TAB>: %q, want drain", got)
	}
	if got := complete("smsrouter journal --state "); !slices.Contains(got, "deferred") || !slices.Contains(got, "held") {
		t.Errorf("journal --state <TAB>: %q, want the states", got)
	}
	if got := complete("smsrouter number "); !slices.Equal(got, []string{"delete", "pin", "set", "unlock", "voice", "ways"}) {
		t.Errorf("number <TAB>: %q, want delete pin set unlock voice ways", got)
	}
}

// TestConfigDiscovery: --config, else $SMSROUTER_CONFIG, else the system file
// if it exists, else built-in defaults; -v says which. Each file sets its own
// SMS Centre number, which the generated dialplan shows.
func TestConfigDiscovery(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, smsc string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, fmt.Appendf(nil, "smsc_number = %q\n", smsc))
		return p
	}
	flagFile, envFile, sysFile := conf("flag.toml", "7001"), conf("env.toml", "7002"), conf("system.toml", "7003")
	missing := filepath.Join(dir, "missing.toml")
	for _, tc := range []struct {
		name       string
		flag       string
		env, sys   string
		smsc, from string // from is what -v says, "" for an error
		code       int
	}{
		{"--config wins", flagFile, envFile, sysFile, "7001", flagFile + " (--config)", 0},
		{"then the environment", "", envFile, sysFile, "7002", envFile + " ($SMSROUTER_CONFIG)", 0},
		{"then the system file", "", "", sysFile, "7003", sysFile + " (the system configuration)", 0},
		{"else the defaults", "", "", missing, "9001", "built-in defaults (no --config, no $SMSROUTER_CONFIG, no " + missing + ")", 0},
		{"a named file must exist", "", missing, sysFile, "", "", 2},
		{"so must --config's", missing, envFile, sysFile, "", "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"dialplan", "-v"}
			if tc.flag != "" {
				args = append(args, "--config", tc.flag)
			}
			out, errOut, code := runEnv(t, []string{"SMSROUTER_CONFIG=" + tc.env, "SMSROUTER_TEST_SYSTEM_CONFIG=" + tc.sys}, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			if tc.code != 0 {
				if !strings.Contains(errOut, missing) {
					t.Errorf("stderr %q does not name %s", errOut, missing)
				}
				return
			}
			if !strings.Contains(out, "SMSC_NUMBER="+tc.smsc+"\n") {
				t.Errorf("dialplan does not use smsc_number %s:\n%s", tc.smsc, out)
			}
			if want := "smsrouter: config " + tc.from + "\n"; !strings.Contains(errOut, want) {
				t.Errorf("-v said %q, want %q", errOut, want)
			}
		})
	}
	// Every command that reads a configuration says which with -v.
	db := "--db=sqlite:" + filepath.Join(dir, "none", "x.db")
	for _, args := range [][]string{
		{"inspect", "-v", filepath.Join(fixturesRoot(t), "morx", "plain_ascii", "5550001.2026-11-21T05:39:34-0")},
		{"lookup", "-v", db, "5551001"}, {"journal", "-v", db}, {"doctor", "-v", db}, {"drain", "-v", db}, {"migrate", "-v", db},
		{"render", "fax", "-v", "--text", "x", "--from", "1", "-o", filepath.Join(dir, "p.tiff")},
	} {
		_, errOut, _ := runEnv(t, []string{"SMSROUTER_CONFIG=" + envFile}, args...)
		if !strings.Contains(errOut, "smsrouter: config "+envFile+" ($SMSROUTER_CONFIG)\n") {
			t.Errorf("%s -v did not say which configuration: %q", args[0], errOut)
		}
	}
}

// tree lists every file and folder under root with a digest of each file.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			got[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func diffTrees(before, after map[string]string) []string {
	var d []string
	for p, h := range after {
		if b, ok := before[p]; !ok {
			d = append(d, "created "+p)
		} else if b != h {
			d = append(d, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		}
	}
	slices.Sort(d)
	return d
}

// TestReadOnlyCommandsCreateNothing: on a missing database the commands that
// only look say so and how to create it, and leave the disk as it was; on an
// existing one they leave no file behind and change none (SQLite's -wal and
// -shm included). Commands that write refuse a missing database too: only
// migrate creates one, so that root running a command by mistake never leaves
// a root-owned database the service cannot open.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	// No db line: the default, spool/smsrouter/smsrouter.db, folder and all missing.
	root, _, conf := plainSetup(t)
	fixture := filepath.Join(fixturesRoot(t), "morx", "plain_ascii", "5550001.2026-11-21T05:39:34-0")
	looking := [][]string{
		{"lookup", "5551001"},
		{"explain", "--from", "5550001", "--to", "5551001", "--text", "hi", "--mr", "1"},
		{"journal"},
		{"journal", "show", "1795239855000-0123456789"},
		{"journal", "--state", "deferred", "--json"},
		{"doctor"},
		{"inspect", fixture},
		{"dialplan"},
		{"dialplan", "--manager"},
	}
	writing := [][]string{
		{"drain"}, {"number", "set", "5551001", "S", "PJSIP/1"}, {"retry", "--state", "deferred"}, {"evidence"},
	}
	before := tree(t, root)
	for _, args := range append(slices.Clone(looking), writing...) {
		out, errOut, code := runEnv(t, nil, append(args, "--config", conf)...)
		if d := diffTrees(before, tree(t, root)); len(d) > 0 {
			t.Errorf("%s on a missing database touched the disk: %v", strings.Join(args, " "), d)
			before = tree(t, root)
		}
		switch args[0] {
		case "inspect", "dialplan":
			if code != 0 {
				t.Errorf("%s: exit %d: %s", args[0], code, errOut)
			}
		case "doctor":
			if code != 1 || !strings.Contains(out, "does not exist yet: create it with `smsrouter migrate`") {
				t.Errorf("doctor: exit %d, want 1 and the database reported missing:\n%s", code, out)
			}
		default:
			if code != 2 || !strings.Contains(errOut, "smsrouter.db does not exist yet: create it with `smsrouter migrate`") {
				t.Errorf("%s: exit %d, stderr %q; want 2 and how to create the database", strings.Join(args, " "), code, errOut)
			}
		}
	}

	// An existing database: the looking commands leave every byte as it was.
	if out, errOut, code := runEnv(t, nil, "migrate", "--config", conf); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runEnv(t, nil, "number", "set", "5551001", "S", "PJSIP/1", "--config", conf); code != 0 {
		t.Fatalf("number set: %s", errOut)
	}
	before = tree(t, root)
	for _, args := range looking {
		out, errOut, code := runEnv(t, nil, append(args, "--config", conf)...)
		if d := diffTrees(before, tree(t, root)); len(d) > 0 {
			t.Errorf("%s touched the disk: %v", strings.Join(args, " "), d)
			before = tree(t, root)
		}
		if args[0] == "lookup" && (code != 0 || !strings.Contains(out, "5551001\tS\tPJSIP/1")) {
			t.Errorf("lookup: exit %d, %q %q", code, out, errOut)
		}
	}
}

// TestReadOnlyStoreRefusesWrites: the read-only mode is enforced by SQLite,
// not only by what the commands happen to run.
func TestReadOnlyStoreRefusesWrites(t *testing.T) {
	dsn := testdb.SQLite(t)
	w, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ro, err := router.OpenStoreMode(dsn, router.OpenReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.DB.Exec("INSERT INTO PBXNumbers (Account, Message, Extension) VALUES ('1', 'S', 'x')"); err == nil {
		t.Error("a read-only store accepted an INSERT")
	}
	var n int
	if err := ro.DB.QueryRow("SELECT COUNT(*) FROM PBXNumbers").Scan(&n); err != nil {
		t.Errorf("a read-only store cannot read: %v", err)
	}
	// WAL is set once, when the database is made; later opens rely on it.
	ex, err := router.OpenStoreMode(dsn, router.OpenExisting)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	var mode string
	if err := ex.DB.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
}

// TestMigrateMissingMySQLDatabase runs on the real MariaDB: a DSN naming a
// database the server does not have gets an explanation and the cure, not
// "Error 1049"; --create-database creates it (utf8mb4) and migrates it.
func TestMigrateMissingMySQLDatabase(t *testing.T) {
	dsn := testdb.MissingMySQL(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate"}, {"lookup", "5551001"}, {"drain", "--spool", t.TempDir()}, {"journal"}} {
		_, errOut, code := runEnv(t, nil, append(args, "--db", dsn)...)
		if code != 2 || !strings.Contains(errOut, "does not exist on the server") || !strings.Contains(errOut, "--create-database") || strings.Contains(errOut, "1049") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and how to create the database", args[0], code, errOut)
		}
	}
	out, errOut, code := runEnv(t, nil, "migrate", "--create-database", "--db", dsn)
	if code != 0 || !strings.Contains(out, "created database "+cfg.DBName+"\n") || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate --create-database: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runEnv(t, nil, "migrate", "--create-database", "--db", dsn)
	if code != 0 || strings.Contains(out, "created") {
		t.Errorf("second migrate --create-database: exit %d, %q %q; want 0 and nothing created", code, out, errOut)
	}
	admin, err := sql.Open("mysql", testdb.ServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var charset string
	if err := admin.QueryRow("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", cfg.DBName).Scan(&charset); err != nil || charset != "utf8mb4" {
		t.Errorf("created database: charset %q, %v; want utf8mb4", charset, err)
	}
	if _, errOut, code := runEnv(t, nil, "number", "set", "5551001", "S", "PJSIP/1", "--db", dsn); code != 0 {
		t.Errorf("number set on the new database: %s", errOut)
	}
}

func TestSummaryLine(t *testing.T) {
	sum := func(states ...router.State) *router.Summary {
		s := &router.Summary{Counts: map[router.State]int{}}
		for _, st := range states {
			s.Counts[st]++
			s.Outcomes = append(s.Outcomes, router.Outcome{State: st})
		}
		return s
	}
	for _, tt := range []struct {
		sum  *router.Summary
		want string
	}{
		{sum(router.StateDelivered), "1 message handled: delivered 1 (handed to their channel)"},
		{sum(router.StateHeld, router.StateDelivered, router.StateHeld),
			"3 messages handled: delivered 1 (handed to their channel), held 2 (parts waiting for the rest of a concatenated message)"},
		{sum(router.StateRejected, router.StateDeferred, router.StateBounced),
			"3 messages handled: deferred 1 (temporary failure, will be retried), bounced 1 (undeliverable, the sender was told), " +
				"rejected 1 (malformed, moved to smsrouter/rejected with a .reason file); " +
				"why: smsrouter journal --state deferred, smsrouter journal --state rejected (or drain -v)"},
		{sum(router.StateExpired, router.StateDropped),
			"2 messages handled: expired 1 (validity ended before delivery, the sender was told), dropped 1 (undeliverable, no one to tell)"},
		// A state added to the router later is still counted, if unexplained.
		{sum(router.StateDelivered, "forwarded"), "2 messages handled: delivered 1 (handed to their channel), forwarded 1"},
	} {
		if got := summaryLine(tt.sum); got != tt.want {
			t.Errorf("summaryLine:\n got %s\nwant %s", got, tt.want)
		}
	}
}
