package main

// End-to-end tests of DESIGN.md's promises. They run the real smsrouter binary
// (built once in TestMain) against real spool folders and real databases, kill it,
// run it concurrently, cut its database connection and feed it hostile files, and
// then check the spool and the journal: every message delivered exactly once,
// nothing lost, nothing left half-done, bad input quarantined with a reason.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/sys/unix"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// binPath is the smsrouter binary under test.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smsrouter-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "promises_test:", err)
		os.Exit(2)
	}
	binPath = filepath.Join(dir, "smsrouter")
	// The test build lets SMSROUTER_TEST_SYSTEM_CONFIG stand in for
	// /etc/asterisk/smsrouter.toml (syspath_testpaths.go). Set empty, and
	// $SMSROUTER_CONFIG unset, no test reads the machine's own configuration.
	build := exec.Command("go", "build", "-tags", "smsrouter_testpaths", "-o", binPath, ".")
	os.Unsetenv("SMSROUTER_CONFIG")
	os.Setenv("SMSROUTER_TEST_SYSTEM_CONFIG", "")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "promises_test: go build:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bed is one test installation: a spool, a config file and a migrated database.
type bed struct {
	t                    *testing.T
	root, spool, conf    string
	dsn                  string
	morx, mttx, outgoing string
	work                 string
	store                *router.Store
}

