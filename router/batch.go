package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// maxSpoolFile bounds what we read of one spool file: the most smsq.Parse accepts
// (app_sms writes a few hundred bytes; our own files carry a long text whole).
const maxSpoolFile = smsq.MaxFileSize

// job is a claimed message on its way to a fate within one batch.
type job struct {
	*item
	msg      *smsq.Message
	text     string
	received time.Time
	validity time.Time

	state     State
	letter    byte
	entry     Entry
	errText   string
	public    string // what the sender's notice may say about why (publicReason); "" for the default
	cause     string // why the last try failed (channels.CauseOf), when it says
	result    channels.Result
	notice    []channels.Artefact
	detail    map[string]any // about this attempt: what the channel did, the notice, the next try
	facts     map[string]any // about the message itself, kept whatever the attempt did
	settled   bool           // nothing more to do in this batch (rejected, held, already final)
	wasFinal  bool           // the journal already had its final state (a crash came after the commit)
	published []string       // files placed for it
	dueAt     time.Time
	inbound   bool      // sent to a mobile link's own number: never routed back out
	via       string    // the mobile link it was handed to
	fp        string    // duplicate-guard fingerprint ("" when not guarded)
	fpStale   time.Time // a fingerprint last seen before this is another message's no more
	fpReplace bool      // the guard found a row for fp, which the journal write replaces
	pair      string    // loop-guard pair of a generated message ("" when not counted)
	told      string    // the reason the sender's notice gave (publicReason)
	acked     []string  // ids whose acknowledgement requests it carries (netack.go)
	answers   bool      // a report that answers a network's acknowledgement request
}

func (j *job) outcome() Outcome {
	o := Outcome{ID: j.claim.id, State: j.state, Error: j.errText, Files: j.published, Source: j.source}
	if j.msg != nil {
		o.OA, o.DA = j.msg.OA, j.msg.DA
	}
	if j.letter != 0 {
		o.Letter = string(j.letter)
	}
	return o
}

// planned are the paths the job's artefacts and notice will be published to.
func (j *job) planned() []string {
	var out []string
	for _, a := range append(append([]channels.Artefact(nil), j.result.Artefacts...), j.notice...) {
		out = append(out, filepath.Join(a.Dir, a.Name))
	}
	return out
}

func (j *job) record() Record {
	rec := Record{ID: j.claim.id, Received: j.received, State: j.state,
		Attempts: j.claim.attempts, LastError: j.errText, Text: j.text, Parts: j.parts}
	// A deferral has counted itself in attempts already.
	rec.Try = j.claim.attempts + 1
	if j.state == StateDeferred {
		rec.Try = j.claim.attempts
	}
	if j.msg != nil {
		rec.OA, rec.DA = clip(j.msg.OA, 32), clip(j.msg.DA, 32)
	}
	if j.letter != 0 {
		rec.Letter = string(j.letter)
	}
	if j.state == StateDeferred {
		rec.NextAttempt = j.dueAt
	}
	if j.state == StateDelivered {
		rec.Refs = j.result.Refs
	}
	rec.Fingerprint, rec.Pair = j.fp, j.pair
	rec.fpStale, rec.fpReplace = j.fpStale, j.fpReplace
	d := map[string]any{"source": j.source}
	if j.claim.depth > 0 {
		d["depth"] = j.claim.depth
	}
	for k, v := range j.facts {
		d[k] = v
	}
	for k, v := range j.detail {
		d[k] = v
	}
	// The files the batch publishes once this record is committed: the journal
	// is written before they are renamed into place, so it names them then.
	if files := j.published; len(files) > 0 {
		d["files"] = files
	} else if files := j.planned(); len(files) > 0 {
		d["files"] = files
	}
	if b, err := json.Marshal(d); err == nil {
		rec.Detail = string(b)
	}
	return rec
}

