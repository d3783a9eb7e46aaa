// Package sms delivers messages to SMS phones the way smsq does: one sms/mttx file
// per part, plus a call file that dials the recipient's Extension and runs
// SMS(<queue>,s) so that Asterisk's app_sms, acting as the SMS Centre, hands every
// queued file of that queue to the phone (SPEC.md §1.3, §2.2).
package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
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
}

// Channel is the S delivery channel.
type Channel struct {
	cfg      Config
	mttx     string
	outgoing string
	tmp      string
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

	// What the channel did to outgoing/, for tests: files stat-ed and read.
	stats, reads atomic.Int64
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
	// staged is set for a call file this process returned as an artefact and
	// has not seen in outgoing/ yet: within the batch that staged it (stagedIn)
	// it is relied on without a look, since the router publishes the batch's
	// files before any AfterPublish runs.
	staged   bool
	stagedIn uint64
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
	c := &Channel{
		cfg:      cfg,
		mttx:     filepath.Join(cfg.Spool, "sms", "mttx"),
		outgoing: filepath.Join(cfg.Spool, "outgoing"),
		tmp:      filepath.Join(cfg.Spool, "tmp"),
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

// StartBatch tells the channel a batch of deliveries begins: call files it
// staged in earlier batches are no longer taken on trust (their batch may have
// been deferred instead of published). It costs nothing per file in outgoing/,
// except for an occasional listing that forgets calls which ended unseen.
func (c *Channel) StartBatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch++
	if c.listed && len(c.calls) > c.relistAt {
		c.list()
	}
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
// forgets those that are gone, except the ones staged by the current batch,
// which may not be published yet. c.mu is held.
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
		if !present[name] && !(e.staged && e.stagedIn == c.batch) {
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
// A call staged by the current batch is trusted; any other is looked at (one
// stat, a read only if Asterisk changed it since we last knew). c.mu is held.
func (c *Channel) pendingCall(queue string) *call {
	q := c.queues[queue]
	// Newest first: an older call is the likelier to be dialling. Walk a copy,
	// since a look may drop entries.
	for i := len(q) - 1; i >= 0; i-- {
		e := q[i]
		if e.staged && e.stagedIn == c.batch {
			return e
		}
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
	e.staged = false
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
	if e := c.pendingCall(queue); e != nil {
		res.Detail["call"] = "pending " + e.name
		res.AfterPublish = func(ctx context.Context) error { return c.ensureCall(queue, m) }
		return res, nil
	}
	data, err := c.callFile(queue, m)
	if err != nil {
		return channels.Result{}, channels.PermanentBecause(channels.PublicNotSetUp, err)
	}
	name := "smsrouter.mttx." + queue + "." + m.ID
	res.Artefacts = append(res.Artefacts, channels.Artefact{Kind: "call", Dir: c.outgoing, Name: name, Data: data, Mode: 0o664})
	res.Detail["call"] = name
	if c.cfg.Archive {
		res.Detail[channels.AwaitsCall] = true
	}
	e := &call{name: name, queue: queue, size: int64(len(data)), waiting: true, staged: true, stagedIn: c.batch}
	if old, dup := c.calls[name]; dup {
		c.drop(old) // a retry of a message whose earlier attempt staged this name
	}
	c.add(e)
	return res, nil
}

func (c *Channel) callFile(queue string, m channels.Message) ([]byte, error) {
	return channels.Dialling{
		CallerIDName: c.cfg.CallerIDName, SMSCNumber: c.cfg.SMSCNumber, WaitTime: c.cfg.WaitTime,
		MaxRetries: c.cfg.MaxRetries, RetryTime: c.cfg.RetryTime, Archive: c.cfg.Archive,
	}.CallFile(m, "SMS", queue+",s")
}

// ensureCall runs after our parts are in mttx when we relied on a waiting call.
// If every call we know for the queue started dialling (or finished, or was never
// published) in the meantime, it may already have passed the queue by, so a call
// of our own is placed: after this, some call that has not started dialling, or
// one placed after the parts landed, will hand them over.
func (c *Channel) ensureCall(queue string, m channels.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queues[queue]
	for i := len(q) - 1; i >= 0; i-- {
		// No trust here, even in staged files: the parts are in place now, and
		// what counts is whether a call has started since.
		if c.look(q[i]) {
			return nil
		}
	}
	data, err := c.callFile(queue, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.tmp, 0o770); err != nil {
		return fmt.Errorf("call file temp folder: %w", err)
	}
	name := "smsrouter.mttx." + queue + "." + m.ID
	path, err := callfile.Place(c.outgoing, c.tmp, name, data, time.Time{})
	if errors.Is(err, callfile.ErrExists) {
		// An earlier attempt at this message placed a call under its name, and
		// that call has started: this one needs a name of its own.
		name = callfile.UniqueName(name)
		path, err = callfile.Place(c.outgoing, c.tmp, name, data, time.Time{})
	}
	if path != "" {
		if old, dup := c.calls[name]; dup {
			c.drop(old)
		}
		c.add(&call{name: name, queue: queue, size: int64(len(data)), waiting: true})
	}
	return err
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
	case ev.Has(fsnotify.Create):
		if !known && c.calls != nil {
			c.add(&call{name: name, queue: queue, size: -1})
		}
	}
}
