// Package sms delivers messages to SMS phones the way smsq does: one sms/mttx file
// per part, plus a call file that dials the recipient's Extension and runs
// SMS(<queue>,s) so that Asterisk's app_sms, acting as the SMS Centre, hands every
// queued file of that queue to the phone (SPEC.md §1.3, §2.2).
//
// A phone is never called twice at once, whichever process (drain, serve) has
// messages for it: a message relies on a call that has not started dialling;
// one that arrives while a call is in progress goes into the queue (app_sms
// hands over what it finds when it reads it) and leaves a follow-up, placed as
// a call of its own once that call has ended if parts are left. Every decision
// to call is taken under one lock in the work folder.
package sms

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/internal/quiet"
)

// Config says how to reach phones.
type Config struct {
	Spool        string // Asterisk spool root: sms/mttx and outgoing/ live there
	SMSCNumber   string // caller ID number of the SMS Centre's calls; phones often check it
	CallerIDName string // default "SMS"
	WaitTime     int    // seconds to ring; default 20
	MaxRetries   int    // further attempts when the phone does not answer; default 60
	RetryTime    int    // seconds between attempts; default 60
	MaxParts     int    // longest message in parts; default 10, at most 255
	Archive      bool   // Archive: yes, for delivery evidence in outgoing_done
	Location     *time.Location
	// Sync fsyncs the call files the channel places itself (the router's
	// [queue] sync); without it a power loss may lose one.
	Sync bool
	// WorkDir is smsrouter's own folder (never one Asterisk watches): the
	// follow-up calls of phones whose call was in progress wait there.
	// Default <Spool>/smsrouter.
	WorkDir string

	// OutcomeContext, when set, is the generated dialplan context the call
	// runs SMS() in (channels.Dialling.Context): it reports a busy line.
	OutcomeContext string
}

// Channel is the S delivery channel.
type Channel struct {
	cfg      Config
	mttx     string
	outgoing string
	tmp      string
	follow   string // follow-up calls waiting for a phone's call in progress to end
	ref      atomic.Uint32

	// The channel remembers, for the life of the process, the call files in
	// outgoing/ that may drain a queue: a call that has not started dialling
	// will hand over whatever we add to its queue, so no second call is needed
	// (the old suite blocked for 2 s per message instead). outgoing/ is listed
	// once; after that the channel learns from what it places itself, from
	// Watch's events and from one stat of a file it is about to rely on, so a
	// batch costs in proportion to its messages, not to the files in outgoing/
	// (listing and lstat-ing them per batch of 256 was most of a large drain).
	// The router delivers several messages at once, hence the lock.
	mu     sync.Mutex
	listed bool
	calls  map[string]*call   // by file name
	queues map[string][]*call // by queue; rarely more than one
	batch  uint64             // counts StartBatch calls
	// relistAt is the number of known calls past which outgoing/ is listed
	// again to forget calls that ended unseen (no Watch running): amortised,
	// the listing costs O(1) per call placed.
	relistAt int

	// What the channel did to outgoing/, for tests: files stat-ed and read,
	// calls placed.
	stats, reads, placed atomic.Int64
	lockFile             *os.File // the follow-up folder's lock (lockedFollow)
	followMade           bool     // the follow-up folder exists
	// cur collects the queues of the batch being delivered (Deliver); its
	// first AfterPublish decides them all (settle).
	cur *batchCalls
	// Every process appends the names of the calls it places, under the
	// lock, to one log in the work folder (.calls) and reads, when it takes
	// the lock, what the others added since: so it knows every call of ours
	// without listing outgoing/ or reading a record per phone. The log is
	// emptied when it grows large; the count of emptyings in the lock file
	// (epoch) tells the others to list outgoing/ once instead.
	logFile  *os.File
	logOff   int64 // how far this process has read the log
	epoch    uint64
	logKnown bool // logOff and epoch are current
	// followErr is the last follow-up failure Watch met (it has no caller to tell).
	followErr atomic.Value
	// spare is an empty intent file, locked, made once a batch is settled for
	// the next batch to write to: creating it then, not when the next batch
	// delivers, keeps three file creations off a message's way to its call.
	spare     *os.File
	sparePath string
	// spareCall is an empty temporary call file, made with the spare intent,
	// which the next call placed is written to: one file creation fewer
	// between a batch's commit and its call.
	spareCall *callfile.Temp
}

