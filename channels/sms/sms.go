// Package sms delivers messages to SMS phones the way smsq does: one sms/mttx file
// per part, plus a call file that dials the recipient's Extension and runs
// SMS(<queue>,s) so that Asterisk's app_sms, acting as the SMS Centre, hands every
// queued file of that queue to the phone (SPEC.md §1.3, §2.2).
package sms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

	// pending maps a queue to a call file in outgoing/ that has not started dialling
	// yet: that call will drain whatever we add to the queue, so no second call is
	// needed (the old suite blocked here for 2 s per message instead). The router
	// delivers several messages at once, hence the lock.
	mu      sync.Mutex
	pending map[string]string
	// calls remembers what startBatch learnt about each call file, so that a batch
	// re-reads only the files that changed: re-reading a thousand call files for
	// every batch of 256 messages cost a third of a drain.
	calls map[string]callState
}

// callState is a call file's size and mtime when it was read, and whether it was
// then still waiting to dial. Asterisk appends StartRetry/EndRetry lines and moves
// the mtime, so an unchanged size and mtime mean an unchanged answer.
type callState struct {
	size    int64
	mod     time.Time
	waiting bool
}

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

// callPrefix names our call files: smsrouter.mttx.<queue>.<id>. The smsq form
// smsq.mttx.<queue>.<n> is recognised too, so both tools can share a box.
func callPrefixes(queue string) []string {
	return []string{"smsrouter.mttx." + queue + ".", "smsq.mttx." + queue + "."}
}

// StartBatch re-reads outgoing/ for pending calls.
func (c *Channel) StartBatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startBatch()
}

func (c *Channel) startBatch() {
	c.pending = map[string]string{}
	entries, err := os.ReadDir(c.outgoing)
	if err != nil {
		return
	}
	calls := make(map[string]callState, len(c.calls))
	defer func() { c.calls = calls }()
	for _, e := range entries {
		name := e.Name()
		var queue string
		for _, p := range []string{"smsrouter.mttx.", "smsq.mttx."} {
			if rest, ok := strings.CutPrefix(name, p); ok {
				queue, _, _ = strings.Cut(rest, ".")
			}
		}
		if queue == "" {
			continue
		}
		if _, seen := c.pending[queue]; seen {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since the listing: that call is over
		}
		path := filepath.Join(c.outgoing, name)
		st, ok := c.calls[name]
		if !ok || st.size != info.Size() || !st.mod.Equal(info.ModTime()) {
			st = callState{size: info.Size(), mod: info.ModTime(), waiting: notStarted(path)}
		}
		calls[name] = st
		if st.waiting {
			c.pending[queue] = path
		}
	}
}

// notStarted reports whether a call file is waiting for its first or next attempt
// (and will therefore drain the queue when it dials).
func notStarted(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	rec, err := callfile.Parse(data)
	if err != nil {
		return false
	}
	return !rec.InProgress() && rec.Status == ""
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
	if c.pending == nil {
		c.startBatch()
	}
	if waiting, ok := c.pending[queue]; ok {
		res.Detail["call"] = "pending " + filepath.Base(waiting)
		res.AfterPublish = func(ctx context.Context) error { return c.ensureCall(waiting, queue, m) }
		return res, nil
	}
	call, err := c.callFile(queue, m)
	if err != nil {
		return channels.Result{}, channels.PermanentBecause(channels.PublicNotSetUp, err)
	}
	name := "smsrouter.mttx." + queue + "." + m.ID
	res.Artefacts = append(res.Artefacts, channels.Artefact{Kind: "call", Dir: c.outgoing, Name: name, Data: call, Mode: 0o664})
	res.Detail["call"] = name
	c.pending[queue] = filepath.Join(c.outgoing, name)
	return res, nil
}

func (c *Channel) callFile(queue string, m channels.Message) ([]byte, error) {
	return channels.Dialling{
		CallerIDName: c.cfg.CallerIDName, SMSCNumber: c.cfg.SMSCNumber, WaitTime: c.cfg.WaitTime,
		MaxRetries: c.cfg.MaxRetries, RetryTime: c.cfg.RetryTime, Archive: c.cfg.Archive,
	}.CallFile(m, "SMS", queue+",s")
}

// ensureCall runs after our parts are in mttx when we relied on a waiting call. If
// that call started dialling (or finished) in the meantime it may already have
// passed the queue by, so a call of our own is placed.
func (c *Channel) ensureCall(waiting, queue string, m channels.Message) error {
	if notStarted(waiting) {
		return nil
	}
	data, err := c.callFile(queue, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.tmp, 0o770); err != nil {
		return fmt.Errorf("call file temp folder: %w", err)
	}
	_, err = callfile.Place(c.outgoing, c.tmp, "smsrouter.mttx."+queue+"."+m.ID, data, time.Time{})
	return err
}
