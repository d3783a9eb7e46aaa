package voice

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Where the engine reads its text and writes its audio.
const (
	TextOnStdin = "stdin" // the text is written to the engine's standard input
	TextOnArg   = "arg"   // the text is one argv element, exactly "{{.Text}}"

	OutputStdout = "stdout" // the engine writes the WAV to standard output
	OutputFile   = "file"   // the engine writes the WAV to the path {{.Out}}
)

// Defaults for a zero Engine.Timeout / Engine.MaxOutput.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultMaxOutput = 50 << 20
	// maxStderr bounds how much of the engine's complaints end up in an error.
	maxStderr = 2048
	// waitDelay bounds how long we wait for pipes after the process is gone,
	// in case a grandchild escaped the process group and holds them open.
	waitDelay = 2 * time.Second
)

// Engine describes a text-to-speech program run as a subprocess — never
// through a shell.
//
// Argv is a template: each element is a text/template executed with the
// fields .Text, .Lang, .Voice and .Out. An element that renders empty is
// dropped, so optional flags can be written as "{{if .Voice}}-voice{{end}}",
// "{{if .Voice}}{{.Voice}}{{end}}". With TextOn "arg" the text must be a whole
// element of its own ("{{.Text}}") placed where the engine cannot take it for
// an option: after "--", or as the value of an option such as flite's -t.
type Engine struct {
	Name      string        // for error messages
	Argv      []string      // program and arguments, templated
	TextOn    string        // TextOnStdin or TextOnArg
	Output    string        // OutputStdout or OutputFile
	Timeout   time.Duration // whole run, killing the process group; 0 means DefaultTimeout
	MaxOutput int64         // bytes of WAV accepted; 0 means DefaultMaxOutput
}

// Preset returns a built-in engine: "espeak-ng" (the default, also for ""),
// "flite" (English only) or "festival" (its text2wave script). Only
// espeak-ng follows the request's language; flite and festival speak their
// voice's language, chosen with Request.Voice ("slt", "kal_diphone").
func Preset(name string) (Engine, error) {
	switch name {
	case "", "espeak-ng":
		// -b 1: the text is UTF-8 whatever the locale; the voice defaults to
		// the language, which is how espeak-ng names its voices.
		return Engine{
			Name: "espeak-ng",
			Argv: []string{"espeak-ng", "-b", "1",
				"{{if or .Voice .Lang}}-v{{end}}", "{{or .Voice .Lang}}", "--stdout", "--", "{{.Text}}"},
			TextOn: TextOnArg,
			Output: OutputStdout,
		}, nil
	case "flite":
		// flite takes the element after -t as text even when it starts
		// with "-"; it has no "--".
		return Engine{
			Name: "flite",
			Argv: []string{"flite", "{{if .Voice}}-voice{{end}}", "{{.Voice}}",
				"-o", "{{.Out}}", "-t", "{{.Text}}"},
			TextOn: TextOnArg,
			Output: OutputFile,
		}, nil
	case "festival", "text2wave":
		// text2wave reads the text from stdin; the voice is a Scheme call,
		// safe because voice names are restricted to [A-Za-z0-9_+.-].
		return Engine{
			Name: "festival",
			Argv: []string{"text2wave", "-o", "{{.Out}}",
				"{{if .Voice}}-eval{{end}}", "{{if .Voice}}(voice_{{.Voice}}){{end}}"},
			TextOn: TextOnStdin,
			Output: OutputFile,
		}, nil
	}
	return Engine{}, fmt.Errorf("unknown tts engine preset %q (have espeak-ng, flite, festival)", name)
}

// ValidName reports whether s may name a language or a voice: 1 to 64 of
// [A-Za-z0-9_+.-], the first not + . or -. They end up in argv elements and in
// festival's Scheme, and must never look like an option. A loop, not a regexp:
// compiling `^[A-Za-z0-9_][A-Za-z0-9_+.-]{0,63}$` (63 copies of the class) at
// package init cost every run of the binary, a one-shot drain included.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		case (c == '+' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// argvData is what the Argv templates see.
type argvData struct {
	Text, Lang, Voice, Out string
}

// Validate checks the engine description without running it.
func (e Engine) Validate() error {
	_, err := e.templates()
	return err
}

func (e Engine) templates() ([]*template.Template, error) {
	if len(e.Argv) == 0 || e.Argv[0] == "" {
		return nil, fmt.Errorf("engine %s: empty argv", e.Name)
	}
	if strings.Contains(e.Argv[0], "{{") {
		return nil, fmt.Errorf("engine %s: the program name must not be templated", e.Name)
	}
	switch e.TextOn {
	case TextOnStdin, TextOnArg:
	default:
		return nil, fmt.Errorf("engine %s: TextOn is %q, want %q or %q", e.Name, e.TextOn, TextOnStdin, TextOnArg)
	}
	switch e.Output {
	case OutputStdout, OutputFile:
	default:
		return nil, fmt.Errorf("engine %s: Output is %q, want %q or %q", e.Name, e.Output, OutputStdout, OutputFile)
	}
	var textArgs, outArgs int
	tmpls := make([]*template.Template, len(e.Argv))
	for i, a := range e.Argv {
		t, err := template.New(fmt.Sprint(i)).Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("engine %s: argv[%d] %q: %w", e.Name, i, a, err)
		}
		tmpls[i] = t
		if strings.Contains(a, ".Text") {
			// Splicing the text into a larger element would let it
			// smuggle in an option ("--text=-x" is fine, "-t{{.Text}}"
			// is not), so the text must stand alone.
			if a != "{{.Text}}" {
				return nil, fmt.Errorf("engine %s: argv[%d] %q: the text must be an element of its own, exactly {{.Text}}", e.Name, i, a)
			}
			textArgs++
		}
		if strings.Contains(a, ".Out") {
			outArgs++
		}
	}
	if e.TextOn == TextOnArg && textArgs != 1 {
		return nil, fmt.Errorf("engine %s: TextOn %q needs {{.Text}} exactly once in argv", e.Name, TextOnArg)
	}
	if e.TextOn == TextOnStdin && textArgs != 0 {
		return nil, fmt.Errorf("engine %s: TextOn %q must not put {{.Text}} in argv", e.Name, TextOnStdin)
	}
	if e.Output == OutputFile && outArgs == 0 {
		return nil, fmt.Errorf("engine %s: Output %q needs {{.Out}} in argv", e.Name, OutputFile)
	}
	return tmpls, nil
}

