package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"smsrouter/asteriskconf/dialplan"
	"smsrouter/channels/voice"
	tts "smsrouter/render/voice"
	"smsrouter/router"
)

// VoiceConfig is the [voice] section: how letter V speaks and calls.
type VoiceConfig struct {
	Dir          string    `toml:"dir"`           // recordings; default <spool>/voice
	Engine       string    `toml:"engine"`        // preset: espeak-ng, flite, festival
	Argv         []string  `toml:"argv"`          // custom engine argv template; replaces the preset's
	TextOn       string    `toml:"text_on"`       // with argv: stdin or arg
	Output       string    `toml:"output"`        // with argv: stdout or file
	Timeout      duration  `toml:"timeout"`       // one engine run
	LeadSilence  *duration `toml:"lead_silence"`  // before the speech; "0s" for none
	DefaultLang  string    `toml:"default_lang"`  // for numbers without a language
	DefaultVoice string    `toml:"default_voice"` // for numbers without a voice
	IncludeDate  bool      `toml:"include_date"`
	Repeat       bool      `toml:"repeat"`
	CallerIDName string    `toml:"caller_id_name"`
	WaitTime     int       `toml:"wait_time"`
	MaxRetries   int       `toml:"max_retries"`
	RetryTime    int       `toml:"retry_time"`
	Archive      bool      `toml:"archive"`
	Keep         duration  `toml:"keep"`
	// Phrases override the built-in words per language code ([voice.phrases.pl]).
	Phrases map[string]PhrasesConfig `toml:"phrases"`
}

// PhrasesConfig overrides some or all of one language's phrases; a key left out
// keeps the built-in phrase (English for a language we do not ship).
type PhrasesConfig struct {
	MessageFrom   string   `toml:"message_from"`
	UnknownSender string   `toml:"unknown_sender"`
	Plus          string   `toml:"plus"`
	Sent          string   `toml:"sent"`
	DateLayout    string   `toml:"date_layout"`
	Months        []string `toml:"months"`
	Reference     string   `toml:"reference"`
}

// renderer builds the speech renderer from [voice]; `render voice` and the
// channel share it so that what an admin hears is what a caller hears.
func (v VoiceConfig) renderer() (*tts.Renderer, error) {
	engine, err := tts.Preset(v.Engine)
	if err != nil {
		return nil, fmt.Errorf("[voice] engine: %w", err)
	}
	if len(v.Argv) > 0 {
		engine.Name, engine.Argv = "custom", v.Argv
		if v.TextOn != "" {
			engine.TextOn = v.TextOn
		}
		if v.Output != "" {
			engine.Output = v.Output
		}
	} else if v.TextOn != "" || v.Output != "" {
		return nil, errors.New("[voice] text_on and output only apply with argv")
	}
	engine.Timeout = v.Timeout.Duration
	if err := engine.Validate(); err != nil {
		return nil, fmt.Errorf("[voice] argv: %w", err)
	}
	r := &tts.Renderer{Engine: engine, DefaultLang: v.DefaultLang}
	if v.LeadSilence != nil {
		r.LeadSilence = v.LeadSilence.Duration
		if r.LeadSilence == 0 {
			r.LeadSilence = -1 // the renderer's "none"
		}
	}
	if len(v.Phrases) > 0 {
		r.Phrases = tts.DefaultPhrases()
		for lang, p := range v.Phrases {
			base, ok := r.Phrases[lang]
			if !ok {
				base = r.Phrases[tts.DefaultLang]
			}
			if base, err = p.over(base); err != nil {
				return nil, fmt.Errorf("[voice.phrases.%s] %w", lang, err)
			}
			r.Phrases[lang] = base
		}
	}
	return r, nil
}

func (p PhrasesConfig) over(b tts.Phrases) (tts.Phrases, error) {
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&b.MessageFrom, p.MessageFrom}, {&b.UnknownSender, p.UnknownSender}, {&b.Plus, p.Plus},
		{&b.Sent, p.Sent}, {&b.DateLayout, p.DateLayout}, {&b.Reference, p.Reference},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if len(p.Months) > 0 {
		if len(p.Months) != 12 {
			return b, fmt.Errorf("months: %d names, want 12", len(p.Months))
		}
		copy(b.Months[:], p.Months)
	}
	return b, nil
}

// channelConfig is the V channel's configuration, without the per-number
// language lookup (which needs the database).
func (v VoiceConfig) channelConfig(cfg Config, loc *time.Location, deliveryTimeout time.Duration) (voice.Config, error) {
	r, err := v.renderer()
	if err != nil {
		return voice.Config{}, err
	}
	if deliveryTimeout <= 0 {
		deliveryTimeout = 60 * time.Second // the router's default
	}
	timeout := v.Timeout.Duration
	if timeout == 0 {
		timeout = tts.DefaultTimeout
	}
	if timeout >= deliveryTimeout {
		// The delivery's deadline would always strike first and the engine's own
		// timeout would never be what stops it.
		return voice.Config{}, fmt.Errorf("[voice] timeout %s must be shorter than [queue] delivery_timeout %s", timeout, deliveryTimeout)
	}
	return voice.Config{
		Spool: cfg.Spool, Dir: v.Dir, Renderer: r, DefaultVoice: v.DefaultVoice,
		IncludeDate: v.IncludeDate, Repeat: v.Repeat,
		SMSCNumber: cfg.SMSCNumber, CallerIDName: v.CallerIDName,
		WaitTime: v.WaitTime, MaxRetries: v.MaxRetries, RetryTime: v.RetryTime,
		Archive: v.Archive, Keep: v.Keep.Duration, Location: loc,
		OutcomeContext: cfg.outcomeContext(dialplan.OutcomeVoiceContext),
	}, nil
}

// numberVoice is `smsrouter number voice NUMBER LANG|default [VOICE]`: the
// language (and engine voice) a V number's messages are read out in. "default"
// removes the number's choice, so [voice] default_lang applies again. Unless
// check is false, the configured engine is asked first whether it has the
// language and voice: a choice it lacks would defer every message to the number
// until its validity ended.
func numberVoice(ctx context.Context, e *env, vc VoiceConfig, store *router.Store, a []string, check bool) int {
	number, lang, voiceName := a[0], a[1], ""
	if len(a) > 2 {
		voiceName = a[2]
	}
	if lang == "default" {
		lang = ""
	}
	if check && (lang != "" || voiceName != "") {
		r, err := vc.renderer()
		if err != nil {
			return fail(e, exitUsage, err)
		}
		err = r.CheckVoice(ctx, lang, voiceName)
		switch {
		case errors.Is(err, tts.ErrNoSuchVoice):
			return fail(e, exitUsage, fmt.Errorf("number %s: %w", number, err))
		case err != nil:
			return fail(e, exitPartial, fmt.Errorf("number %s: %w (fix [voice] or pass --no-check to store it unchecked)", number, err))
		}
	}
	err := store.SetVoiceOptions(ctx, number, lang, voiceName)
	switch {
	case errors.Is(err, router.ErrBadVoiceOption):
		return fail(e, exitUsage, err)
	case err != nil:
		return fail(e, exitPartial, err)
	}
	return exitOK
}
