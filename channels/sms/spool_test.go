package sms

// These tests put real files in a real outgoing/ and sms/mttx/: two Channels stand
// for two processes (a serve and a drain, or two drains), proc plays the router's
// part for each (stage, publish by rename, AfterPublish) and asterisk plays
// pbx_spool and app_sms, starting, failing and finishing calls at chosen moments.
// What must hold is the promise the channel makes: a message whose parts are in
// mttx always has a call that has not started dialling, or one placed after the
// parts landed; so when Asterisk has run every call, mttx is empty.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/channels"
)

// proc is one process's router around a Channel.
type proc struct {
	t     *testing.T
	c     *Channel
	stage string
	n     int
}

// hooks are the moments another actor may act at within one batch.
type hooks struct {
	afterDeliver func()            // all Deliver calls made, nothing published
	beforeRename func(path string) // just before each file is renamed into place
	afterPublish func()            // everything published, no AfterPublish run yet
	defer_       func(i int) bool  // message i's delivery is deferred: nothing of it is published
}

func newProc(t *testing.T, spool string, name string) *proc {
	t.Helper()
	c, err := New(Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(spool, "stage-"+name)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	return &proc{t: t, c: c, stage: stage}
}

func message(to string) channels.Message {
	m := msg("hello")
	m.To, m.Extension = to, "PJSIP/"+to
	return m
}

// batch delivers msgs as router.processBatch does: StartBatch, Deliver each,
// stage, publish every artefact in order (parts before the call file of the same
// message), then AfterPublish for every delivered message. It returns the results.
func (p *proc) batch(msgs []channels.Message, h hooks) []channels.Result {
	p.t.Helper()
	p.c.StartBatch()
	results := make([]channels.Result, len(msgs))
	for i, m := range msgs {
		res, err := p.c.Deliver(context.Background(), m)
		if err != nil {
			p.t.Fatalf("deliver %s: %v", m.ID, err)
		}
		results[i] = res
	}
	if h.afterDeliver != nil {
		h.afterDeliver()
	}
	deferred := make([]bool, len(msgs))
	type staged struct{ tmp, dst string }
	var files []staged
	for i, res := range results {
		if h.defer_ != nil && h.defer_(i) {
			deferred[i] = true
			continue
		}
		for _, a := range res.Artefacts {
			p.n++
			tmp := filepath.Join(p.stage, fmt.Sprint(p.n))
			if err := os.WriteFile(tmp, a.Data, 0o644); err != nil {
				p.t.Fatal(err)
			}
			files = append(files, staged{tmp, filepath.Join(a.Dir, a.Name)})
		}
	}
	for _, f := range files {
		if h.beforeRename != nil {
			h.beforeRename(f.dst)
		}
		if err := os.MkdirAll(filepath.Dir(f.dst), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.Rename(f.tmp, f.dst); err != nil {
			p.t.Fatal(err)
		}
	}
	if h.afterPublish != nil {
		h.afterPublish()
	}
	for i, res := range results {
		if !deferred[i] && res.AfterPublish != nil {
			if err := res.AfterPublish(context.Background()); err != nil {
				p.t.Fatalf("after publish: %v", err)
			}
		}
	}
	return results
}

// asterisk is pbx_spool dialling call files and app_sms handing queued parts
// over. It is deliberately pessimistic: a call hands over only the parts that
// were in mttx when it started dialling (app_sms really reads the queue later,
// once the phone answers).
type asterisk struct {
	t                    *testing.T
	spool                string
	outgoing, mttx, done string
	running              map[string][]string // call file → the parts it will hand over
	attempt              map[string]int
	delivered            int
	placed               map[string]bool // every call file ever seen
	archive              bool
}

func newAsterisk(t *testing.T, spool string) *asterisk {
	a := &asterisk{t: t, spool: spool, outgoing: filepath.Join(spool, "outgoing"), mttx: filepath.Join(spool, "sms", "mttx"),
		done: filepath.Join(spool, "outgoing_done"), running: map[string][]string{}, attempt: map[string]int{},
		placed: map[string]bool{}}
	for _, d := range []string{a.outgoing, a.mttx, a.done} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func (a *asterisk) calls() []string {
	a.t.Helper()
	names, err := readNames(a.outgoing)
	if err != nil {
		a.t.Fatal(err)
	}
	slices.Sort(names)
	for _, n := range names {
		a.placed[n] = true
	}
	return names
}

func (a *asterisk) appendLine(name, line string) {
	a.t.Helper()
	f, err := os.OpenFile(filepath.Join(a.outgoing, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := f.WriteString(line); err != nil {
		a.t.Fatal(err)
	}
	f.Close()
}

// start begins an attempt on a call that is waiting (pbx_spool: StartRetry, then
// the mtime moves on).
func (a *asterisk) start(name string) {
	a.t.Helper()
	if _, busy := a.running[name]; busy {
		return
	}
	queue, _ := queueOf(name)
	parts, err := readNames(a.mttx)
	if err != nil {
		a.t.Fatal(err)
	}
	var take []string
	for _, p := range parts {
		if strings.HasPrefix(p, queue+".") {
			take = append(take, p)
		}
	}
	a.running[name] = take
	a.attempt[name]++
	a.appendLine(name, fmt.Sprintf("\nStartRetry: 4242 %d (%d)\n", a.attempt[name], time.Now().Unix()+60))
	later := time.Now().Add(2 * time.Minute)
	os.Chtimes(filepath.Join(a.outgoing, name), later, later)
}

// fail ends a running attempt unanswered: the call waits for its next attempt.
func (a *asterisk) fail(name string) {
	a.t.Helper()
	if _, busy := a.running[name]; !busy {
		return
	}
	delete(a.running, name)
	a.appendLine(name, fmt.Sprintf("\nEndRetry: 4242 %d (%d)\n", a.attempt[name], time.Now().Unix()))
}

// complete ends a running attempt answered: the parts it took are handed over
// and the call file is removed (or archived in outgoing_done).
func (a *asterisk) complete(name string) {
	a.t.Helper()
	take, busy := a.running[name]
	if !busy {
		return
	}
	delete(a.running, name)
	for _, p := range take {
		if err := os.Remove(filepath.Join(a.mttx, p)); err == nil {
			a.delivered++
		} else if !errors.Is(err, os.ErrNotExist) { // another call took it first
			a.t.Fatal(err)
		}
	}
	src := filepath.Join(a.outgoing, name)
	if a.archive {
		if err := os.Rename(src, filepath.Join(a.done, name)); err != nil {
			a.t.Fatal(err)
		}
		return
	}
	if err := os.Remove(src); err != nil {
		a.t.Fatal(err)
	}
}

// act does one random thing to one random call.
func (a *asterisk) act(rng *rand.Rand) {
	calls := a.calls()
	if len(calls) == 0 {
		return
	}
	name := calls[rng.IntN(len(calls))]
	if _, busy := a.running[name]; !busy {
		a.start(name)
		return
	}
	if rng.IntN(3) == 0 {
		a.fail(name)
	} else {
		a.complete(name)
	}
}

// check verifies the promise: every part in mttx is either taken by a running
// call or has a call for its queue that has not started.
func (a *asterisk) check(when string) {
	a.t.Helper()
	parts, err := readNames(a.mttx)
	if err != nil {
		a.t.Fatal(err)
	}
	taken := map[string]bool{}
	for _, take := range a.running {
		for _, p := range take {
			taken[p] = true
		}
	}
	// Follow-ups before calls: a serve's watch may place a follow-up call and
	// then remove its record while this looks; in that order, one of the two
	// is always seen.
	followed := map[string]bool{}
	if names, err := readNames(filepath.Join(a.spool, "smsrouter", "sms-followup")); err == nil {
		for _, n := range names {
			followed[n] = true
		}
	}
	waiting := map[string]bool{}
	for _, name := range a.calls() {
		if _, busy := a.running[name]; !busy {
			q, _ := queueOf(name)
			waiting[q] = true
		}
	}
	for _, p := range parts {
		q, _, _ := strings.Cut(p, ".")
		if !taken[p] && !waiting[q] && !followed[q] {
			a.t.Fatalf("%s: part %s is stranded: no running call took it, no call for %s is waiting and no follow-up is recorded (calls: %v)",
				when, p, q, a.calls())
		}
	}
	// Never two calls to one phone at once.
	busy := map[string]string{}
	for name := range a.running {
		q, _ := queueOf(name)
		if other, two := busy[q]; two {
			a.t.Fatalf("%s: two calls to %s at once: %s and %s", when, q, other, name)
		}
		busy[q] = name
	}
}

// runAll plays every call to the end, as a day of answered phones would, with
// a drain now and then placing the follow-up calls of calls that ended.
func (a *asterisk) runAll() {
	a.t.Helper()
	for range 1000 {
		calls := a.calls()
		if len(calls) == 0 {
			a.drainFollowUps()
			if calls = a.calls(); len(calls) == 0 {
				return
			}
		}
		for _, name := range calls {
			a.start(name)
			a.complete(name)
		}
	}
	a.t.Fatal("calls never end")
}

// drainFollowUps is a drain process started now: its channel places the
// follow-up calls that are due (Cleanup).
func (a *asterisk) drainFollowUps() {
	a.t.Helper()
	c, err := New(Config{Spool: a.spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		a.t.Fatal(err)
	}
	if err := c.Cleanup(context.Background(), time.Now()); err != nil {
		a.t.Fatal(err)
	}
}

func (a *asterisk) mttxLeft() []string {
	a.t.Helper()
	parts, err := readNames(a.mttx)
	if err != nil {
		a.t.Fatal(err)
	}
	return parts
}

// batchCalls runs a batch and returns how many calls its process placed.
func (p *proc) batchCalls(msgs []channels.Message, h hooks) int {
	p.t.Helper()
	before := p.c.placed.Load()
	p.batch(msgs, h)
	return int(p.c.placed.Load() - before)
}

// TestSecondProcessReliesOnFirstsCall: a drain started after a serve placed a call
// for a phone relies on that call, reading its file once, and never reads the
// files it placed itself.
func TestSecondProcessReliesOnFirstsCall(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	if n := a.batchCalls([]channels.Message{message("1001"), message("1001")}, hooks{}); n != 1 {
		t.Fatalf("process a placed %d calls for one phone in one batch, want 1", n)
	}
	for range 5 {
		if n := b.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 0 {
			t.Fatalf("process b placed a call although a's is waiting")
		}
	}
	if r := b.c.reads.Load(); r != 1 {
		t.Fatalf("process b read a's call file %d times, want once", r)
	}
	for range 5 {
		a.batch([]channels.Message{message("1001"), message("1002")}, hooks{})
	}
	if r := a.c.reads.Load(); r != 0 {
		t.Fatalf("process a read its own call files %d times", r)
	}
	if got := len(ast.calls()); got != 2 {
		t.Fatalf("%d call files for two phones: %v", got, ast.calls())
	}
	ast.check("end")
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
	if ast.delivered != 2+5+10 {
		t.Fatalf("%d parts handed over, want 17", ast.delivered)
	}
}

// TestCallOfAnotherProcessAfterOwnIsSeen: a process that placed the last call
// for a phone need not read the phone's current-call record again, unless
// another process placed a call since. Here the other one did (after the
// first's call ended), so a second call beside it would ring the phone twice.
func TestCallOfAnotherProcessAfterOwnIsSeen(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	if n := a.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 1 {
		t.Fatalf("process a placed %d calls, want 1", n)
	}
	first := ast.calls()[0]
	ast.start(first)
	ast.complete(first)
	if n := b.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 1 {
		t.Fatalf("process b placed %d calls after a's ended, want 1", n)
	}
	// a's Deliver finds its own call gone and knows of no other.
	if n := a.batchCalls([]channels.Message{message("1001"), message("1002")}, hooks{}); n != 1 {
		t.Fatalf("process a placed %d calls beside b's waiting one, want only 1002's", n)
	}
	if got := len(ast.calls()); got != 2 {
		t.Fatalf("%d call files for two phones: %v", got, ast.calls())
	}
	// Nobody else placed a call since: a relies on what it knows.
	for range 3 {
		if n := a.batchCalls([]channels.Message{message("1001"), message("1002")}, hooks{}); n != 0 {
			t.Fatalf("process a placed %d calls beside waiting ones", n)
		}
	}
	ast.check("end")
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}

// TestDeathBeforeSettleLeavesItsIntent: a process dies after its batch's parts
// are published and before it placed their call. Its batch's intent gets the
// phone its call from the next process; while the batch was open, nobody else
// touched the intent.
func TestDeathBeforeSettleLeavesItsIntent(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	a.c.StartBatch()
	res, err := a.c.Deliver(context.Background(), message("1001"))
	if err != nil {
		t.Fatal(err)
	}
	for _, art := range res.Artefacts {
		os.MkdirAll(art.Dir, 0o755)
		if err := os.WriteFile(filepath.Join(art.Dir, art.Name), art.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	if n := b.c.placed.Load(); n != 0 || len(ast.calls()) != 0 {
		t.Fatalf("process b acted on the intent of a batch still open: %d calls", n)
	}
	a.c.cur.intent.Close() // the kernel drops a dead process's locks
	if err := b.c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	if calls := ast.calls(); len(calls) != 1 {
		t.Fatalf("want the dead process's call, got %v", calls)
	}
	if names, _ := readNames(filepath.Join(spool, "smsrouter", "sms-followup")); slices.ContainsFunc(names, func(n string) bool { return n[0] != '.' }) {
		t.Fatalf("intent or follow-up left: %v", names)
	}
	ast.check("end")
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}

// TestEmptiedLogOfCallsIsNoticed: once the log of calls has grown past maxLog,
// the next process to place calls empties it and writes on from its start. A
// process that had read the old log to some offset must not read on from there
// (it would miss the first calls written since) but list outgoing/ instead.
func TestEmptiedLogOfCallsIsNoticed(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	a.batch([]channels.Message{message("1001")}, hooks{})
	b.batch([]channels.Message{message("1002")}, hooks{})
	// Many calls placed since (names of calls long ended).
	log, err := os.OpenFile(filepath.Join(spool, "smsrouter", "sms-followup", ".calls"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	log.WriteString(strings.Repeat("smsrouter.mttx.1009.gone\n", maxLog/25+1))
	log.Close()
	a.batch([]channels.Message{message("1001")}, hooks{}) // reads them all
	if n := a.batchCalls([]channels.Message{message("1003"), message("1004"), message("1005")}, hooks{}); n != 3 {
		t.Fatalf("process a placed %d calls, want 3", n)
	}
	if fi, _ := os.Stat(filepath.Join(spool, "smsrouter", "sms-followup", ".calls")); fi.Size() > 1024 || fi.Size() <= b.c.logOff {
		t.Fatalf("log of %d bytes: not emptied, or too short to mislead b (at %d)", fi.Size(), b.c.logOff)
	}
	if n := b.batchCalls([]channels.Message{message("1003")}, hooks{}); n != 0 {
		t.Fatalf("process b placed %d calls beside a's waiting one", n)
	}
	ast.check("end")
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}

// TestDialStartsAtEveryMoment: the call a message relies on starts dialling at
// each point of the batch in turn; the message must still get a call.
func TestDialStartsAtEveryMoment(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(h *hooks, dial func())
	}{
		{"after deliver", func(h *hooks, dial func()) { h.afterDeliver = dial }},
		{"before its part lands", func(h *hooks, dial func()) {
			h.beforeRename = func(p string) {
				if strings.Contains(p, "/sms/mttx/") {
					dial()
				}
			}
		}},
		{"after publish", func(h *hooks, dial func()) { h.afterPublish = dial }},
		{"and ends, after publish", func(h *hooks, dial func()) { h.afterPublish = func() { dial(); dial() } }},
	} {
		for _, sameProcess := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/same process=%v", tc.name, sameProcess), func(t *testing.T) {
				spool := t.TempDir()
				ast := newAsterisk(t, spool)
				a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
				a.batch([]channels.Message{message("1001")}, hooks{})
				first := ast.calls()[0]
				relier := b
				if sameProcess {
					relier = a
				}
				var h hooks
				steps := 0
				tc.set(&h, func() {
					// first dial starts the waiting call, a second one ends it answered.
					if steps++; steps == 1 {
						ast.start(first)
					} else {
						ast.complete(first)
					}
				})
				relier.batch([]channels.Message{message("1001")}, h)
				ast.check(tc.name)
				ast.runAll()
				if left := ast.mttxLeft(); len(left) != 0 {
					t.Fatalf("parts never handed over: %v", left)
				}
			})
		}
	}
}

// TestPlacerDeferred: the message that staged a call is deferred (its files are
// never published) while another message of the batch relied on that call.
func TestPlacerDeferred(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a := newProc(t, spool, "a")
	if n := a.batchCalls([]channels.Message{message("1001"), message("1001")}, hooks{defer_: func(i int) bool { return i == 0 }}); n != 1 {
		t.Fatalf("want one call, placed for the published message; got %d", n)
	}
	ast.check("after the batch")
	if len(ast.calls()) != 1 {
		t.Fatalf("the relying message needs a call of its own: %v", ast.calls())
	}
	// The deferred message is retried in a later batch: the call placed for the
	// other one serves it.
	if n := a.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 0 {
		t.Fatalf("retry placed %d calls beside a waiting one", n)
	}
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}

// TestBatchCostDoesNotGrowWithOutgoing: thousands of call files for other phones
// in outgoing/ cost one listing, after which a batch looks only at the files of
// its own recipients.
func TestBatchCostDoesNotGrowWithOutgoing(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	const others = 3000
	for i := range others {
		name := fmt.Sprintf("smsq.mttx.%d.1", 200000+i)
		if err := os.WriteFile(filepath.Join(ast.outgoing, name), []byte("Channel: PJSIP/x\nApplication: SMS\nData: x,s\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := newProc(t, spool, "a")
	var msgs []channels.Message
	for i := range 256 {
		msgs = append(msgs, message(fmt.Sprint(100000+i)))
	}
	for range 3 {
		a.batch(msgs, hooks{})
	}
	// First batch: no call pending anywhere, nothing looked at; the next two look
	// once per message at the call it relies on (and read none).
	if s, r := a.c.stats.Load(), a.c.reads.Load(); s != 2*256*2 || r != 0 {
		t.Fatalf("%d stats and %d reads for 3 batches of 256 beside %d other call files; want %d and 0",
			s, r, others, 2*256*2)
	}
}

// TestForgetsEndedCalls: without Watch, calls that ended are forgotten by an
// occasional listing, so a long-lived process does not pile them up.
func TestForgetsEndedCalls(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a := newProc(t, spool, "a")
	for i := range 25 {
		var msgs []channels.Message
		for j := range 100 {
			msgs = append(msgs, message(fmt.Sprint(100000+i*100+j)))
		}
		a.batch(msgs, hooks{})
		ast.runAll()
	}
	a.c.StartBatch()
	a.c.mu.Lock()
	known := len(a.c.calls)
	a.c.mu.Unlock()
	if known > 3*relistMin {
		t.Fatalf("%d calls remembered after 2,500 ended", known)
	}
}

// TestWatchFollowsOtherProcesses: with Watch running, a call another process
// places is relied on without a listing, and calls that end are forgotten.
func TestWatchFollowsOtherProcesses(t *testing.T) {
	for _, archive := range []bool{false, true} {
		t.Run(fmt.Sprintf("archive=%v", archive), func(t *testing.T) {
			spool := t.TempDir()
			ast := newAsterisk(t, spool)
			ast.archive = archive
			a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := b.c.Watch(ctx); err != nil {
					t.Error(err)
				}
			})
			defer wg.Wait()
			defer cancel()
			known := func(name string) bool {
				b.c.mu.Lock()
				defer b.c.mu.Unlock()
				_, ok := b.c.calls[name]
				return ok
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("watch never saw %s", what)
					}
				}
			}
			b.batch(nil, hooks{}) // b lists outgoing/ (empty) before a places anything
			waitFor("its own listing", func() bool { b.c.mu.Lock(); defer b.c.mu.Unlock(); return b.c.listed })
			a.batch([]channels.Message{message("1001")}, hooks{})
			call := ast.calls()[0]
			waitFor("the new call", func() bool { return known(call) })
			if n := b.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 0 {
				t.Fatal("b placed a call beside a's waiting one")
			}
			ast.start(call)
			ast.complete(call)
			waitFor("the call end", func() bool { return !known(call) })
			if n := b.batchCalls([]channels.Message{message("1001")}, hooks{}); n != 1 {
				t.Fatal("b relied on a call that ended")
			}
			ast.runAll()
			if left := ast.mttxLeft(); len(left) != 0 {
				t.Fatalf("parts never handed over: %v", left)
			}
		})
	}
}

// TestTwoProcessesAndAsteriskAtRandom interleaves two processes' batches (one of
// them sometimes inside the other's), restarts, deferred messages and Asterisk
// starting, failing and finishing calls at every point, and checks the promise
// after every step and at the end.
func TestTwoProcessesAndAsteriskAtRandom(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 17))
			spool := t.TempDir()
			ast := newAsterisk(t, spool)
			ast.archive = seed%3 == 0
			procs := []*proc{newProc(t, spool, "a"), newProc(t, spool, "b")}
			// b is a serve with Watch in odd seeds.
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			watch := func(p *proc) {
				if seed%2 == 1 {
					wg.Go(func() { p.c.Watch(ctx) })
				}
			}
			watch(procs[1])
			phones := []string{"1001", "1002", "+481003"}
			var maybe func(depth int) func()
			randomBatch := func(depth int) {
				p := procs[rng.IntN(2)]
				var msgs []channels.Message
				for range 1 + rng.IntN(4) {
					msgs = append(msgs, message(phones[rng.IntN(len(phones))]))
				}
				h := hooks{afterDeliver: maybe(depth), afterPublish: maybe(depth)}
				if rng.IntN(4) == 0 {
					h.beforeRename = func(string) {
						if rng.IntN(3) == 0 {
							ast.act(rng)
						}
					}
				}
				if rng.IntN(5) == 0 {
					h.defer_ = func(int) bool { return rng.IntN(2) == 0 }
				}
				p.batch(msgs, h)
			}
			maybe = func(depth int) func() {
				return func() {
					switch rng.IntN(4) {
					case 0:
						ast.act(rng)
					case 1:
						if depth < 2 {
							randomBatch(depth + 1)
						}
					}
				}
			}
			for step := range 150 {
				switch rng.IntN(8) {
				case 0, 1, 2:
					randomBatch(0)
				case 3, 4, 5:
					ast.act(rng)
				case 6:
					ast.act(rng)
					ast.act(rng)
				case 7:
					i := rng.IntN(2) // a process restarts
					procs[i] = newProc(t, spool, fmt.Sprintf("%d-%d", i, step))
					if i == 1 {
						watch(procs[1])
					}
				}
				ast.check(fmt.Sprintf("step %d", step))
			}
			ast.runAll()
			if left := ast.mttxLeft(); len(left) != 0 {
				t.Fatalf("parts never handed over: %v", left)
			}
		})
	}
}