// newBed creates a spool under a fresh folder, a config naming dsn ("" for the
// embedded SQLite file in the work folder) plus extraTOML, migrates the database
// with the binary and seeds the directory.
func newBed(t *testing.T, dsn, extraTOML string, entries ...router.Entry) *bed {
	t.Helper()
	root := t.TempDir()
	b := &bed{t: t, root: root, spool: filepath.Join(root, "spool")}
	b.morx = filepath.Join(b.spool, "sms", "morx")
	b.mttx = filepath.Join(b.spool, "sms", "mttx")
	b.outgoing = filepath.Join(b.spool, "outgoing")
	b.work = filepath.Join(b.spool, "smsrouter")
	for _, d := range []string{b.morx, b.outgoing} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(b.work, "smsrouter.db")
	}
	b.dsn = dsn
	b.conf = filepath.Join(root, "smsrouter.toml")
	b.writeConfig(extraTOML)
	if out, errOut, code := b.run(context.Background(), "migrate", "--config", b.conf); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b.store = store
	for _, e := range entries {
		if err := store.Set(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *bed) writeConfig(extraTOML string) {
	b.t.Helper()
	conf := fmt.Sprintf("spool = %q\ndb = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n%s\n", b.spool, b.dsn, extraTOML)
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// run runs the binary to completion and returns its output and exit code.
func (b *bed) run(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	return runBin(b.t, ctx, nil, args...)
}

func runBin(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errOut, stdin
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("smsrouter %s: did not finish within 30 s (hung?)\n%s", strings.Join(args, " "), errOut.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return out.String(), errOut.String(), ee.ExitCode()
	default:
		t.Fatalf("smsrouter %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		return "", "", -1
	}
}

func (b *bed) drain(ctx context.Context) (string, int) {
	b.t.Helper()
	out, errOut, code := b.run(ctx, "drain", "--config", b.conf)
	return out + errOut, code
}

// plainSetup makes a spool (sms/morx and outgoing/) under a new temporary
// folder and a config naming only it, the SMSC number 9001 and UTC: the
// database is the default one, not created yet.
func plainSetup(tb testing.TB) (root, spool, conf string) {
	tb.Helper()
	root = tb.TempDir()
	spool = filepath.Join(root, "spool")
	for _, d := range []string{filepath.Join(spool, "sms", "morx"), filepath.Join(spool, "outgoing")} {
		if err := os.MkdirAll(d, 0o770); err != nil {
			tb.Fatal(err)
		}
	}
	conf = filepath.Join(root, "smsrouter.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "spool = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n", spool), 0o644); err != nil {
		tb.Fatal(err)
	}
	return root, spool, conf
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// directory entries shared by most tests: senders and recipients with letter S.
var stdEntries = []router.Entry{
	{Number: "5550001", Letter: 'S', Extension: "PJSIP/5550001"},
	{Number: "5550002", Letter: 'S', Extension: "PJSIP/5550002"},
	{Number: "5550009", Letter: 'S', Extension: "PJSIP/5550009"},
	{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"},
	{Number: "5551002", Letter: 'S', Extension: "DAHDI/2"},
	{Number: "5551003", Letter: 'S', Extension: "PJSIP/1003"},
}

// seedMessages drops n messages into morx the way app_sms writes them, each with a
// text that names it, and returns the texts the recipients must get. Every 7th is
// long enough for two SMS parts, every 11th needs UCS-2, and every 25th is sent as
// a concatenated pair of morx files (joined before delivery).
func seedMessages(t *testing.T, morx string, n int) map[string]bool {
	t.Helper()
	return seedRange(t, morx, 0, n)
}

// seedRange is seedMessages for the messages numbered from to to-1, so that a test
// can feed the spool in waves.
func seedRange(t *testing.T, morx string, from, to int) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	// Received in the last hour (the beds' timezone is UTC): the validity period
	// runs from scts.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	for i := from; i < to; i++ {
		oa := []string{"5550001", "5550002"}[i%2]
		da := []string{"5551001", "5551002", "5551003"}[i%3]
		at := base.Add(time.Duration(i%3600) * time.Second)
		name := fmt.Sprintf("%s.%s-%d", oa, at.Format("2006-01-02T15:04:05"), i)
		scts := at.Format("2006-01-02T15:04:05")
		switch {
		case i%25 == 24:
			one := fmt.Sprintf("joined message %04d, part one; ", i)
			two := fmt.Sprintf("part two of %04d.", i)
			ref := fmt.Sprintf("%02X", i%256)
			writeFile(t, filepath.Join(morx, name+"a"), fmt.Appendf(nil, "oa=5550009\nda=%s\nudh#0003%s0201\nud=%s\nscts=%s\nmr=%d\n", da, ref, one, scts, i%256))
			writeFile(t, filepath.Join(morx, name+"b"), fmt.Appendf(nil, "oa=5550009\nda=%s\nudh#0003%s0202\nud=%s\nscts=%s\nmr=%d\n", da, ref, two, scts, i%256))
			want[one+two] = true
			continue
		case i%7 == 6:
			text := fmt.Sprintf("long message %04d: %s", i, strings.Repeat("0123456789", 18))
			writeFile(t, filepath.Join(morx, name), fmt.Appendf(nil, "oa=%s\nda=%s\nud=%s\nscts=%s\nmr=%d\n", oa, da, text, scts, i%256))
			want[text] = true
		case i%11 == 10:
			text := fmt.Sprintf("Zażółć gęślą jaźń %04d", i)
			writeFile(t, filepath.Join(morx, name), fmt.Appendf(nil, "oa=%s\nda=%s\nud=%s\nscts=%s\ndcs=8\nmr=%d\n", oa, da, text, scts, i%256))
			want[text] = true
		default:
			text := fmt.Sprintf("message %04d from %s to %s", i, oa, da)
			writeFile(t, filepath.Join(morx, name), fmt.Appendf(nil, "oa=%s\nda=%s\nud=%s\nscts=%s\nmr=%d\n", oa, da, text, scts, i%256))
			want[text] = true
		}
	}
	return want
}

// mttxName is <queue>.<id>-<part>, as channels/sms names them.
var mttxName = regexp.MustCompile(`^([0-9A-Za-z-]+)\.(\d{13}-[0-9a-f]{10})-(\d+)$`)

// delivered reads sms/mttx and returns each message id's text (its parts joined in
// order) and queue.
func (b *bed) delivered() (texts map[string]string, queues map[string]string) {
	b.t.Helper()
	entries, err := os.ReadDir(b.mttx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.t.Fatal(err)
	}
	type part struct {
		n    int
		text string
	}
	parts := map[string][]part{}
	queues = map[string]string{}
	for _, e := range entries {
		m := mttxName.FindStringSubmatch(e.Name())
		if m == nil {
			b.t.Errorf("unexpected file in sms/mttx: %q", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.mttx, e.Name()))
		if err != nil {
			b.t.Fatal(err)
		}
		msg, err := smsq.Parse(data, time.UTC)
		if err != nil {
			b.t.Errorf("mttx file %s does not parse: %v", e.Name(), err)
			continue
		}
		n, _ := strconv.Atoi(m[3])
		parts[m[2]] = append(parts[m[2]], part{n, msg.Text})
		queues[m[2]] = m[1]
	}
	texts = map[string]string{}
	for id, ps := range parts {
		sort.Slice(ps, func(i, j int) bool { return ps[i].n < ps[j].n })
		var sb strings.Builder
		for i, p := range ps {
			if p.n != i+1 {
				b.t.Errorf("message %s: mttx parts %v are not 1..n", id, ps)
			}
			sb.WriteString(p.text)
		}
		texts[id] = sb.String()
	}
	return texts, queues
}

// journalStates returns every journal row's state by id.
func (b *bed) journalStates() map[string]router.State {
	b.t.Helper()
	rows, err := b.store.DB.Query("SELECT id, state FROM smsrouter_journal")
	if err != nil {
		b.t.Fatalf("read journal: %v", err)
	}
	defer rows.Close()
	out := map[string]router.State{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			b.t.Fatal(err)
		}
		out[id] = router.State(st)
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// list returns the names in a folder below the spool (nil when it does not exist).
func (b *bed) list(rel string) []string {
	b.t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.spool, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		b.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkExactlyOnce is the heart of promises 1 and 2: every wanted text reached
// sms/mttx exactly once, nothing else did, the journal has exactly one delivered row
// per message, every queue with messages has a call file, and no work is left
// behind in smsrouter's folders.
func (b *bed) checkExactlyOnce(want map[string]bool) {
	b.t.Helper()
	texts, queues := b.delivered()
	states := b.journalStates()
	seen := map[string][]string{}
	for id, text := range texts {
		seen[text] = append(seen[text], id)
		if states[id] != router.StateDelivered {
			b.t.Errorf("message %s (%.30q) is in sms/mttx but its journal state is %q", id, text, states[id])
		}
	}
	missing, twice := 0, 0
	for text := range want {
		switch ids := seen[text]; {
		case len(ids) == 0:
			missing++
			if missing <= 5 {
				b.t.Errorf("LOST: %.40q was never delivered", text)
			}
		case len(ids) > 1:
			twice++
			if twice <= 5 {
				b.t.Errorf("DELIVERED %d TIMES: %.40q (ids %v)", len(ids), text, ids)
			}
		}
	}
	for text, ids := range seen {
		if !want[text] {
			b.t.Errorf("unexpected delivery %.40q (ids %v)", text, ids)
		}
	}
	if missing+twice > 0 {
		b.t.Errorf("%d of %d messages lost, %d delivered more than once", missing, len(want), twice)
	}
	ndelivered := 0
	for id, st := range states {
		switch st {
		case router.StateDelivered:
			ndelivered++
			if _, ok := texts[id]; !ok {
				b.t.Errorf("journal says %s was delivered but it has no mttx file", id)
			}
		default:
			b.t.Errorf("journal row %s has state %q; want every message delivered", id, st)
		}
	}
	if ndelivered != len(want) {
		b.t.Errorf("journal has %d delivered rows; want %d", ndelivered, len(want))
	}
	// Every queue that got messages has a call file, and every call file belongs to
	// a delivered message.
	calls := map[string]int{}
	for _, name := range b.list("outgoing") {
		rest, ok := strings.CutPrefix(name, "smsrouter.mttx.")
		queue, id, ok2 := strings.Cut(rest, ".")
		if !ok || !ok2 {
			b.t.Errorf("unexpected file in outgoing: %q", name)
			continue
		}
		calls[queue]++
		// A follow-up call (f-…) is placed for parts waiting in the queue,
		// whichever message's they are (channels/sms).
		if states[id] != router.StateDelivered && !strings.HasPrefix(id, "f-") {
			b.t.Errorf("call file %s belongs to no delivered message", name)
		}
	}
	for _, q := range queues {
		switch calls[q] {
		case 0:
			b.t.Errorf("queue %s has mttx files but no call file in outgoing", q)
		case 1:
		default:
			b.t.Errorf("queue %s has %d call files: a phone is called once at a time", q, calls[q])
		}
	}
	b.checkNoLeftovers()
}

// checkNoLeftovers: morx, stage, deferred, parts and rejected are empty, and the
// claim folders hold nothing but lock files.
func (b *bed) checkNoLeftovers() {
	b.t.Helper()
	for _, rel := range []string{"sms/morx", "smsrouter/stage", "smsrouter/deferred", "smsrouter/parts", "smsrouter/rejected"} {
		if names := b.list(rel); len(names) > 0 {
			inside := b.list(filepath.Join(rel, names[0]))
			b.t.Errorf("%s is not empty: %d files, e.g. %q (holding %q)", rel, len(names), names[0], inside)
		}
	}
	for _, owner := range b.list("smsrouter/claimed") {
		for _, name := range b.list(filepath.Join("smsrouter/claimed", owner)) {
			if name != ".lock" {
				b.t.Errorf("left in claimed/%s: %q", owner, name)
			}
		}
	}
}

// TestKillDuringDrain is promises 1 and 2 under crashes: drain is SIGKILLed at
// random moments, over and over, with different batch sizes; a last drain must
// then finish the job with every message delivered exactly once.
func TestKillDuringDrain(t *testing.T) {
	n, cycles := 300, 15
	if testing.Short() {
		n, cycles = 150, 8
	}
	t.Run("sqlite", func(t *testing.T) { killLoop(t, "", n, cycles) })
	t.Run("mariadb", func(t *testing.T) { killLoop(t, testdb.MySQL(t), n, cycles) })
}

func killLoop(t *testing.T, dsn string, n, cycles int) {
	b := newBed(t, dsn, "", stdEntries...)
	// How long a drain with nothing to do takes (start, open the database, exit):
	// the early kills are spread over that, so that they land in start-up,
	// recovery and the first claims whatever this machine's speed.
	start := time.Now()
	if out, code := b.drain(context.Background()); code != 0 {
		t.Fatalf("empty drain: exit %d\n%s", code, out)
	}
	idle := time.Since(start)
	want := seedMessages(t, b.morx, n)
	killed := 0
	var progress []int
	var wasKilled []bool
	for i := range cycles {
		// Small batches put many commit points in the window; 256 is production's.
		b.writeConfig(fmt.Sprintf("[queue]\nbatch_size = %d\n", []int{1, 5, 32, 256}[i%4]))
		before := len(b.list("sms/mttx"))
		cmd := exec.Command(binPath, "drain", "-q", "--config", b.conf)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Every other kill waits until the drain has published something and then
		// lands a moment later: on a loaded machine a kill timed from the start alone
		// may always come before the first batch, and test nothing but start-up.
		var err error
		if i%2 == 0 {
			err = killAt(cmd, exited, time.Duration(rand.Int64N(int64(idle)+1)))
		} else {
			err = killAfterProgress(b, cmd, exited, before, time.Duration(rand.IntN(20))*time.Millisecond)
		}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && !ee.Exited():
			killed++
			wasKilled = append(wasKilled, true)
		case err != nil:
			t.Fatalf("cycle %d: drain failed on its own: %v\n%s", i, err, errOut.String())
		default:
			wasKilled = append(wasKilled, false)
		}
		progress = append(progress, len(b.list("sms/mttx")))
	}
	b.writeConfig("")
	if out, code := b.drain(context.Background()); code != 0 {
		t.Fatalf("final drain: exit %d\n%s", code, out)
	}
	// At least one kill must have landed in the middle of the work: a killed drain
	// that had delivered some messages but not all of them. (On a fast machine the
	// early kills finish the job and the later cycles find nothing to do; that is
	// fine as long as some kill interrupted real work.)
	final := len(b.list("sms/mttx"))
	interrupted := 0
	prev := 0
	for i, p := range progress {
		if wasKilled[i] && p > prev && p < final {
			interrupted++
		}
		prev = p
	}
	if interrupted == 0 {
		t.Fatalf("%d of %d drains killed, mttx files after each cycle %v, %d in the end: no kill interrupted a drain mid-work",
			killed, cycles, progress, final)
	}
	b.checkExactlyOnce(want)
	t.Logf("%d messages, %d of %d drains killed mid-run (an idle drain takes %v); mttx files after each kill: %v", len(want), killed, cycles, idle.Round(time.Millisecond), progress)
}

// killAt SIGKILLs the drain after d unless it has exited by then; it returns what
// Wait returned.
func killAt(cmd *exec.Cmd, exited chan error, d time.Duration) error {
	select {
	case err := <-exited:
		return err
	case <-time.After(d):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	return <-exited
}

// killAfterProgress SIGKILLs the drain d after more than `before` files are in
// sms/mttx, unless it has exited by then.
func killAfterProgress(b *bed, cmd *exec.Cmd, exited chan error, before int, d time.Duration) error {
	for {
		select {
		case err := <-exited:
			return err
		case <-time.After(time.Millisecond):
		}
		if len(b.list("sms/mttx")) > before {
			return killAt(cmd, exited, d)
		}
	}
}

// TestConcurrentDrains is promise 2: several drain processes on one spool at once
// never deliver a message twice and never lose one.
func TestConcurrentDrains(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 200
	}
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn, "[queue]\nbatch_size = 40\n", stdEntries...)
		want := seedMessages(t, b.morx, n)
		var wg sync.WaitGroup
		codes := make([]int, 3)
		outs := make([]string, 3)
		for i := range codes {
			wg.Go(func() {
				cmd := exec.Command(binPath, "drain", "--config", b.conf)
				out, err := cmd.CombinedOutput()
				outs[i] = string(out)
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					codes[i] = ee.ExitCode()
				} else if err != nil {
					codes[i] = -1
				}
			})
		}
		wg.Wait()
		for i, c := range codes {
			if c != 0 {
				// Promise 2 does not forbid a deferral under contention; the final
				// drain below must then still deliver exactly once.
				t.Logf("drain %d: exit %d\n%s", i, c, outs[i])
			}
			if c != 0 && c != 1 {
				t.Errorf("drain %d: exit %d", i, c)
			}
		}
		b.dueNow()
		if out, code := b.drain(context.Background()); code != 0 {
			t.Fatalf("final drain: exit %d\n%s", code, out)
		}
		b.checkExactlyOnce(want)
	})
}

