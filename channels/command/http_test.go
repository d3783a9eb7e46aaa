package command

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/channels"
)

// recorded is one request the test server saw.
type recorded struct {
	method, path, query, contentType, auth, body string
}

func testServer(t *testing.T) (*httptest.Server, func() []recorded) {
	var mu sync.Mutex
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(body)})
		mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/fail":
			http.Error(w, "database on fire", http.StatusInternalServerError)
		case "/missing":
			http.NotFound(w, r)
		case "/big":
			w.Write([]byte(strings.Repeat("b", 1<<20)))
		default:
			w.Write([]byte("weather in " + r.URL.Query().Get("city") + ": sunny\n"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), seen...)
	}
}

func TestHTTP(t *testing.T) {
	srv, seen := testServer(t)
	secrets := filepath.Join(t.TempDir(), "secrets.toml")
	os.WriteFile(secrets, []byte("api = \"k3y\"\n"), 0o600)
	c := newTestChannel(t, Config{SecretsFile: secrets, ErrorText: "Service unavailable.", Rules: []Rule{
		{Keyword: "WEATHER", Action: "http", URL: srv.URL + "/weather", Fields: map[string]string{"city": "{{.Rest}}", "from": "{{.From}}"}},
		{Keyword: "PATH", Action: "http", URL: srv.URL + "/p/{{urlquery .Rest}}", Reply: "ok"},
		{Keyword: "JSON", Action: "http", Method: "post", Body: "json", URL: srv.URL + "/hook",
			Fields:  map[string]string{"from": "{{.From}}", "text": "{{.Text}}"},
			Headers: map[string]string{"Authorization": "Bearer {{secret \"api\"}}"}, Reply: "sent"},
		{Keyword: "FORM", Action: "http", Method: "POST", URL: srv.URL + "/form", Fields: map[string]string{"msg": "{{.Rest}}"}, NoReply: true},
		{Keyword: "SLOW", Action: "http", URL: srv.URL + "/slow", Timeout: Duration{Duration: 200 * time.Millisecond}},
		{Keyword: "FAIL", Action: "http", URL: srv.URL + "/fail"},
		{Keyword: "MISSING", Action: "http", URL: srv.URL + "/missing"},
		{Keyword: "BIG", Action: "http", URL: srv.URL + "/big"},
		{Keyword: "DOWN", Action: "http", URL: "http://127.0.0.1:1/"},
	}})
	ctx := context.Background()

	if got, _ := deliver(t, c, msg("5551001", "1000", "weather Łódź & co")); got != "weather in Łódź & co: sunny" {
		t.Errorf("GET reply %q", got)
	}
	if r := seen()[0]; r.method != "GET" || r.path != "/weather" || r.query != "city=%C5%81%C3%B3d%C5%BA+%26+co&from=5551001" {
		t.Errorf("GET request %+v", r)
	}
	deliver(t, c, msg("5551001", "1000", "path ../a b?c"))
	if r := seen()[1]; r.path != "/p/..%2Fa+b%3Fc" || r.query != "" {
		t.Errorf("path request %+v", r)
	}

	text := "json \"quotes\", <tags> & \\ newline\n"
	if got, _ := deliver(t, c, msg("5551001", "1000", text)); got != "sent" {
		t.Errorf("POST JSON reply %q", got)
	}
	r := seen()[2]
	var body map[string]string
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body["text"] != text || body["from"] != "5551001" {
		t.Errorf("JSON body %q (%v)", r.body, err)
	}
	if r.method != "POST" || r.contentType != "application/json" || r.auth != "Bearer k3y" {
		t.Errorf("POST request %+v", r)
	}

	if got, res := deliver(t, c, msg("5551001", "1000", "form a=b&c")); got != "" || len(res.Artefacts) != 0 {
		t.Errorf("no_reply: %q", got)
	}
	if r := seen()[3]; r.contentType != "application/x-www-form-urlencoded" || r.body != "msg=a%3Db%26c" {
		t.Errorf("form request %+v", r)
	}

	for _, kw := range []string{"SLOW", "FAIL", "DOWN"} {
		start := time.Now()
		_, err := c.Deliver(ctx, msg("5551001", "1000", kw))
		if err == nil || channels.IsPermanent(err) || !errors.Is(err, errTemporary) {
			t.Errorf("%s: err %v, want temporary", kw, err)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: took %s", kw, time.Since(start))
		}
	}
	if got, _ := deliver(t, c, msg("5551001", "1000", "missing")); got != "Service unavailable." {
		t.Errorf("404: reply %q", got)
	}
	if got, _ := deliver(t, c, msg("5551001", "1000", "big")); len([]rune(got)) != defaultMaxReply {
		t.Errorf("1 MB body: reply of %d characters", len([]rune(got)))
	}
}

func TestRedactURLHidesTokens(t *testing.T) {
	if got := redactURL("https://api.telegram.org/bot123:SECRET/sendMessage?x=1"); strings.Contains(got, "SECRET") || got != "https://api.telegram.org/…" {
		t.Fatalf("%q", got)
	}
}
