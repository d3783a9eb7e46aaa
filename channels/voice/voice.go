// Package voice delivers messages to recipients with service letter V by reading
// them out on a phone call: it has render/voice speak the message in the
// recipient's language into an 8 kHz mono WAV, and places a call file that dials
// the recipient's Extension and runs Playback on that file (SPEC.md §7).
//
// Both files are returned as artefacts, the WAV first, so the router publishes the
// recording before the call that plays it. The channel keeps no state between
// messages and may deliver many at once. Old recordings are removed by Cleanup
// (channels.Janitor) once they are older than Config.Keep.
package voice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smsrouter/channels"
	tts "smsrouter/render/voice"
)

// Options answers which language and engine voice a number's messages are
// spoken in; "" means the configured default. An error is temporary (the message
// is retried). The router's Store.VoiceOptions fits.
type Options func(ctx context.Context, number string) (lang, voice string, err error)

// Defaults for zero Config fields.
const (
	DefaultWaitTime   = 30                 // seconds to ring
	DefaultMaxRetries = 2                  // further attempts when nobody answers
	DefaultRetryTime  = 300                // seconds between attempts
	DefaultKeep       = 48 * time.Hour     // how long recordings stay in Dir
	filePrefix        = "smsrouter-"       // our recordings: smsrouter-<id>.wav
	callPrefix        = "smsrouter.voice." // our call files: smsrouter.voice.<id>
)

// Config says how to speak and how to call.
type Config struct {
	Spool string // Asterisk spool root; call files go to <Spool>/outgoing
	// Dir receives the recordings; default <Spool>/voice. It must be on the same
	// filesystem as Spool, and Asterisk must be able to read it.
	Dir string
	// Renderer speaks; nil means espeak-ng with the built-in phrases and English
	// as the default language. Its DefaultLang applies to numbers without one.
	Renderer *tts.Renderer
	// Options looks the recipient's language and voice up; nil means the
	// defaults for everyone.
	Options Options
	// DefaultVoice is the engine voice for numbers without one ("" lets the
	// engine choose by language).
	DefaultVoice string
	IncludeDate  bool // say when the message was sent, after the sender
	Repeat       bool // play the recording twice in the one call

	SMSCNumber   string // caller ID number of the calls
	CallerIDName string // caller ID name; default "SMS"
	WaitTime     int    // seconds to ring; default DefaultWaitTime
	MaxRetries   int    // further attempts when nobody answers; default DefaultMaxRetries
	RetryTime    int    // seconds between attempts; default DefaultRetryTime
	Archive      bool   // Archive: yes, for delivery evidence in outgoing_done
	// OutcomeContext, when set, is the generated dialplan context the call
	// runs in (channels.Dialling.Context): it reports PLAYBACKSTATUS and a busy line.
	OutcomeContext string
	// Keep is how long a recording stays; it must outlast the call's retries.
	// Default DefaultKeep.
	Keep     time.Duration
	Location *time.Location // the zone the date is spoken in; default time.Local
}

// Channel is the V delivery channel. It is safe for concurrent use.
type Channel struct {
	cfg      Config
	dir      string
	outgoing string
	dialling channels.Dialling
}

// New checks the configuration and creates the recordings folder.
func New(cfg Config) (*Channel, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	// Asterisk runs as another user on many boxes: it must be able to read.
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("voice: recordings folder: %w", err)
	}
	if err := sameFilesystem(cfg.Dir, cfg.Spool); err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	return &Channel{cfg: cfg, dir: cfg.Dir, outgoing: filepath.Join(cfg.Spool, "outgoing"), dialling: channels.Dialling{
		CallerIDName: cfg.CallerIDName, SMSCNumber: cfg.SMSCNumber, WaitTime: cfg.WaitTime,
		MaxRetries: cfg.MaxRetries, RetryTime: cfg.RetryTime, Archive: cfg.Archive, Context: cfg.OutcomeContext,
	}}, nil
}

// Check validates cfg as New does, without creating the recordings folder:
// for `smsrouter doctor`, which must leave the system as it found it.
func Check(cfg Config) error {
	cfg, err := cfg.check()
	if err != nil {
		return err
	}
	// The folder may not exist yet: the filesystem it will be made on is that
	// of its nearest existing ancestor.
	dir := cfg.Dir
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := sameFilesystem(dir, cfg.Spool); err != nil {
		return fmt.Errorf("voice: %w", err)
	}
	return nil
}

