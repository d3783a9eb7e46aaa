package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smsrouter/asteriskconf/ami"
	"smsrouter/migrations"
	"smsrouter/router"
)

// checkLevel is how a doctor check came out.
type checkLevel int

const (
	checkOK checkLevel = iota
	checkSkip
	checkWarn
	checkFail
)

func (l checkLevel) String() string {
	return [...]string{"ok", "skip", "warn", "FAIL"}[l]
}

// check is one line of `smsrouter doctor`: what was checked, what was found and,
// when it is not fine, what to do about it.
type check struct {
	Name, Detail, Fix string
	Level             checkLevel
	Numbers           []string // the directory numbers a finding concerns (the console shows it beside them)
}

// doctor runs every check against cfg. It never stops at the first failure: the
// admin wants the whole list in one go.
type doctor struct {
	cfg        Config
	configPath string // the file and how it was found
	configFile string // the file alone; "" for the built-in defaults
	checks     []check
}

func (d *doctor) add(level checkLevel, name, detail, fix string) {
	d.checks = append(d.checks, check{Name: name, Detail: detail, Fix: fix, Level: level})
}

// jsonCheck is one check in `doctor --json`, for monitoring.
type jsonCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, warn or fail
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func cmdDoctor(ctx context.Context, e *env, c *common, asJSON bool) int {
	d := &doctor{}
	cfg, err := c.load(e)
	code := exitOK
	if err != nil {
		d.add(checkFail, "config", err.Error(), "correct the file; smsrouter.example.toml documents every key")
		code = exitUsage
	} else {
		d.cfg, d.configPath, d.configFile = cfg, c.choice.String(), c.choice.path
		d.run(ctx)
	}
	worst := checkOK
	for _, ch := range d.checks {
		worst = max(worst, ch.Level)
	}
	if worst == checkFail && code == exitOK {
		code = exitPartial
	}
	if asJSON {
		out := make([]jsonCheck, len(d.checks))
		for i, ch := range d.checks {
			status := map[checkLevel]string{checkOK: "ok", checkSkip: "ok", checkWarn: "warn", checkFail: "fail"}[ch.Level]
			out[i] = jsonCheck{Name: ch.Name, Status: status, Message: ch.Detail}
			if ch.Level >= checkWarn {
				out[i].Fix = ch.Fix
			}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(e, exitPartial, err)
		}
		return code
	}
	for _, ch := range d.checks {
		fmt.Fprintf(e.stdout, "%-4s  %-14s %s\n", ch.Level, ch.Name, ch.Detail)
		if ch.Fix != "" && ch.Level >= checkWarn {
			fmt.Fprintf(e.stdout, "      fix: %s\n", ch.Fix)
		}
	}
	return code
}

func (d *doctor) run(ctx context.Context) {
	d.add(checkOK, "config", orDefault(d.configPath, "built-in defaults (no --config)"), "")
	// The very checks serve makes before it starts: what fails here, serve
	// refuses with the same words.
	p, err := prepare(d.cfg)
	var probs configProblems
	switch {
	case errors.As(err, &probs):
		for _, pr := range probs {
			d.add(checkFail, "config", pr.err.Error(), pr.fix)
		}
	case err != nil:
		d.add(checkFail, "config", err.Error(), "correct the file; smsrouter.example.toml documents every key")
	default:
		d.add(checkOK, "settings", "everything serve builds from it is valid: router, notices, channels "+planLetters(p)+", listeners", "")
	}
	if d.cfg.checkSpool() == nil && d.checkSpool() {
		d.checkQueue()
	}
	store := d.checkDatabase(ctx)
	vNumbers := 0
	if store != nil {
		defer store.Close()
		vNumbers = d.checkDirectoryData(ctx, store, p)
	}
	d.checkAMI(ctx)
	d.checkLinks(ctx)
	d.checkListener(ctx, "fastagi", d.cfg.AGI.Listen, "run `smsrouter serve` (or `smsrouter agi`) with [agi] listen set")
	d.checkListener(ctx, "http api", d.cfg.HTTP.Listen, "start `smsrouter serve`; the API runs inside it")
	d.checkListener(ctx, "metrics", d.cfg.Metrics.Listen, "start `smsrouter serve`; /metrics runs inside it")
	d.checkTTS(vNumbers)
	d.checkDialplan()
}

