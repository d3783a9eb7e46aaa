package router

// Tests of the queue's promises under the faults a real PBX sees (DESIGN.md
// promises 1, 2, 8 and 9): a journal commit whose outcome is unknown, a spool file
// still being written, a protocol-2 phone, a message that waited, a hostile name.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smsrouter/channels"
)

// flakyDB is a SQLite database whose next commit can be made uncertain, and which
// can go away entirely, the way a MariaDB connection dies around COMMIT.
type flakyDB struct {
	commit   atomic.Int32 // commitNormal, commitLostReply or commitFails, for the next commit only
	thenDown atomic.Bool  // after that commit the database is gone (down)
	down     atomic.Bool  // every statement fails
}

const (
	commitNormal    = 0
	commitLostReply = 1 // the commit happens, the client hears an error
	commitFails     = 2 // the commit does not happen, the client hears an error
)

var errConnLost = errors.New("invalid connection (test: connection lost)")

type flakyConnector struct {
	dsn   string
	inner driver.Driver
	f     *flakyDB
}

func (c flakyConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.inner.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &flakyConn{Conn: conn, f: c.f}, nil
}

func (c flakyConnector) Driver() driver.Driver { return c.inner }

// flakyConn hides the inner connection's fast paths, so every statement goes
// through Prepare and every transaction through Begin, where the faults are.
type flakyConn struct {
	driver.Conn
	f *flakyDB
}

func (c *flakyConn) Prepare(q string) (driver.Stmt, error) {
	if c.f.down.Load() {
		return nil, errConnLost
	}
	return c.Conn.Prepare(q)
}

func (c *flakyConn) Begin() (driver.Tx, error) { //nolint:staticcheck // the interface database/sql falls back to
	if c.f.down.Load() {
		return nil, errConnLost
	}
	tx, err := c.Conn.Begin() //nolint:staticcheck
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: tx, f: c.f}, nil
}

type flakyTx struct {
	driver.Tx
	f *flakyDB
}

func (t *flakyTx) Commit() error {
	switch t.f.commit.Swap(commitNormal) {
	case commitLostReply:
		if err := t.Tx.Commit(); err != nil {
			return err
		}
	case commitFails:
		_ = t.Tx.Rollback()
	default:
		return t.Tx.Commit()
	}
	if t.f.thenDown.Swap(false) {
		t.f.down.Store(true)
	}
	return errConnLost
}

// flakyStore opens a fresh SQLite database through flakyDB.
func flakyStore(t *testing.T) (*Store, *flakyDB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flaky.db")
	probe, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	inner := probe.Driver()
	probe.Close()
	f := &flakyDB{}
	db := sql.OpenDB(flakyConnector{dsn: "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)", inner: inner, f: f})
	return &Store{DB: db, Dialect: "sqlite", dsn: "sqlite:" + path}, f
}

// deliveredTexts counts how often each text reached sms/mttx.
func (rg *rig) deliveredTexts() map[string]int {
	out := map[string]int{}
	for _, texts := range rg.delivered() {
		for _, t := range texts {
			out[t]++
		}
	}
	return out
}

func morxAt(scts time.Time, oa, da, text string) string {
	return "oa=" + oa + "\nda=" + da + "\nud=" + text + "\nscts=" + scts.UTC().Format("2006-01-02T15:04:05") + "\n"
}