// call is what the channel knows of one call file for a queue.
type call struct {
	name, queue string
	// size and mod are the file's as last seen; size is -1 when the content is
	// not known (listed but never read), mod is zero until first stat-ed.
	// Asterisk appends a StartRetry line before it dials, so an unchanged size
	// means it has not started since waiting was learnt.
	size    int64
	mod     time.Time
	waiting bool // not dialling and not finished: its next attempt drains the queue
}

// relistMin is the least number of known calls that triggers a new listing.
const relistMin = 1024

// New checks the configuration.
func New(cfg Config) (*Channel, error) {
	if cfg.Spool == "" {
		return nil, errors.New("sms: no spool folder")
	}
	if cfg.CallerIDName == "" {
		cfg.CallerIDName = "SMS"
	}
	if strings.ContainsAny(cfg.CallerIDName, "\"<>\r\n\x00") {
		return nil, fmt.Errorf("sms: caller ID name %q may not contain quotes, <, > or line breaks", cfg.CallerIDName)
	}
	if cfg.WaitTime <= 0 {
		cfg.WaitTime = 20
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 60
	}
	if cfg.RetryTime <= 0 {
		cfg.RetryTime = 60
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	if cfg.MaxParts > 255 {
		return nil, fmt.Errorf("sms: max_parts %d: a concatenated SMS has at most 255 parts", cfg.MaxParts)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(cfg.Spool, "smsrouter")
	}
	c := &Channel{
		cfg:      cfg,
		mttx:     filepath.Join(cfg.Spool, "sms", "mttx"),
		outgoing: filepath.Join(cfg.Spool, "outgoing"),
		tmp:      filepath.Join(cfg.Spool, "tmp"),
		follow:   filepath.Join(cfg.WorkDir, "sms-followup"),
	}
	// Concatenation references only need to differ between consecutive messages
	// to one phone; a random start avoids repeating the last run's after a restart.
	c.ref.Store(rand.Uint32())
	return c, nil
}

// Queue is the app_sms queue name for a number: app_sms turns every character
// that is not alphanumeric into '-'.
func Queue(number string) string {
	b := []byte(number)
	for i, ch := range b {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			b[i] = '-'
		}
	}
	return string(b)
}

// queueOf returns the queue a call file name is for: smsrouter.mttx.<queue>.<id>
// for ours, smsq.mttx.<queue>.<n> for smsq's, so both tools can share a box.
func queueOf(name string) (string, bool) {
	for _, p := range [...]string{"smsrouter.mttx.", "smsq.mttx."} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			queue, _, _ := strings.Cut(rest, ".")
			return queue, queue != ""
		}
	}
	return "", false
}

// StartBatch tells the channel a batch of deliveries begins: follow-up calls
// that are due are placed. It costs nothing per file in outgoing/, except for
// an occasional listing that forgets calls which ended unseen.
func (c *Channel) StartBatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch++
	if c.cur != nil && !c.cur.settled {
		// Never published, or not yet (its journal write is uncertain):
		// placeFollowUps decides its intent like a dead process's.
		c.cur.endIntent(false)
	}
	c.cur = nil
	if c.listed && len(c.calls) > c.relistAt {
		c.list()
	}
	c.placeFollowUps()
}

// ensureListed lists outgoing/ once, on the first delivery that needs it (a
// drain with no S messages never does).
func (c *Channel) ensureListed() {
	if !c.listed {
		c.list()
	}
}

