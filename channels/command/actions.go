package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"smsrouter/channels"
)

// outcome is what one rule produced.
type outcome struct {
	reply     string
	artefacts []channels.Artefact
	what      string // for the journal
}

// errTemporary marks failures worth retrying (timeouts, network, HTTP 5xx).
var errTemporary = errors.New("temporary failure")

// run performs the rule's action. Definite failures become the error text as the
// reply; only temporary ones are returned as errors.
func (c *Channel) run(ctx context.Context, r *rule, d *Data, m channels.Message, now time.Time) (outcome, error) {
	if len(d.Args) < r.MinArgs {
		text, err := c.usageText(r, d)
		if err != nil {
			return c.failed(r, "usage template", err), nil
		}
		return outcome{reply: text, what: "usage"}, nil
	}
	var o outcome
	switch r.Action {
	case ActionReply:
		o.what = "reply"
	case ActionEcho:
		d.Output, o.what = d.Rest, "echo"
	case ActionUptime:
		d.Output, o.what = c.uptime(now), "uptime"
	case ActionHelp:
		d.Output, o.what = c.help(m.To), "help"
	case ActionForward:
		text, err := render(r.text, d)
		if err != nil {
			return c.failed(r, "forward text template", err), nil
		}
		text = cleanReply(text, c.cfg.MaxReply)
		if m.Depth+1 > channels.MaxDepth {
			return outcome{what: "forward not sent: too deep"}, nil
		}
		art, id, err := channels.NewMessage(c.env.Inbox, m.From, r.To, text, m.Depth+1, now)
		if err != nil {
			return c.failed(r, "forward", err), nil
		}
		art.Kind = "forward"
		o.artefacts = append(o.artefacts, art)
		o.what = "forwarded to " + r.To + " as " + id
	case ActionExec:
		res, err := c.exec(ctx, r, d, m)
		switch {
		case errors.Is(err, errTemporary):
			return outcome{}, err
		case err != nil:
			return c.failed(r, "exec", err), nil
		}
		d.Output, d.Exit = res.stdout, res.exit
		o.what = fmt.Sprintf("exec exit %d", res.exit)
		if res.exit != 0 {
			// stderr is for the admin, not the sender.
			c.env.Log.Info("command exited with an error", "rule", r.index+1, "exit", res.exit, "stderr", clip(res.stderr, 500))
		}
		if res.exit != 0 && r.OnlySuccess {
			return outcome{reply: r.errorText, what: o.what + "; error text sent"}, nil
		}
		if res.exit != 0 && res.stdout == "" {
			// Say something rather than nothing when the program only complained.
			d.Output = r.errorText
		}
	case ActionHTTP:
		body, status, err := c.http(ctx, r, d)
		switch {
		case errors.Is(err, errTemporary):
			return outcome{}, err
		case err != nil:
			return c.failed(r, "http", err), nil
		}
		d.Output = body
		o.what = "http " + strconv.Itoa(status)
	}
	if r.NoReply {
		return o, nil
	}
	if r.reply == nil {
		return o, nil
	}
	text, err := render(r.reply, d)
	if err != nil {
		return c.failed(r, "reply template", err), nil
	}
	o.reply = text
	return o, nil
}

// failed logs a definite failure and answers with the error text, as the old
// suite's COMMAND_ERROR did.
func (c *Channel) failed(r *rule, step string, err error) outcome {
	c.env.Log.Warn("command failed", "rule", r.index+1, "step", step, "err", err)
	return outcome{reply: r.errorText, what: step + " failed: " + err.Error()}
}

func (c *Channel) usageText(r *rule, d *Data) (string, error) {
	if r.usage != nil {
		return render(r.usage, d)
	}
	kw := strings.ToUpper(r.Keyword)
	if kw == "" {
		kw = "the command"
	}
	return fmt.Sprintf("Usage: %s needs %d argument(s).", kw, r.MinArgs), nil
}

// help lists the keywords of the rules that serve number, with their descriptions.
func (c *Channel) help(number string) string {
	var lines []string
	seen := map[string]bool{}
	for _, r := range c.rules {
		kw := strings.ToUpper(r.Keyword)
		if kw == "" || !r.serves(number) || seen[kw] {
			continue
		}
		seen[kw] = true
		if r.Description != "" {
			lines = append(lines, kw+" - "+r.Description)
		} else {
			lines = append(lines, kw)
		}
	}
	return strings.Join(lines, "\n")
}

// uptime is the machine's uptime (/proc/uptime), which is what an admin asking a
// PBX wants; where that is unreadable, how long this channel has existed.
func (c *Channel) uptime(now time.Time) string {
	up := now.Sub(c.started)
	if data, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			if s, err := strconv.ParseFloat(f[0], 64); err == nil {
				up = time.Duration(s * float64(time.Second))
			}
		}
	}
	return "Up " + formatUptime(up)
}

func formatUptime(d time.Duration) string {
	d = d.Truncate(time.Minute)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if days > 0 {
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	}
	return fmt.Sprintf("%dh %dm", h, m)
}