func TestUncertainCommitIsSettledBeforeAnythingElse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		commit    int32
		committed bool
	}{
		{"commit happened", commitLostReply, true},
		{"commit never happened", commitFails, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, f := flakyStore(t)
			rg := rigOn(t, store, nil)
			rg.set("5551001", 'S', "PJSIP/1001")
			rg.set("5551002", 'S', "PJSIP/1002")
			now := rg.clock.now()
			rg.morx("a.1", morxAt(now, "5550001", "5551001", "first"))
			rg.morx("a.2", morxAt(now, "5550001", "5551002", "second"))

			// The journal write of the batch fails after (or instead of) its commit,
			// and the database is gone before the router can ask which it was.
			f.commit.Store(tc.commit)
			f.thenDown.Store(true)
			sum := rg.drain()
			if n := len(rg.files("sms/mttx")); n != 0 {
				t.Fatalf("published %d files while the batch was undecided", n)
			}
			if len(rg.files("smsrouter/stage")) != 1 || len(rg.r.uncertain) != 1 {
				t.Fatalf("want one undecided batch, staged: stage %v", rg.files("smsrouter/stage"))
			}
			if sum.Counts[StateDeferred] != 2 {
				t.Errorf("summary %+v: the undecided messages count as deferred", sum.Counts)
			}

			// A message that arrives meanwhile is not taken while the journal cannot
			// answer, and another process does not see the undecided messages at all.
			rg.morx("a.3", morxAt(now, "5550001", "5551001", "third"))
			rg.drain()
			if got := rg.files("sms/morx"); len(got) != 1 {
				t.Fatalf("morx %v: nothing may be claimed while a batch is undecided", got)
			}
			f.down.Store(false)
			other := rg.newRouter(rg.r.cfg)
			if _, err := other.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := rg.deliveredTexts(); got["first"]+got["second"] != 0 {
				t.Fatalf("another process delivered undecided messages: %v", got)
			}

			// The journal is back: the batch is decided first, then everything runs.
			rg.clock.advance(2 * time.Minute)
			rg.drain()
			rg.clock.advance(2 * time.Minute)
			rg.drain()
			got := rg.deliveredTexts()
			for _, text := range []string{"first", "second", "third"} {
				if got[text] != 1 {
					t.Errorf("%q delivered %d times, want exactly once (%v)", text, got[text], got)
				}
			}
			// The other process placed a call for "third" while the undecided batch
			// held the first call for the same phone: two calls, each message once.
			phones := map[string]bool{}
			for _, c := range rg.files("outgoing") {
				phones[strings.Split(c, ".")[2]] = true
			}
			if !phones["5551001"] || !phones["5551002"] {
				t.Errorf("call files %v: every phone with messages needs a call", rg.files("outgoing"))
			}
			rg.assertIdle()
		})
	}
}

// A process that dies with an undecided batch leaves it to whoever adopts its
// claim folder: the batch is settled first, and what was committed is published
// once and not delivered again.
func TestUncertainBatchOfADeadProcess(t *testing.T) {
	store, f := flakyStore(t)
	rg := rigOn(t, store, nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("a.1", morxAt(rg.clock.now(), "5550001", "5551001", "only once"))
	f.commit.Store(commitLostReply)
	f.thenDown.Store(true)
	rg.drain()
	rg.r.lock.release() // killed: the flock goes with the process
	f.down.Store(false)

	heir := rg.newRouter(rg.r.cfg)
	if _, err := heir.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rg.deliveredTexts(); got["only once"] != 1 {
		t.Fatalf("delivered %v", got)
	}
	if st := rg.stateOf("5550001", "5551001"); len(st) != 1 || st[0] != StateDelivered {
		t.Fatalf("journal %v", st)
	}
	rg.assertIdle()
}

// Retry times are taken when the decision is made: a batch that spent a long
// time waiting on the directory must not defer its messages to a moment that has
// already passed.
func TestDeferralCountsFromTheDecision(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.RetryMin, c.RetryMax = time.Minute, time.Hour })
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("a.1", morxAt(rg.clock.now(), "5550001", "5551001", "slow"))
	rg.dir = stallingDirectory{clock: rg.clock, stall: 5 * time.Minute}
	rg.drain()
	due := rg.r.NextDue()
	if !due.After(rg.clock.now()) {
		t.Fatalf("next attempt %v is not after the decision at %v", due, rg.clock.now())
	}
}

// stallingDirectory takes its time (on the test's clock) and then fails.
type stallingDirectory struct {
	clock *fakeClock
	stall time.Duration
}

func (d stallingDirectory) Lookup(context.Context, string) (Entry, error) {
	d.clock.advance(d.stall)
	return Entry{}, ErrDirectoryUnavailable
}

func (d stallingDirectory) LookupMany(context.Context, []string) (map[string]Entry, error) {
	d.clock.advance(d.stall)
	return nil, ErrDirectoryUnavailable
}