// list reads outgoing/'s names (no stat, no read: a file is looked at only when
// a message is about to rely on it). It adds the call files it did not know and
// forgets those that are gone. c.mu is held.
func (c *Channel) list() {
	if c.calls == nil {
		c.calls, c.queues = map[string]*call{}, map[string][]*call{}
	}
	names, err := readNames(c.outgoing)
	if err != nil {
		// No outgoing/ yet (the first call creates nothing there: staging
		// does) or unreadable: rely on nothing we have not placed ourselves.
		names = nil
	}
	c.listed = true
	present := make(map[string]bool, len(names))
	for _, name := range names {
		queue, ok := queueOf(name)
		if !ok {
			continue
		}
		present[name] = true
		if _, known := c.calls[name]; !known {
			c.add(&call{name: name, queue: queue, size: -1})
		}
	}
	for name, e := range c.calls {
		if !present[name] {
			c.drop(e)
		}
	}
	c.relistAt = 2*len(c.calls) + relistMin
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

func (c *Channel) add(e *call) {
	c.calls[e.name] = e
	c.queues[e.queue] = append(c.queues[e.queue], e)
}

func (c *Channel) drop(e *call) {
	if c.calls[e.name] != e {
		return // already forgotten (Watch and a look may both notice)
	}
	delete(c.calls, e.name)
	q := c.queues[e.queue]
	for i, x := range q {
		if x == e {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(c.queues, e.queue)
	} else {
		c.queues[e.queue] = q
	}
}

// pendingCall returns a call for queue that has not started dialling, or nil.
// Each is looked at (one stat, a read only if Asterisk changed it since we
// last knew). c.mu is held.
func (c *Channel) pendingCall(queue string) *call {
	q := c.queues[queue]
	// Newest first: an older call is the likelier to be dialling. Walk a copy,
	// since a look may drop entries.
	for i := len(q) - 1; i >= 0; i-- {
		e := q[i]
		if c.look(e) {
			return e
		}
	}
	return nil
}

// look reports whether e's file is in outgoing/ and has not started dialling,
// forgetting it if it is gone. One stat decides when the file is as we last saw
// it; otherwise (Asterisk appended to it, or we never read it) it is read once.
// c.mu is held.
func (c *Channel) look(e *call) bool {
	path := filepath.Join(c.outgoing, e.name)
	c.stats.Add(1)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		c.drop(e)
		return false
	}
	if err != nil {
		return false // cannot tell: rely on a call of our own instead
	}
	if e.size == fi.Size() && (e.mod.IsZero() || e.mod.Equal(fi.ModTime())) {
		// A file we wrote ourselves (mod unknown) or one we read at this size and
		// mtime: Asterisk has not touched it since.
		e.mod = fi.ModTime()
		return e.waiting
	}
	c.read(e)
	return e.waiting
}

// read learns from a call file's content whether it is waiting to dial.
func (c *Channel) read(e *call) {
	c.reads.Add(1)
	e.size, e.mod, e.waiting = -1, time.Time{}, false
	f, err := os.Open(filepath.Join(c.outgoing, e.name))
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, callfile.MaxSize+1))
	if err != nil {
		return
	}
	if int64(len(data)) != fi.Size() {
		// Asterisk appended while we read (it is starting the call): not
		// waiting, and read again next time.
		return
	}
	e.size, e.mod = fi.Size(), fi.ModTime()
	rec, err := callfile.Parse(data)
	if err != nil {
		return // not a call file pbx_spool will run: nothing to rely on
	}
	e.waiting = !rec.InProgress() && rec.Status == ""
}

// publicUnencodable is the sender's reason for a text the SMS coder refuses.
const publicUnencodable = "The message could not be encoded as SMS."

// Deliver writes the message's parts for the recipient's queue and, unless a call
// for that queue is already waiting to dial, a call file.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	if err := channels.CheckExtension(m); err != nil {
		return channels.Result{}, err
	}
	queue := Queue(m.To)
	ref := uint8(c.ref.Add(1))
	parts, err := smsq.Split(m.Text, ref, c.cfg.MaxParts)
	if errors.Is(err, smsq.ErrTooLong) {
		return channels.Result{}, channels.PermanentBecause(fmt.Sprintf("The message is too long: it would need more than %d SMS parts.", c.cfg.MaxParts),
			fmt.Errorf("message too long: more than %d SMS parts", c.cfg.MaxParts))
	}
	if err != nil {
		return channels.Result{}, channels.PermanentBecause(publicUnencodable, fmt.Errorf("cannot encode message: %w", err))
	}
	// The phone shows scts as the time the message was sent: keep the original's.
	sent := m.Sent
	if sent.IsZero() {
		sent = m.Received
	}
	res := channels.Result{Detail: map[string]any{"queue": queue, "parts": len(parts)}}
	coding := "gsm7"
	for i, p := range parts {
		if p.DCS == 8 {
			coding = "ucs2"
		}
		data, err := (&smsq.Message{
			OA: m.From, SCTS: sent.In(c.cfg.Location), DCS: p.DCS, MR: -1,
			UDH: p.UDH, HasUDH: p.UDH != nil, Text: p.Text,
		}).Marshal()
		if err != nil {
			return channels.Result{}, channels.PermanentBecause(publicUnencodable, fmt.Errorf("cannot write part %d: %w", i+1, err))
		}
		res.Artefacts = append(res.Artefacts, channels.Artefact{
			Kind: "mttx", Dir: c.mttx, Name: fmt.Sprintf("%s.%s-%d", queue, m.ID, i+1), Data: data, Mode: 0o664,
		})
	}
	res.Detail["coding"] = coding

	c.mu.Lock()
	defer c.mu.Unlock()
	c.ensureListed()
	b := c.cur
	if b == nil || b.settled {
		b = &batchCalls{queues: map[string]*queueCall{}}
		c.cur = b
	}
	qc := b.queues[queue]
	if qc == nil {
		data, err := c.callFile(queue, m)
		if err != nil {
			return channels.Result{}, channels.PermanentBecause(channels.PublicNotSetUp, err)
		}
		qc = &queueCall{name: "smsrouter.mttx." + queue + "." + m.ID, data: data, later: withHold(m, data)}
		if e := c.pendingCall(queue); e != nil {
			qc.pending = e.name
		}
		b.queues[queue] = qc
		b.order = append(b.order, queue)
	}
	res.AfterPublish = func(context.Context) error { return c.settle(b) }
	if qc.pending != "" {
		res.Detail["call"] = "pending " + qc.pending
		return res, nil
	}
	// No call known to be waiting. The call is placed once the batch's parts
	// are in mttx, by settle, under the lock every process takes to decide
	// whether a phone gets a call: never two calls to one phone at once. The
	// intent recorded now (one line per queue, one file per batch) lets a
	// later batch or drain place it should this process die between the
	// journal's commit and then.
	if !qc.intended {
		if err := c.intend(b, queue, qc.later); err != nil {
			return channels.Result{}, err
		}
		qc.intended = true
	}
	res.Detail["call"] = qc.name
	if (c.cfg.Archive || c.cfg.OutcomeContext != "") && qc.name == "smsrouter.mttx."+queue+"."+m.ID {
		// The call to be placed carries this message's id: its archived
		// outcome is this message's evidence. (It does not if settle finds a
		// waiting call after all, or only one in progress: a report then waits
		// for an outcome that names another message.)
		res.Detail[channels.AwaitsCall] = true
	}
	return res, nil
}