// processBatch takes claimed items to their fates. See the package doc for why the
// steps come in this order.
//
// Every decision about a message (its next attempt, its expiry) is taken with the
// clock read when it is made, not when the batch began: a batch that stalled for a
// minute on the database must not hand out retry times that are already past.
func (r *Router) processBatch(ctx context.Context, items []*item, sum *Summary) {
	b := r.newBatch()
	for _, it := range items {
		b.jobs = append(b.jobs, &job{item: it})
	}
	defer b.closeFiles()

	// 1. Items that may have been processed before a crash: the journal decides.
	if err := r.checkResumed(ctx, b.jobs); err != nil {
		for _, j := range b.jobs {
			if j.resumed && !j.settled {
				r.deferJob(j, fmt.Errorf("journal unavailable: %w", err))
			}
		}
	}

	// 2. Read, parse, validate; hold concatenated parts.
	for _, j := range b.jobs {
		if !j.settled && j.state == "" {
			r.prepare(j)
		}
	}

	// 2b. Resent copies and looping automatic messages go no further.
	r.guard(ctx, b.jobs)

	// 3. Ask the directory about every recipient at once.
	var active []*job
	var numbers []string
	for _, j := range b.jobs {
		if !j.settled && j.state == "" {
			active = append(active, j)
			numbers = append(numbers, j.msg.DA)
		}
	}
	var entries map[string]Entry
	var lookupErr error
	if len(active) > 0 {
		// One query: the entries carry the further ways and the preferences.
		entries, lookupErr = r.dir.LookupMany(ctx, numbers)
	}

	// The channels learn what the last batch placed (its finish may still be
	// running: steps 1 to 3 touch no channel), then this batch starts.
	r.awaitFinish()
	for _, cs := range r.channels {
		if bs, ok := cs.(channels.BatchStarter); ok {
			bs.StartBatch()
		}
	}

	// 4. Dispatch by letter. Deliveries run side by side (a fax render or a TTS run
	// takes a while) and each has a deadline, so one slow engine cannot hold up the
	// batch for longer than DeliveryTimeout.
	if lookupErr != nil {
		for _, j := range active {
			r.failTemporarily(j, lookupErr)
		}
	} else {
		deliver := func(j *job) {
			dctx, cancel := context.WithTimeout(ctx, r.cfg.DeliveryTimeout)
			defer cancel()
			r.dispatch(dctx, j, entries)
		}
		// A few workers take the jobs in turn: a goroutine per message cost
		// more in scheduling than an SMS delivery does (issue 17), and a batch
		// of one (a running serve's usual) needs none.
		workers := min(r.cfg.Parallel, len(active))
		if workers <= 1 {
			for _, j := range active {
				deliver(j)
			}
		} else {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(len(active)); i = next.Add(1) - 1 {
						deliver(active[i])
					}
				})
			}
			wg.Wait()
		}
	}

	// 4b. Acknowledgements the mobile network asked for, by each fate.
	r.answerNetwork(b.jobs)

	// 5. Stage everything that is to be published, then make the fates durable. The
	// staging folder exists, under the batch's id, from before the journal is
	// written until the batch is decided, so whoever finds it after a crash knows
	// which batch to settle.
	recs := b.records()
	if len(recs) == 0 {
		r.finishLater(ctx, b, sum)
		return
	}
	// The rows go into the journal's transaction while the files are staged;
	// only its commit waits for them to be durable.
	put := r.journal.Begin(ctx, b.id, stamp(recs, r.now()))
	if err := r.stage(b); err != nil {
		put.Abort()
		r.log.Warn("staging failed; batch deferred", "batch", b.id, "err", err)
		for _, j := range b.jobs {
			if !j.settled && j.state != StateDeferred {
				r.deferJob(j, err)
			}
		}
		put = r.journal.Begin(ctx, b.id, stamp(b.records(), r.now()))
	}
	if err := put.Commit(); err != nil {
		// An error does not prove the commit failed: the connection may have died
		// after the server committed, or a stalled server may still commit when it
		// wakes. Until Settle decides, the batch's files stay staged and its messages
		// stay in this process's claim folder, where no other process touches them.
		r.log.Warn("journal write failed; batch waits until the journal can say whether it was committed",
			"batch", b.id, "messages", len(recs), "err", err)
		r.uncertain = append(r.uncertain, b)
		return
	}
	r.finishLater(ctx, b, sum)
}