// ageFiles backdates the modification time of everything in dir, without following
// symbolic links.
func ageFiles(t *testing.T, dir string, by time.Duration) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	then := unix.NsecToTimespec(time.Now().Add(-by).UnixNano())
	for _, e := range entries {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, e.Name()), []unix.Timespec{then, then}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// dueNow renames every deferred message so that it is due at once.
func (b *bed) dueNow() int {
	b.t.Helper()
	dir := filepath.Join(b.work, "deferred")
	names := b.list("smsrouter/deferred")
	for _, name := range names {
		_, rest, ok := strings.Cut(name, ".")
		if !ok {
			b.t.Fatalf("odd deferred name %q", name)
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, "0000000000001."+rest)); err != nil {
			b.t.Fatal(err)
		}
	}
	return len(names)
}

// cutProxy forwards TCP to MariaDB and can play a database that dies: when told
// to, it cuts every connection at the client's n-th COMMIT and then refuses all
// new ones until restored.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]bool

	down        atomic.Bool
	commits     atomic.Int32
	cutAt       atomic.Int32 // 0: never
	cutting     sync.WaitGroup
	forwardLast bool // forward the fatal COMMIT (the server commits, the client never hears)
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cutAll() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.pump(s, c, true)  // client to server
		go p.pump(c, s, false) // server to client
	}
}

