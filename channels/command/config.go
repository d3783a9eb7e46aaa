package command

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"text/template"
	"time"

	"smsrouter/internal/tomlduration"
)

// Config is the [command] section of the configuration file.
type Config struct {
	// ErrorText is the reply when an action fails for good: a command that cannot be
	// started, a template that cannot be filled, an HTTP 4xx, a non-zero exit with
	// only_success. Default "Command failed."
	ErrorText string `toml:"error_text"`
	// UnknownText is the reply when no rule matches; empty (the default) sends none.
	UnknownText string `toml:"unknown_text"`
	// MaxReply caps a reply in characters; default 1530 (ten 153-character parts).
	MaxReply int `toml:"max_reply"`
	// SecretsFile is a TOML file of name = "value" pairs, read by {{secret "name"}},
	// so tokens stay out of the main (often world-readable) configuration.
	SecretsFile string `toml:"secrets_file"`
	// RunAs is the user exec rules run as when smsrouter runs as root; default
	// "nobody". Ignored when smsrouter is not root (it cannot switch user).
	RunAs string `toml:"run_as"`
	// StateFile keeps the rate-limit counters across runs (a drain per call is a
	// new process); default <work_dir>/command-ratelimit.json.
	StateFile string `toml:"state_file"`
	// Rules are tried in order.
	Rules []Rule `toml:"rule"`
}

// Rule is one [[command.rule]].
type Rule struct {
	Numbers     []string `toml:"numbers"`     // service numbers it serves; empty: every C number
	Keyword     string   `toml:"keyword"`     // first word, case-insensitive
	Regex       string   `toml:"regex"`       // RE2 over the whole (trimmed) text; groups → .Groups
	Description string   `toml:"description"` // one line for help
	Allow       []string `toml:"allow"`       // senders allowed (numbers or globs: 555*); empty: all
	Deny        []string `toml:"deny"`        // senders refused; checked first
	RateLimit   int      `toml:"rate_limit"`  // runs per sender per rate_window; 0: unlimited
	RateWindow  Duration `toml:"rate_window"` // default 1h
	MinArgs     int      `toml:"min_args"`    // fewer words after the keyword: reply usage
	Usage       string   `toml:"usage"`       // template; default "Usage: <KEYWORD> …"
	Action      string   `toml:"action"`      // reply, exec, http, forward, help, echo, uptime
	Reply       string   `toml:"reply"`       // reply template; default {{.Output}}
	NoReply     bool     `toml:"no_reply"`    // run the action, send nothing back
	ErrorText   string   `toml:"error_text"`  // overrides [command] error_text
	Continue    bool     `toml:"continue"`    // go on to the next rule after this one

	// exec
	Argv        []string `toml:"argv"`         // argv[0] literal; each other element is a template → one whole argument
	Stdin       string   `toml:"stdin"`        // template; default {{.Text}}
	Timeout     Duration `toml:"timeout"`      // exec and http; default 10s
	OnlySuccess bool     `toml:"only_success"` // non-zero exit: reply error_text instead of the output
	MaxOutput   int      `toml:"max_output"`   // bytes of stdout (and of stderr) kept; default 64 KiB

	// http
	Method  string            `toml:"method"`  // GET (default) or POST
	URL     string            `toml:"url"`     // template; use urlquery for values in it
	Body    string            `toml:"body"`    // POST body: form (default) or json
	Fields  map[string]string `toml:"fields"`  // name → template: query (GET) or body (POST)
	Headers map[string]string `toml:"headers"` // name → template (e.g. with a secret)

	// forward
	To   string `toml:"to"`   // the number the message is re-addressed to
	Text string `toml:"text"` // template of the forwarded text; default {{.Text}}
}

// Duration is a config duration written as text ("5s", "1h").
type Duration = tomlduration.Duration

// Actions a rule can name.
const (
	ActionReply   = "reply"
	ActionExec    = "exec"
	ActionHTTP    = "http"
	ActionForward = "forward"
	ActionHelp    = "help"
	ActionEcho    = "echo"
	ActionUptime  = "uptime"
)

const (
	defaultErrorText = "Command failed."
	defaultMaxReply  = 10 * 153
	defaultTimeout   = 10 * time.Second
	defaultMaxOutput = 64 << 10
	defaultWindow    = time.Hour
)

// rule is a Rule checked and compiled.
type rule struct {
	Rule
	index     int
	numbers   map[string]bool
	re        *regexp.Regexp
	reply     *template.Template // nil: the action's default
	usage     *template.Template
	argv      []*template.Template // argv[1:]
	dashdash  int                  // index in Argv of a literal "--", or -1
	stdin     *template.Template
	url       *template.Template
	fields    map[string]*template.Template
	headers   map[string]*template.Template
	text      *template.Template
	errorText string
}

func validNumber(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c == '+' && i == 0 || c == '*' || c == '#') {
			return false
		}
	}
	return true
}

func validPattern(p string) error {
	if p == "" {
		return errors.New("empty sender pattern")
	}
	_, err := path.Match(p, "")
	return err
}