// TestSpareIntentIsReusedAndLeftTidy: a settled batch leaves one empty intent,
// locked, that the next batch writes to instead of creating its own (file
// creations on a message's way to its call cost most on a busy disk). Another
// process leaves it alone while its owner lives, Close removes it, and the
// spare of a process that died is removed by the next one to look.
func TestSpareIntentIsReusedAndLeftTidy(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	follow := filepath.Join(spool, "smsrouter", "sms-followup")
	intents := func() []string {
		names, _ := readNames(follow)
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, intentPrefix) {
				out = append(out, n)
			}
		}
		return out
	}
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	a.batch([]channels.Message{message("1001")}, hooks{})
	first := intents()
	if len(first) != 1 || a.c.spare == nil {
		t.Fatalf("after a settled batch: intents %v, want one spare", first)
	}
	if fi, err := os.Stat(filepath.Join(follow, first[0])); err != nil || fi.Size() != 0 {
		t.Fatalf("spare %v %v, want it empty", fi, err)
	}
	if err := b.c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	if got := intents(); !slices.Equal(got, first) {
		t.Fatalf("another process touched a live spare: %v", got)
	}
	ast.runAll()
	a.batch([]channels.Message{message("1002")}, hooks{})
	if got := intents(); len(got) != 1 || got[0] == first[0] {
		t.Fatalf("the second batch used the spare and left a new one: %v (first %v)", got, first)
	}
	if len(ast.calls()) != 1 {
		t.Fatalf("calls %v", ast.calls())
	}
	if err := a.c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := intents(); len(got) != 0 {
		t.Fatalf("Close left %v", got)
	}

	// A process dies with its spare: the kernel drops the lock, the file stays.
	c := newProc(t, spool, "c")
	c.batch([]channels.Message{message("1003")}, hooks{})
	c.c.spare.Close()
	c.c.spare = nil
	if got := intents(); len(got) != 1 {
		t.Fatalf("dead process's spare: %v", got)
	}
	if err := b.c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	if got := intents(); len(got) != 0 {
		t.Fatalf("a dead process's empty spare was left: %v", got)
	}
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}

