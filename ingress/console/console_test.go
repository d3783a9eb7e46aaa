package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// rig is a console over a real migrated database and spool, with an admin
// (alice) and a viewer (victor).
type rig struct {
	t     *testing.T
	c     *Console
	cfg   Config
	store *router.Store
	sent  []string
}

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	store, j, admin := openSpoolAndStore(t, dsn)
	r := &rig{t: t, store: store}
	var users []User
	for _, u := range []struct{ name, role string }{{"alice", RoleAdmin}, {"victor", RoleViewer}} {
		h, _ := bcrypt.GenerateFromPassword([]byte(u.name+"-secret"), bcrypt.MinCost)
		users = append(users, User{Name: u.name, PasswordHash: string(h), Role: u.role})
	}
	r.cfg = Config{Users: users, Store: store, Journal: j, Admin: admin, Location: time.UTC, HideTextFromViewers: true,
		Submit: func(_ context.Context, from, to, text string) (string, error) {
			r.sent = append(r.sent, from+">"+to+":"+text)
			return "1796220000000-0000000001", nil
		}}
	c, err := New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// client is one browser: its cookies and the CSRF token of the last page.
type client struct {
	r       *rig
	cookies map[string]*http.Cookie
	csrf    string
}

func (r *rig) client() *client { return &client{r: r, cookies: map[string]*http.Cookie{}} }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (cl *client) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	for _, c := range cl.cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	cl.r.c.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(cl.cookies, c.Name)
		} else {
			cl.cookies[c.Name] = c
		}
	}
	if m := csrfField.FindStringSubmatch(w.Body.String()); m != nil {
		cl.csrf = m[1]
	}
	return w
}

func (cl *client) login(user, pass string) *httptest.ResponseRecorder {
	cl.do("GET", "/ui/login", nil)
	return cl.do("POST", "/ui/login", url.Values{"csrf": {cl.csrf}, "user": {user}, "password": {pass}, "next": {"/ui/directory"}})
}

