package voice

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Output format and rendering defaults.
const (
	// Rate is the only sample rate Asterisk plays from a ".wav" file.
	Rate = 8000
	// DefaultLeadSilence gives the callee time to lift the phone to the ear
	// before the first word.
	DefaultLeadSilence = time.Second
	// DefaultMaxRunes bounds the composed text: far beyond any SMS
	// (concatenated messages included), short enough to render in time.
	DefaultMaxRunes = 4000
	// DefaultLang is used when neither the request nor the renderer name one.
	DefaultLang = "en"
	// fade shapes the first and last milliseconds of speech so a waveform
	// that does not start or end at zero cannot click against the silence.
	fade = 5 * time.Millisecond
)

// Renderer turns requests into 8 kHz mono 16-bit WAV files.
// The zero value speaks English with espeak-ng. A Renderer may be used by
// several goroutines at once; do not copy it after first use.
type Renderer struct {
	Engine Engine // zero value: the espeak-ng preset
	// Phrases by language code; nil means DefaultPhrases(). A language
	// without an entry falls back to DefaultLang's phrases (the engine
	// still speaks the requested language).
	Phrases map[string]Phrases
	// DefaultLang for requests without one; "" means DefaultLang.
	DefaultLang string
	// LeadSilence before the speech; 0 means DefaultLeadSilence, a
	// negative value means none.
	LeadSilence time.Duration
	// MaxRunes bounds the composed text; 0 means DefaultMaxRunes.
	MaxRunes int

	// filter keeps the last resampling filter: an engine keeps its rate,
	// and designing the filter costs about as much as a second of audio.
	filter atomic.Pointer[resampler]
}

// Render composes the request's text, has the engine speak it and returns a
// complete WAV file: RIFF/WAVE PCM, mono, 16-bit, 8000 Hz, starting with the
// lead silence. It holds exactly lead + round(n*8000/rate) samples, n being
// the engine's sample count at its own rate.
//
// errors.Is(err, ErrUnspeakable) is permanent; any other error (notably
// ErrEngineFailed) is temporary.
func (r *Renderer) Render(ctx context.Context, req Request) ([]byte, error) {
	lang := r.lang(req.Lang)
	text := Compose(req, r.phrases(lang))
	if text == "" {
		return nil, fmt.Errorf("%w: nothing to say", ErrUnspeakable)
	}
	maxRunes := r.MaxRunes
	if maxRunes <= 0 {
		maxRunes = DefaultMaxRunes
	}
	if n := utf8.RuneCountInString(text); n > maxRunes {
		return nil, fmt.Errorf("%w: %d characters to speak, limit %d", ErrUnspeakable, n, maxRunes)
	}

	engine := r.Engine
	if len(engine.Argv) == 0 {
		var err error
		if engine, err = Preset(""); err != nil {
			return nil, err
		}
	}
	raw, err := engine.Speak(ctx, text, lang, req.Voice)
	if err != nil {
		return nil, err
	}
	w, err := parseWAV(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s wrote an unusable WAV (%d bytes): %w", ErrEngineFailed, engine.Name, len(raw), err)
	}
	if w.frames() == 0 {
		return nil, fmt.Errorf("%w: %s wrote a WAV without samples", ErrEngineFailed, engine.Name)
	}
	return r.finish(w), nil
}

// finish converts the engine's audio to the telephone format and prepends the
// lead silence.
func (r *Renderer) finish(w *wavData) []byte {
	src := le16Source(w.data)
	if !w.monoPCM16() {
		src = int16Source(w.decode())
	}
	f := r.filter.Load()
	if f == nil || f.from != w.rate {
		f = newResampler(w.rate, Rate)
		r.filter.Store(f)
	}
	lead := r.LeadSilence
	switch {
	case lead == 0:
		lead = DefaultLeadSilence
	case lead < 0:
		lead = 0
	}
	leadN := int(lead * Rate / time.Second)
	// The speech is resampled straight behind the silence: one buffer, no copy.
	out := make([]int16, leadN+f.outLen(src.n))
	speech := out[leadN:]
	f.runInto(speech, src)
	fadeEnds(speech, int(fade*Rate/time.Second))
	return EncodeWAV(out, Rate)
}

// fadeEnds applies a linear fade-in and fade-out of n samples.
func fadeEnds(s []int16, n int) {
	n = min(n, len(s)/2)
	for i := range n {
		g := float64(i) / float64(n)
		s[i] = int16(float64(s[i]) * g)
		j := len(s) - 1 - i
		s[j] = int16(float64(s[j]) * g)
	}
}

// lang normalises the request's language ("pl_PL" → "pl-pl").
func (r *Renderer) lang(l string) string {
	l = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(l), "_", "-"))
	if l != "" {
		return l
	}
	if r.DefaultLang != "" {
		return r.DefaultLang
	}
	return DefaultLang
}

// phrases finds the phrases for "pl-pl", then "pl", then the default language.
func (r *Renderer) phrases(lang string) Phrases {
	table := r.Phrases
	if table == nil {
		table = DefaultPhrases()
	}
	if p, ok := table[lang]; ok {
		return p
	}
	if base, _, ok := strings.Cut(lang, "-"); ok {
		if p, ok := table[base]; ok {
			return p
		}
	}
	for _, l := range []string{r.DefaultLang, DefaultLang} {
		if p, ok := table[l]; ok {
			return p
		}
	}
	return DefaultPhrases()[DefaultLang]
}