// finishLater runs finishBatch for a committed batch beside the next batch's
// claiming, reading and lookups, which need nothing it does: publishing and
// placing calls is a third of a drain's time (issue 17). One runs at a time,
// so the summary is counted in order; everything that needs the batch
// finished calls awaitFinish first.
func (r *Router) finishLater(ctx context.Context, b *batch, sum *Summary) {
	r.awaitFinish()
	done := make(chan struct{})
	r.finishing = done
	go func() {
		defer close(done)
		r.finishBatch(ctx, b, sum)
	}()
}

// awaitFinish waits for the batch finishLater started, if it still runs.
func (r *Router) awaitFinish() {
	if r.finishing != nil {
		<-r.finishing
		r.finishing = nil
	}
}

// batch is one journal transaction's worth of messages.
type batch struct {
	id    string // <owner>.<n>: the journal's batch id and the staging folder's name
	dir   string // the staging folder
	files []stagedFile
	open  []*os.File // staged files still open, to be synced (stage)
	// manifest is the empty manifest of a spare staging folder (makeSpareStage)
	// this batch took, or nil: then stage makes the folder and the manifest.
	manifest *os.File
	jobs     []*job
}

func (r *Router) newBatch() *batch {
	r.batchSeq++
	id := r.batchID(r.batchSeq)
	b := &batch{id: id, dir: filepath.Join(r.l.stage, id)}
	if s := r.spare; s != nil && s.dir == b.dir {
		b.manifest, r.spare = s.manifest, nil
	}
	r.dropSpareStage() // not this batch's: nothing else takes a batch number
	return b
}

// batchID names batch number n of this process: its journal id and staging folder.
func (r *Router) batchID(n int) string { return fmt.Sprintf("%s.%d", r.owner, n) }

// records are the journal rows the batch writes: every job that reached a state,
// except parts waiting for their siblings and messages already final before a crash.
func (b *batch) records() []Record {
	var recs []Record
	for _, j := range b.jobs {
		if j.state != "" && j.state != StateHeld && !j.wasFinal {
			recs = append(recs, j.record())
		}
	}
	return recs
}

func (b *batch) closeFiles() {
	for _, j := range b.jobs {
		if j.f != nil {
			j.f.Close()
			j.f = nil
		}
	}
	// A spare's manifest the batch never wrote (it had no records to stage:
	// finishBatch removed the folder); staged files are closed by stage.
	b.closeOpen()
}

// stamp sets every record's updated time: the moment of the write, which orders it
// against any other write of the same row (Journal.Put).
func stamp(recs []Record, now time.Time) []Record {
	for i := range recs {
		recs[i].Updated = now
	}
	return recs
}

// finishBatch publishes a committed batch's files and moves each message on.
// The channels' after-publish steps (the S channel placing its calls) run
// while the published files' folders are synced; a message is finished (its
// claimed file removed) only once they are.
func (r *Router) finishBatch(ctx context.Context, b *batch, sum *Summary) {
	published, durable := r.publishStart(b, func(string) bool { return true })
	for _, j := range b.jobs {
		j.published = published[j.claim.id]
	}
	for _, j := range b.jobs {
		if j.result.AfterPublish != nil && j.state == StateDelivered {
			if err := j.result.AfterPublish(ctx); err != nil {
				r.log.Warn("after-publish step failed", "id", j.claim.id, "err", err)
			}
		}
	}
	durable()
	for _, j := range b.jobs {
		r.finish(j)
		r.report(j, sum)
	}
}

// report counts a job's fate in the pass's summary and tells the observer.
func (r *Router) report(j *job, sum *Summary) {
	if j.state == "" { // the file vanished under us, or was put back: someone else has it
		return
	}
	sum.add(j.outcome())
	if r.cfg.Observer != nil && !j.wasFinal { // a recovered message was counted before the crash
		r.cfg.Observer.Fate(j.outcome(), j.received)
	}
}

