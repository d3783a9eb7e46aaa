package voice_test

// End-to-end: messages go through the real router, the real directory (SQLite),
// the real journal and, for letter V, the real espeak-ng.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	"smsrouter/channels/sms"
	"smsrouter/channels/voice"
	"smsrouter/internal/testdb"
	tts "smsrouter/render/voice"
	"smsrouter/router"
)

type bed struct {
	spool   string
	store   *router.Store
	journal *router.Journal
	r       *router.Router
	cfg     router.Config
}

func newBed(t *testing.T, engine tts.Engine, deliveryTimeout time.Duration) *bed {
	t.Helper()
	return newBedOn(t, testdb.SQLite(t), engine, deliveryTimeout, false, nil)
}

// newBedOn is newBed on the database dsn, with calls archived (Archive: yes)
// for their evidence when archive is set, and the router's configuration
// changed by mutate.
func newBedOn(t *testing.T, dsn string, engine tts.Engine, deliveryTimeout time.Duration, archive bool, mutate func(*router.Config)) *bed {
	t.Helper()
	ctx := context.Background()
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []router.Entry{
		{Number: "5551001", Letter: 'V', Extension: "PJSIP/1001"},
		{Number: "5551002", Letter: 'S', Extension: "PJSIP/1002"},
		{Number: "5551234", Letter: 'S', Extension: "PJSIP/1234"},
	} {
		if err := store.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SetVoiceOptions(ctx, "5551001", "pl", ""); err != nil {
		t.Fatal(err)
	}
	b := &bed{spool: t.TempDir(), store: store, journal: router.NewJournal(store)}
	smsCh, err := sms.New(sms.Config{Spool: b.spool, SMSCNumber: "9001", Location: time.UTC, Archive: archive})
	if err != nil {
		t.Fatal(err)
	}
	voiceCh, err := voice.New(voice.Config{
		Spool: b.spool, SMSCNumber: "9001", Location: time.UTC, Archive: archive,
		Renderer: &tts.Renderer{Engine: engine, DefaultLang: "en"},
		Options:  store.VoiceOptions,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = router.Config{
		Spool: b.spool, SMSCNumber: "9001", Location: time.UTC, DeliveryTimeout: deliveryTimeout,
		RetryMin: time.Minute, RetryMax: time.Hour,
	}
	if mutate != nil {
		mutate(&b.cfg)
	}
	b.r, err = router.New(b.cfg, router.NewSQLDirectory(store), b.journal, map[byte]channels.Channel{'S': smsCh, 'V': voiceCh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.r.Close() })
	return b
}

func (b *bed) submit(t *testing.T, from, to, text string) string {
	t.Helper()
	id, err := b.r.Submit(from, to, text)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *bed) state(t *testing.T, id string) router.Record {
	t.Helper()
	rec, err := b.journal.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRouterDeliversVoiceWithRealEspeak(t *testing.T) {
	for _, bin := range []string{"espeak-ng", "soxi"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: apt-get install espeak-ng sox", bin)
		}
	}
	engine, err := tts.Preset("espeak-ng")
	if err != nil {
		t.Fatal(err)
	}
	b := newBed(t, engine, 0)
	id := b.submit(t, "5551234", "5551001", "Zażółć gęślą jaźń. Spotkanie o piętnastej.")
	sum, err := b.r.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts[router.StateDelivered] != 1 || !sum.Clean() {
		t.Fatalf("summary %+v", sum.Outcomes)
	}
	rec := b.state(t, id)
	if rec.State != router.StateDelivered || rec.Letter != "V" {
		t.Fatalf("journal %+v", rec)
	}
	if !strings.Contains(rec.Detail, `"lang":"pl"`) {
		t.Errorf("journal detail %s does not name the recipient's language", rec.Detail)
	}

	wavPath := filepath.Join(b.spool, "voice", "smsrouter-"+id+".wav")
	data, err := os.ReadFile(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := tts.ParseWAV(data)
	if err != nil {
		t.Fatal(err)
	}
	if pcm.Rate != 8000 || pcm.Channels != 1 || data[34] != 16 {
		t.Fatalf("WAV %d Hz, %d channels, %d bits; Playback wants 8000 Hz mono 16-bit", pcm.Rate, pcm.Channels, data[34])
	}
	// 1 s lead silence plus the intro and two short Polish sentences.
	if secs := float64(len(pcm.Samples)) / 8000; secs < 4 || secs > 20 {
		t.Errorf("%.1f s of audio", secs)
	}
	// soxi answers one question per run.
	for _, q := range []struct{ opt, want string }{{"-r", "8000"}, {"-c", "1"}, {"-b", "16"}, {"-t", "wav"}} {
		out, err := exec.Command("soxi", q.opt, wavPath).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != q.want {
			t.Errorf("soxi %s says %q (%v), want %s", q.opt, got, err, q.want)
		}
	}

	callData, err := os.ReadFile(filepath.Join(b.spool, "outgoing", "smsrouter.voice."+id))
	if err != nil {
		t.Fatal(err)
	}
	call, err := callfile.Parse(callData)
	if err != nil {
		t.Fatal(err)
	}
	if call.Channel != "PJSIP/1001" || call.Application != "Playback" || call.Data != strings.TrimSuffix(wavPath, ".wav") {
		t.Errorf("call file Channel %q Application %q Data %q, want PJSIP/1001 Playback %q", call.Channel, call.Application, call.Data, strings.TrimSuffix(wavPath, ".wav"))
	}
	// Nothing left behind: the staged copies were renamed into place.
	if left, _ := filepath.Glob(filepath.Join(b.spool, "smsrouter", "stage", "*", "*")); len(left) > 0 {
		t.Errorf("staging not empty: %v", left)
	}
}

// A TTS engine that hangs holds up neither the drain nor the other messages of
// its batch: the delivery deadline cuts it off, the message is deferred, and the
// S message beside it is delivered.
func TestRouterHungEngineIsDeferredWithoutBlocking(t *testing.T) {
	script := filepath.Join(t.TempDir(), "hung-tts")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	engine := tts.Engine{Name: "hung", Argv: []string{script, "--", "{{.Text}}"}, TextOn: tts.TextOnArg, Output: tts.OutputStdout, Timeout: time.Minute}
	b := newBed(t, engine, 500*time.Millisecond)
	voiceID := b.submit(t, "5551234", "5551001", "Are you there?")
	smsID := b.submit(t, "5551234", "5551002", "And you?")

	start := time.Now()
	sum, err := b.r.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("drain took %s with a hung engine", d)
	}
	if got := b.state(t, smsID); got.State != router.StateDelivered {
		t.Errorf("S message: %+v", got)
	}
	got := b.state(t, voiceID)
	if got.State != router.StateDeferred || !strings.Contains(got.LastError, "tts engine failed") {
		t.Fatalf("V message: %+v, want deferred after the engine failed", got)
	}
	if sum.Counts[router.StateDeferred] != 1 {
		t.Errorf("summary %+v", sum.Counts)
	}
	// Nothing was published for the deferred message.
	if wavs, _ := filepath.Glob(filepath.Join(b.spool, "voice", "*")); len(wavs) != 0 {
		t.Errorf("recordings of a failed delivery: %v", wavs)
	}
	if calls, _ := filepath.Glob(filepath.Join(b.spool, "outgoing", "smsrouter.voice.*")); len(calls) != 0 {
		t.Errorf("call files of a failed delivery: %v", calls)
	}
}

// A message no engine can speak is bounced: the sender gets the failed notice
// with the short reason, and nothing is retried.
func TestRouterUnspeakableBouncesWithNotice(t *testing.T) {
	script := filepath.Join(t.TempDir(), "never-run")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	engine := tts.Engine{Name: "x", Argv: []string{script, "--", "{{.Text}}"}, TextOn: tts.TextOnArg, Output: tts.OutputStdout}
	b := newBed(t, engine, 0)
	id := b.submit(t, "5551234", "5551001", strings.Repeat("Lorem ipsum dolor sit amet. ", 200)) // > 4000 characters
	if _, err := b.r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := b.state(t, id)
	if got.State != router.StateBounced || !strings.Contains(got.LastError, "message cannot be read out") {
		t.Fatalf("journal %+v", got)
	}
	// The notice went to the sender (letter S) as an SMS.
	mttx, _ := filepath.Glob(filepath.Join(b.spool, "sms", "mttx", "5551234.*"))
	if len(mttx) == 0 {
		t.Fatal("no notice queued for the sender")
	}
}
