package command

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// loadExample reads examples/commands.toml the way smsrouter reads its config:
// the [command] section, unknown keys refused.
func loadExample(t *testing.T) Config {
	t.Helper()
	var file struct {
		Command Config `toml:"command"`
	}
	md, err := toml.DecodeFile(filepath.Join("..", "..", "examples", "commands.toml"), &file)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown keys in the example: %v", u)
	}
	return file.Command
}

// redirect sends every request, whatever its URL, to the test server: the
// example's Telegram rule runs unchanged without touching the internet.
type redirect struct{ to *url.URL }

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Original-Host", req.URL.Host)
	req.URL.Scheme, req.URL.Host = r.to.Scheme, r.to.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestExampleCommands(t *testing.T) {
	cfg := loadExample(t)
	secrets := filepath.Join(t.TempDir(), "secrets.toml")
	os.WriteFile(secrets, []byte("telegram_token = \"123:TOKEN\"\n"), 0o600)
	cfg.SecretsFile = secrets
	cfg.StateFile = filepath.Join(t.TempDir(), "rl.json")
	// The PING rule's program is swapped for the argv dumper; its argv is kept.
	script, argsFile, _ := dumpScript(t)
	for i := range cfg.Rules {
		if cfg.Rules[i].Keyword == "PING" {
			if got := strings.Join(cfg.Rules[i].Argv, " "); got != "ping -c 1 -W 2 -n -- {{arg 0 .Args}}" {
				t.Fatalf("PING argv changed: %s", got)
			}
			cfg.Rules[i].Argv = append([]string{"/bin/sh", script}, cfg.Rules[i].Argv[1:]...)
		}
	}
	var tg struct {
		host, path string
		body       map[string]string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.host, tg.path = r.Header.Get("X-Original-Host"), r.URL.Path
		data, _ := io.ReadAll(r.Body)
		json.Unmarshal(data, &tg.body)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	c := newTestChannel(t, cfg, func(e *Env) { e.HTTPClient = &http.Client{Transport: redirect{to}} })

	for _, tc := range []struct{ from, to, text, want string }{
		{"5551001", "1000", "help", "Commands:\nHELP - this list\nUPTIME - how long the PBX has been up\nECHO - sends your text back\nTIME - the PBX's date and time\nPING - PING <host>: is it reachable?"},
		{"5551001", "1000", "time", "It is 2026-03-14 15:09."},
		{"5551001", "1000", "echo hi", "hi"},
		{"5551001", "1000", "frobnicate", "Unknown command. Send HELP for the list."},
		{"5551001", "1000", "PING", "Usage: PING <host>"},
		{"5551001", "1000", "PING -f", "-f is up"},
		{"7770001", "1000", "PING example.org", "Unknown command. Send HELP for the list."}, // not in allow
		{"5551001", "1010", "yes please", "Thank you, your vote YES is counted."},
		{"5551001", "1010", "no", ""}, // one vote a day
		{"5551002", "1010", "maybe", "Please answer YES or NO."},
		{"5551002", "1020", "Door is open", "Passed on to the team."},
	} {
		if got, _ := deliver(t, c, msg(tc.from, tc.to, tc.text)); got != tc.want {
			t.Errorf("%s→%s %q: reply %q, want %q", tc.from, tc.to, tc.text, got, tc.want)
		}
	}
	if args := readArgs(t, argsFile); !equalStrings(args, []string{"-c", "1", "-W", "2", "-n", "--", "-f"}) {
		t.Errorf("PING -f ran with %q", args)
	}
	if tg.host != "api.telegram.org" || tg.path != "/bot123:TOKEN/sendMessage" || tg.body["text"] != "SMS from 5551002: Door is open" || tg.body["chat_id"] == "" {
		t.Errorf("telegram request %+v", tg)
	}
}