func TestConsoleAccess(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		if _, err := r.store.SetNumber(ctx, "5551001", "S", "PJSIP/1001"); err != nil {
			t.Fatal(err)
		}
		// Logged out: pages lead to the login, POSTs are refused, static
		// files and the login page are open.
		anon := r.client()
		for _, p := range []string{"/ui/", "/ui/traffic", "/ui/traffic/rows", "/ui/messages/1796220000000-0000000001", "/ui/directory", "/ui/health", "/ui/send", "/ui/nothing"} {
			if w := anon.do("GET", p, nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/ui/login?next=") {
				t.Errorf("logged out GET %s: %d %s", p, w.Code, w.Header().Get("Location"))
			}
		}
		if w := anon.do("POST", "/ui/send", url.Values{"from": {"1"}, "to": {"2"}, "text": {"x"}}); w.Code != http.StatusForbidden {
			t.Errorf("logged out POST: %d", w.Code)
		}
		for _, p := range []string{"/ui/static/style.css", "/ui/static/console.js", "/ui/login"} {
			if w := anon.do("GET", p, nil); w.Code != http.StatusOK {
				t.Errorf("GET %s: %d", p, w.Code)
			}
		}
		// A wrong password, an unknown user, a login form without its token.
		if w := r.client().login("alice", "wrong"); w.Code != http.StatusUnauthorized {
			t.Errorf("wrong password: %d", w.Code)
		}
		if w := r.client().login("mallory", "alice-secret"); w.Code != http.StatusUnauthorized {
			t.Errorf("unknown user: %d", w.Code)
		}
		if w := anon.do("POST", "/ui/login", url.Values{"user": {"alice"}, "password": {"alice-secret"}}); w.Code != http.StatusForbidden {
			t.Errorf("login without its CSRF token: %d", w.Code)
		}

		alice := r.client()
		w := alice.login("alice", "alice-secret")
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/directory" {
			t.Fatalf("login: %d %s", w.Code, w.Header().Get("Location"))
		}
		ck := alice.cookies[sessionCookie]
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != Prefix {
			t.Fatalf("session cookie %+v", ck)
		}
		alice.do("GET", "/ui/directory", nil)
		// Without the token, or with another session's: refused, nothing changed.
		victor := r.client()
		victor.login("victor", "victor-secret")
		victor.do("GET", "/ui/directory", nil)
		for _, tok := range []string{"", victor.csrf, "x"} {
			if w := alice.do("POST", "/ui/directory", url.Values{"csrf": {tok}, "number": {"5551001"}, "letter": {"N"}, "extension": {""}}); w.Code != http.StatusForbidden {
				t.Errorf("POST with token %q: %d", tok, w.Code)
			}
		}
		// The router's own checks: a letter that cannot work is refused.
		if w := alice.do("POST", "/ui/directory", url.Values{"csrf": {alice.csrf}, "number": {"5551001"}, "letter": {"X"}, "extension": {"PJSIP/1"}}); w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "not a service letter") {
			t.Errorf("bad letter: %d", w.Code)
		}
		if e, err := router.NewSQLDirectory(r.store).Lookup(ctx, "5551001"); err != nil || e.Letter != 'S' {
			t.Errorf("after refused edits: %+v %v", e, err)
		}
		if w := alice.do("POST", "/ui/directory", url.Values{"csrf": {alice.csrf}, "number": {"5551001"}, "letter": {"f"}, "extension": {"PJSIP/fax1001"}}); w.Code != http.StatusSeeOther {
			t.Errorf("set: %d %s", w.Code, w.Body.String())
		}
		if e, err := router.NewSQLDirectory(r.store).Lookup(ctx, "5551001"); err != nil || e.Letter != 'F' {
			t.Errorf("after the edit: %+v %v", e, err)
		}
		// An edit by SQL shows at once.
		if _, err := r.store.DB.Exec("UPDATE PBXNumbers SET Extension = 'PJSIP/bysql' WHERE Account = '5551001'"); err != nil {
			t.Fatal(err)
		}
		if w := alice.do("GET", "/ui/directory", nil); !strings.Contains(w.Body.String(), "PJSIP/bysql") {
			t.Error("the directory page does not show an SQL edit")
		}
		// Send: the counter's numbers, the submit, the admin action.
		if w := alice.do("POST", "/ui/send", url.Values{"csrf": {alice.csrf}, "from": {"5550001"}, "to": {"5551001"}, "text": {"two\r\nlines"}}); w.Code != http.StatusSeeOther {
			t.Errorf("send: %d %s", w.Code, w.Body.String())
		}
		if len(r.sent) != 1 || r.sent[0] != "5550001>5551001:two\nlines" {
			t.Errorf("submitted %q", r.sent)
		}
		if w := alice.do("POST", "/ui/send", url.Values{"csrf": {alice.csrf}, "from": {"../x"}, "to": {"5551001"}, "text": {"x"}}); w.Code != http.StatusUnprocessableEntity || len(r.sent) != 1 {
			t.Errorf("send from a bad number: %d, %d sent", w.Code, len(r.sent))
		}
		// Delete, as `number delete` does.
		if _, err := r.store.SetNumber(ctx, "5559000", "S", "PJSIP/9000"); err != nil {
			t.Fatal(err)
		}
		if w := alice.do("POST", "/ui/directory/delete", url.Values{"csrf": {alice.csrf}, "number": {"5559000"}}); w.Code != http.StatusSeeOther {
			t.Errorf("delete: %d", w.Code)
		}
		if _, err := router.NewSQLDirectory(r.store).Lookup(ctx, "5559000"); !errors.Is(err, router.ErrUnknownNumber) {
			t.Errorf("after delete: %v", err)
		}
		var n int
		r.store.DB.QueryRow("SELECT COUNT(*) FROM smsrouter_admin_action WHERE user = 'alice'").Scan(&n)
		if n != 3 {
			t.Errorf("%d admin actions of alice; want 3 (number set, send, number delete)", n)
		}

		// The viewer: a valid token, but no right to change anything.
		for _, p := range []string{"/ui/directory", "/ui/directory/delete", "/ui/send", "/ui/messages/1796220000000-0000000001/retry", "/ui/messages/1796220000000-0000000001/drop"} {
			if w := victor.do("POST", p, url.Values{"csrf": {victor.csrf}, "number": {"5551001"}, "letter": {"N"}, "from": {"5550001"}, "to": {"5551001"}, "text": {"x"}}); w.Code != http.StatusForbidden {
				t.Errorf("viewer POST %s: %d", p, w.Code)
			}
		}

		// A reload: a new console over the same sessions keeps alice logged
		// in, logs out a user no longer configured and applies a new role.
		r.cfg.Sessions = r.c.sessions
		r.cfg.Users = []User{{Name: "alice", PasswordHash: r.cfg.Users[0].PasswordHash, Role: RoleViewer}}
		c2, err := New(r.cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.c = c2
		if w := alice.do("GET", "/ui/directory", nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), `class="numberform"`) {
			t.Errorf("after the reload, alice (now a viewer): %d, edit form shown: %v", w.Code, strings.Contains(w.Body.String(), `class="numberform"`))
		}
		if w := victor.do("GET", "/ui/traffic", nil); w.Code != http.StatusSeeOther {
			t.Errorf("after the reload, victor (removed): %d", w.Code)
		}
		// Logging out ends the session on the server, not only the cookie.
		old := alice.cookies[sessionCookie]
		alice.do("POST", "/ui/logout", url.Values{"csrf": {alice.csrf}})
		alice.cookies[sessionCookie] = old
		if w := alice.do("GET", "/ui/traffic", nil); w.Code != http.StatusSeeOther {
			t.Errorf("the old cookie after logout: %d", w.Code)
		}
	})
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/ui/messages/1": "/ui/messages/1", "//evil.example/ui/": "/ui/traffic", "https://evil.example/": "/ui/traffic",
		"/ui/\\evil": "/ui/traffic", "": "/ui/traffic", "/metrics": "/ui/traffic"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestCheckUsers(t *testing.T) {
	h, _ := HashPassword("a password")
	for _, tc := range []struct {
		users []User
		ok    bool
	}{
		{nil, false},
		{[]User{{Name: "a", PasswordHash: h}}, true},
		{[]User{{Name: "a", PasswordHash: "plain text"}}, false},
		{[]User{{Name: "a", PasswordHash: h, Role: "root"}}, false},
		{[]User{{Name: "a b", PasswordHash: h}}, false},
		{[]User{{Name: "a", PasswordHash: h}, {Name: "a", PasswordHash: h}}, false},
	} {
		if err := CheckUsers(tc.users, 0); (err == nil) != tc.ok {
			t.Errorf("CheckUsers(%v) = %v", tc.users, err)
		}
	}
	if err := CheckUsers(nil, 1); err != nil {
		t.Errorf("no console users but an API login admitted: %v", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("a password")) != nil {
		t.Error("HashPassword's hash does not match its password")
	}
}

// TestTrafficFilters: each filter of the traffic page lists exactly the
// messages it names, on SQLite and MariaDB.
func TestTrafficFilters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
		mk := func(n int, da, letter string, st router.State, detail string) router.Record {
			rt := at.Add(time.Duration(n) * time.Hour)
			return router.Record{ID: fmt.Sprintf("%013d-%010x", rt.UnixMilli(), n), Received: rt, Updated: rt, OA: "5550001", DA: da,
				Letter: letter, State: st, Detail: detail, Text: fmt.Sprintf("message %d", n)}
		}
		recs := []router.Record{
			mk(1, "5551001", "S", router.StateDelivered, "{}"),
			mk(2, "5552000", "F", router.StateDelivered, "{}"),
			mk(3, "48600111222", "L", router.StateDelivered, `{"link":"op_a"}`),
			mk(4, "48600111223", "L", router.StateDeferred, `{"link":"opxa"}`),
			mk(5, "5551001", "S", router.StateBounced, "{}"),
		}
		if err := r.cfg.Journal.Put(context.Background(), "", recs); err != nil {
			t.Fatal(err)
		}
		alice := r.client()
		alice.login("alice", "alice-secret")
		for _, tc := range []struct {
			query string
			want  []int
		}{
			{"", []int{1, 2, 3, 4, 5}},
			{"number=5551001", []int{1, 5}},
			{"letter=F", []int{2}},
			{"letter=l", []int{3, 4}},
			{"link=op_a", []int{3}}, // _ is literal, not LIKE's any character
			{"state=bounced", []int{5}},
			{"since=2026-11-20T12:00&until=2026-11-20T14:30", []int{2, 3, 4}},
			{"number=5551001&state=delivered", []int{1}},
		} {
			w := alice.do("GET", "/ui/traffic/rows?"+tc.query, nil)
			// The list alone, not the counts' links to the oldest messages.
			_, list, ok := strings.Cut(w.Body.String(), `<table class="messages">`)
			if !ok {
				t.Fatalf("?%s: no message list\n%s", tc.query, w.Body.String())
			}
			var got []int
			for _, rec := range recs {
				if strings.Contains(list, `href="/ui/messages/`+rec.ID+`"`) {
					var n int
					fmt.Sscanf(rec.Text, "message %d", &n)
					got = append(got, n)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("?%s lists %v; want %v", tc.query, got, tc.want)
			}
		}
		if w := alice.do("GET", "/ui/traffic?number=../x&letter=Q", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "letter: one of") {
			t.Errorf("bad filters: %d", w.Code)
		}
	})
}