// compile checks one rule; the error names the rule so the admin finds it.
func (c *Channel) compile(i int, r Rule) (*rule, error) {
	cr := &rule{Rule: r, index: i, numbers: map[string]bool{}, dashdash: -1}
	name := fmt.Sprintf("command rule %d", i+1)
	if r.Keyword != "" {
		name += " (" + r.Keyword + ")"
	}
	fail := func(format string, a ...any) (*rule, error) {
		return nil, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...))
	}
	for _, n := range r.Numbers {
		if !validNumber(n) {
			return fail("numbers: %q is not a phone number", n)
		}
		cr.numbers[n] = true
	}
	if r.Keyword != "" && r.Regex != "" {
		return fail("set keyword or regex, not both")
	}
	if strings.ContainsFunc(r.Keyword, func(c rune) bool { return c <= ' ' }) {
		return fail("keyword %q must be one word", r.Keyword)
	}
	if r.Regex != "" {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return fail("regex: %v", err)
		}
		cr.re = re
	}
	for _, p := range append(append([]string(nil), r.Allow...), r.Deny...) {
		if err := validPattern(p); err != nil {
			return fail("allow/deny %q: %v", p, err)
		}
	}
	if r.RateLimit < 0 {
		return fail("rate_limit must not be negative")
	}
	if r.RateWindow.Duration == 0 {
		cr.RateWindow.Duration = defaultWindow
	}
	if r.Timeout.Duration == 0 {
		cr.Timeout.Duration = defaultTimeout
	}
	if r.MaxOutput <= 0 {
		cr.MaxOutput = defaultMaxOutput
	}
	cr.errorText = c.cfg.ErrorText
	if r.ErrorText != "" {
		cr.errorText = r.ErrorText
	}
	var err error
	parse := func(field, text string) *template.Template {
		if err != nil {
			return nil
		}
		var t *template.Template
		t, err = c.parseTemplate(field, text)
		if err != nil {
			err = fmt.Errorf("%s: %s: %w", name, field, err)
		}
		return t
	}
	if r.Reply != "" {
		cr.reply = parse("reply", r.Reply)
	}
	if r.Usage != "" {
		cr.usage = parse("usage", r.Usage)
	}
	switch r.Action {
	case ActionReply:
		if r.Reply == "" && !r.NoReply {
			return fail("action reply needs a reply template")
		}
	case ActionHelp, ActionEcho, ActionUptime:
	case ActionExec:
		if len(r.Argv) == 0 {
			return fail("action exec needs argv")
		}
		if strings.Contains(r.Argv[0], "{{") || r.Argv[0] == "" {
			return fail("argv[0] must be a fixed program, not a template")
		}
		for k, a := range r.Argv[1:] {
			if a == "--" && cr.dashdash < 0 {
				cr.dashdash = k + 1
			}
			cr.argv = append(cr.argv, parse(fmt.Sprintf("argv[%d]", k+1), a))
		}
		stdin := r.Stdin
		if stdin == "" {
			stdin = "{{.Text}}"
		}
		cr.stdin = parse("stdin", stdin)
	case ActionHTTP:
		switch strings.ToUpper(r.Method) {
		case "", "GET":
			cr.Method = "GET"
		case "POST":
			cr.Method = "POST"
		default:
			return fail("method %q: GET or POST", r.Method)
		}
		switch r.Body {
		case "", "form", "json":
		default:
			return fail("body %q: form or json", r.Body)
		}
		if r.URL == "" {
			return fail("action http needs url")
		}
		if u, perr := url.Parse(strings.SplitN(r.URL, "{{", 2)[0]); perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fail("url %q must start with http:// or https://", r.URL)
		}
		cr.url = parse("url", r.URL)
		cr.fields = map[string]*template.Template{}
		for k, v := range r.Fields {
			cr.fields[k] = parse("fields."+k, v)
		}
		cr.headers = map[string]*template.Template{}
		for k, v := range r.Headers {
			if strings.ContainsAny(k, " :\r\n") {
				return fail("header name %q", k)
			}
			cr.headers[k] = parse("headers."+k, v)
		}
	case ActionForward:
		if !validNumber(r.To) {
			return fail("action forward needs a phone number in to, not %q", r.To)
		}
		text := r.Text
		if text == "" {
			text = "{{.Text}}"
		}
		cr.text = parse("text", text)
	case "":
		return fail("no action (reply, exec, http, forward, help, echo or uptime)")
	default:
		return fail("unknown action %q (reply, exec, http, forward, help, echo or uptime)", r.Action)
	}
	if cr.reply == nil && r.Action != ActionForward {
		// Every other action answers with its result unless told otherwise; a
		// forward answers only when the rule says what to say.
		cr.reply = parse("reply", "{{.Output}}")
	}
	if err != nil {
		return nil, err
	}
	return cr, nil
}

// serves reports whether the rule applies to the service number.
func (r *rule) serves(number string) bool {
	return len(r.numbers) == 0 || r.numbers[number]
}

// senderAllowed applies deny, then allow.
func (r *rule) senderAllowed(from string) bool {
	for _, p := range r.Deny {
		if matchSender(p, from) {
			return false
		}
	}
	if len(r.Allow) == 0 {
		return true
	}
	for _, p := range r.Allow {
		if matchSender(p, from) {
			return true
		}
	}
	return false
}

// matchSender matches a number exactly, or as a glob (555*, 5551?0?) when the
// pattern has glob characters. Numbers contain no '/', so path.Match fits.
func matchSender(pattern, number string) bool {
	if !strings.ContainsAny(pattern, "*?[") {
		return pattern == number
	}
	ok, _ := path.Match(pattern, number)
	return ok
}
