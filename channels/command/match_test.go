package command

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
)

func TestMatching(t *testing.T) {
	rules := []Rule{
		{Numbers: []string{"1000"}, Keyword: "HELLO", Action: "reply", Reply: "hi {{.From}}"},
		{Numbers: []string{"1000"}, Regex: `(?i)^vote\s+(yes|no)$`, Action: "reply", Reply: "vote {{index .Groups 1}} ({{index .Groups 0}})"},
		{Numbers: []string{"1000"}, Regex: `^(?P<op>add) (?P<a>\d+) (?P<b>\d+)$`, Action: "reply", Reply: "{{.Named.op}} {{.Named.a}}+{{.Named.b}}"},
		{Numbers: []string{"1000"}, Keyword: "TWICE", Action: "reply", Reply: "one", Continue: true},
		{Numbers: []string{"1000"}, Keyword: "twice", Action: "reply", Reply: "two"},
		{Numbers: []string{"1000"}, Keyword: "TWICE", Action: "reply", Reply: "never: the rule before stops"},
		{Numbers: []string{"1000"}, Keyword: "FIRST", Action: "reply", Reply: "first wins"},
		{Numbers: []string{"1000"}, Keyword: "FIRST", Action: "reply", Reply: "second loses"},
		{Numbers: []string{"1001"}, Keyword: "HELLO", Action: "reply", Reply: "1001 says hi"},
		{Keyword: "ANY", Action: "reply", Reply: "default rule on {{.To}}"},
		{Numbers: []string{"1001"}, Action: "reply", Reply: "catch-all: {{.Text}}"},
	}
	c := newTestChannel(t, Config{Rules: rules, UnknownText: "unknown"})
	for _, tc := range []struct{ to, text, want string }{
		{"1000", "HELLO", "hi 5551001"},
		{"1000", "hello there", "hi 5551001"},
		{"1000", "  HeLLo  ", "hi 5551001"},
		{"1000", "helloworld", "unknown"}, // the first word, not a prefix
		{"1000", "Vote YES", "vote YES (Vote YES)"},
		{"1000", "vote maybe", "unknown"},
		{"1000", "add 2 3", "add 2+3"},
		{"1000", "twice", "one\ntwo"},
		{"1000", "FIRST", "first wins"},
		{"1001", "hello", "1001 says hi"},
		{"1001", "whatever", "catch-all: whatever"},
		{"1000", "any", "default rule on 1000"},
		{"1002", "any", "default rule on 1002"},
		{"1002", "hello", "unknown"},
		{"1000", "", "unknown"},
	} {
		got, _ := deliver(t, c, msg("5551001", tc.to, tc.text))
		if got != tc.want {
			t.Errorf("%s %q: reply %q, want %q", tc.to, tc.text, got, tc.want)
		}
	}
}