// settleUncertain decides this process's batches whose journal write failed, oldest
// first, before anything else is claimed: until a batch is decided, its messages
// must not run again (they might have been delivered) and its files must not be
// published (they might not have been). It returns the journal's error when it
// still cannot tell.
func (r *Router) settleUncertain(ctx context.Context, sum *Summary) error {
	if len(r.uncertain) > 0 {
		r.awaitFinish()
	}
	for len(r.uncertain) > 0 {
		b := r.uncertain[0]
		committed, err := r.journal.Settle(ctx, b.id)
		if err != nil {
			return err
		}
		r.uncertain = r.uncertain[1:]
		if committed {
			r.log.Info("journal write of an uncertain batch had committed; publishing it", "batch", b.id, "messages", len(b.jobs))
			r.finishBatch(ctx, b, sum)
			continue
		}
		r.log.Info("journal write of an uncertain batch never committed; its messages are retried", "batch", b.id, "messages", len(b.jobs))
		r.discard(b)
		for _, j := range b.jobs {
			j.published = nil
			if !j.settled && j.state != StateDeferred {
				r.deferJob(j, errors.New("journal unavailable"))
			}
		}
		// Best effort, so that the journal shows where the messages are; no file is
		// published on the strength of it, so it needs no batch id.
		if err := r.journal.Put(ctx, "", stamp(b.records(), r.now())); err != nil {
			r.log.Warn("journal write failed again; messages deferred without a journal row", "batch", b.id, "err", err)
		}
		for _, j := range b.jobs {
			r.finish(j)
			r.report(j, sum)
		}
	}
	return nil
}

// reportUncertain counts the messages of undecided batches as deferred in a pass's
// summary: a drain that exits now leaves them to the next process.
func (r *Router) reportUncertain(sum *Summary) {
	r.awaitFinish()
	for _, b := range r.uncertain {
		for _, j := range b.jobs {
			if j.state != "" && !j.wasFinal {
				o := j.outcome()
				o.State, o.Error = StateDeferred, "journal unavailable: the outcome is settled by the next run"
				sum.add(o)
			}
		}
	}
}

