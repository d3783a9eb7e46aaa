package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Cookie names: the session, and the login form's own CSRF token (there is no
// session yet to hold it).
const (
	sessionCookie = "smsrouter_console"
	loginCookie   = "smsrouter_console_login"
)

// HashPassword makes the password_hash of a console user.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

func isBcrypt(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

// dummyHash is compared against for unknown users, so that a wrong name takes
// as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// session is one login. Its CSRF token goes into every form and must come back
// with every POST.
type session struct {
	id, user, role, csrf string
	seen                 time.Time
}

// Sessions are the logins of a console. serve keeps them across a reload, so
// that a SIGHUP does not log everyone out; each console built over them checks
// every session's user against its own configuration.
type Sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]*session
}

// NewSessions makes an empty set of logins.
func NewSessions() *Sessions {
	return &Sessions{ttl: 8 * time.Hour, now: time.Now, m: map[string]*session{}}
}

type sessions = Sessions

func (ss *sessions) configure(ttl time.Duration, now func() time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.ttl, ss.now = ttl, now
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) start(user, role string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for id, s := range ss.m {
		if now.Sub(s.seen) > ss.ttl {
			delete(ss.m, id)
		}
	}
	s := &session{id: randomToken(), user: user, role: role, csrf: randomToken(), seen: now}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.Sub(s.seen) > ss.ttl {
		delete(ss.m, id)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || c.cfg.SecureCookies}
}

// session returns the request's login, nil when there is none. A user no
// longer configured (removed by a reload) is logged out; the role is the one
// configured now.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s := c.sessions.get(ck.Value)
	if s == nil {
		return nil
	}
	u, ok := c.users[s.user]
	if !ok {
		c.sessions.end(s.id)
		return nil
	}
	s.role = u.Role
	return s
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// user admits logged-in users: a page asked for without a login leads to the
// login page, a POST is refused. Every POST must carry the session's CSRF
// token.
func (c *Console) user(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				c.problem(w, r, s, http.StatusForbidden, "The form is stale or was not sent by this console (CSRF token missing or wrong). Reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

// admin admits admins only.
func (c *Console) admin(h handler) http.HandlerFunc {
	return c.user(func(w http.ResponseWriter, r *http.Request, s *session) {
		if s.role != RoleAdmin {
			c.problem(w, r, s, http.StatusForbidden, "Your role is viewer: you may look, not change.")
			return
		}
		h(w, r, s)
	})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, "/ui/traffic", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomToken()
	http.SetCookie(w, c.cookie(r, loginCookie, tok, 600))
	c.render(w, r, nil, code, "login", map[string]any{"CSRF": tok, "Next": safeNext(r.FormValue("next")), "Error": msg})
}

// safeNext keeps the page to go to after login inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/traffic"
	}
	return next
}

// authenticate checks a login form's name and password: a console user's
// bcrypt hash, an API user's password, or (name empty) an API token.
func (c *Console) authenticate(name, pass string) (User, bool) {
	if name == "" {
		name = tokenUser(pass)
	}
	u, known := c.users[name]
	if known && u.secret != "" {
		return u, subtle.ConstantTimeCompare([]byte(pass), []byte(u.secret)) == 1
	}
	hash := dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}
	return u, bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && known
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.showLogin(w, r, http.StatusForbidden, "The login form is stale or was not sent by this console. Try again.")
		return
	}
	name, pass := r.PostFormValue("user"), r.PostFormValue("password")
	u, ok := c.authenticate(name, pass)
	if !ok {
		c.cfg.Log.Warn("console: login refused", "user", clip(name, 40), "remote", r.RemoteAddr)
		c.showLogin(w, r, http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	s := c.sessions.start(u.Name, u.Role)
	http.SetCookie(w, c.cookie(r, loginCookie, "", -1))
	http.SetCookie(w, c.cookie(r, sessionCookie, s.id, 0))
	c.cfg.Log.Info("console: login", "user", u.Name, "role", u.Role, "remote", r.RemoteAddr)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s.id)
	http.SetCookie(w, c.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
