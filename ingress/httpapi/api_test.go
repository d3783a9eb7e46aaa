package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/internal/testdb"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// TestErrorBodies sends every kind of bad input to every route and checks the
// answer: the right status, a stable code, words a person can act on, and none
// of Go's or the database's own error text.
func TestErrorBodies(t *testing.T) {
	srv, _, _ := newServer(t, func(c *Config) {
		st, err := router.OpenStore(testdb.SQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if _, err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Journal = router.NewJournal(st)
	})
	bearer := "Bearer " + token
	post := func(body string) [4]string { return [4]string{"POST", "/v1/messages", "application/json", body} }
	get := func(path string) [4]string { return [4]string{"GET", path, "", ""} }
	ks := "/cgi-bin/sendsms?username=kannel&password=s3cret&from=5551001&to=5551002&text=hi"
	for _, c := range []struct {
		name string
		req  [4]string // method, path, content type, body
		auth string
		code int
		err  string // the code
		says string // part of the message
	}{
		{"empty body", post(""), bearer, 400, "bad_json", "empty"},
		{"truncated JSON", post(`{"from":"5551001"`), bearer, 400, "bad_json", "ends too early"},
		{"not JSON", post(`from=1&to=2`), bearer, 400, "bad_json", "not valid JSON"},
		{"array", post(`[1,2]`), bearer, 400, "wrong_type", "one JSON object"},
		{"number as from", post(`{"from":5551001,"to":"5551002","text":"x"}`), bearer, 400, "wrong_type", `field "from" must be a string`},
		{"string validity", post(`{"from":"5551001","to":"5551002","text":"x","validity":"10"}`), bearer, 400, "wrong_type", `"validity" must be a whole number`},
		{"unknown field", post(`{"from":"5551001","to":"5551002","text":"x","pid":1}`), bearer, 400, "unknown_field", `"pid"`},
		{"two values", post(`{"from":"5551001","to":"5551002","text":"x"} {}`), bearer, 400, "bad_json", "more than one"},
		{"bad sender", post(`{"from":"../x","to":"5551002","text":"x"}`), bearer, 400, "bad_number", "sender"},
		{"bad recipient", post(`{"from":"5551001","to":"12345678901234567890","text":"x"}`), bearer, 400, "bad_number", "recipient"},
		{"no text", post(`{"from":"5551001","to":"5551002"}`), bearer, 400, "text_missing", "missing"},
		{"long text", post(`{"from":"5551001","to":"5551002","text":"` + strings.Repeat("x", router.MaxSubmitText+1) + `"}`), bearer, 400, "text_too_long", "at most"},
		{"zero validity", post(`{"from":"5551001","to":"5551002","text":"x","validity":-5}`), bearer, 400, "bad_validity", "1 to 525600"},
		{"huge validity", post(`{"from":"5551001","to":"5551002","text":"x","validity":99999999}`), bearer, 400, "bad_validity", "1 to 525600"},
		{"mask without url", post(`{"from":"5551001","to":"5551002","text":"x","dlr_mask":3}`), bearer, 400, "bad_dlr_url", "needs a dlr_url"},
		{"url without mask", post(`{"from":"5551001","to":"5551002","text":"x","dlr_url":"http://a/"}`), bearer, 400, "bad_dlr_mask", "dlr_mask"},
		{"mask too big", post(`{"from":"5551001","to":"5551002","text":"x","dlr_url":"http://a/","dlr_mask":64}`), bearer, 400, "bad_dlr_mask", "at most 31"},
		{"ftp url", post(`{"from":"5551001","to":"5551002","text":"x","dlr_url":"ftp://a/","dlr_mask":3}`), bearer, 400, "bad_dlr_url", "http"},
		{"relative url", post(`{"from":"5551001","to":"5551002","text":"x","dlr_url":"/dlr?x=%d","dlr_mask":3}`), bearer, 400, "bad_dlr_url", "absolute"},
		{"no credentials", post(`{}`), "", 401, "unauthorized", "authorization failed"},
		{"wrong media type", [4]string{"POST", "/v1/messages", "text/plain", "{}"}, bearer, 415, "unsupported_media_type", "application/json"},
		{"big body", post(`{"text":"` + strings.Repeat("x", 70<<10) + `"}`), bearer, 413, "body_too_large", "larger than"},
		{"put", [4]string{"PUT", "/v1/messages", "", ""}, bearer, 405, "method_not_allowed", "POST or GET"},
		{"post to a message", [4]string{"POST", "/v1/messages/1795239855123-0a1b2c3d4e", "", ""}, bearer, 405, "method_not_allowed", "GET"},
		{"no such path", get("/v1/nothing"), bearer, 404, "not_found", "openapi.json"},
		{"bad id", get("/v1/messages/..%2f..%2fetc"), bearer, 400, "bad_id", "not a message id"},
		{"short id", get("/v1/messages/123"), bearer, 400, "bad_id", "not a message id"},
		{"unknown id", get("/v1/messages/1795239855123-0a1b2c3d4e"), bearer, 404, "not_found", "no message"},
		{"get without credentials", get("/v1/messages/1795239855123-0a1b2c3d4e"), "", 401, "unauthorized", ""},
		{"bad since", get("/v1/messages?since=yesterday"), bearer, 400, "bad_time", "since"},
		{"bad until", get("/v1/messages?until=2026-13-01"), bearer, 400, "bad_time", "until"},
		{"until before since", get("/v1/messages?since=1d&until=2d"), bearer, 400, "bad_time", "after since"},
		{"bad state", get("/v1/messages?state=lost"), bearer, 400, "bad_state", "delivered"},
		{"held is not a journal state", get("/v1/messages?state=held"), bearer, 400, "bad_state", ""},
		{"bad number filter", get("/v1/messages?number=abc"), bearer, 400, "bad_number", ""},
		{"limit 0", get("/v1/messages?limit=0"), bearer, 400, "bad_limit", "1 to 1000"},
		{"limit text", get("/v1/messages?limit=ten"), bearer, 400, "bad_limit", ""},
		{"bad cursor", get("/v1/messages?cursor=abc"), bearer, 400, "bad_cursor", "next_cursor"},
		{"forged cursor", get("/v1/messages?cursor=" + "MTIzLi4vLi4veA"), bearer, 400, "bad_cursor", ""},
		{"typo parameter", get("/v1/messages?stat=delivered"), bearer, 400, "unknown_parameter", `"stat"`},
		// Kannel's sendsms: plain text, the code in the header.
		{"kannel no user", get(strings.Replace(ks, "username=kannel", "username=", 1)), "", 403, "unauthorized", "Authorization failed for sendsms"},
		{"kannel coding 1", get(ks + "&coding=1"), "", 400, "bad_coding", "8-bit"},
		{"kannel coding 3", get(ks + "&coding=3"), "", 400, "bad_coding", "0 (7-bit) or 2"},
		{"kannel charset", get(ks + "&charset=klingon"), "", 400, "bad_charset", "unknown"},
		{"kannel odd UTF-16", get(strings.Replace(ks, "text=hi", "text=hi%21", 1) + "&coding=2"), "", 400, "bad_charset", "odd number"},
		{"kannel lone surrogate", get(strings.Replace(ks, "text=hi", "text=%D8%00", 1) + "&coding=2"), "", 400, "bad_charset", "surrogate"},
		{"kannel bad UTF-8", get(strings.Replace(ks, "text=hi", "text=%E9t%E9", 1)), "", 400, "text_not_utf8", "charset="},
		{"kannel port UDH", get(ks + "&udh=%06%05%04%0B%84%23%F0"), "", 400, "bad_udh", "element 05"},
		{"kannel UDH length", get(ks + "&udh=%09%00%03%01%02%01"), "", 400, "bad_udh", "length octet"},
		{"kannel validity", get(ks + "&validity=soon"), "", 400, "bad_validity", "minutes"},
		{"kannel mask", get(ks + "&dlr-mask=300&dlr-url=http://a/"), "", 400, "bad_dlr_mask", "31"},
		{"kannel mask without url", get(ks + "&dlr-mask=3"), "", 400, "bad_dlr_url", "no default"},
		{"kannel url", get(ks + "&dlr-mask=3&dlr-url=file:///etc/passwd"), "", 400, "bad_dlr_url", "http"},
		{"kannel deferred", get(ks + "&deferred=10"), "", 400, "unsupported_parameter", "deferred"},
		{"kannel mclass", get(ks + "&mclass=1"), "", 400, "unsupported_parameter", "mclass"},
		{"kannel two recipients", get(strings.Replace(ks, "to=5551002", "to=5551002+5551003", 1)), "", 400, "bad_number", "one recipient"},
		{"kannel unencoded plus", get(strings.Replace(ks, "to=5551002", "to=+485551002", 1)), "", 400, "bad_number", "%2B"},
		{"kannel empty text", get(strings.Replace(ks, "text=hi", "text=", 1)), "", 400, "text_missing", ""},
		{"kannel delete", [4]string{"DELETE", ks, "", ""}, "", 405, "method_not_allowed", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, c.req[0], srv.URL+c.req[1], c.req[2], c.auth, c.req[3])
			if resp.StatusCode != c.code || resp.Header.Get(HeaderErrorCode) != c.err {
				t.Fatalf("got %d %s %q, want %d %s", resp.StatusCode, resp.Header.Get(HeaderErrorCode), body, c.code, c.err)
			}
			msg := body
			if strings.HasPrefix(c.req[1], "/v1/") {
				var e map[string]string
				dec := json.NewDecoder(strings.NewReader(body))
				if err := dec.Decode(&e); err != nil || len(e) != 2 || e["code"] != c.err || e["error"] == "" {
					t.Fatalf("not {error, code}: %q", body)
				}
				msg = e["error"]
			} else if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || strings.HasPrefix(body, "3:") {
				t.Fatalf("Kannel refusal %q (%s)", body, ct)
			}
			if !strings.Contains(msg, c.says) {
				t.Fatalf("%q does not say %q", msg, c.says)
			}
			for _, leak := range []string{"json:", "invalid character", "strconv", "sql:", "Go value", "unexpected EOF", "cannot unmarshal"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("%q leaks %q", msg, leak)
				}
			}
			if !slices.Contains(Codes, c.err) {
				t.Fatalf("code %q is not in Codes", c.err)
			}
		})
	}
}