// The HTTP API's users and tokens log in with the role [console] api_role
// gives them; a console user of the same name keeps its own password.
func TestAPILogins(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		cfg := r.cfg
		cfg.APIRole = RoleViewer
		cfg.APILogins = []APILogin{{Name: "kannel", Secret: "kannel-pass"}, {Secret: "a-token-of-16-chars"}, {Name: "alice", Secret: "api-alice"}}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.c = c
		for _, tc := range []struct{ user, pass string }{{"kannel", "kannel-pass"}, {"", "a-token-of-16-chars"}} {
			cl := r.client()
			if w := cl.login(tc.user, tc.pass); w.Code != http.StatusSeeOther {
				t.Fatalf("login %q: %d", tc.user, w.Code)
			}
			if w := cl.do("GET", "/ui/directory", nil); w.Code != http.StatusOK || strings.Contains(w.Body.String(), `name="letter"`) {
				t.Errorf("%q as a viewer: %d, edit form shown: %v", tc.user, w.Code, strings.Contains(w.Body.String(), `name="letter"`))
			}
			if w := cl.do("POST", "/ui/directory", url.Values{"csrf": {cl.csrf}, "number": {"5551009"}, "letter": {"S"}, "extension": {"PJSIP/1009"}}); w.Code != http.StatusForbidden {
				t.Errorf("%q edits the directory: %d", tc.user, w.Code)
			}
			if strings.Contains(cl.do("GET", "/ui/traffic", nil).Body.String(), "a-token-of-16-chars") {
				t.Error("the token is shown on a page")
			}
		}
		for _, tc := range []struct{ user, pass string }{{"kannel", "wrong"}, {"", "a-token-of-16-charX"}, {"", ""}, {"alice", "api-alice"}} {
			if w := r.client().login(tc.user, tc.pass); w.Code != http.StatusUnauthorized {
				t.Errorf("login %q/%q: %d, want refused", tc.user, tc.pass, w.Code)
			}
		}
		if w := r.client().login("alice", "alice-secret"); w.Code != http.StatusSeeOther {
			t.Errorf("the console user alice: %d", w.Code)
		}
	})
}