// batchCalls are the queues one batch delivered to, decided together once the
// batch's parts are published.
type batchCalls struct {
	queues  map[string]*queueCall
	order   []string // in delivery order, so calls are placed in it
	settled bool
	// intent lists the queues that had no waiting call, for placeFollowUps
	// should settle never run. It is locked until the batch is settled or
	// the next one starts.
	intent     *os.File
	intentPath string
}

// queueCall is what a batch knows of one queue.
type queueCall struct {
	name     string // the call file to place if it needs one: the first message's
	data     []byte
	later    []byte // data with the recipient's quiet hours (withHold), for a call placed later
	pending  string // a call that was waiting when the batch's first message looked
	intended bool   // recorded in the batch's intent
}

// intentPrefix begins the names of the batches' intent files in the
// follow-up folder.
const intentPrefix = "intent."

// intend records in the batch's intent that queue needs a call unless one is
// waiting when the batch is settled. c.mu is held.
func (c *Channel) intend(b *batchCalls, queue string, data []byte) error {
	if b.intent == nil {
		if c.spare != nil {
			b.intent, b.intentPath, c.spare = c.spare, c.sparePath, nil
		} else {
			f, path, err := c.newIntent()
			if err != nil {
				return err
			}
			b.intent, b.intentPath = f, path
		}
	}
	if _, err := b.intent.WriteString(queue + " " + strconv.Quote(string(data)) + "\n"); err != nil {
		return fmt.Errorf("sms: intent: %w", err)
	}
	return nil
}

// newIntent makes an empty intent file, locked. Should this process die, the
// next to take the follow-up lock finds it unlocked and empty, and removes it.
// c.mu is held.
func (c *Channel) newIntent() (*os.File, string, error) {
	if err := c.makeFollow(); err != nil {
		return nil, "", err
	}
	// Locked before it gets its name: placeFollowUps never takes the record
	// of a batch still open.
	name := callfile.UniqueName("")
	tmp := filepath.Join(c.follow, "."+name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o660)
	if err != nil {
		return nil, "", fmt.Errorf("sms: intent: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, "", fmt.Errorf("sms: intent: %w", err)
	}
	path := filepath.Join(c.follow, intentPrefix+name)
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, "", fmt.Errorf("sms: intent: %w", err)
	}
	return f, path, nil
}

// endIntent removes the batch's intent once its calls are decided, or only
// unlocks it for placeFollowUps when they could not all be.
func (b *batchCalls) endIntent(decided bool) {
	if decided && b.intentPath != "" {
		os.Remove(b.intentPath)
		b.intentPath = ""
	}
	if b.intent != nil {
		b.intent.Close()
		b.intent = nil
	}
}

