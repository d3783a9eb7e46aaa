package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	tts "smsrouter/render/voice"
)

// cmdRenderVoice speaks a text the way the V channel would read it to the
// recipient: the same engine, phrases and lead silence (from --config), into the
// 8 kHz mono WAV that Playback gets.
func cmdRenderVoice(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("render voice", flag.ContinueOnError)
	var c common
	c.register(fs, false)
	text := fs.String("text", "", "message text, or - to read it from stdin")
	from := fs.String("from", "", "sender number, read out digit by digit")
	out := fs.String("o", "", "WAV file to write (required)")
	lang := fs.String("lang", "", "language, e.g. pl or en-gb (default from the config: [voice] default_lang)")
	voiceName := fs.String("voice", "", "engine voice (default from the config: [voice] default_voice)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: smsrouter render voice --text TEXT|- --from NUMBER -o msg.wav [--lang pl] [--voice V] [--config FILE]\n")
		fs.PrintDefaults()
	}
	if !parseFlags(fs, e, args) {
		return exitUsage
	}
	if fs.NArg() > 0 || *out == "" || *text == "" {
		fs.Usage()
		return exitUsage
	}
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
	body, err := textOrStdin(e, *text)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if *voiceName == "" {
		*voiceName = cfg.Voice.DefaultVoice
	}
	start := time.Now()
	wav, err := r.Render(ctx, tts.Request{
		From: *from, Text: body, Lang: *lang, Voice: *voiceName,
		Sent: start.In(loc), IncludeDate: cfg.Voice.IncludeDate,
	})
	if err != nil {
		// Unlike a delivery nothing is retried here: any failure is this run's.
		return fail(e, exitPartial, err)
	}
	if err := writeFileAtomic(*out, wav); err != nil {
		return fail(e, exitPartial, err)
	}
	samples := (len(wav) - 44) / 2
	fmt.Fprintf(e.stdout, "%s: %.1f s, 8000 Hz mono 16-bit, %d bytes, %s in %s\n",
		*out, float64(samples)/tts.Rate, len(wav), r.Engine.Name, time.Since(start).Round(time.Millisecond))
	return exitOK
}
