package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/router"
)

const token = "0123456789abcdef-token"

// fakeClock lets the rate limit be tested without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newServer runs the API over a real morx folder behind a real HTTP server.
func newServer(t *testing.T, mod func(*Config)) (*httptest.Server, string, *[]string) {
	t.Helper()
	morx := t.TempDir()
	var mu sync.Mutex
	var codes []string
	cfg := Config{
		Tokens: []string{token},
		Users:  []User{{Name: "kannel", Password: "s3cret"}},
		Rate:   1000, Burst: 1000,
		Submit: func(_ context.Context, m Message) (string, error) {
			dir := morx
			if m.To == "5551999" { // stands for a full disk or a missing spool
				dir = filepath.Join(morx, "missing")
			}
			return router.SubmitMessage(dir, router.Submission{From: m.From, To: m.To, Text: m.Text, Validity: m.Validity, UDH: m.UDH}, time.Now())
		},
		Observe: func(endpoint, result string) {
			mu.Lock()
			codes = append(codes, endpoint+" "+result)
			mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, morx, &codes
}

func do(t *testing.T, method, u, ctype, auth, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestSendAPI(t *testing.T) {
	srv, morx, _ := newServer(t, nil)
	bearer := "Bearer " + token
	basic := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	good := `{"from":"5551001","to":"5551002","text":"Hello"}`
	kannel := func(q url.Values) string { return srv.URL + "/cgi-bin/sendsms?" + q.Encode() }
	kq := url.Values{"username": {"kannel"}, "password": {"s3cret"}, "from": {"5551001"}, "to": {"5551002"}, "text": {"Zażółć 😀"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range kq {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	for _, c := range []struct {
		name, method, url, ctype, auth, body string
		code                                 int
		want                                 string // substring of the body
		queued                               bool
	}{
		{"json bearer", "POST", srv.URL + "/v1/messages", "application/json", bearer, good, 202, `"id":"`, true},
		{"json basic", "POST", srv.URL + "/v1/messages", "application/json; charset=utf-8", basic("kannel", "s3cret"), good, 202, `"id":"`, true},
		{"no auth", "POST", srv.URL + "/v1/messages", "application/json", "", good, 401, "authorization failed", false},
		{"wrong token", "POST", srv.URL + "/v1/messages", "application/json", "Bearer " + token + "x", good, 401, "authorization failed", false},
		{"wrong basic password", "POST", srv.URL + "/v1/messages", "application/json", basic("kannel", "S3cret"), good, 401, "", false},
		{"unknown basic user", "POST", srv.URL + "/v1/messages", "application/json", basic("nobody", "s3cret"), good, 401, "", false},
		{"wrong method", "DELETE", srv.URL + "/v1/messages", "", bearer, "", 405, `"code":"method_not_allowed"`, false},
		{"wrong content type", "POST", srv.URL + "/v1/messages", "text/plain", bearer, good, 415, `"code":"unsupported_media_type"`, false},
		{"bad JSON", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001",`, 400, `"code":"bad_json"`, false},
		{"unknown field", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001","to":"5551002","text":"x","pid":1}`, 400, "unknown field", false},
		{"two objects", "POST", srv.URL + "/v1/messages", "application/json", bearer, good + good, 400, "more than one JSON value", false},
		{"1 MB body", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001","to":"5551002","text":"` + strings.Repeat("a", 1<<20) + `"}`, 413, `"code":"body_too_large"`, false},
		{"hostile number", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"../../x","to":"5551002","text":"x"}`, 400, "not a phone number", false},
		{"empty text", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001","to":"5551002","text":""}`, 400, "text is missing", false},
		{"too long text", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001","to":"5551002","text":"` + strings.Repeat("a", router.MaxSubmitText+1) + `"}`, 400, "at most", false},
		{"spool broken", "POST", srv.URL + "/v1/messages", "application/json", bearer, `{"from":"5551001","to":"5551999","text":"x"}`, 503, "cannot queue", false},
		{"unknown path", "GET", srv.URL + "/v2/x", "", bearer, "", 404, "", false},
		{"kannel ok", "GET", kannel(kq), "", "", "", 202, "0: Accepted for delivery", true},
		{"kannel wrong password", "GET", kannel(with("password", "nope")), "", "", "", 403, "Authorization failed for sendsms", false},
		{"kannel no user", "GET", kannel(with("username", "")), "", "", "", 403, "Authorization failed", false},
		{"kannel bad number", "GET", kannel(with("to", "12ab")), "", "", "", 400, "recipient", false},
		{"kannel bad utf8", "GET", srv.URL + "/cgi-bin/sendsms?username=kannel&password=s3cret&from=1&to=2&text=%ff", "", "", "", 400, "UTF-8", false},
		{"kannel wrong method", "DELETE", kannel(kq), "", "", "", 405, "", false},
		{"kannel 1 MB form", "POST", srv.URL + "/cgi-bin/sendsms", "application/x-www-form-urlencoded", "", "text=" + strings.Repeat("a", 1<<20), 413, "larger than", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadDir(morx)
			resp, body := do(t, c.method, c.url, c.ctype, c.auth, c.body)
			if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, body, c.code, c.want)
			}
			after, _ := os.ReadDir(morx)
			if got := len(after) > len(before); got != c.queued {
				t.Fatalf("queued = %v, want %v", got, c.queued)
			}
			if c.queued {
				id := resp.Header.Get(HeaderMessageID)
				if id == "" || strings.HasPrefix(c.url, srv.URL+"/v1") && !strings.Contains(body, id) {
					t.Fatalf("id %q not in the answer %q", id, body)
				}
				checkQueued(t, morx, id)
			}
			if strings.HasPrefix(c.url, srv.URL+"/cgi-bin/") && c.code == 202 && body != "0: Accepted for delivery" {
				// Clients compare the whole body.
				t.Fatalf("Kannel's answer is %q, not exactly Kannel's", body)
			}
			if strings.HasPrefix(body, "3:") {
				t.Fatalf("%q: in Kannel 3: means queued, a success", body)
			}
		})
	}
}

// checkQueued finds the spool file of id and parses it as the router will.
func checkQueued(t *testing.T, morx, id string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(morx, "*"+id+"*"))
	if len(matches) != 1 {
		t.Fatalf("spool file for %s: %v", id, matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := smsq.Parse(data, time.UTC)
	if err != nil || m.OA != "5551001" || m.DA != "5551002" {
		t.Fatalf("queued file: %+v %v", m, err)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	srv, _, _ := newServer(t, func(c *Config) { c.Rate, c.Burst, c.Now = 1, 2, clock.now })
	post := func() int {
		resp, _ := do(t, "POST", srv.URL+"/v1/messages", "application/json", "Bearer "+token, `{"from":"1","to":"2","text":"x"}`)
		return resp.StatusCode
	}
	// Failed logins count too: the limit is what makes guessing slow.
	if got := []int{post(), post(), post()}; got[0] != 202 || got[1] != 202 || got[2] != 429 {
		t.Fatalf("burst of 2: got %v", got)
	}
	resp, _ := do(t, "POST", srv.URL+"/v1/messages", "application/json", "Bearer wrong", `{}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("limited client without credentials: %d", resp.StatusCode)
	}
	clock.add(time.Second)
	if got := post(); got != 202 {
		t.Fatalf("after a second: %d", got)
	}
	if got := post(); got != 429 {
		t.Fatalf("bucket should be empty again: %d", got)
	}
}

func TestNewRefusesUnsafeConfig(t *testing.T) {
	submit := func(context.Context, Message) (string, error) { return "", nil }
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"open relay", Config{Submit: submit}, "no tokens or users"},
		{"short token", Config{Tokens: []string{"abc"}, Submit: submit}, "shorter than 16"},
		{"user without password", Config{Users: []User{{Name: "a"}}, Submit: submit}, "needs a name and a password"},
		{"duplicate user", Config{Users: []User{{"a", "b"}, {"a", "c"}}, Submit: submit}, "twice"},
		{"no submit", Config{Tokens: []string{token}}, "no Submit"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}