func (c *Channel) callFile(queue string, m channels.Message) ([]byte, error) {
	return channels.Dialling{
		CallerIDName: c.cfg.CallerIDName, SMSCNumber: c.cfg.SMSCNumber, WaitTime: c.cfg.WaitTime,
		MaxRetries: c.cfg.MaxRetries, RetryTime: c.cfg.RetryTime, Archive: c.cfg.Archive, Context: c.cfg.OutcomeContext,
	}.CallFile(m, "SMS", queue+",s")
}

// settle decides, once the batch's parts are in mttx, every queue it
// delivered to, under one lock. A call that has not started dialling hands
// the parts over. A call in progress (dialling, or talking to the phone) may
// or may not: app_sms reads the queue once the phone answers. So a follow-up
// is left for it (placeFollowUps places it once that call has ended, if parts
// are left), never a second call beside it. Queues with no call at all get
// one now, placed together (one round of fsyncs for the batch).
func (c *Channel) settle(b *batchCalls) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.settled {
		return nil
	}
	b.settled = true
	err := c.lockedFollow(func() error {
		var errs []error
		var places []placement
		for _, queue := range b.order {
			qc := b.queues[queue]
			switch c.queueState(queue) {
			case callWaiting:
				// That call hands every part over.
			case callBusy:
				errs = append(errs, c.writeFollowUp(queue, qc.later))
			default:
				places = append(places, placement{queue: queue, name: qc.name, data: qc.data})
			}
		}
		// The parts the router just published are on the disk before a call
		// that hands them over appears (the router syncs mttx/ meanwhile).
		return errors.Join(append(errs, c.placeAll(places, c.mttx))...)
	})
	used := b.intentPath != ""
	b.endIntent(err == nil)
	if used && err == nil && c.spare == nil {
		// Best effort: without it the next batch makes its own.
		c.spare, c.sparePath, _ = c.newIntent()
	}
	if c.spareCall == nil && len(b.order) > 0 {
		c.spareCall, _ = callfile.NewTemp(c.tmp) // best effort, as the spare intent
	}
	return err
}

// callState is what outgoing/ holds for a queue.
type callState int

const (
	callNone    callState = iota
	callWaiting           // a call that has not started dialling
	callBusy              // only calls in progress
)

// queueState looks at every call known for queue: after catchUp, every call
// of ours, whichever process placed it. c.mu and the lock are held.
func (c *Channel) queueState(queue string) callState {
	st := callNone
	q := append([]*call(nil), c.queues[queue]...)
	for i := len(q) - 1; i >= 0; i-- {
		if c.look(q[i]) {
			return callWaiting
		}
		if _, known := c.calls[q[i].name]; known {
			st = callBusy
		}
	}
	return st
}

// placement is a call file to place for a queue.
type placement struct {
	queue, name string
	data        []byte
	notBefore   time.Time // held until then (quiet hours)
}

// holdPrefix begins the line a follow-up (or an intent) starts with when its
// recipient has quiet hours: a follow-up is placed when the call in progress
// ends, which may be inside them, so it carries them. It is a call-file
// comment, harmless should it ever reach pbx_spool.
const holdPrefix = "#smsrouter quiet "

// withHold is data behind the line that records m's quiet hours; data itself
// (not a copy: this is on every message's way) when m has none.
func withHold(m channels.Message, data []byte) []byte {
	if m.Quiet.Off() || m.QuietZone == nil {
		return data
	}
	return append([]byte(holdPrefix+m.Quiet.String()+" "+m.QuietZone.String()+"\n"), data...)
}

// releaseAt splits a follow-up into the call file and when it may ring: the
// end of the quiet hours its header names if now is inside them, else zero.
// A header that cannot be read holds nothing (the call is not lost).
func releaseAt(data []byte, now time.Time) ([]byte, time.Time) {
	line, rest, ok := strings.Cut(string(data), "\n")
	if !ok || !strings.HasPrefix(line, holdPrefix) {
		return data, time.Time{}
	}
	win, zone, _ := strings.Cut(strings.TrimPrefix(line, holdPrefix), " ")
	w, err := quiet.Parse(win)
	loc, lerr := time.LoadLocation(zone)
	if err != nil || lerr != nil {
		return []byte(rest), time.Time{}
	}
	until, held := w.Until(now, loc)
	if !held {
		return []byte(rest), time.Time{}
	}
	return []byte(rest), until
}