// submitted is a newServer whose Submit also keeps the messages it was given.
func submitted(t *testing.T) (*httptest.Server, string, func() Message) {
	var mu sync.Mutex
	var last Message
	srv, morx, _ := newServer(t, func(c *Config) {
		inner := c.Submit
		c.Submit = func(ctx context.Context, m Message) (string, error) {
			mu.Lock()
			last = m
			mu.Unlock()
			return inner(ctx, m)
		}
	})
	return srv, morx, func() Message { mu.Lock(); defer mu.Unlock(); return last }
}

func TestKannelParameters(t *testing.T) {
	srv, morx, last := submitted(t)
	base := url.Values{"user": {"kannel"}, "pass": {"s3cret"}, "from": {"5551001"}, "to": {"5551002"}}
	for _, c := range []struct {
		name  string
		set   map[string]string
		text  string // what the router will read
		vp    int
		udh   string // hex, as the spool file holds it
		check func(t *testing.T, m Message)
	}{
		{"user/pass aliases, UTF-8 default", map[string]string{"text": "Zażółć 😀"}, "Zażółć 😀", 0, "", nil},
		{"username/password", map[string]string{"user": "", "pass": "", "username": "kannel", "password": "s3cret", "text": "x"}, "x", 0, "", nil},
		{"coding 0 explicit", map[string]string{"coding": "0", "text": "plain"}, "plain", 0, "", nil},
		{"ISO-8859-1", map[string]string{"charset": "ISO-8859-1", "text": "caf\xe9 \xa3"}, "café £", 0, "", nil},
		{"windows-1250", map[string]string{"charset": "windows-1250", "text": "\xb9\x9c"}, "ąś", 0, "", nil},
		{"UCS-2 defaults to UTF-16BE", map[string]string{"coding": "2", "text": "\x00H\x01\x05\xd8\x3d\xde\x00"}, "Hą😀", 0, "", nil},
		{"UCS-2 with UTF-8 charset", map[string]string{"coding": "2", "charset": "UTF-8", "text": "ą"}, "ą", 0, "", nil},
		{"validity", map[string]string{"validity": "90", "text": "v"}, "v", 90, "", func(t *testing.T, m Message) {
			if m.Validity != 90*time.Minute {
				t.Errorf("validity %v", m.Validity)
			}
		}},
		{"concatenated part", map[string]string{"udh": "\x05\x00\x03\x2a\x02\x01", "text": "first half "}, "first half ", 0, "00032A0201", nil},
		{"16-bit reference part", map[string]string{"udh": "\x06\x08\x04\x01\x02\x02\x02", "text": "second"}, "second", 0, "080401020202", nil},
		{"delivery reports", map[string]string{"dlr-mask": "31", "dlr-url": "http://127.0.0.1:9/dlr?id=%I&type=%d&to=%P", "text": "r", "charset": "UTF-8", "coding": "0"}, "r", 0, "", func(t *testing.T, m Message) {
			if m.Report == nil || m.Report.Mask != dlr.AllTypes || m.Report.URL != "http://127.0.0.1:9/dlr?id=%I&type=%d&to=%P" ||
				m.Report.Info["user"] != "kannel" || m.Report.Info["from"] != "5551001" || m.Report.Info["to"] != "5551002" || m.Report.Info["charset"] != "UTF-8" {
				t.Errorf("report %+v", m.Report)
			}
		}},
		{"old spellings dlrmask/dlrurl", map[string]string{"dlrmask": "3", "dlrurl": "https://example.com/x", "text": "r"}, "r", 0, "", func(t *testing.T, m Message) {
			if m.Report == nil || m.Report.Mask != 3 {
				t.Errorf("report %+v", m.Report)
			}
		}},
		{"url without mask asks for nothing", map[string]string{"dlr-url": "http://a/x", "text": "r"}, "r", 0, "", func(t *testing.T, m Message) {
			if m.Report != nil {
				t.Errorf("report %+v", m.Report)
			}
		}},
		{"ignored hints", map[string]string{"smsc": "gsm1", "account": "x", "priority": "1", "text": "h"}, "h", 0, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range base {
				q[k] = v
			}
			for k, v := range c.set {
				if v == "" {
					q.Del(k)
				} else {
					q.Set(k, v)
				}
			}
			for _, method := range []string{"GET", "POST"} {
				var resp *http.Response
				var body string
				if method == "GET" {
					resp, body = do(t, "GET", srv.URL+"/cgi-bin/sendsms?"+q.Encode(), "", "", "")
				} else {
					resp, body = do(t, "POST", srv.URL+"/cgi-bin/sendsms", "application/x-www-form-urlencoded", "", q.Encode())
				}
				if resp.StatusCode != 202 || body != "0: Accepted for delivery" {
					t.Fatalf("%s: %d %q", method, resp.StatusCode, body)
				}
				id := resp.Header.Get(HeaderMessageID)
				m := readQueued(t, morx, id)
				if m.Text != c.text || m.VP != c.vp || fmt.Sprintf("%X", m.UDH) != c.udh || m.HasUDH != (c.udh != "") {
					t.Fatalf("%s: queued text %q vp %d udh %X, want %q %d %s", method, m.Text, m.VP, m.UDH, c.text, c.vp, c.udh)
				}
				if c.check != nil {
					c.check(t, last())
				}
			}
		})
	}
}