func (r *Router) checkResumed(ctx context.Context, jobs []*job) error {
	var ids []string
	for _, j := range jobs {
		if j.resumed {
			ids = append(ids, j.claim.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	states, err := r.journal.States(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if st := states[j.claim.id]; j.resumed && st.Final() {
			// Delivered (or settled) before a crash: never again.
			j.state, j.settled, j.wasFinal = st, true, true
			r.log.Info("already final; not delivering again", "id", j.claim.id, "state", st)
		}
	}
	return nil
}

// validUntil is when a message sent at from expires: its vp in minutes
// (TP-VP), or def when it carries none.
func validUntil(from time.Time, vp int, def time.Duration) time.Time {
	if vp > 0 {
		return from.Add(time.Duration(vp) * time.Minute)
	}
	return from.Add(def)
}

func (r *Router) prepare(j *job) {
	now := r.now()
	if t, ok := idTime(j.claim.id); ok {
		j.received = t
	} else {
		j.received = now
	}
	data, mtime, err := j.read()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			j.settled, j.state = true, ""
			return
		}
		r.reject(j, err.Error())
		return
	}
	msg, err := smsq.Parse(data, r.cfg.Location)
	if err != nil {
		if j.foreign && r.putBack(j, mtime) {
			j.settled, j.state = true, ""
			return
		}
		r.reject(j, "unreadable spool file: "+err.Error())
		return
	}
	j.msg = msg
	j.text = msg.Text
	if msg.OA == "" && j.foreign {
		r.protocol2(j)
	}
	if err := CheckNumber("recipient (da)", msg.DA); err != nil {
		r.reject(j, err.Error())
		return
	}
	if err := CheckNumber("sender (oa)", msg.OA); err != nil {
		r.reject(j, err.Error())
		return
	}
	// Numbers are compared only in their canonical form, from here on.
	r.normalize(j)
	if r.cfg.RepairUTF8 {
		if fixed, ok := smsq.RepairDoubleDecoded(j.text); ok {
			j.text = fixed
		}
	}
	// The validity period runs from when the SMS Centre received the message (scts,
	// GSM 03.40 TP-VP), not from when smsrouter got round to it: a message that
	// waited in morx while smsrouter was stopped has used up part of its life. A
	// timestamp in the future (a clock or zone mistake) is not allowed to extend it.
	// scts has whole seconds only, so a message smsrouter queued itself (whose id
	// holds its receipt to the millisecond) keeps its own time.
	base := j.received
	if !msg.SCTS.IsZero() && base.Sub(msg.SCTS) >= time.Second {
		base = msg.SCTS
	}
	j.validity = validUntil(base, msg.VP, r.cfg.DefaultValidity)
	if msg.VP > 0 {
		j.fact("vp", msg.VP)
	}
	if !base.Equal(j.received) {
		// What the validity runs from, for a retry queued after the call
		// (afterCall): it must expire when this message would.
		j.fact("scts", base.UnixMilli())
	}
	if !j.claim.solo {
		if _, total, _, ok := msg.Concat(); ok && total > 1 {
			r.hold(j)
			return
		}
	}
	// A whole message (or a part that waited too long) to a mobile link's own
	// number is readdressed now: the first word of a concatenated text is in
	// its first part only.
	if r.mapInbound(j); j.state != "" {
		return
	}
	if !now.Before(j.validity) {
		r.settleUndeliverable(j, StateExpired, "expired", "validity ended before delivery")
	}
}

// read returns the claimed file's content and modification time, from the
// descriptor takeForeign kept open or else by path.
func (j *job) read() ([]byte, time.Time, error) {
	if j.f == nil {
		return readCapped(j.path, maxSpoolFile)
	}
	defer func() { j.f.Close(); j.f = nil }()
	return readOpen(j.f, maxSpoolFile)
}

// protocol2 fills in the sender of a message from a protocol-2 phone (SPEC §1.7): its
// morx file has no oa=, but the file is named after the queue SMS() ran with, and
// the dialplan runs SMS(${CALLERID(num)},sa), so the queue is the caller's number
// (app_sms turned a leading + into -). Its text is the phone's raw bytes read as
// Latin-1, so UTF-8 from the phone arrives double-encoded and is decoded here.
func (r *Router) protocol2(j *job) {
	queue, _, _ := strings.Cut(j.source, ".")
	if rest, ok := strings.CutPrefix(queue, "-"); ok {
		queue = "+" + rest
	}
	if !ValidNumber(queue) {
		// Nobody to tell and nobody to show as the sender: CheckNumber rejects it.
		return
	}
	j.msg.OA = queue
	j.fact("sender_from", "file name (no oa=: protocol 2)")
	if fixed, ok := smsq.RepairLatin1(j.text); ok {
		j.text = fixed
		j.fact("text_repair", "latin1")
	}
}

func (j *job) fact(k string, v any) {
	if j.facts == nil {
		j.facts = map[string]any{}
	}
	j.facts[k] = v
}

// readCapped reads a whole file, refusing one larger than limit.
//
// Only a regular file is read: a symbolic link in morx must not make the router
// deliver (or read) a file outside the spool, and opening a named pipe or a device
// would block the drain forever. O_NOFOLLOW and O_NONBLOCK keep that true even if
// the file is swapped between the Lstat and the open.
func readCapped(path string, limit int64) ([]byte, time.Time, error) {
	if st, err := os.Lstat(path); err != nil {
		return nil, time.Time{}, err
	} else if !st.Mode().IsRegular() {
		return nil, time.Time{}, fmt.Errorf("not a regular file but %s", fileKind(st.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	return readOpen(f, limit)
}

// readOpen reads an opened file whole, refusing anything but a regular file of at
// most limit bytes.
func readOpen(f *os.File, limit int64) ([]byte, time.Time, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if !st.Mode().IsRegular() {
		return nil, time.Time{}, fmt.Errorf("not a regular file but %s", fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, time.Time{}, fmt.Errorf("spool file is %d bytes; an SMS file is at most %d", st.Size(), limit)
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && n != len(buf) {
		return nil, time.Time{}, err
	}
	return buf[:n], st.ModTime(), nil
}

// fileKind names a non-regular file's type for a quarantine reason.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}

func (r *Router) reject(j *job, reason string) {
	dst := r.quarantine(j.path, j.source, reason)
	j.state, j.errText, j.settled = StateRejected, reason, true
	j.detail = map[string]any{"quarantined": dst}
	r.log.Warn("message rejected", "id", j.claim.id, "source", j.source, "reason", reason, "quarantine", dst)
}

func (r *Router) dispatch(ctx context.Context, j *job, entries map[string]Entry) {
	if r.isSelfService(j.msg.DA) {
		r.selfService(ctx, j)
		return
	}
	if answersNetwork(r.l.work, j) && r.deliverByRoute(ctx, j) {
		return
	}
	e, ok := entries[j.msg.DA]
	if !ok {
		if r.deliverByRoute(ctx, j) {
			return
		}
		r.settleUndeliverable(j, StateBounced, "unknown", "unknown number")
		return
	}
	if e.Problem != "" {
		// A bad row is a definite answer from a healthy database, like an unknown
		// number, so it bounces: deferring would keep the sender waiting up to the
		// message's validity for an edit nobody knows is needed, while the notice
		// tells them now and the journal and this log line tell the admin what to
		// fix. Only messages to this number are affected.
		r.log.Warn("directory row unusable; message bounced", "id", j.claim.id, "to", j.msg.DA, "problem", e.Problem)
		r.settleUndeliverable(j, StateBounced, "unreachable", e.Problem)
		return
	}
	j.entry = e
	if e.Letter == 'N' {
		j.letter = e.Letter
		r.settleUndeliverable(j, StateBounced, "disabled", "messaging disabled (letter N)")
		return
	}
	r.deliverWays(ctx, j, e)
}

// deliverOn hands the job to the channel of one way and settles it when that
// works or fails for good; it returns the error of a failure that the next way
// may take over instead (see failOver), with nothing settled.
func (r *Router) deliverOn(ctx context.Context, j *job, w NumberWay, tries int, last bool) error {
	j.letter = w.Letter
	ch, ok := r.channels[w.Letter]
	if !ok {
		err := fmt.Errorf("no channel for letter %q", string(w.Letter))
		if !last {
			return err
		}
		r.settleUndeliverable(j, StateBounced, "noservice", err.Error())
		return nil
	}
	// A way that rings a phone waits for the quiet hours to end: the message
	// is held, not handed to the next way, whose order the recipient chose.
	if until, held := r.quietUntil(w.Letter, j.entry.pref, r.now()); held {
		_, loc := r.quietFor(j.entry.pref)
		r.holdQuiet(j, until, loc)
		return nil
	}
	qw, qloc := r.quietFor(j.entry.pref)
	res, err := ch.Deliver(ctx, channels.Message{
		ID: j.claim.id, From: j.msg.OA, To: j.msg.DA, Text: j.text, Received: j.received, Sent: j.msg.SCTS,
		Letter: w.Letter, Extension: w.Extension, Attempt: j.claim.attempts + 1, Validity: j.validity,
		Depth: j.claim.depth, Quiet: qw, QuietZone: qloc,
	})
	if err != nil && !last && r.failOver(err, tries) {
		return err
	}
	switch {
	case err == nil:
		j.state, j.result, j.detail = StateDelivered, res, res.Detail
	case errors.Is(err, channels.ErrNoService):
		r.settleUndeliverable(j, StateBounced, "noservice", err.Error())
	case channels.IsPermanent(err):
		j.public = channels.PublicReason(err)
		r.settleUndeliverable(j, StateBounced, "failed", err.Error())
	default:
		r.failTemporarily(j, err)
	}
	return nil
}

// failTemporarily defers the job, or expires it when its validity is over.
func (r *Router) failTemporarily(j *job, err error) {
	if !r.now().Before(j.validity) {
		r.settleUndeliverable(j, StateExpired, "expired", "retried until validity ended; last error: "+err.Error())
		return
	}
	r.deferJob(j, err)
}

// deferJob sets the job's next attempt, counted from now: the moment the decision is
// taken, however long the batch has been running.
func (r *Router) deferJob(j *job, err error) {
	now := r.now()
	j.state, j.errText, j.cause = StateDeferred, err.Error(), channels.CauseOf(err)
	j.notice, j.result = nil, channels.Result{}
	j.claim.attempts++
	due := now.Add(r.backoff(j.claim.attempts))
	if d, ok := channels.RetryDelay(err); ok {
		due = now.Add(d)
	} else if rule := r.cfg.Retry[channels.CauseOf(err)]; rule.Delay > 0 {
		due = now.Add(rule.Delay)
	}
	if !j.validity.IsZero() && due.After(j.validity) && now.Before(j.validity) {
		due = j.validity // one last try when it expires, which then tells the sender
	}
	j.detail = map[string]any{"next_attempt": due.UnixMilli()}
	j.dueAt = due
}

// settleUndeliverable ends a message that cannot be delivered and tells its sender,
// unless the sender is the SMS Centre itself (a notice about a notice) or absent.
func (r *Router) settleUndeliverable(j *job, st State, notice, reason string) {
	now := r.now()
	j.state, j.errText = st, reason
	j.told = publicReason(notice, j.public)
	if r.cfg.SMSCNumber == "" || j.msg == nil || j.msg.OA == r.cfg.SMSCNumber {
		j.state = StateDropped
		r.log.Info("undeliverable, no one to tell", "id", j.claim.id, "reason", reason)
		return
	}
	text, err := r.noticeText(notice, j.msg.DA, j.msg.OA, publicReason(notice, j.public))
	if err != nil {
		r.log.Error("notice template failed", "notice", notice, "err", err)
		text = "Cannot deliver SMS to " + j.msg.DA + "."
	}
	if j.claim.depth+1 > channels.MaxDepth {
		j.state = StateDropped
		r.log.Info("undeliverable; too many generations deep to send a notice", "id", j.claim.id, "reason", reason)
		return
	}
	art, nid, err := channels.NewMessage(r.l.inbox, r.cfg.SMSCNumber, j.msg.OA, text, j.claim.depth+1, now.In(r.cfg.Location))
	if err != nil {
		r.log.Error("notice could not be written", "id", j.claim.id, "err", err)
		j.state = StateDropped
		return
	}
	art.Kind = "notice"
	j.notice = []channels.Artefact{art}
	j.detail = map[string]any{"notice_id": nid}
}

func (r *Router) noticeText(name, to, from, reason string) (string, error) {
	var b strings.Builder
	err := r.notices[name].Execute(&b, noticeData{to, from, reason})
	return b.String(), err
}

// finish moves the claimed file to where its state says: gone when final, to
// deferred/ when it will be retried.
func (r *Router) finish(j *job) {
	fields := []any{"id", j.claim.id, "state", j.state, "source", j.source}
	if j.letter != 0 {
		fields = append(fields, "letter", string(j.letter))
	}
	if j.msg != nil {
		fields = append(fields, "from", j.msg.OA, "to", j.msg.DA)
	}
	switch {
	case j.state == StateDeferred:
		dst := filepath.Join(r.l.deferred, deferredName(j.dueAt, j.claim))
		if err := renameNoReplace(j.path, dst); err != nil {
			r.log.Error("cannot defer; left claimed for recovery", "id", j.claim.id, "err", err)
		}
		r.log.Info("message deferred", append(fields, "attempts", j.claim.attempts, "next", j.dueAt.Format(time.RFC3339), "err", j.errText)...)
	case j.state.Final():
		if j.via != "" {
			forgetVia(r.l.work, j.claim.id)
		}
		forgetAcks(r.l.work, j)
		if j.state != StateRejected {
			if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				r.log.Error("cannot remove finished file", "id", j.claim.id, "err", err)
			}
		}
		if j.state != StateRejected {
			r.log.Info("message "+string(j.state), append(fields, "files", j.published, "reason", j.errText)...)
		}
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