// Once a call is placed the channel keeps an empty temporary call file ready,
// which the next call placed is written to (no file created on the way to it);
// Close removes it.
func TestSpareCallFileIsUsedAndLeftTidy(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	tmp := filepath.Join(spool, "tmp")
	a := newProc(t, spool, "a")
	a.batch([]channels.Message{message("1001")}, hooks{})
	names, _ := readNames(tmp)
	if len(names) != 1 || a.c.spareCall == nil {
		t.Fatalf("after a call placed, tmp holds %v; want the spare call file", names)
	}
	spare, err := os.Stat(filepath.Join(tmp, names[0]))
	if err != nil || spare.Size() != 0 {
		t.Fatalf("spare %v, %v; want it empty", spare, err)
	}
	ast.runAll()
	a.batch([]channels.Message{message("1002")}, hooks{})
	calls := ast.calls()
	if len(calls) != 1 {
		t.Fatalf("calls %v", calls)
	}
	placed, err := os.Stat(filepath.Join(spool, "outgoing", calls[0]))
	if err != nil || !os.SameFile(placed, spare) || placed.Mode().Perm() != 0o660 {
		t.Fatalf("the call %s (%v, %v) is not the spare it was written to", calls[0], placed, err)
	}
	if data, _ := os.ReadFile(filepath.Join(spool, "outgoing", calls[0])); !strings.Contains(string(data), "PJSIP/1002") {
		t.Fatalf("call file %q", data)
	}
	if err := a.c.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(tmp); len(names) != 0 {
		t.Fatalf("Close left %v in tmp", names)
	}
	ast.runAll()
	if left := ast.mttxLeft(); len(left) != 0 {
		t.Fatalf("parts never handed over: %v", left)
	}
}
