package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/internal/modemsim"
	"smsrouter/router"
)

// TestLinkExamplesLoad: every example of a mobile link is a configuration
// smsrouter accepts as it is (only the spool is swapped for a real folder, and
// secrets files are not read).
func TestLinkExamplesLoad(t *testing.T) {
	for _, c := range []struct {
		file   string
		links  int
		routes int
	}{
		{"modem-gateway.toml", 1, 1},
		{"smpp-account.toml", 2, 2},
		{"telegram-gateway.toml", 1, 0},
	} {
		t.Run(c.file, func(t *testing.T) {
			cfg, err := loadConfig(filepath.Join("..", "..", "examples", c.file))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := withSpool(t, cfg).routerConfig()
			if err != nil {
				t.Fatal(err)
			}
			specs, err := cfg.linkSpecs(rc.Plan, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != c.links || len(rc.Routes) != c.routes || !rc.Plan.On() {
				t.Fatalf("%d links, %d routes, plan %+v", len(specs), len(rc.Routes), rc.Plan)
			}
		})
	}
}

// fakeTelegram is the Bot API's sendMessage, as the example's rule calls it.
type fakeTelegram struct {
	mu   sync.Mutex
	got  []map[string]any
	path []string
}

func (f *fakeTelegram) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, `{"ok":false}`, 400)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, m)
	f.path = append(f.path, r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true,"result":{"message_id":1}}`)
}

// TestTelegramExampleEndToEnd runs examples/telegram-gateway.toml through the
// binary, unchanged but for where things are: the modem is the simulator, the
// Bot API a local server, the secrets files the test's own. A text the modem
// receives reaches the chat, and leaves the SIM.
func TestTelegramExampleEndToEnd(t *testing.T) {
	tg := &fakeTelegram{}
	api := httptest.NewServer(tg)
	defer api.Close()
	sim := modemsim.New(t)
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "telegram-gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.toml")
	os.WriteFile(secrets, []byte("telegram_token = \"123:TOKEN\"\n"), 0o600)
	gsmSecrets := filepath.Join(dir, "gsm.toml")
	os.WriteFile(gsmSecrets, []byte("pin = \"1234\"\n"), 0o600)
	sim.Set(func(s *modemsim.Sim) { s.PINOK, s.PIN = false, "1234" })
	conf := string(example)
	for old, repl := range map[string]string{
		`spool = "/var/spool/asterisk"`: "",
		`smsc_number = "9001"`:          "",
		"https://api.telegram.org":      api.URL,
		"/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile-if00-port0": sim.Link,
		"/etc/asterisk/smsrouter-gsm.secrets.toml":                         gsmSecrets,
		"/etc/asterisk/smsrouter-secrets.toml":                             secrets,
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("the example no longer has %q", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	b := newBed(t, "", "", router.Entry{Number: "7000", Letter: 'C', Extension: "-"})
	// The bed's own keys first, then the example (with its top-level keys).
	base, _ := os.ReadFile(b.conf)
	writeFile(t, b.conf, append(base, []byte("\n[queue]\nsync = false\n"+conf)...))
	startServe(t, b)
	for _, p := range modemsim.DeliverPDUs(t, "+48600123456", "Alarm: the freezer is at -5°C", 3, time.Now()) {
		sim.Receive(p, true)
	}
	waitUntil(t, 30*time.Second, "the post to Telegram", func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return len(tg.got) == 1
	})
	tg.mu.Lock()
	got, path := tg.got[0], tg.path[0]
	tg.mu.Unlock()
	if path != "/bot123:TOKEN/sendMessage" || got["chat_id"] != "-1001234567890" ||
		!strings.HasPrefix(fmt.Sprint(got["text"]), "SMS from +48600123456 at ") || !strings.HasSuffix(fmt.Sprint(got["text"]), ": Alarm: the freezer is at -5°C") {
		t.Fatalf("Telegram got %s %v", path, got)
	}
	waitUntil(t, 10*time.Second, "the SIM emptied", func() bool { return len(sim.Stored()) == 0 })
	// No answer went back to the mobile phone.
	time.Sleep(time.Second)
	if n := len(sim.SentPDUs()); n != 0 {
		t.Fatalf("%d texts sent back", n)
	}
}