// TestNumberNoRuleServes: a C number that no rule serves must not report
// "delivered" for a message nobody reads; it is ErrNoService, which the router
// bounces with the no_service notice. A number that rules serve but whose
// keywords the text misses stays silent without unknown_text: that is the
// configuration's choice.
func TestNumberNoRuleServes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		to    string
		serve bool
	}{
		{"no rules at all", nil, "1000", false},
		{"rules for other numbers", []Rule{{Numbers: []string{"1001"}, Action: "echo"}}, "1000", false},
		{"a rule for this number", []Rule{{Numbers: []string{"1000"}, Keyword: "PING", Action: "echo"}}, "1000", true},
		{"a rule for every number", []Rule{{Keyword: "PING", Action: "echo"}}, "1000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestChannel(t, Config{Rules: tc.rules})
			if got := c.Serves(tc.to); got != tc.serve {
				t.Fatalf("Serves(%s) = %v, want %v", tc.to, got, tc.serve)
			}
			res, err := c.Deliver(context.Background(), msg("5551001", tc.to, "HELP"))
			if !tc.serve {
				if !errors.Is(err, channels.ErrNoService) || len(res.Artefacts) != 0 {
					t.Fatalf("Deliver: %v, %d artefacts; want ErrNoService and nothing", err, len(res.Artefacts))
				}
				return
			}
			if err != nil || len(res.Artefacts) != 0 {
				t.Fatalf("Deliver: %v, %d artefacts; want silence (no rule matched, no unknown_text)", err, len(res.Artefacts))
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets.toml")
	os.WriteFile(secrets, []byte("token = \"s3cr3t\"\n"), 0o600)
	c := newTestChannel(t, Config{SecretsFile: secrets, Rules: []Rule{
		{Keyword: "T", Action: "reply", Reply: "{{.From}}>{{.To}} kw={{.Keyword}} args={{len .Args}}:{{join \",\" .Args}} rest=[{{.Rest}}] a1={{arg 1 .Args}} a9=[{{arg 9 .Args}}] {{.Now.Format \"2006-01-02 15:04\"}} {{upper .Rest}} {{lower .Keyword}} {{secret \"token\"}} id={{.ID}}"},
		{Keyword: "BAD", Action: "reply", Reply: "{{secret \"nope\"}}"},
		{Keyword: "IDX", Action: "reply", Reply: "{{index .Args 5}}"},
		{Keyword: "Q", Action: "reply", Reply: "{{urlquery .Rest}}"},
	}})
	for _, tc := range []struct{ text, want string }{
		{"t  a b   c", "5551001>1000 kw=t args=3:a,b,c rest=[a b   c] a1=b a9=[] 2026-03-14 15:09 A B   C t s3cr3t id=1773500966000-0102030405"},
		{"BAD", "Command failed."},
		{"IDX x", "Command failed."},
		{"Q a&b c", "a%26b+c"},
	} {
		if got, _ := deliver(t, c, msg("5551001", "1000", tc.text)); got != tc.want {
			t.Errorf("%q: reply %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestAllowDeny(t *testing.T) {
	c := newTestChannel(t, Config{Rules: []Rule{
		{Keyword: "ADMIN", Allow: []string{"5551001", "5552*"}, Deny: []string{"55529*"}, Action: "reply", Reply: "welcome"},
		{Keyword: "ADMIN", Action: "reply", Reply: "not for you"},
	}})
	for _, tc := range []struct{ from, want string }{
		{"5551001", "welcome"},
		{"5551002", "not for you"},
		{"5552000", "welcome"},
		{"5552900", "not for you"}, // deny wins over allow
		{"15551001", "not for you"},
	} {
		if got, _ := deliver(t, c, msg(tc.from, "1000", "admin")); got != tc.want {
			t.Errorf("%s: reply %q, want %q", tc.from, got, tc.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "rl.json")
	now := fixedNow
	clock := func(e *Env) { e.Now = func() time.Time { return now } }
	cfg := Config{StateFile: state, Rules: []Rule{
		{Keyword: "PING", RateLimit: 2, RateWindow: Duration{Duration: time.Hour}, Action: "reply", Reply: "pong"},
		{Action: "reply", Reply: "catch-all must not answer a limited sender"},
	}}
	c := newTestChannel(t, cfg, clock)
	want := []string{"pong", "pong", ""}
	for i, w := range want {
		got, res := deliver(t, c, msg("5551001", "1000", "ping"))
		if got != w {
			t.Fatalf("run %d: reply %q, want %q (detail %v)", i+1, got, w, res.Detail)
		}
	}
	if got, _ := deliver(t, c, msg("5551002", "1000", "ping")); got != "pong" {
		t.Fatalf("another sender: %q", got)
	}
	// A new process (the next drain) reads the same counters.
	c2 := newTestChannel(t, cfg, clock)
	if got, _ := deliver(t, c2, msg("5551001", "1000", "ping")); got != "" {
		t.Fatalf("after restart: reply %q, want none", got)
	}
	now = now.Add(time.Hour + time.Second)
	if got, _ := deliver(t, c2, msg("5551001", "1000", "ping")); got != "pong" {
		t.Fatalf("after the window: reply %q", got)
	}
}

func TestGeneratedMessagesAreNotExecuted(t *testing.T) {
	c := newTestChannel(t, Config{Rules: []Rule{{Action: "reply", Reply: "answer"}}})
	for depth := 1; depth <= channels.MaxDepth+1; depth++ {
		m := msg("1001", "1000", "HELP")
		m.Depth = depth
		got, res := deliver(t, c, m)
		if got != "" || len(res.Artefacts) != 0 {
			t.Fatalf("depth %d: executed (%q)", depth, got)
		}
		if s, _ := res.Detail["command"].(string); !strings.Contains(s, "not executed") {
			t.Fatalf("depth %d: detail %v", depth, res.Detail)
		}
	}
}

func TestBuiltins(t *testing.T) {
	c := newTestChannel(t, Config{Rules: []Rule{
		{Numbers: []string{"1000"}, Keyword: "HELP", Description: "this list", Action: "help", Reply: "Commands:\n{{.Output}}"},
		{Numbers: []string{"1000"}, Keyword: "uptime", Description: "how long the PBX is up", Action: "uptime"},
		{Numbers: []string{"1000"}, Keyword: "ECHO", Action: "echo"},
		{Numbers: []string{"1001"}, Keyword: "SECRET", Description: "not on 1000", Action: "echo"},
		{Numbers: []string{"1000"}, Regex: "^x", Description: "regex rules have no keyword to list", Action: "echo"},
	}})
	if got, _ := deliver(t, c, msg("5551001", "1000", "help")); got != "Commands:\nHELP - this list\nUPTIME - how long the PBX is up\nECHO" {
		t.Errorf("help: %q", got)
	}
	if got, _ := deliver(t, c, msg("5551001", "1000", "echo  Hello,\nworld ")); got != "Hello,\nworld" {
		t.Errorf("echo: %q", got)
	}
	if got, _ := deliver(t, c, msg("5551001", "1000", "UPTIME")); !strings.HasPrefix(got, "Up ") || !strings.HasSuffix(got, "m") {
		t.Errorf("uptime: %q", got)
	}
	if got := formatUptime(3*24*time.Hour + 4*time.Hour + 5*time.Minute + 30*time.Second); got != "3d 4h 5m" {
		t.Errorf("formatUptime: %q", got)
	}
}

func TestMinArgsAndUsage(t *testing.T) {
	c := newTestChannel(t, Config{Rules: []Rule{
		{Keyword: "PING", MinArgs: 1, Usage: "Usage: PING <host>", Action: "reply", Reply: "ok {{index .Args 0}}"},
		{Keyword: "ADD", MinArgs: 2, Action: "reply", Reply: "ok"},
	}})
	for text, want := range map[string]string{
		"PING":      "Usage: PING <host>",
		"PING a":    "ok a",
		"add 1":     "Usage: ADD needs 2 argument(s).",
		"add 1 2 3": "ok",
	} {
		if got, _ := deliver(t, c, msg("5551001", "1000", text)); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
}

func TestForward(t *testing.T) {
	c := newTestChannel(t, Config{Rules: []Rule{
		{Numbers: []string{"1030"}, Action: "forward", To: "5551009", Text: "From {{.From}}: {{.Text}}", Continue: true},
		{Numbers: []string{"1030"}, Action: "reply", Reply: "Passed on."},
		{Numbers: []string{"1031"}, Action: "forward", To: "5551009"},
	}})
	m := msg("5551001", "1030", "call me")
	got, res := deliver(t, c, m)
	if got != "Passed on." {
		t.Fatalf("reply %q", got)
	}
	var fw []*channels.Artefact
	for i := range res.Artefacts {
		if res.Artefacts[i].Kind == "forward" {
			fw = append(fw, &res.Artefacts[i])
		}
	}
	if len(fw) != 1 {
		t.Fatalf("%d forwards", len(fw))
	}
	f := parseArtefact(t, *fw[0])
	if f.OA != "5551001" || f.DA != "5551009" || f.Text != "From 5551001: call me" {
		t.Fatalf("forward %s→%s %q", f.OA, f.DA, f.Text)
	}
	if _, depth, _ := channels.ParseSpoolName(fw[0].Name); depth != 1 || !strings.HasPrefix(fw[0].Name, "5551009.") {
		t.Fatalf("forward file %q", fw[0].Name)
	}
	// A forward alone answers nothing.
	got, res = deliver(t, c, msg("5551001", "1031", "x"))
	if got != "" || len(res.Artefacts) != 1 {
		t.Fatalf("plain forward: reply %q, %d artefacts", got, len(res.Artefacts))
	}
}

func TestReplyIsCleanedAndCapped(t *testing.T) {
	c := newTestChannel(t, Config{MaxReply: 10, Rules: []Rule{{Action: "echo"}}})
	for text, want := range map[string]string{
		"x a\x00b\x1bc\r\nd\xffe\n\n": "abc\nd\uFFFDe",
		"x 0123456789abc":             "012345678…",
		"x äöü":                       "äöü",
	} {
		if got, _ := deliver(t, c, msg("5551001", "1000", text)); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{}, "no action"},
		{Rule{Action: "shell"}, "unknown action"},
		{Rule{Action: "reply"}, "needs a reply template"},
		{Rule{Action: "reply", Reply: "{{"}, "reply"},
		{Rule{Action: "echo", Keyword: "A", Regex: "b"}, "not both"},
		{Rule{Action: "echo", Keyword: "two words"}, "one word"},
		{Rule{Action: "echo", Regex: "("}, "regex"},
		{Rule{Action: "echo", Numbers: []string{"../x"}}, "not a phone number"},
		{Rule{Action: "echo", Allow: []string{"[x"}}, "allow/deny"},
		{Rule{Action: "exec"}, "needs argv"},
		{Rule{Action: "exec", Argv: []string{"{{.Text}}"}}, "argv[0]"},
		{Rule{Action: "http"}, "needs url"},
		{Rule{Action: "http", URL: "file:///etc/passwd"}, "http://"},
		{Rule{Action: "http", URL: "http://x", Method: "DELETE"}, "GET or POST"},
		{Rule{Action: "http", URL: "http://x", Body: "xml"}, "form or json"},
		{Rule{Action: "http", URL: "http://x", Headers: map[string]string{"A: b": "c"}}, "header"},
		{Rule{Action: "forward", To: "x"}, "phone number"},
	} {
		_, err := New(Config{Rules: []Rule{tc.rule}}, Env{Inbox: t.TempDir(), WorkDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.rule, err, tc.want)
		}
	}
	if _, err := New(Config{SecretsFile: "/nonexistent/secrets"}, Env{Inbox: t.TempDir()}); err == nil {
		t.Error("missing secrets file accepted")
	}
	if _, err := New(Config{}, Env{}); err == nil {
		t.Error("no morx folder accepted")
	}
}

func FuzzDeliver(f *testing.F) {
	for _, s := range []string{"HELP", "vote yes", "echo \xff\x00", "", "  a  b ", "add 1 2"} {
		f.Add(s)
	}
	c, err := New(Config{MaxReply: 50, Rules: []Rule{
		{Keyword: "HELP", Description: "d", Action: "help"},
		{Regex: `(?i)^vote\s+(\w+)`, Action: "reply", Reply: "{{index .Groups 1}} {{arg 3 .Args}}"},
		{Keyword: "echo", Action: "echo", Continue: true},
		{Action: "reply", Reply: "{{.Keyword}}|{{.Rest}}|{{len .Args}}"},
	}}, Env{Inbox: f.TempDir(), Now: func() time.Time { return fixedNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		res, err := c.Deliver(context.Background(), msg("5551001", "1000", text))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Artefacts {
			m := parseArtefact(t, a)
			if len([]rune(m.Text)) > 50 {
				t.Fatalf("reply of %d characters", len([]rune(m.Text)))
			}
		}
	})
}
