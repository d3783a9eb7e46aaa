package command

import (
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// Data is what every template of a rule sees.
type Data struct {
	ID      string            // the message's journal id
	From    string            // the sender
	To      string            // the service number
	Text    string            // the whole text as received
	Keyword string            // the first word as sent (any case)
	Args    []string          // the words after the first
	Rest    string            // the text after the first word, spaces trimmed
	Groups  []string          // regex rules: [0] the whole match, [1…] the groups
	Named   map[string]string // regex rules: named groups (?P<name>…)
	Now     time.Time         // when the rule runs, in the configured time zone
	Output  string            // reply templates: the action's result (stdout, HTTP body, help list…)
	Exit    int               // exec: the exit code
}

// funcs are the template functions beside text/template's own (index, printf,
// urlquery, js, len…). arg never fails, so "{{arg 0}}" is empty when the sender
// gave no argument; min_args is how a rule insists.
func (c *Channel) funcs() template.FuncMap {
	return template.FuncMap{
		"secret": func(name string) (string, error) {
			v, ok := c.secrets[name]
			if !ok {
				return "", fmt.Errorf("secret %q is not in the secrets file", name)
			}
			return v, nil
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"trim":  strings.TrimSpace,
		"join":  func(sep string, s []string) string { return strings.Join(s, sep) },
		"arg": func(i int, args []string) string {
			if i < 0 || i >= len(args) {
				return ""
			}
			return args[i]
		},
	}
}

func (c *Channel) parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(c.funcs()).Parse(text)
}

// render executes a template into a string of at most limit bytes, so that a
// template cannot blow up memory ({{range}} over a huge argument list…).
func render(t *template.Template, d *Data) (string, error) {
	var b cappedBuilder
	b.limit = 1 << 20
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

type cappedBuilder struct {
	strings.Builder
	limit int
}

func (b *cappedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, fmt.Errorf("template output longer than %d bytes", b.limit)
	}
	return b.Builder.Write(p)
}

// cleanReply makes any text fit for an SMS reply: valid UTF-8, no control
// characters other than line breaks and tabs, CRLF as LF, no trailing blank
// lines, at most max characters (cut with "…").
func cleanReply(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, " \t\n")
	if max > 0 && utf8.RuneCountInString(s) > max {
		n := 0
		for i := range s {
			if n == max-1 {
				return s[:i] + "…"
			}
			n++
		}
	}
	return s
}
