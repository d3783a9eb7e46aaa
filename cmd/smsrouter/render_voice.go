package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	body := *text
	if body == "-" {
		in := e.stdin
		if in == nil {
			in = os.Stdin
		}
		// Far beyond any SMS; the renderer refuses long texts anyway.
		const maxText = 1 << 20
		b, err := io.ReadAll(io.LimitReader(in, maxText+1))
		if err != nil {
			return fail(e, exitUsage, fmt.Errorf("read text from stdin: %w", err))
		}
		if len(b) > maxText {
			return fail(e, exitUsage, fmt.Errorf("text on stdin is longer than %d bytes", maxText))
		}
		body = string(b)
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
	if err := writeWAVFile(*out, wav); err != nil {
		return fail(e, exitPartial, err)
	}
	samples := (len(wav) - 44) / 2
	fmt.Fprintf(e.stdout, "%s: %.1f s, 8000 Hz mono 16-bit, %d bytes, %s in %s\n",
		*out, float64(samples)/tts.Rate, len(wav), r.Engine.Name, time.Since(start).Round(time.Millisecond))
	return exitOK
}

// writeWAVFile writes data to path through a temporary file in the same folder,
// so a player (or Asterisk, when path is in a sounds folder) never sees half a file.
func writeWAVFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