func readQueued(t *testing.T, dir, id string) *smsq.Message {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*"+id+"*"))
	if len(matches) != 1 {
		t.Fatalf("spool file for %s: %v", id, matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := smsq.Parse(data, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJSONSubmitWithValidityAndReports(t *testing.T) {
	srv, morx, last := submitted(t)
	resp, body := do(t, "POST", srv.URL+"/v1/messages", "application/json", "Bearer "+token,
		`{"from":"5551001","to":"5551002","text":"hi","validity":15,"dlr_url":"http://127.0.0.1:9/x?s=%d","dlr_mask":3}`)
	if resp.StatusCode != 202 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	m := readQueued(t, morx, resp.Header.Get(HeaderMessageID))
	if m.VP != 15 {
		t.Fatalf("vp %d", m.VP)
	}
	if r := last().Report; r == nil || r.Mask != 3 || r.URL != "http://127.0.0.1:9/x?s=%d" {
		t.Fatalf("report %+v", r)
	}
}

// TestOpenAPIDescribesEveryRoute holds the routing table and the description
// to each other, and asks the real server for every described operation.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var described, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	a, err := New(Config{Tokens: []string{token}, Submit: func(context.Context, Message) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range a.table() {
		served = append(served, rt.method+" "+rt.path)
	}
	sort.Strings(described)
	sort.Strings(served)
	if !slices.Equal(described, served) {
		t.Fatalf("described %v\nserved    %v", described, served)
	}
	// Every error code the API can give is in the description's Error schema.
	var full map[string]any
	json.Unmarshal(OpenAPI(), &full)
	enum := full["components"].(map[string]any)["schemas"].(map[string]any)["Error"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	var listed []string
	for _, e := range enum {
		listed = append(listed, e.(string))
	}
	if !slices.Equal(listed, Codes) {
		t.Fatalf("Error.code enum %v\nCodes %v", listed, Codes)
	}
	// And the server answers each, none with a 404 or a 405.
	srv, _, _ := newServer(t, nil)
	for _, op := range served {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "1795239855123-0a1b2c3d4e")
		resp, body := do(t, method, srv.URL+path, "", "Bearer "+token, "")
		if resp.StatusCode == 404 && resp.Header.Get(HeaderErrorCode) == "not_found" && !strings.Contains(body, "no message") || resp.StatusCode == 405 {
			t.Errorf("%s: %d %s", op, resp.StatusCode, body)
		}
	}
	resp, body := do(t, "GET", srv.URL+"/v1/openapi.json", "", "", "")
	if resp.StatusCode != 200 || !json.Valid([]byte(body)) {
		t.Fatalf("openapi.json served %d", resp.StatusCode)
	}
}

func TestExpand(t *testing.T) {
	at := time.Date(2026, 12, 1, 13, 4, 5, 0, time.UTC)
	v := Values{Type: 1, Reply: "id:x stat:DELIVRD", From: "0048555", To: "+48 1&2", ID: "1795239855123-0a1b2c3d4e", At: at,
		User: "play sms", Coding: "2", Charset: "UTF-16BE", UDH: []byte{5, 0, 3, 1, 2, 1}, SMSC: "smsrouter"}
	for _, c := range []struct{ in, want string }{
		{"http://h/?t=%d&a=%A", "http://h/?t=1&a=id%3Ax+stat%3ADELIVRD"},
		{"%p %P", "0048555 %2B48+1%262"},
		{"%q|%Q", "%2B48555|%2B48+1%262"},
		{"%I=%F", "1795239855123-0a1b2c3d4e=1795239855123-0a1b2c3d4e"},
		{"%t %T", "2026-12-01+13%3A04%3A05 " + fmt.Sprint(at.Unix())},
		{"%n %c %C %i %k", "play+sms 2 UTF-16BE smsrouter id%3Ax"},
		{"%u", "%05%00%03%01%02%01"},
		{"%B%D%o%f%R%v%V%m%M%O", ""},
		{"100%% %z %", "100% %z %"},
	} {
		if got := Expand(c.in, v); got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestCallerCallsRealReceivers calls real HTTP servers: success, failure,
// redirects (same host followed, another host refused for good) and a stall.
func TestCallerCallsRealReceivers(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.RequestURI())
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("thanks"))
		case "/fail":
			http.Error(w, "down", 500)
		case "/hop":
			http.Redirect(w, r, "/ok?hopped=1", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://127.0.0.2:1/steal", http.StatusFound)
		case "/slow":
			time.Sleep(2 * time.Second)
		}
	}))
	defer receiver.Close()
	c := NewCaller(time.UTC)
	now := time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)
	rec := &router.Record{ID: "1795239855123-0a1b2c3d4e", State: router.StateExpired, Received: now.Add(-time.Hour), Updated: now}
	rep := func(target string, typ dlr.Type) dlr.Report {
		return dlr.Report{Request: dlr.Request{ID: rec.ID, Kind: KindKannel, Target: target, Mask: 31,
			Info: map[string]string{"from": "5551001", "to": "5551002", "user": "kannel"}}, Type: typ, Record: rec, At: now}
	}
	ctx := context.Background()
	if err := c.Send(ctx, rep(receiver.URL+"/ok?type=%d&reply=%A&from=%p&to=%P", dlr.Failed)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := hits[len(hits)-1]
	mu.Unlock()
	u, _ := url.Parse(got)
	if q := u.Query(); q.Get("type") != "2" || q.Get("from") != "5551001" || q.Get("to") != "5551002" ||
		q.Get("reply") != "id:1795239855123-0a1b2c3d4e sub:001 dlvrd:000 submit date:2612011200 done date:2612011300 stat:EXPIRED err:000 text:" {
		t.Fatalf("called %s", got)
	}
	if err := c.Send(ctx, rep(receiver.URL+"/fail", dlr.Delivered)); err == nil || dlr.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("500: %v", err)
	}
	if err := c.Send(ctx, rep(receiver.URL+"/hop", dlr.Delivered)); err != nil {
		t.Fatalf("same-host redirect: %v", err)
	}
	if err := c.Send(ctx, rep(receiver.URL+"/away", dlr.Delivered)); err == nil || !dlr.IsPermanent(err) {
		t.Fatalf("redirect to another host: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.Send(sctx, rep(receiver.URL+"/slow", dlr.Delivered)); err == nil || dlr.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stall: %v", err)
	}
	if err := c.Send(ctx, rep("gopher://x/%d", dlr.Delivered)); !dlr.IsPermanent(err) {
		t.Fatalf("gopher: %v", err)
	}
	if got := c.reply(rep("", dlr.Accepted)); got != "ACK/" {
		t.Fatalf("accepted reply %q", got)
	}
}
