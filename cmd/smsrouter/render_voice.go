package main

import (
	"context"
	"fmt"
	"time"

	tts "smsrouter/render/voice"
)

// cmdRenderVoice speaks a text the way the V channel would read it to the
// recipient: the same engine, phrases and lead silence (from --config), into the
// 8 kHz mono WAV that Playback gets.
// renderVoiceFlags are `smsrouter render voice`'s options (cli.go declares them).
type renderVoiceFlags struct {
	text, from, out, lang, voice string
}

func cmdRenderVoice(ctx context.Context, e *env, c *common, f renderVoiceFlags) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	r, err := cfg.Voice.renderer()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	body, err := textOrStdin(e, f.text)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if f.voice == "" {
		f.voice = cfg.Voice.DefaultVoice
	}
	start := time.Now()
	wav, err := r.Render(ctx, tts.Request{
		From: f.from, Text: body, Lang: f.lang, Voice: f.voice,
		Sent: start.In(loc), IncludeDate: cfg.Voice.IncludeDate,
	})
	if err != nil {
		// Unlike a delivery nothing is retried here: any failure is this run's.
		return fail(e, exitPartial, err)
	}
	if err := writeFileAtomic(f.out, wav); err != nil {
		return fail(e, exitPartial, err)
	}
	samples := (len(wav) - 44) / 2
	fmt.Fprintf(e.stdout, "%s: %.1f s, 8000 Hz mono 16-bit, %d bytes, %s in %s\n",
		f.out, float64(samples)/tts.Rate, len(wav), r.Engine.Name, time.Since(start).Round(time.Millisecond))
	return exitOK
}