// planLetters lists the letters a checked configuration has channels for.
func planLetters(p *plan) string {
	if p.sip != nil {
		return "S F V C T"
	}
	return "S F V C (T not configured)"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkSpool verifies that every folder smsrouter writes to exists and takes a
// file, that they share one filesystem (every hand-over is a rename) and that
// there is room. It reports whether the spool is usable at all.
func (d *doctor) checkSpool() bool {
	spool := d.cfg.Spool
	st, err := os.Stat(spool)
	if err != nil || !st.IsDir() {
		d.add(checkFail, "spool", fmt.Sprintf("%s is not a folder", spool), "install Asterisk, or set spool = \"…\" to its astspooldir")
		return false
	}
	work := d.cfg.workDir()
	// Asterisk watches the first three (pbx_spool reads outgoing/ dot-files
	// included; app_sms and other tools read the sms queues): nothing of ours may
	// ever appear there (DESIGN.md promise 10), so they are checked without
	// writing. The work dir is ours: it gets a real file, which also proves the
	// filesystem they share takes writes.
	dirs := []struct {
		name, path string
		watched    bool
	}{
		{"morx", filepath.Join(spool, "sms", "morx"), true},
		{"mttx", filepath.Join(spool, "sms", "mttx"), true},
		{"outgoing", filepath.Join(spool, "outgoing"), true},
		{"work dir", work, false},
	}
	ok := true
	for _, dd := range dirs {
		if _, err := os.Stat(dd.path); errors.Is(err, os.ErrNotExist) {
			// The router creates its folders; what matters is that it may. The
			// parent may itself be watched (outgoing/ for a work dir inside it):
			// never write there either.
			if perr := mayCreateIn(nearestDir(dd.path)); perr == nil {
				d.add(checkWarn, dd.name, dd.path+" does not exist yet; smsrouter creates it on its first run", "smsrouter drain (as the user the service runs as)")
				continue
			}
		}
		probe := writable
		if dd.watched {
			probe = mayCreateIn
		}
		if err := probe(dd.path); err != nil {
			d.add(checkFail, dd.name, err.Error(),
				fmt.Sprintf("install -d -m 2770 -o asterisk -g asterisk %s (and run smsrouter as the asterisk user)", dd.path))
			ok = false
			continue
		}
		d.add(checkOK, dd.name, dd.path+" is writable", "")
	}
	if ok {
		a, errA := devOf(filepath.Join(spool, "outgoing"))
		b, errB := devOf(work)
		if errA == nil && errB == nil && a != b {
			d.add(checkFail, "filesystem", fmt.Sprintf("%s and %s are on different filesystems", work, filepath.Join(spool, "outgoing")),
				"put work_dir under the spool: hand-overs to Asterisk must be atomic renames")
			ok = false
		}
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(spool, &fsst); err == nil {
		free := fsst.Bavail * uint64(fsst.Bsize)
		total := fsst.Blocks * uint64(fsst.Bsize)
		detail := fmt.Sprintf("%d MiB free of %d MiB", free>>20, total>>20)
		switch {
		case free < 10<<20:
			d.add(checkFail, "free space", detail, "free space on "+spool+": messages cannot be accepted")
		case free < 100<<20 || (total > 0 && free*20 < total):
			d.add(checkWarn, "free space", detail, "free space on "+spool+" before it runs out")
		default:
			d.add(checkOK, "free space", detail, "")
		}
	}
	return ok
}

// writable proves a folder of our own takes a new file by creating and removing
// one, which is exactly what the router does (permissions, read-only mounts,
// SELinux, a full inode table…). Only for folders no one else watches: see
// mayCreateIn.
func writable(dir string) error {
	if err := isDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".smsrouter-doctor-*")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	// Someone else removing it first still proves it was created.
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove a file from %s: %w", dir, errors.Unwrap(err))
	}
	return nil
}