// placeAll puts call files into outgoing/ now, with one round of fsyncs for
// them all (and for the folders in first, synced before any call appears),
// records each as its queue's current call and drops the queue's follow-up
// (the new call hands every part over). c.mu and the lock are held.
func (c *Channel) placeAll(ps []placement, first ...string) error {
	if len(ps) == 0 {
		return nil
	}
	if err := os.MkdirAll(c.tmp, 0o770); err != nil {
		return fmt.Errorf("call file temp folder: %w", err)
	}
	calls := make([]callfile.Call, len(ps))
	names := make([]string, len(ps))
	for i, p := range ps {
		calls[i] = callfile.Call{Name: p.name, Data: p.data, NotBefore: p.notBefore}
		names[i] = p.name
	}
	calls[0].Temp, c.spareCall = c.spareCall, nil
	// Logged before any call appears: a process that dies in between leaves
	// only names of calls that never were, which a look forgets.
	if err := c.logCalls(names); err != nil {
		return err
	}
	err := callfile.PlaceAll(c.outgoing, c.tmp, calls, c.cfg.Sync, first...)
	var again []int
	for i := range calls {
		if errors.Is(calls[i].Err, callfile.ErrExists) {
			// An earlier attempt at this message placed a call under its
			// name, and that call has started: this one needs a name of its own.
			calls[i] = callfile.Call{Name: callfile.UniqueName(calls[i].Name), Data: calls[i].Data, NotBefore: calls[i].NotBefore}
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		retry := make([]callfile.Call, len(again))
		names = names[:0]
		for k, i := range again {
			retry[k] = calls[i]
			names = append(names, calls[i].Name)
		}
		if lerr := c.logCalls(names); lerr != nil {
			return errors.Join(err, lerr)
		}
		err = errors.Join(err, callfile.PlaceAll(c.outgoing, c.tmp, retry, c.cfg.Sync))
		for k, i := range again {
			calls[i] = retry[k]
		}
	}
	errs := []error{err}
	dropFollowUp := c.followUpDropper(len(ps))
	for i, p := range ps {
		cf := calls[i]
		errs = append(errs, cf.Err)
		if cf.Path == "" {
			continue
		}
		c.placed.Add(1)
		if old, dup := c.calls[cf.Name]; dup {
			c.drop(old)
		}
		c.add(&call{name: cf.Name, queue: p.queue, size: int64(len(p.data)), waiting: true})
		dropFollowUp(p.queue)
	}
	return errors.Join(errs...)
}

// followUpDropper returns what removes a queue's follow-up, for n calls just
// placed. Most queues have none: for more than a few calls the follow-up
// folder is listed once rather than tried per call (an unlink that fails is
// still a path lookup, and os.Remove tries rmdir after it). c.mu and the lock
// are held, so no follow-up appears meanwhile.
func (c *Channel) followUpDropper(n int) func(queue string) {
	remove := func(queue string) { unix.Unlink(filepath.Join(c.follow, queue)) } //nolint:errcheck // usually none
	if n <= 4 {
		return remove
	}
	names, err := readNames(c.follow)
	if err != nil {
		return remove
	}
	has := make(map[string]bool, len(names))
	for _, name := range names {
		has[name] = true
	}
	return func(queue string) {
		if has[queue] {
			remove(queue)
		}
	}
}

// maxLog is the size past which the log of calls is emptied.
const maxLog = 1 << 20

// logCalls appends names to the log of calls. c.mu and the lock are held.
func (c *Channel) logCalls(names []string) error {
	if !c.logKnown {
		return errors.New("sms: log of calls unreadable; no call placed")
	}
	if c.logOff > maxLog {
		// The epoch first: a process that missed it would read on from an
		// offset in the new content.
		if err := c.writeEpoch(c.epoch + 1); err != nil {
			return err
		}
		c.epoch++
		if err := c.logFile.Truncate(0); err == nil {
			c.logOff = 0
		}
	}
	// A leading newline ends a line torn by a process that died writing it.
	n, err := c.logFile.Write([]byte("\n" + strings.Join(names, "\n") + "\n"))
	c.logOff += int64(n)
	if err != nil {
		return fmt.Errorf("sms: log of calls: %w", err)
	}
	return nil
}

func (c *Channel) writeEpoch(epoch uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], epoch)
	if _, err := c.lockFile.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("sms: follow-up lock: %w", err)
	}
	return nil
}