// Speak runs the engine once and returns the WAV bytes it produced, checked
// only for size, not content. Failures of the run itself wrap
// ErrEngineFailed; a bad engine description or a bad lang/voice does not.
func (e Engine) Speak(ctx context.Context, text, lang, voice string) ([]byte, error) {
	tmpls, err := e.templates()
	if err != nil {
		return nil, err
	}
	for _, v := range [...]struct{ what, s string }{{"language", lang}, {"voice", voice}} {
		if v.s != "" && !ValidName(v.s) {
			return nil, fmt.Errorf("engine %s: invalid %s %q", e.Name, v.what, v.s)
		}
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxOut := e.MaxOutput
	if maxOut <= 0 {
		maxOut = DefaultMaxOutput
	}

	data := argvData{Text: text, Lang: lang, Voice: voice}
	if e.Output == OutputFile {
		dir, err := os.MkdirTemp("", "smsrouter-tts-")
		if err != nil {
			return nil, fmt.Errorf("engine %s: %w", e.Name, err)
		}
		defer os.RemoveAll(dir)
		data.Out = filepath.Join(dir, "out.wav")
	}
	argv := make([]string, 0, len(tmpls))
	for i, t := range tmpls {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("engine %s: argv[%d]: %w", e.Name, i, err)
		}
		if b.Len() > 0 {
			argv = append(argv, b.String())
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	reap := isolate(cmd)
	cmd.WaitDelay = waitDelay
	if e.TextOn == TextOnStdin {
		cmd.Stdin = strings.NewReader(text + "\n")
	}
	// Past the cap the engine is killed at once rather than left to run
	// into the timeout.
	stdout := &capped{max: maxOut, onOver: cancel}
	stderr := &capped{max: maxStderr}
	cmd.Stdout = stdout
	if e.Output == OutputFile {
		// The WAV goes to a file; anything on stdout is chatter.
		cmd.Stdout = &capped{max: 0}
	}
	cmd.Stderr = stderr

	runErr := cmd.Run()
	reap()
	if err := ctx.Err(); err != nil { // the caller gave up (shutdown)
		return nil, fmt.Errorf("%w: %s: %w", ErrEngineFailed, e.Name, err)
	}
	if stdout.over {
		return nil, fmt.Errorf("%w: %s wrote more than %d bytes", ErrEngineFailed, e.Name, maxOut)
	}
	if runCtx.Err() != nil {
		return nil, fmt.Errorf("%w: %s timed out after %s%s", ErrEngineFailed, e.Name, timeout, stderr.suffix())
	}
	if runErr != nil {
		return nil, fmt.Errorf("%w: %s: %w%s", ErrEngineFailed, e.Name, runErr, stderr.suffix())
	}
	if e.Output == OutputStdout {
		return stdout.bytes(), nil
	}
	return readCapped(data.Out, maxOut, e.Name, stderr)
}

func readCapped(path string, maxOut int64, name string, stderr *capped) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s wrote no output file: %w%s", ErrEngineFailed, name, err, stderr.suffix())
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOut+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read output: %w", ErrEngineFailed, name, err)
	}
	if int64(len(b)) > maxOut {
		return nil, fmt.Errorf("%w: %s wrote more than %d bytes", ErrEngineFailed, name, maxOut)
	}
	return b, nil
}

// capped keeps the first max bytes written to it and discards the rest, so
// a runaway engine cannot fill our memory. It keeps what arrives in the
// pieces the pipe delivers and joins them once at the end: a buffer grown by
// doubling would copy the whole WAV several times over.
type capped struct {
	chunks [][]byte
	n      int64
	max    int64
	over   bool
	onOver func() // called once when the cap is first exceeded
}

// chunkSize is the smallest piece capped allocates: a pipe's capacity.
const chunkSize = 64 << 10

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.n
	keep := p
	if int64(len(p)) > room {
		if !c.over && c.onOver != nil {
			c.onOver()
		}
		c.over = true
		keep = p[:max(room, 0)]
	}
	c.n += int64(len(keep))
	for len(keep) > 0 {
		if k := len(c.chunks); k > 0 {
			last := c.chunks[k-1]
			if free := cap(last) - len(last); free > 0 {
				m := min(free, len(keep))
				c.chunks[k-1] = append(last, keep[:m]...)
				keep = keep[m:]
				continue
			}
		}
		c.chunks = append(c.chunks, make([]byte, 0, max(len(keep), min(chunkSize, int(c.max)))))
	}
	return len(p), nil
}

// bytes returns everything kept, in one slice.
func (c *capped) bytes() []byte {
	if len(c.chunks) == 1 {
		return c.chunks[0]
	}
	b := make([]byte, 0, c.n)
	for _, ch := range c.chunks {
		b = append(b, ch...)
	}
	return b
}

// suffix formats captured stderr for an error message.
func (c *capped) suffix() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(c.bytes()), "?"))
	if s == "" {
		return ""
	}
	if c.over {
		s += " …"
	}
	return ": stderr: " + s
}