// mayCreateIn asks the kernel whether this process may create files in dir,
// without creating one: a folder Asterisk watches must never see a probe.
// pbx_spool reads every regular file in outgoing/, dot-files too, and deletes
// what it cannot parse as "invalid" (so a file probe there failed at random
// when it won the race); a directory probe is no better, since its inotify
// loop queues every IN_CREATE and stats it two seconds later, logging "Unable
// to stat" for one that is gone. faccessat(2) with AT_EACCESS checks the mode
// bits and ACLs for our effective ids, a read-only mount (EROFS) and the
// security module's veto (SELinux), which is what creating a file would meet;
// a full disk shows in the real probe of the work dir on the same filesystem.
func mayCreateIn(dir string) error {
	if err := isDir(dir); err != nil {
		return err
	}
	err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("cannot create a file in %s: read-only filesystem", dir)
	default:
		return fmt.Errorf("cannot create a file in %s: %w (uid %d, gid %d)", dir, err, os.Geteuid(), os.Getegid())
	}
}

func isDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// nearestDir is the closest existing ancestor of path.
func nearestDir(path string) string {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.IsDir() || p == filepath.Dir(p) {
			return p
		}
	}
}

func devOf(path string) (uint64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("no device number")
	}
	return uint64(sys.Dev), nil
}

// checkQueue reports what waits: a growing backlog is what users notice first.
func (d *doctor) checkQueue() {
	rc, err := d.cfg.routerConfig()
	if err != nil {
		return
	}
	a, err := router.NewAdmin(rc, nil)
	if err != nil {
		return
	}
	s, err := a.Stats()
	if err != nil {
		d.add(checkFail, "queue", err.Error(), "check the permissions of "+d.cfg.workDir())
		return
	}
	detail := fmt.Sprintf("%d incoming, %d deferred, %d held", s.Incoming, s.Deferred, s.Held)
	if !s.Oldest.IsZero() {
		age := time.Since(s.Oldest).Round(time.Second)
		detail += fmt.Sprintf(", oldest %s", age)
		if age > time.Hour {
			d.add(checkWarn, "queue", detail, "`smsrouter journal --state deferred` shows why; is serve running?")
			return
		}
	}
	d.add(checkOK, "queue", detail, "")
	if n := countFiles(filepath.Join(d.cfg.workDir(), "rejected"), ".reason"); n > 0 {
		d.add(checkWarn, "rejected", fmt.Sprintf("%d files quarantined in %s", n, filepath.Join(d.cfg.workDir(), "rejected")),
			"read the .reason beside each file, then delete it")
	}
}

func countFiles(dir, suffix string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			n++
		}
	}
	return n
}