// catchUp learns the calls other processes placed since this one last held
// the lock: from the log, or, the first time and after the log was emptied,
// from a listing of outgoing/. c.mu and the lock are held.
func (c *Channel) catchUp() {
	c.logKnown = false
	var b [8]byte
	var epoch uint64
	if n, err := c.lockFile.ReadAt(b[:], 0); n == len(b) {
		epoch = binary.LittleEndian.Uint64(b[:])
	} else if n != 0 || !errors.Is(err, io.EOF) { // a new lock file holds nothing
		c.list()
		return
	}
	fi, err := c.logFile.Stat()
	if err != nil {
		c.list()
		return
	}
	size := fi.Size()
	if c.logOff == size && c.epoch == epoch && c.calls != nil {
		c.logKnown = true
		return
	}
	if c.epoch != epoch || size < c.logOff || c.calls == nil || c.logOff == 0 && size > 0 {
		c.list()
		c.logOff, c.epoch, c.logKnown = size, epoch, true
		return
	}
	buf := make([]byte, size-c.logOff)
	if n, _ := c.logFile.ReadAt(buf, c.logOff); n < len(buf) {
		c.list()
		return
	}
	for name := range strings.SplitSeq(string(buf), "\n") {
		queue, ok := queueOf(name)
		if !ok || strings.ContainsRune(name, '/') {
			continue
		}
		if _, known := c.calls[name]; !known {
			c.add(&call{name: name, queue: queue, size: -1})
		}
	}
	c.logOff, c.epoch, c.logKnown = size, epoch, true
}

// lockedFollow runs f holding the follow-up folder's lock, which every
// process takes to decide whether a phone gets a call: two processes never
// both decide that it needs one. c.mu is held.
func (c *Channel) lockedFollow(f func() error) error {
	if c.lockFile == nil {
		if err := os.MkdirAll(c.follow, 0o770); err != nil {
			return fmt.Errorf("sms: follow-up folder: %w", err)
		}
		lk, err := os.OpenFile(filepath.Join(c.follow, ".lock"), os.O_CREATE|os.O_RDWR, 0o660)
		if err != nil {
			return fmt.Errorf("sms: follow-up lock: %w", err)
		}
		log, err := os.OpenFile(filepath.Join(c.follow, ".calls"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o660)
		if err != nil {
			lk.Close()
			return fmt.Errorf("sms: log of calls: %w", err)
		}
		c.lockFile, c.logFile = lk, log // kept open for the channel's life: one lock per process
	}
	fd := int(c.lockFile.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("sms: follow-up lock: %w", err)
	}
	defer unix.Flock(fd, unix.LOCK_UN) //nolint:errcheck // nothing to do about it
	c.catchUp()
	return f()
}

// writeFollowUp records that queue needs a call of its own once its call in
// progress ends: the call file to place then (a later message's replaces an
// earlier one's; one call hands over every part).
func (c *Channel) writeFollowUp(queue string, data []byte) error {
	if err := c.makeFollow(); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(c.follow, queue), data)
}

func (c *Channel) makeFollow() error {
	if !c.followMade {
		if err := os.MkdirAll(c.follow, 0o770); err != nil {
			return fmt.Errorf("sms: follow-up folder: %w", err)
		}
		c.followMade = true
	}
	return nil
}

// writeAtomic replaces path's content whole (a reader sees the old or the new).
func writeAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+".tmp")
	if err := os.WriteFile(tmp, data, 0o660); err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sms: %w", err)
	}
	return nil
}

// Close lets go of the channel's files: the follow-up lock, the log of calls
// and the intent of a batch never settled (which a later process then decides,
// as it would after this one's death).
func (c *Channel) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && !c.cur.settled {
		c.cur.endIntent(false)
	}
	if c.spare != nil {
		os.Remove(c.sparePath)
		c.spare.Close()
		c.spare = nil
	}
	c.spareCall.Discard()
	c.spareCall = nil
	for _, f := range []*os.File{c.lockFile, c.logFile} {
		if f != nil {
			f.Close()
		}
	}
	c.lockFile, c.logFile = nil, nil
	return nil
}

// FollowUps places the follow-up calls whose phone's call has ended, for parts
// it did not hand over; a drain calls it (Cleanup), serve also when a call
// file goes (Watch).
func (c *Channel) FollowUps() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.placeFollowUps()
}

// Cleanup is the router's periodic call (channels.Janitor): follow-ups.
func (c *Channel) Cleanup(context.Context, time.Time) error { return c.FollowUps() }