// A staged file whose target already holds the same bytes was published before: the
// staging folder still ends.
func TestPublishClashEndsTheStagingFolder(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	dir := filepath.Join(rg.spool, "target")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "same"), []byte("same bytes"), 0o644)
	os.WriteFile(filepath.Join(dir, "other"), []byte("theirs"), 0o644)
	b := rg.r.newBatch()
	j := &job{item: &item{claim: claimName{id: NewID(rg.clock.now())}}, state: StateDelivered}
	j.result.Artefacts = []channels.Artefact{
		{Kind: "x", Dir: dir, Name: "same", Data: []byte("same bytes")},
		{Kind: "x", Dir: dir, Name: "other", Data: []byte("ours")},
		{Kind: "x", Dir: dir, Name: "new", Data: []byte("new")},
	}
	b.jobs = []*job{j}
	if err := rg.r.stage(b); err != nil {
		t.Fatal(err)
	}
	published := rg.r.publish(b, func(string) bool { return true })
	if got := published[j.claim.id]; len(got) != 1 || filepath.Base(got[0]) != "new" {
		t.Errorf("published %v", got)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "other")); string(data) != "theirs" {
		t.Errorf("a clash overwrote the target: %q", data)
	}
	if got := rg.files("smsrouter/stage"); len(got) != 0 {
		t.Errorf("staging folder left behind: %v", got)
	}
	q := rg.files("smsrouter/rejected")
	if len(q) != 2 || !strings.HasPrefix(q[0], "other") {
		t.Errorf("the clashing file should be quarantined with a reason: %v", q)
	}
}

// A morx file that someone still has open for writing is not taken, however long
// ago it was last written; once closed it is taken whole.
func TestFileBeingWrittenIsNotClaimed(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	path := filepath.Join(rg.spool, "sms", "morx", "5550001.2026-12-01T10:00:00-0")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	body := morxAt(rg.clock.now(), "5550001", "5551001", "written slowly, in pieces")
	half := len(body) / 2
	w.WriteString(body[:half])
	rg.clock.advance(time.Minute) // however old, it is open
	if sum := rg.drain(); len(sum.Outcomes) != 0 {
		t.Fatalf("a file open for writing was taken: %+v", sum.Outcomes)
	}
	if due := rg.r.NextDue(); due.IsZero() || due.After(rg.clock.now().Add(time.Second)) {
		t.Errorf("next look %v: it should come back soon", due)
	}
	w.WriteString(body[half:])
	w.Close()
	rg.clock.advance(writerPoll)
	rg.drain()
	if got := rg.deliveredTexts(); got["written slowly, in pieces"] != 1 {
		t.Fatalf("delivered %v", got)
	}
	rg.assertIdle()
}

// A young file that does not parse is left for the next look (its writer may
// reopen it for every piece), and rejected only once it has been left alone for
// the settle time.
func TestYoungUnparsableFileWaitsThenIsRejected(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.Settle = 2 * time.Second })
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("5550001.x", "oa=5550001\nda=5551001\nud##00")
	if sum := rg.drain(); len(sum.Outcomes) != 0 {
		t.Fatalf("a young unparsable file was judged at once: %+v", sum.Outcomes)
	}
	if got := rg.files("sms/morx"); len(got) != 1 || got[0] != "5550001.x" {
		t.Fatalf("morx %v: the file goes back under its own name", got)
	}
	rg.clock.advance(3 * time.Second)
	sum := rg.drain()
	if sum.Counts[StateRejected] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	rg.assertIdle()
}

// Protocol-2 phones (SPEC §1.7): no oa= in the file; the sender is the queue the
// dialplan ran SMS() with, and the text is the phone's bytes read as Latin-1.
func TestProtocol2SenderAndText(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.set("5550007", 'S', "PJSIP/5550007")
	scts := rg.clock.now().UTC().Format("2006-01-02T15:04:05")
	// What app_sms wrote for a phone that sent "Zażółć" in UTF-8 over protocol 2.
	mangled := string([]rune{'Z', 'a', 0xC5, 0xBC, 0xC3, 0xB3, 0xC5, 0x82, 0xC4, 0x87})
	rg.morx("5550007."+scts+"-3", "da=5551001\nud="+mangled+"\nscts="+scts+"\nmr=0\n")
	rg.morx("-48600100200."+scts+"-4", "da=5551001\nud=plus\nscts="+scts+"\nmr=0\n")
	rg.morx("anonymous."+scts+"-5", "da=5551001\nud=nobody\nscts="+scts+"\nmr=0\n")
	rg.clock.advance(3 * time.Second)
	sum := rg.drain()
	if sum.Counts[StateDelivered] != 2 || sum.Counts[StateRejected] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	if got := rg.deliveredTexts(); got["Zażółć"] != 1 || got["plus"] != 1 {
		t.Fatalf("delivered %v", got)
	}
	var sawDetail bool
	for _, rec := range rg.records() {
		if rec.OA == "5550007" && strings.Contains(rec.Detail, "protocol 2") && strings.Contains(rec.Detail, "latin1") {
			sawDetail = true
		}
		if rec.State == StateRejected && !strings.Contains(rec.LastError, "sender (oa) is missing") {
			t.Errorf("rejected with %q", rec.LastError)
		}
	}
	if !sawDetail {
		t.Errorf("the journal should say where the sender came from: %+v", rg.records())
	}
	// The mttx file shows the + sender as the phone can reply to it.
	for _, name := range rg.files("sms/mttx") {
		data, _ := os.ReadFile(filepath.Join(rg.spool, "sms", "mttx", name))
		if strings.Contains(string(data), "oa=-") {
			t.Errorf("%s keeps app_sms's '-' for '+': %s", name, data)
		}
	}
}