// checkDatabase opens the database as serve does (read-only), and returns it
// for the directory's checks; nil when it cannot be used.
func (d *doctor) checkDatabase(ctx context.Context) *router.Store {
	if router.CheckDSN(d.cfg.dsn()) != nil {
		return nil // a config problem, listed already
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := openStore(pctx, d.cfg, router.OpenReadOnly)
	switch {
	case errors.Is(err, errDatabaseDown):
		d.add(checkFail, "database", err.Error()+" (serve waits for it; messages wait in the spool)", "start the database, or check host, user and password in db")
		return nil
	case router.NoDatabase(err) || err != nil && strings.Contains(err.Error(), "does not exist"):
		fix := "smsrouter migrate"
		if strings.HasPrefix(d.cfg.dsn(), "mysql:") {
			fix = "smsrouter migrate --create-database"
		}
		d.add(checkFail, "database", err.Error(), fix)
		return nil
	case err != nil:
		d.add(checkFail, "schema", err.Error(), "smsrouter migrate")
		return nil
	}
	v, _ := store.SchemaVersion(pctx)
	if latest := migrations.Latest(store.Dialect); v > latest {
		d.add(checkWarn, "schema", fmt.Sprintf("version %d is newer than this smsrouter knows (%d)", v, latest), "upgrade smsrouter")
	} else {
		d.add(checkOK, "schema", fmt.Sprintf("%s, version %d", store, v), "")
	}
	return store
}

// checkAMI logs in with the [sip] credentials and asks for MessageSend without a
// recipient: Asterisk answers "Permission denied" when the user may not send,
// and an argument error when it may. Nothing is sent either way.
func (d *doctor) checkAMI(ctx context.Context) {
	settings, ok, err := d.cfg.sipSettings()
	if err != nil {
		return // a config problem, listed already
	}
	if !ok {
		d.add(checkSkip, "ami", "[sip] not configured (letter T is bounced)", "")
		return
	}
	acfg := settings.AMI
	acfg.PingInterval, acfg.DialTimeout = -1, 5*time.Second
	if acfg.Logger == nil {
		acfg.Logger = slog.New(slog.DiscardHandler)
	}
	cl, err := ami.Dial(ctx, acfg)
	if errors.Is(err, ami.ErrAuthFailed) {
		d.add(checkFail, "ami", fmt.Sprintf("login as %s refused at %s", acfg.Username, acfg.Addr), "check the user in manager.conf (`smsrouter dialplan --manager` prints one) and its secret")
		return
	}
	if err != nil {
		d.add(checkFail, "ami", fmt.Sprintf("%s: %v", acfg.Addr, err), "enable the manager in manager.conf and check [sip] ami_addr")
		return
	}
	defer cl.Close()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cl.Do(qctx, ami.NewAction("MessageSend"))
	var re *ami.ResponseError
	switch {
	case errors.As(err, &re) && strings.Contains(strings.ToLower(re.Message), "permission denied"):
		d.add(checkFail, "ami", fmt.Sprintf("user %s may not use MessageSend", acfg.Username), "add write = message to the user in manager.conf")
	case err == nil || errors.As(err, &re):
		d.add(checkOK, "ami", fmt.Sprintf("logged in as %s at %s; MessageSend allowed", acfg.Username, acfg.Addr), "")
	default:
		d.add(checkWarn, "ami", fmt.Sprintf("logged in, but MessageSend probe failed: %v", err), "")
	}
}

// checkListener tells whether something answers on a configured address. It is a
// warning, not a failure: doctor may well run while serve is stopped.
func (d *doctor) checkListener(ctx context.Context, name, addr, fix string) {
	if addr == "" {
		d.add(checkSkip, name, "not configured", "")
		return
	}
	a, err := localAddr(addr)
	if err != nil {
		d.add(checkFail, name, err.Error(), "write host:port, e.g. 127.0.0.1:4573")
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(dctx, "tcp", a)
	if err != nil {
		d.add(checkWarn, name, fmt.Sprintf("nothing answers on %s", a), fix)
		return
	}
	conn.Close()
	d.add(checkOK, name, a+" answers (serve runs, or another program holds the port and serve could not start beside it)", "")
}

// checkTTS looks for the speech engine letter V runs. Without it serve starts
// all the same, and messages to V numbers wait until they expire: a failure
// when the directory has V numbers, a warning when it has none.
func (d *doctor) checkTTS(vNumbers int) {
	bin := d.cfg.Voice.Engine
	if len(d.cfg.Voice.Argv) > 0 {
		bin = d.cfg.Voice.Argv[0]
	}
	if bin == "" {
		bin = "espeak-ng"
	}
	if bin == "festival" {
		bin = "text2wave"
	}
	p, err := exec.LookPath(bin)
	switch {
	case err == nil:
		d.add(checkOK, "tts", p, "")
	case vNumbers > 0:
		d.add(checkFail, "tts", fmt.Sprintf("%s not found; messages to the %d numbers with letter V wait until they expire", bin, vNumbers),
			"apt-get install "+ttsPackage(bin)+", or set [voice] engine")
	default:
		d.add(checkWarn, "tts", fmt.Sprintf("%s not found (no number has letter V yet)", bin), "apt-get install "+ttsPackage(bin)+", or set [voice] engine")
	}
}

func ttsPackage(bin string) string {
	switch bin {
	case "text2wave":
		return "festival"
	case "flite":
		return "flite"
	}
	return "espeak-ng"
}