// placeFollowUps: for each queue with a follow-up and no call left in
// outgoing/, a call if parts are still in mttx (else the session took them
// all). c.mu is held.
func (c *Channel) placeFollowUps() error {
	names, err := readNames(c.follow)
	spare := ""
	if c.spare != nil {
		spare = filepath.Base(c.sparePath) // our own, empty: nothing to decide
	}
	if err != nil || !slices.ContainsFunc(names, func(n string) bool { return n[0] != '.' && n != spare }) {
		return nil // none (the usual case: one small listing)
	}
	return c.lockedFollow(func() error {
		names, err := readNames(c.follow)
		if err != nil {
			return fmt.Errorf("sms: follow-ups: %w", err)
		}
		if c.takeIntents(names) {
			if names, err = readNames(c.follow); err != nil {
				return fmt.Errorf("sms: follow-ups: %w", err)
			}
		}
		var parts []string
		var places []placement
		for _, queue := range names {
			if queue[0] == '.' {
				continue
			}
			marker := filepath.Join(c.follow, queue)
			if strings.ContainsRune(queue, '.') {
				continue // an intent still open (takeIntents left it)
			}
			if c.queueState(queue) != callNone {
				// Kept while any call is there, even one that looks waiting: it
				// may be starting this very moment, and the follow-up is
				// decided once no call is left.
				continue
			}
			if parts == nil {
				if parts, err = readNames(c.mttx); err != nil {
					return fmt.Errorf("sms: follow-ups: %w", err)
				}
			}
			if slices.ContainsFunc(parts, func(p string) bool { return strings.HasPrefix(p, queue+".") }) {
				data, err := os.ReadFile(marker)
				if err != nil {
					return fmt.Errorf("sms: follow-up for %s: %w", queue, err)
				}
				// placeAll drops the follow-up once the call is in place. One
				// due inside the recipient's quiet hours is placed now, to
				// start when they end (its mtime): the same rule as a first
				// call, and meanwhile later messages rely on it as on any
				// call that has not started.
				data, at := releaseAt(data, time.Now())
				places = append(places, placement{queue: queue, name: callfile.UniqueName("smsrouter.mttx." + queue + ".f"), data: data, notBefore: at})
				continue
			}
			os.Remove(marker)
		}
		return c.placeAll(places)
	})
}

// takeIntents turns the intents of batches that were never settled (their
// process died, or could not place a call) into follow-ups, which the caller
// then decides: a call now if the phone has none and parts wait, else once its
// call ends. An intent still locked belongs to a batch in progress and is left
// alone. It reports whether it took any. c.mu and the lock are held.
func (c *Channel) takeIntents(names []string) bool {
	took := false
	for _, name := range names {
		if !strings.HasPrefix(name, intentPrefix) {
			continue
		}
		path := filepath.Join(c.follow, name)
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			continue
		}
		ok := true
		for line := range strings.SplitSeq(string(data), "\n") {
			queue, quoted, found := strings.Cut(line, " ")
			call, err := strconv.Unquote(quoted)
			if !found || err != nil || queue == "" || Queue(queue) != queue {
				continue // torn by the death of its writer: the record was not complete
			}
			if c.writeFollowUp(queue, []byte(call)) != nil {
				ok = false
			}
		}
		if ok {
			os.Remove(path)
			took = true
		}
	}
	return took
}

// Watch keeps the channel's knowledge of outgoing/ current for a long-running
// process (serve) until ctx ends: call files that other processes place are
// relied on at once, and calls that end (removed, or moved to outgoing_done/ by
// Archive) are forgotten instead of piling up. Without Watch (a one-shot drain)
// the channel stays correct, since it looks at every file before relying on it;
// it only learns less.
func (c *Channel) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("sms: watch %s: %w", c.outgoing, err)
	}
	defer w.Close()
	if err := w.Add(c.outgoing); err != nil {
		return fmt.Errorf("sms: watch %s: %w", c.outgoing, err)
	}
	// Listed after the watch is in place, so no file falls between the two.
	c.mu.Lock()
	c.list()
	c.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("sms: watch %s: closed", c.outgoing)
			}
			c.event(ev)
		case _, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("sms: watch %s: closed", c.outgoing)
			}
			// Events were lost (an overflow): what is in outgoing/ now is the truth.
			c.mu.Lock()
			c.list()
			c.mu.Unlock()
		}
	}
}

func (c *Channel) event(ev fsnotify.Event) {
	name := filepath.Base(ev.Name)
	queue, ok := queueOf(name)
	if !ok || filepath.Dir(ev.Name) != c.outgoing {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, known := c.calls[name]
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		if known {
			c.drop(e)
		}
		// A call ended: parts that came while it ran may need one of their own.
		if err := c.placeFollowUps(); err != nil {
			c.followErr.Store(err.Error())
		}
	case ev.Has(fsnotify.Create):
		if !known && c.calls != nil {
			c.add(&call{name: name, queue: queue, size: -1})
		}
	}
}
