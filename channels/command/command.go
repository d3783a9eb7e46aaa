// Package command is the C delivery channel: a number with letter C is a service,
// not a person. A message to it runs the first matching rule of the [command]
// configuration (keyword or regular expression, sender allow and deny lists, a
// per-sender rate limit) and the rule's action — a text template, a program, an
// HTTP call, a forward or a built-in — and the result goes back to the sender as a
// new message from the service number, routed by the sender's own letter.
//
// Safety is by construction: programs run from a fixed argv in which a template
// value is always one whole argument and never an option, with no shell, a
// timeout that kills the whole process group, capped output and, when smsrouter
// runs as root, an unprivileged user. Generated messages (replies, notices,
// forwards; Depth > 0) are never executed, so two services cannot talk to each
// other forever.
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"smsrouter/channels"
)

// Env is where the channel lives; it is not part of the configuration file.
type Env struct {
	Inbox    string         // where replies and forwards are queued (router.InboxDir)
	WorkDir  string         // smsrouter's work folder: the default home of the rate-limit file
	Location *time.Location // .Now's time zone; default time.Local
	Log      *slog.Logger
	// HTTPClient is used by http rules; default a client with no global timeout
	// (each rule has its own).
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Channel is the C delivery channel.
type Channel struct {
	cfg     Config
	env     Env
	rules   []*rule
	secrets map[string]string
	limiter *limiter
	started time.Time
	cred    *credential
}

// New checks and compiles the rules, reads the secrets file and, when a rule has a
// rate limit, the counters.
func New(cfg Config, env Env) (*Channel, error) {
	if env.Inbox == "" {
		return nil, errors.New("command: no inbox folder for replies")
	}
	if cfg.ErrorText == "" {
		cfg.ErrorText = defaultErrorText
	}
	if cfg.MaxReply <= 0 {
		cfg.MaxReply = defaultMaxReply
	}
	if env.Location == nil {
		env.Location = time.Local
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.HTTPClient == nil {
		env.HTTPClient = &http.Client{}
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	c := &Channel{cfg: cfg, env: env, secrets: map[string]string{}, started: env.Now()}
	if cfg.SecretsFile != "" {
		if _, err := toml.DecodeFile(cfg.SecretsFile, &c.secrets); err != nil {
			return nil, fmt.Errorf("command: secrets file: %w", err)
		}
	}
	var longest time.Duration
	limited, execs := false, false
	for i, r := range cfg.Rules {
		cr, err := c.compile(i, r)
		if err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
		limited = limited || cr.RateLimit > 0
		if cr.RateLimit > 0 {
			longest = max(longest, cr.RateWindow.Duration)
		}
		execs = execs || cr.Action == ActionExec
		c.rules = append(c.rules, cr)
	}
	if execs {
		cred, err := lookupCredential(cfg.RunAs)
		if err != nil {
			return nil, fmt.Errorf("command: run_as: %w", err)
		}
		c.cred = cred
	}
	if limited {
		file := cfg.StateFile
		if file == "" {
			if env.WorkDir == "" {
				return nil, errors.New("command: rate limits need state_file or a work folder")
			}
			file = filepath.Join(env.WorkDir, "command-ratelimit.json")
		}
		c.limiter = newLimiter(file, longest)
	}
	return c, nil
}

// Deliver runs the rules for m and returns the reply (and any forwards) as new
// messages. A temporary failure of an action (timeout, network, HTTP 5xx) is
// returned as an error, so the router retries the whole message later.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	if m.Depth > 0 {
		// A reply, notice or forward: answering it could start an endless
		// conversation between two services.
		return channels.Result{Detail: map[string]any{"command": fmt.Sprintf("not executed: generated message (depth %d)", m.Depth)}}, nil
	}
	if !c.Serves(m.To) {
		// Delivering with no rule to run would report "delivered" for a message
		// nobody will ever read.
		return channels.Result{}, fmt.Errorf("command: no [[command.rule]] serves number %s: %w", m.To, channels.ErrNoService)
	}
	now := c.env.Now().In(c.env.Location)
	d := newData(m, now)
	var replies []string
	var arts []channels.Artefact
	var ran []string
	answered := false // a rule ran or refused the sender for being too fast
	detail := map[string]any{}
	for _, r := range c.rules {
		if !r.serves(m.To) || !r.matches(d) {
			continue
		}
		if !r.senderAllowed(m.From) {
			ran = append(ran, fmt.Sprintf("rule %d: sender not allowed", r.index+1))
			continue
		}
		if c.limiter != nil && r.RateLimit > 0 {
			ok, err := c.limiter.allow(fmt.Sprintf("%d:%s", r.index, m.From), r.RateLimit, r.RateWindow.Duration, now)
			if err != nil {
				c.env.Log.Warn("rate-limit counters not saved", "err", err)
			}
			if !ok {
				// Silence: answering a flood would feed it.
				answered = true
				ran = append(ran, fmt.Sprintf("rule %d: rate limited", r.index+1))
				break
			}
		}
		out, err := c.run(ctx, r, d, m, now)
		if err != nil {
			return channels.Result{}, fmt.Errorf("command rule %d (%s): %w", r.index+1, r.Action, err)
		}
		answered = true
		ran = append(ran, fmt.Sprintf("rule %d: %s", r.index+1, out.what))
		if out.reply != "" {
			replies = append(replies, out.reply)
		}
		arts = append(arts, out.artefacts...)
		if !r.Continue {
			break
		}
	}
	if !answered {
		ran = append(ran, "no rule matched")
		if c.cfg.UnknownText != "" {
			replies = append(replies, c.cfg.UnknownText)
		}
	}
	detail["command"] = ran
	if text := cleanReply(strings.Join(replies, "\n"), c.cfg.MaxReply); text != "" {
		if m.Depth+1 > channels.MaxDepth {
			detail["reply"] = "not sent: too many generations deep"
		} else {
			art, id, err := channels.NewMessage(c.env.Inbox, m.To, m.From, text, m.Depth+1, now)
			if err != nil {
				return channels.Result{}, channels.Permanent(fmt.Errorf("cannot queue the reply: %w", err))
			}
			art.Kind = "reply"
			// The reply first: a forward is the sender's business, the answer is ours.
			arts = append([]channels.Artefact{art}, arts...)
			detail["reply_id"] = id
		}
	}
	return channels.Result{Artefacts: arts, Detail: detail}, nil
}

// Serves reports whether any rule serves number: a rule without numbers
// serves every C number. A message to a number no rule serves is bounced with
// the no_service notice (ErrNoService); `smsrouter doctor` lists such numbers.
func (c *Channel) Serves(number string) bool {
	for _, r := range c.rules {
		if r.serves(number) {
			return true
		}
	}
	return false
}

func newData(m channels.Message, now time.Time) *Data {
	d := &Data{ID: m.ID, From: m.From, To: m.To, Text: m.Text, Now: now}
	trimmed := strings.TrimSpace(m.Text)
	words := strings.Fields(trimmed)
	if len(words) > 0 {
		d.Keyword = words[0]
		d.Args = words[1:]
		d.Rest = strings.TrimSpace(trimmed[len(words[0]):])
	}
	return d
}

// matches tries the rule's keyword or regex on the message, filling .Groups.
func (r *rule) matches(d *Data) bool {
	d.Groups, d.Named = nil, nil
	switch {
	case r.Keyword != "":
		return strings.EqualFold(d.Keyword, r.Keyword)
	case r.re != nil:
		g := r.re.FindStringSubmatch(strings.TrimSpace(d.Text))
		if g == nil {
			return false
		}
		d.Groups = g
		d.Named = map[string]string{}
		for i, name := range r.re.SubexpNames() {
			if name != "" {
				d.Named[name] = g[i]
			}
		}
		return true
	}
	return true // neither: a catch-all
}

// Explain says which rule would answer a message from `from` to `to` with text
// now, without running anything (`smsrouter explain`). Rate limits are named,
// not consulted.
func (c *Channel) Explain(from, to, text string) string {
	if !c.Serves(to) {
		return "no [[command.rule]] serves " + to + ": the sender would get the no_service notice"
	}
	d := newData(channels.Message{From: from, To: to, Text: text}, c.env.Now().In(c.env.Location))
	var skipped []string
	for _, r := range c.rules {
		if !r.serves(to) || !r.matches(d) {
			continue
		}
		if !r.senderAllowed(from) {
			skipped = append(skipped, fmt.Sprintf("rule %d matches but %s is not allowed", r.index+1, from))
			continue
		}
		what := "catch-all"
		switch {
		case r.Keyword != "":
			what = "keyword " + r.Keyword
		case r.re != nil:
			what = "regex " + r.Regex
		}
		s := fmt.Sprintf("rule %d (%s) runs action %s", r.index+1, what, r.Action)
		if r.RateLimit > 0 {
			s += fmt.Sprintf(", at most %d per %s per sender", r.RateLimit, r.RateWindow.Duration)
		}
		return strings.Join(append(skipped, s), "; ")
	}
	s := "no rule matches"
	if c.cfg.UnknownText != "" {
		s += ": the unknown_text reply is sent"
	} else {
		s += ": no reply"
	}
	return strings.Join(append(skipped, s), "; ")
}