// The validity period runs from the SMS Centre's timestamp, not from when
// smsrouter got round to the file.
func TestValidityRunsFromSCTS(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5551001", 'S', "PJSIP/1001")
	now := rg.clock.now()
	rg.morx("a.1", strings.Replace(morxAt(now.Add(-2*time.Hour), "5550001", "5551001", "vp of an hour, sent two hours ago"), "\nscts", "\nvp=60\nscts", 1))
	rg.morx("a.2", morxAt(now.Add(-25*time.Hour), "5550001", "5551001", "default validity, a day and an hour ago"))
	rg.morx("a.3", strings.Replace(morxAt(now.Add(-10*time.Minute), "5550001", "5551001", "vp of an hour, ten minutes ago"), "\nscts", "\nvp=60\nscts", 1))
	rg.drain()
	got := rg.deliveredTexts()
	if got["vp of an hour, ten minutes ago"] != 1 {
		t.Errorf("a message still within its validity was not delivered: %v", got)
	}
	expired := 0
	for _, rec := range rg.records() {
		if rec.DA == "5551001" && rec.State == StateExpired {
			expired++
		}
	}
	if expired != 2 {
		t.Errorf("%d expired; want the two whose validity ended while they waited (%+v)", expired, rg.records())
	}
}

// A name in morx never sets a message's id (or its generation depth): a hostile
// name cannot take over another message's journal row.
func TestMorxNameIsNotTrustedAsID(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5551001", 'S', "PJSIP/1001")
	id, err := rg.r.Submit("5550001", "5551001", "the real one")
	if err != nil {
		t.Fatal(err)
	}
	rg.drain()
	// Same id, and claiming to be a generated message three levels deep.
	rg.morx("5559999"+".smsrouter-"+id+"~3", morxAt(rg.clock.now(), "5550001", "5559999", "hostile"))
	rg.drain()
	rec, err := rg.journal.Get(context.Background(), id)
	if err != nil || rec.State != StateDelivered || rec.DA != "5551001" {
		t.Fatalf("the real message's row was taken over: %+v %v", rec, err)
	}
	// Treated as a person's message: the unknown recipient is answered.
	if got := rg.delivered()["5550001"]; len(got) != 1 || !strings.Contains(got[0], "does not exist") {
		t.Fatalf("notices to the sender %q", got)
	}
}

// The journal keeps a message's text and every try: deferred twice while the
// directory was down, then delivered.
func TestJournalKeepsTextAndEveryTry(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		real := rg.dir
		rg.dir = downDirectory{}
		id, err := rg.r.Submit("5550001", "5551001", "Zażółć, third time lucky")
		if err != nil {
			t.Fatal(err)
		}
		rg.drain()
		rg.clock.advance(time.Minute)
		rg.drain()
		rg.dir = real
		rg.clock.advance(time.Hour)
		rg.drain()
		rec, err := rg.journal.Get(context.Background(), id)
		if err != nil || rec.State != StateDelivered || rec.Text != "Zażółć, third time lucky" {
			t.Fatalf("journal row %+v %v", rec, err)
		}
		tries, err := rg.journal.Attempts(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range tries {
			got = append(got, fmt.Sprintf("%d %s", a.N, a.State))
		}
		if want := "1 deferred,2 deferred,3 delivered"; strings.Join(got, ",") != want {
			t.Fatalf("tries %v, want %s", got, want)
		}
		if !strings.Contains(tries[0].Error, "directory unavailable") || !tries[0].At.Before(tries[2].At) {
			t.Errorf("first try %+v", tries[0])
		}
	})
}