// check fills in the defaults and validates; it touches nothing.
func (cfg Config) check() (Config, error) {
	if cfg.Spool == "" {
		return cfg, errors.New("voice: no spool folder")
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(cfg.Spool, "voice")
	}
	if !filepath.IsAbs(cfg.Dir) {
		return cfg, fmt.Errorf("voice: folder %q is not absolute", cfg.Dir)
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	// The path becomes Playback's argument: ',' separates its options, '&' its
	// files, and a call file value cannot hold line breaks or ';' unescaped.
	if strings.ContainsAny(cfg.Dir, ",&;|\r\n\x00") {
		return cfg, fmt.Errorf("voice: folder %q may not contain , & ; | or line breaks (Playback would split it)", cfg.Dir)
	}
	if cfg.Renderer == nil {
		cfg.Renderer = &tts.Renderer{}
	}
	if err := cfg.Renderer.Engine.Validate(); len(cfg.Renderer.Engine.Argv) > 0 && err != nil {
		return cfg, fmt.Errorf("voice: %w", err)
	}
	// render/voice's rule, checked here so that a bad default shows when the
	// channel is built rather than on every message.
	if l := cfg.Renderer.DefaultLang; l != "" && !tts.ValidName(l) {
		return cfg, fmt.Errorf("voice: default language %q: want letters, digits and _+.-", l)
	}
	if v := cfg.DefaultVoice; v != "" && !tts.ValidName(v) {
		return cfg, fmt.Errorf("voice: default voice %q: want letters, digits and _+.-", v)
	}
	if cfg.CallerIDName == "" {
		cfg.CallerIDName = "SMS"
	}
	if strings.ContainsAny(cfg.CallerIDName, "\"<>\r\n\x00") {
		return cfg, fmt.Errorf("voice: caller ID name %q may not contain quotes, <, > or line breaks", cfg.CallerIDName)
	}
	if cfg.WaitTime <= 0 {
		cfg.WaitTime = DefaultWaitTime
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.RetryTime <= 0 {
		cfg.RetryTime = DefaultRetryTime
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	// A recording removed while its call still retries would make the call play
	// nothing, and the call file would still end "Completed".
	life := time.Duration(cfg.MaxRetries+1) * time.Duration(cfg.WaitTime+cfg.RetryTime) * time.Second
	if cfg.Keep < life+time.Hour {
		return cfg, fmt.Errorf("voice: keep %s is shorter than a call's retries (%s) plus an hour", cfg.Keep, life)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	return cfg, nil
}

// Dir is where the recordings go.
func (c *Channel) Dir() string { return c.dir }

// Deliver speaks the message into a WAV and returns it with the call file that
// plays it.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	if err := channels.CheckExtension(m); err != nil {
		return channels.Result{}, err
	}
	if !safeID(m.ID) {
		return channels.Result{}, channels.Permanent(fmt.Errorf("message id %q cannot name a file", m.ID))
	}
	var lang, voiceName string
	if c.cfg.Options != nil {
		var err error
		if lang, voiceName, err = c.cfg.Options(ctx, m.To); err != nil {
			return channels.Result{}, fmt.Errorf("language of %s: %w", m.To, err)
		}
	}
	if voiceName == "" {
		voiceName = c.cfg.DefaultVoice
	}
	sent := m.Sent
	if sent.IsZero() {
		sent = m.Received
	}
	req := tts.Request{
		From: m.From, Sent: sent.In(c.cfg.Location), Text: m.Text,
		Lang: lang, Voice: voiceName, IncludeDate: c.cfg.IncludeDate,
	}
	start := time.Now()
	wav, err := c.cfg.Renderer.Render(ctx, req)
	switch {
	case errors.Is(err, tts.ErrUnspeakable):
		return channels.Result{}, channels.PermanentBecause("The message cannot be read out.", unspeakable{err})
	case err != nil:
		// The engine hung, crashed or wrote garbage: try again later.
		return channels.Result{}, fmt.Errorf("speak message for %s: %w", m.To, err)
	}

	base := filePrefix + m.ID
	play := filepath.Join(c.dir, base) // Playback takes the path without ".wav"
	data := play
	if c.cfg.Repeat {
		data = play + "&" + play
	}
	call, err := c.dialling.CallFile(m, "Playback", data)
	if err != nil {
		// CheckExtension passed, so the fault is in the [voice] settings, which
		// an admin can fix while the message waits.
		return channels.Result{}, err
	}
	effLang := lang
	if effLang == "" {
		effLang = "default"
	}
	res := channels.Result{
		Artefacts: []channels.Artefact{
			{Kind: "wav", Dir: c.dir, Name: base + ".wav", Data: wav, Mode: 0o644},
			{Kind: "call", Dir: c.outgoing, Name: callPrefix + m.ID, Data: call, Mode: 0o664},
		},
		Detail: map[string]any{
			"wav":       filepath.Join(c.dir, base+".wav"),
			"call":      callPrefix + m.ID,
			"lang":      effLang,
			"voice":     voiceName,
			"seconds":   wavSeconds(wav),
			"repeat":    c.cfg.Repeat,
			"render_ms": time.Since(start).Milliseconds(),
		},
	}
	if c.dialling.Evidenced() {
		res.Detail[channels.AwaitsCall] = true
	}
	return res, nil
}

// unspeakable is the sender's reason for a message no engine can read out; it
// keeps tts.ErrUnspeakable reachable with errors.Is.
type unspeakable struct{ err error }

func (u unspeakable) Error() string {
	why := strings.TrimPrefix(u.err.Error(), tts.ErrUnspeakable.Error()+": ")
	return "message cannot be read out: " + why
}

func (u unspeakable) Unwrap() error { return u.err }

// Cleanup removes our recordings older than Keep. Files of other programs in the
// folder are left alone.
func (c *Channel) Cleanup(ctx context.Context, now time.Time) error {
	err := channels.RemoveOld(ctx, c.dir, now, c.cfg.Keep, func(name string) bool {
		return strings.HasPrefix(name, filePrefix) && strings.HasSuffix(name, ".wav")
	})
	if err != nil {
		return fmt.Errorf("voice cleanup: %w", err)
	}
	return nil
}

// safeID accepts what can stand in a file name and a Playback argument.
func safeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// wavSeconds is the length of one of our own WAVs (44-byte header, 16-bit mono
// at tts.Rate), rounded to 0.1 s for the journal.
func wavSeconds(wav []byte) float64 {
	n := max(len(wav)-44, 0) / 2
	return float64(n*10/tts.Rate) / 10
}