// commitPacket is a COM_QUERY "COMMIT" as go-sql-driver sends it for tx.Commit.
var commitPacket = []byte("\x03COMMIT")

func (p *cutProxy) pump(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.down.Load() {
				return
			}
			if fromClient && bytes.Contains(buf[:n], commitPacket) {
				if at := p.cutAt.Load(); at > 0 && p.commits.Add(1) == at {
					p.cutting.Add(1)
					defer p.cutting.Done()
					p.down.Store(true) // from now on nothing reaches the client
					if p.forwardLast {
						_, _ = dst.Write(buf[:n])
						time.Sleep(100 * time.Millisecond) // let the server commit
					}
					p.cutAll()
					return
				}
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// restore brings the database back once the cut is complete.
func (p *cutProxy) restore() {
	p.cutting.Wait()
	p.cutAt.Store(0)
	p.down.Store(false)
}

func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestDatabaseDiesMidDrain is promise 3: MariaDB vanishing in the middle of a
// drain (seen through a proxy, so the shared server keeps running) bounces
// nothing; the messages wait and are delivered exactly once when it is back.
// "commit lost" cuts the connection after the server received a COMMIT but before
// the client heard the answer: the journal then says "delivered" for a batch the
// router cannot know the fate of. That batch stays staged, its messages stay
// claimed, and nothing else is taken until the journal can answer; the drain exits
// and the next one settles it.
func TestDatabaseDiesMidDrain(t *testing.T) {
	for _, tc := range []struct {
		name        string
		forwardLast bool
	}{
		{"before commit", false},
		{"commit lost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 200
			dsn := testdb.MySQL(t)
			b := newBed(t, dsn, "", stdEntries...)
			cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql:"))
			if err != nil {
				t.Fatal(err)
			}
			p := newCutProxy(t, cfg.Addr)
			p.forwardLast = tc.forwardLast
			cfg.Addr = p.addr()
			b.dsn = "mysql:" + cfg.FormatDSN()
			b.writeConfig("[queue]\nbatch_size = 20\n")
			want := seedMessages(t, b.morx, n)

			p.cutAt.Store(3)
			out, code := b.drain(context.Background())
			if !p.down.Load() {
				t.Fatalf("the proxy never cut the database (exit %d):\n%s", code, out)
			}
			if code != 1 {
				t.Errorf("drain with the database gone: exit %d, want 1\n%s", code, out)
			}
			if !strings.Contains(out, "deferred") {
				t.Errorf("drain's summary does not mention deferred messages:\n%s", out)
			}
			if names := b.list("smsrouter/rejected"); len(names) > 0 {
				t.Errorf("a database outage rejected input: %v", names)
			}
			texts, _ := b.delivered()
			claimed := 0
			for _, owner := range b.list("smsrouter/claimed") {
				for _, name := range b.list(filepath.Join("smsrouter/claimed", owner)) {
					if name != ".lock" {
						claimed++
					}
				}
			}
			if claimed == 0 {
				t.Fatal("no message waits in the dead drain's claim folder: the cut came too late to test anything")
			}
			if stages := b.list("smsrouter/stage"); len(stages) != 1 {
				t.Errorf("staging holds %v; want exactly the one undecided batch", stages)
			}
			t.Logf("before the database came back: %d delivered, %d claimed in an undecided batch, %d still in morx, %d deferred",
				len(texts), claimed, len(b.list("sms/morx")), len(b.list("smsrouter/deferred")))

			// The database is back.
			p.restore()
			for _, st := range b.journalStates() {
				if st == router.StateBounced || st == router.StateExpired || st == router.StateDropped {
					t.Errorf("journal has a %s message: a dead database must only delay", st)
				}
			}
			b.dueNow()
			out2, code := b.drain(context.Background())
			if code != 0 {
				t.Fatalf("drain after the database came back: exit %d\n%s", code, out2)
			}
			b.checkExactlyOnce(want)
			if t.Failed() {
				t.Logf("warnings of the drain that lost the database:\n%s\nwarnings of the drain after:\n%s", warnings(out), warnings(out2))
			}
		})
	}
}

// warnings picks the log lines above INFO out of a drain's output.
func warnings(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestHostileInput is promise 4: each hostile spool entry is quarantined in
// rejected/ with a clear reason (or, where it is a well-formed message with an
// undeliverable content, bounced), produces no call file or mttx file of its own,
// does not stop a valid message in the same drain, and touches nothing outside the
// spool.
func TestHostileInput(t *testing.T) {
	const marker = "HOSTILE"
	msg := func(s string) func(t *testing.T, morx, outside string) string {
		return func(t *testing.T, morx, _ string) string {
			writeFile(t, filepath.Join(morx, "5550001.2026-11-21T05:39:34-1"), []byte(s))
			return "5550001.2026-11-21T05:39:34-1"
		}
	}
	long := strings.Repeat("7", 64<<10)
	cases := []struct {
		name   string
		make   func(t *testing.T, morx, outside string) string // returns the entry's name in morx
		state  router.State                                    // rejected, bounced or delivered
		reason string                                          // in the .reason file, for rejected
	}{
		{"slash in da", msg("oa=5550001\nda=12/34\nud=" + marker + "\n"), router.StateRejected, `recipient (da) "12/34" is not a phone number`},
		{"dot-dot da", msg("oa=5550001\nda=..\nud=" + marker + "\n"), router.StateRejected, `recipient (da) ".."`},
		{"path da", msg("oa=5550001\nda=../../etc/x\nud=" + marker + "\n"), router.StateRejected, `recipient (da) "../../etc/x"`},
		{"path oa", msg("oa=../../etc/x\nda=5551001\nud=" + marker + "\n"), router.StateRejected, `sender (oa) "../../etc/x"`},
		{"CRLF in da", msg("oa=5550001\nda=1000\r\nApplication: System\nud=" + marker + "\n"), router.StateRejected, `key "application" is not followed by`},
		{"NUL in da", msg("oa=5550001\nda=555\x001001\nud=" + marker + "\n"), router.StateRejected, "NUL byte"},
		{"64 kB da line", msg("oa=5550001\nda=" + long + "\nud=" + marker + "\n"), router.StateRejected, "recipient (da)"},
		{"64 kB ud line", msg("oa=5550001\nda=5551002\nud=" + marker + long + "\n"), router.StateBounced, ""},
		{"10 MB file", func(t *testing.T, morx, _ string) string {
			writeFile(t, filepath.Join(morx, "5550001.big"), append([]byte("oa=5550001\nda=5551002\nud="+marker), bytes.Repeat([]byte("x"), 10<<20)...))
			return "5550001.big"
		}, router.StateRejected, "bytes"},
		{"invalid UTF-8 in ud", msg("oa=5550001\nda=5551002\nud=" + marker + " \xff\xfe\xc3( end\n"), router.StateDelivered, ""},
		{"odd ud hex", msg("oa=5550001\nda=5551002\nud##00\n"), router.StateRejected, "ud##"},
		{"odd udh hex", msg("oa=5550001\nda=5551002\nudh#0\nud=" + marker + "\n"), router.StateRejected, "udh#"},
		{"truncated key", msg("oa=5550001\nda=5551002\nud=" + marker + "\nsc"), router.StateRejected, `key "sc"`},
		{"empty file", msg(""), router.StateRejected, "recipient (da) is missing"},
		{"only oa=", msg("oa=\n"), router.StateRejected, "is missing"},
		{"directory", func(t *testing.T, morx, _ string) string {
			d := filepath.Join(morx, "5550001.2026-11-21T05:39:34-2")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(d, "inner"), []byte("oa=5550001\nda=5551002\nud="+marker+"\n"))
			return filepath.Base(d)
		}, router.StateRejected, "not a regular file"},
		{"symlink to /etc/passwd", func(t *testing.T, morx, _ string) string {
			if err := os.Symlink("/etc/passwd", filepath.Join(morx, "5550001.passwd")); err != nil {
				t.Fatal(err)
			}
			return "5550001.passwd"
		}, router.StateRejected, "not a regular file"},
		{"symlink to a message outside the spool", func(t *testing.T, morx, outside string) string {
			target := filepath.Join(outside, "message")
			writeFile(t, target, []byte("oa=5550001\nda=5551002\nud="+marker+"\n"))
			if err := os.Symlink(target, filepath.Join(morx, "5550001.link")); err != nil {
				t.Fatal(err)
			}
			return "5550001.link"
		}, router.StateRejected, "not a regular file"},
		{"fifo", func(t *testing.T, morx, _ string) string {
			if err := syscall.Mkfifo(filepath.Join(morx, "5550001.fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "5550001.fifo"
		}, router.StateRejected, "not a regular file"},
		{"newline in file name", func(t *testing.T, morx, _ string) string {
			name := "5550001.\n..x y"
			writeFile(t, filepath.Join(morx, name), []byte("oa=5550001\nda=5551002\nud="+marker+"\n"))
			return name
		}, router.StateDelivered, ""},
		{"CRLF in the directory's Extension", msg("oa=5550001\nda=5557777\nud=" + marker + "\n"), router.StateBounced, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries := append([]router.Entry{{Number: "5557777", Letter: 'S', Extension: "PJSIP/7777\r\nApplication: System"}}, stdEntries...)
			b := newBed(t, "", "", entries...)
			outside := filepath.Join(b.root, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(outside, "keep"), []byte("untouched\n"))
			name := tc.make(t, b.morx, outside)
			const valid = "a valid message in the same drain"
			writeFile(t, filepath.Join(b.morx, "5550002.2026-11-21T05:39:34-0"), []byte("oa=5550002\nda=5551001\nud="+valid+"\n"))
			// Files that have been sitting there: a young file that does not parse is
			// given the settle time to be finished (TestSlowWriter), these are judged.
			ageFiles(t, b.morx, time.Minute)
			before := snapshot(t, b.root, b.spool)

			out, code := b.drain(context.Background())
			wantCode := 0
			if tc.state == router.StateRejected {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("drain: exit %d, want %d\n%s", code, wantCode, out)
			}
			if after := snapshot(t, b.root, b.spool); after != before {
				t.Errorf("drain touched files outside the spool:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Lstat(filepath.Join(b.morx, name)); err == nil {
				t.Errorf("%q is still in morx", name)
			}

			// The valid message got through; the hostile one produced nothing of its own.
			texts, _ := b.delivered()
			var got []string
			for _, text := range texts {
				got = append(got, text)
				if !utf8.ValidString(text) {
					t.Errorf("delivered text is not valid UTF-8: %q", text)
				}
			}
			sort.Strings(got)
			wantTexts := 1
			switch tc.state {
			case router.StateDelivered:
				wantTexts = 2
			case router.StateBounced:
				wantTexts = 2 // the notice to the sender
			}
			if len(got) != wantTexts || !containsString(got, valid) {
				t.Errorf("delivered texts %q; want the valid message and %d more", got, wantTexts-1)
			}
			for _, text := range got {
				if strings.Contains(text, marker) && tc.state != router.StateDelivered {
					t.Errorf("the hostile message was delivered: %.60q", text)
				}
			}
			for _, f := range b.list("outgoing") {
				data, err := os.ReadFile(filepath.Join(b.outgoing, f))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(data, []byte("System")) || bytes.Contains(data, []byte("\r")) {
					t.Errorf("call file %s carries hostile input:\n%s", f, data)
				}
			}

			rejected := b.list("smsrouter/rejected")
			if tc.state != router.StateRejected {
				if len(rejected) > 0 {
					t.Errorf("rejected/ holds %q; want nothing rejected", rejected)
				}
			} else {
				checkQuarantined(t, filepath.Join(b.work, "rejected"), rejected, tc.reason)
			}
			states := b.journalStates()
			count := map[router.State]int{}
			for _, st := range states {
				count[st]++
			}
			wantCount := map[router.State]int{router.StateDelivered: 1}
			wantCount[tc.state]++
			if tc.state == router.StateBounced {
				wantCount[router.StateDelivered]++ // the notice
			}
			if fmt.Sprint(count) != fmt.Sprint(wantCount) {
				t.Errorf("journal states %v; want %v", count, wantCount)
			}
			for _, rel := range []string{"smsrouter/stage", "smsrouter/deferred", "smsrouter/parts", "sms/morx"} {
				if names := b.list(rel); len(names) > 0 {
					t.Errorf("%s is not empty: %q", rel, names)
				}
			}
		})
	}
}

// checkQuarantined wants exactly one quarantined entry with its .reason file,
// whose text is a single clear line containing reason.
func checkQuarantined(t *testing.T, dir string, names []string, reason string) {
	t.Helper()
	var entry, reasonFile string
	for _, n := range names {
		if strings.HasSuffix(n, ".reason") {
			reasonFile = n
		} else {
			entry = n
		}
	}
	if len(names) != 2 || entry == "" || reasonFile != entry+".reason" {
		t.Fatalf("rejected/ holds %q; want the entry and its .reason", names)
	}
	if strings.ContainsAny(entry, "\n\r/") || strings.HasPrefix(entry, ".") {
		t.Errorf("quarantine name %q is not a plain file name", entry)
	}
	data, err := os.ReadFile(filepath.Join(dir, reasonFile))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(string(data), "\n")
	if !strings.Contains(text, reason) {
		t.Errorf("reason %q does not say %q", text, reason)
	}
	if strings.ContainsAny(text, "\n\r\x00") || !utf8.ValidString(text) || len(text) > 500 {
		t.Errorf("reason is not one clear line: %q", text)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// snapshot lists every path under root except the skip folder with its mode, size
// and mtime (and a symlink's target), so that any change outside the spool shows.
func snapshot(t *testing.T, root, skip string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		if p == root {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %d %d", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestDrainExitCodes checks what scripts and the dialplan see.
func TestDrainExitCodes(t *testing.T) {
	ctx := context.Background()
	// A voice number whose speech engine is missing: a sick dependency, so its
	// messages wait (a directory row that cannot work bounces instead).
	entries := append([]router.Entry{{Number: "5558888", Letter: 'V', Extension: "PJSIP/8888"}}, stdEntries...)
	b := newBed(t, "", "[voice]\nargv = [\"/nonexistent/tts\", \"{{.Text}}\"]\n", entries...)

	t.Run("nothing to do", func(t *testing.T) {
		out, code := b.drain(ctx)
		if code != 0 || !strings.Contains(out, "nothing to do") {
			t.Errorf("exit %d, output %q; want 0 and \"nothing to do\"", code, out)
		}
	})
	t.Run("all delivered", func(t *testing.T) {
		writeFile(t, filepath.Join(b.morx, "5550001.a"), []byte("oa=5550001\nda=5551001\nud=hello\n"))
		out, errOut, code := b.run(ctx, "drain", "--config", b.conf)
		if code != 0 || out != "1 message handled: delivered 1 (handed to their channel)\n" || errOut != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and one summary line", code, out, errOut)
		}
	})
	t.Run("quiet", func(t *testing.T) {
		writeFile(t, filepath.Join(b.morx, "5550001.q"), []byte("oa=5550001\nda=5551001\nud=hello\n"))
		out, errOut, code := b.run(ctx, "drain", "-q", "--config", b.conf)
		if code != 0 || out != "" || errOut != "" {
			t.Errorf("drain -q: exit %d, stdout %q, stderr %q; want 0 and nothing", code, out, errOut)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		writeFile(t, filepath.Join(b.morx, "5550001.b"), []byte("oa=5550001\nda=5558888\nud=no speech engine yet\n"))
		// -v: the summary, each message that did not get through with its reason,
		// the router's log and the configuration used.
		out, errOut, code := b.run(ctx, "drain", "-v", "--config", b.conf)
		if code != 1 || !strings.HasPrefix(out, "1 message handled: deferred 1 (temporary failure, will be retried)") ||
			!strings.Contains(out, "\n  deferred ") || !strings.Contains(out, "tts engine failed") {
			t.Errorf("exit %d, output %q; want 1 and a summary naming the deferral", code, out)
		}
		if !strings.Contains(errOut, `msg="message deferred"`) || !strings.Contains(errOut, "smsrouter: config "+b.conf+" (--config)") {
			t.Errorf("drain -v stderr %q: want the router's log and the config used", errOut)
		}
		if n := len(b.list("smsrouter/deferred")); n != 1 {
			t.Errorf("%d files in deferred/; want 1", n)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		writeFile(t, filepath.Join(b.morx, "5550001.c"), []byte("oa=5550001\nda=../x\nud=bad\n"))
		out, errOut, code := b.run(ctx, "drain", "--config", b.conf)
		want := "1 message handled: rejected 1 (malformed, moved to smsrouter/rejected with a .reason file); why: "
		if code != 1 || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 {
			t.Errorf("exit %d, stdout %q; want 1 and one summary line naming the rejection", code, out)
		}
		// A malformed file is for an admin to look at: logged without -v, as a
		// warning; the per-message fate lines (level INFO) are not.
		if !strings.Contains(errOut, `level=WARN msg="message rejected"`) || strings.Contains(errOut, "level=INFO") {
			t.Errorf("drain's log without -v: %q; want the rejection's warning and no INFO lines", errOut)
		}
		reasons, _ := filepath.Glob(filepath.Join(b.work, "rejected", "*.reason"))
		if len(reasons) != 1 {
			t.Fatalf("%d .reason files; want 1", len(reasons))
		}
		if reason, _ := os.ReadFile(reasons[0]); !strings.Contains(string(reason), `"../x"`) {
			t.Errorf("reason %q does not name the hostile number", reason)
		}
	})

	badConf := filepath.Join(b.root, "bad.toml")
	writeFile(t, badConf, fmt.Appendf(nil, "spool = %q\nspoool = \"typo\"\n", b.spool))
	noSpool := filepath.Join(b.root, "nospool.toml")
	writeFile(t, noSpool, fmt.Appendf(nil, "spool = %q\n", filepath.Join(b.root, "missing")))
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown config key", []string{"drain", "--config", badConf}, "unknown keys: spoool"},
		{"missing config file", []string{"drain", "--config", filepath.Join(b.root, "none.toml")}, "none.toml"},
		{"missing spool", []string{"drain", "--config", noSpool}, "is not a folder"},
		{"bad flag", []string{"drain", "--bogus"}, "bogus"},
		{"stray argument", []string{"drain", "--config", b.conf, "extra"}, ""},
		{"bad db dsn", []string{"drain", "--config", b.conf, "--db", "postgres:x"}, "unknown kind"},
		{"unknown command", []string{"drian"}, `unknown command "drian"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := b.run(ctx, tc.args...)
			if code != 2 {
				t.Errorf("exit %d; want 2 (stderr %q)", code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
		})
	}
}

// TestSendLookupInspect covers the other subcommands a newcomer runs first.
func TestSendLookupInspect(t *testing.T) {
	ctx := context.Background()
	b := newBed(t, "", "", stdEntries...)

	t.Run("send then drain", func(t *testing.T) {
		out, errOut, code := b.run(ctx, "send", "--config", b.conf, "--from", "5550001", "--to", "5551003", "hello", "from", "send")
		if code != 0 {
			t.Fatalf("send: exit %d: %s", code, errOut)
		}
		id := strings.TrimSpace(out)
		if !regexp.MustCompile(`^\d{13}-[0-9a-f]{10}$`).MatchString(id) {
			t.Fatalf("send printed %q; want a message id", out)
		}
		if dout, code := b.drain(ctx); code != 0 {
			t.Fatalf("drain: exit %d\n%s", code, dout)
		}
		rec, err := router.NewJournal(b.store).Get(ctx, id)
		if err != nil {
			t.Fatalf("journal has no row for the id send printed: %v", err)
		}
		if rec.State != router.StateDelivered || rec.OA != "5550001" || rec.DA != "5551003" {
			t.Errorf("journal row %+v; want delivered 5550001→5551003", rec)
		}
		texts, _ := b.delivered()
		if texts[id] != "hello from send" {
			t.Errorf("mttx for %s says %q; want %q", id, texts[id], "hello from send")
		}
	})
	t.Run("send from stdin", func(t *testing.T) {
		out, errOut, code := runBin(t, ctx, strings.NewReader("two\nlines\n"), "send", "--config", b.conf, "--from", "5550001", "--to", "5551003", "-")
		if code != 0 {
			t.Fatalf("send -: exit %d: %s", code, errOut)
		}
		id := strings.TrimSpace(out)
		if _, code := b.drain(ctx); code != 0 {
			t.Fatal("drain failed")
		}
		if texts, _ := b.delivered(); texts[id] != "two\nlines" {
			t.Errorf("delivered %q; want %q", texts[id], "two\nlines")
		}
	})
	for _, to := range []string{"../x", "1000\nApplication: System", "12/34", "", "1234567890123456789012"} {
		t.Run(fmt.Sprintf("send to %q", to), func(t *testing.T) {
			_, errOut, code := b.run(ctx, "send", "--config", b.conf, "--from", "5550001", "--to", to, "hi")
			if code != 2 {
				t.Errorf("exit %d; want 2 (stderr %q)", code, errOut)
			}
			if names := b.list("sms/morx"); len(names) > 0 {
				t.Errorf("send queued %q anyway", names)
			}
		})
	}

	t.Run("lookup", func(t *testing.T) {
		out, errOut, code := b.run(ctx, "lookup", "--config", b.conf, "5551002")
		if code != 0 || out != "5551002\tS\tDAHDI/2\tSMS to the phone\n" {
			t.Errorf("lookup known: exit %d, %q %q", code, out, errOut)
		}
		out, _, code = b.run(ctx, "lookup", "--config", b.conf, "5559999", "../x")
		if code != 1 || !strings.Contains(out, "5559999\tunknown\n") || !strings.Contains(out, "../x\tinvalid\t") {
			t.Errorf("lookup unknown and invalid: exit %d, %q", code, out)
		}
	})
	t.Run("number set applies at once", func(t *testing.T) {
		if _, errOut, code := b.run(ctx, "number", "--config", b.conf, "set", "5551003", "n", "PJSIP/1003"); code != 0 {
			t.Fatalf("number set: exit %d: %s", code, errOut)
		}
		out, _, _ := b.run(ctx, "lookup", "--config", b.conf, "5551003")
		if !strings.Contains(out, "\tN\t") {
			t.Errorf("lookup after number set: %q; want letter N", out)
		}
		if _, _, code := b.run(ctx, "number", "--config", b.conf, "set", "5551003", "S", "PJSIP/1\nApplication: System"); code != 2 {
			t.Errorf("number set with a line break in the Extension: exit %d; want 2", code)
		}
	})

	t.Run("inspect fixtures", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(fixturesRoot(t), "morx", "*", "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no morx fixtures (%v)", err)
		}
		out, errOut, code := b.run(ctx, append([]string{"inspect", "--config", b.conf}, files...)...)
		dec := json.NewDecoder(strings.NewReader(out))
		wantCode := 0
		for _, f := range files {
			var got inspected
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("inspect output for %s is not JSON: %v\n%s", f, err, errOut)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, perr := smsq.Parse(data, time.UTC)
			if got.File != f {
				t.Errorf("inspect printed %q; want %q next", got.File, f)
			}
			if perr != nil {
				wantCode = 1
				if got.Error == "" {
					t.Errorf("%s: smsq.Parse fails (%v) but inspect shows no error", f, perr)
				}
				continue
			}
			if got.Error != "" || got.Text != m.Text || got.OA != m.OA || got.DA != m.DA {
				t.Errorf("%s: inspect says %+v; smsq.Parse says oa=%q da=%q text=%q", f, got, m.OA, m.DA, m.Text)
			}
		}
		if dec.More() {
			t.Errorf("inspect printed more objects than files")
		}
		if code != wantCode {
			t.Errorf("inspect: exit %d; want %d", code, wantCode)
		}
	})
}

// fixturesRoot is the repository's copy of the captured Asterisk fixtures.
func fixturesRoot(t *testing.T) string {
	t.Helper()
	return filepath.Join("..", "..", "testdata", "asterisk")
}
