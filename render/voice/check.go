package voice

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNoSuchVoice means the engine does not have the language or voice asked
// for: every message spoken with it would fail the same way.
var ErrNoSuchVoice = errors.New("the speech engine has no such language or voice")

// listTimeout bounds a run that only lists an engine's voices.
const listTimeout = 15 * time.Second

// CheckVoice tells whether the renderer's engine can speak in lang with voice
// ("" for the defaults), so a bad choice is refused when an admin makes it
// rather than found when a message is deferred again and again.
//
// It returns nil when the engine can, an error wrapping ErrNoSuchVoice when it
// cannot (the text says how to list what the engine has), and any other error
// when the engine could not be asked (not installed, hung): then nothing is
// known about the choice.
//
// espeak-ng and custom engines are asked by speaking a word: espeak-ng exits 1
// for a voice it does not have, and it accepts more spellings ("pl-pl",
// "Polish", "gmw/en", "en+f3") than its list shows, so its own answer is the
// truth. flite and festival speak their default voice for an unknown one (and
// exit 0), so for them the name is looked up in the list they print.
func (r *Renderer) CheckVoice(ctx context.Context, lang, voice string) error {
	for _, v := range [...]struct{ what, s string }{{"language", lang}, {"voice", voice}} {
		if v.s != "" && !ValidName(v.s) {
			return fmt.Errorf("%w: %s %q: want letters, digits and _+.- (not starting with - . +), at most 64", ErrNoSuchVoice, v.what, v.s)
		}
	}
	engine := r.Engine
	if len(engine.Argv) == 0 {
		var err error
		if engine, err = Preset(""); err != nil {
			return err
		}
	}
	switch engine.Name {
	case "flite":
		// flite speaks English whatever the language, which only picks the
		// phrases ("Message from…"), so only the voice can be wrong.
		if voice == "" {
			return nil
		}
		return checkListed(ctx, voice, "flite", "`flite -lv`", func(ctx context.Context) ([]string, error) {
			out, err := runList(ctx, flitePath(engine), "-lv")
			if err != nil {
				return nil, err
			}
			_, names, ok := strings.Cut(out, "Voices available:")
			if !ok {
				return nil, fmt.Errorf("flite -lv printed no voice list: %q", clipText(out))
			}
			return strings.Fields(names), nil
		})
	case "festival":
		if voice == "" {
			return nil
		}
		return checkListed(ctx, voice, "festival", "`festival -b '(print (voice.list))'`", func(ctx context.Context) ([]string, error) {
			out, err := runList(ctx, festivalPath(engine), "-b", "(print (voice.list))")
			if err != nil {
				return nil, err
			}
			lo, hi := strings.LastIndex(out, "("), strings.LastIndex(out, ")")
			if lo < 0 || hi < lo {
				if strings.Contains(out, "nil") {
					return nil, nil // festival without any voice installed
				}
				return nil, fmt.Errorf("festival printed no voice list: %q", clipText(out))
			}
			return strings.Fields(out[lo+1 : hi]), nil
		})
	}
	return r.checkBySpeaking(ctx, engine, lang, voice)
}

// checkBySpeaking speaks a word with the choice and, if that fails, with the
// defaults: only when the defaults work is the choice to blame.
func (r *Renderer) checkBySpeaking(ctx context.Context, engine Engine, lang, voice string) error {
	uses := false
	for _, a := range engine.Argv[1:] {
		if strings.Contains(a, ".Lang") || strings.Contains(a, ".Voice") {
			uses = true
		}
	}
	if !uses || (lang == "" && voice == "") {
		return nil // the engine never sees them: only the phrases' language changes
	}
	if engine.Timeout <= 0 || engine.Timeout > listTimeout {
		engine.Timeout = listTimeout
	}
	_, err := engine.Speak(ctx, "test", r.lang(lang), voice)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrEngineFailed) {
		return err
	}
	if _, derr := engine.Speak(ctx, "test", r.lang(""), ""); derr != nil {
		return fmt.Errorf("cannot check the language and voice: the engine fails with its defaults too: %w", derr)
	}
	hint := "see the documentation of " + engine.Argv[0] + " for the names it takes"
	if engine.Name == "espeak-ng" {
		hint = "`espeak-ng --voices` lists its languages, `espeak-ng --voices=variant` the variants (as in en+f3)"
	}
	choice := fmt.Sprintf("language %q", r.lang(lang))
	if voice != "" {
		choice = fmt.Sprintf("language %q with voice %q", r.lang(lang), voice)
	}
	return fmt.Errorf("%w: %s cannot speak %s (%v); %s", ErrNoSuchVoice, engine.Name, choice, err, hint)
}

// checkListed looks voice up in the list an engine prints.
func checkListed(ctx context.Context, voice, engine, how string, list func(context.Context) ([]string, error)) error {
	names, err := list(ctx)
	if err != nil {
		return fmt.Errorf("cannot list the voices of %s: %w", engine, err)
	}
	if slices.Contains(names, voice) {
		return nil
	}
	have := strings.Join(names, " ")
	if have == "" {
		have = "none"
	}
	return fmt.Errorf("%w: %s has no voice %q; it has: %s (%s lists them)", ErrNoSuchVoice, engine, voice, have, how)
}

// runList runs an engine's listing command with a deadline, in its own
// process group like a real run.
func runList(ctx context.Context, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	reap := isolate(cmd)
	cmd.WaitDelay = waitDelay
	out := &capped{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	reap()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", prog, err, clipText(string(out.bytes())))
	}
	return string(out.bytes()), nil
}

// flitePath is the flite binary the engine runs.
func flitePath(e Engine) string { return e.Argv[0] }

// festivalPath finds festival beside the engine's text2wave, which is a
// festival script and cannot list voices itself.
func festivalPath(e Engine) string {
	if dir := filepath.Dir(e.Argv[0]); dir != "." {
		return filepath.Join(dir, "festival")
	}
	return "festival"
}

func clipText(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "?"))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
