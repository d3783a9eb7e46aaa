// Package console is the web console: a PBX admin's page in a browser for what
// `smsrouter journal`, `send` and `number` do over SSH. It is served by `serve`
// under /ui/ on the HTTP API's listener, rendered on the server with
// html/template from embedded files (no CDN, no build step), usable without
// JavaScript (a small script only refreshes the traffic list and counts the
// parts of a message being typed).
//
// It is an ingress: what it sends goes through the same submit path as
// `smsrouter send`, retry and drop are router.Admin's verbs, directory edits are
// the store's SetNumber with its checks, and every change is written to
// smsrouter_admin_action with the user who made it. Nothing of it is reachable
// without a login, except the login page and the static assets.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"smsrouter/ingress/httpapi"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Roles a console user may have.
const (
	RoleViewer = "viewer" // sees traffic, messages, the directory and health
	RoleAdmin  = "admin"  // and sends, retries, drops and edits the directory
)

// User is a console login: a bcrypt hash of the password (`smsrouter console
// hash-password`), never the password itself.
type User struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
	Role         string `toml:"role"` // viewer or admin; default viewer

	// secret is an HTTP API login's password or token, compared as it is: the
	// API keeps its credentials in clear (Kannel's sendsms sends them with every
	// request, too often for a bcrypt check each).
	secret string
}

// APILogin is a credential of the HTTP API that may also log in to the console:
// a user's name and password, or a token (Name empty: typed into the password
// field with the name left empty).
type APILogin struct {
	Name, Secret string
}

// tokenUser names a token's logins (sessions, admin actions) without the token:
// the first bytes of its hash tell two tokens apart.
func tokenUser(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token-" + hex.EncodeToString(sum[:4])
}

// Finding is one doctor check as the console shows it. Numbers, when set, are
// the directory numbers it concerns, so it is shown beside their rows.
type Finding struct {
	Name, Level, Detail, Fix string
	Numbers                  []string
}

// Config is what the console reads and acts through.
type Config struct {
	Users []User
	// APILogins are the HTTP API's users and tokens, admitted with APIRole
	// (viewer or admin); a console user of the same name takes precedence.
	APILogins []APILogin
	APIRole   string
	// HideTextFromViewers leaves messages' texts out of every page a viewer sees.
	HideTextFromViewers bool
	// SecureCookies marks the session cookie Secure even on a plain-HTTP request
	// (behind a TLS proxy); a request that came over TLS always gets it.
	SecureCookies bool
	SessionTTL    time.Duration // idle time after which a login ends; 0: 8 hours
	// Sessions, when set, are logins kept from a previous console (serve's
	// reload); nil: a new, empty set.
	Sessions *Sessions

	Store   *router.Store   // the directory and the admin action log
	Journal *router.Journal // nil while the database is not open: pages say so
	Admin   *router.Admin   // retry, drop, where a message waits
	Reports func(ctx context.Context, id string) ([]dlr.Status, error)
	// Submit queues a message exactly like `smsrouter send` and returns its id.
	Submit func(ctx context.Context, from, to, text string) (string, error)
	// Health runs the doctor's checks; Lint its directory checks alone.
	Health func(ctx context.Context) []Finding
	Lint   func(ctx context.Context) []Finding
	// CheckVoice asks the speech engine whether it has a language (nil:
	// stored unchecked, like `number voice --no-check`).
	CheckVoice func(ctx context.Context, lang, voice string) error
	// MaxParts is the S channel's longest message in parts ([sms] max_parts).
	MaxParts int
	Location *time.Location
	Log      *slog.Logger
	Now      func() time.Time
}

// Console is the http.Handler of /ui/.
type Console struct {
	cfg      Config
	users    map[string]User
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux

	countsMu  sync.Mutex // one counting at a time; the others wait for its result
	countsAt  time.Time
	countsVal []stateCount
}

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// CheckUsers checks the configured users: names, roles and that every hash is
// a bcrypt hash (a password written there by mistake is refused).
func CheckUsers(users []User, apiLogins int) error {
	if len(users) == 0 && apiLogins == 0 {
		return errors.New("no [[console.users]] and no HTTP API users or tokens admitted: nobody could log in")
	}
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u.Name == "" || strings.ContainsAny(u.Name, " \t\r\n"):
			return fmt.Errorf("console user %q: a name without blanks is needed", u.Name)
		case seen[u.Name]:
			return fmt.Errorf("console user %q configured twice", u.Name)
		case u.Role != "" && u.Role != RoleViewer && u.Role != RoleAdmin:
			return fmt.Errorf("console user %q: role %q (want viewer or admin)", u.Name, u.Role)
		case !isBcrypt(u.PasswordHash):
			return fmt.Errorf("console user %q: password_hash is not a bcrypt hash (make one with `smsrouter console hash-password`)", u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

// New checks the configuration and builds the console.
func New(cfg Config) (*Console, error) {
	if err := CheckUsers(cfg.Users, len(cfg.APILogins)); err != nil {
		return nil, err
	}
	if len(cfg.APILogins) > 0 && cfg.APIRole != RoleViewer && cfg.APIRole != RoleAdmin {
		return nil, fmt.Errorf("console: API logins need a role, viewer or admin, not %q", cfg.APIRole)
	}
	if cfg.Submit == nil || cfg.Store == nil || cfg.Admin == nil {
		return nil, errors.New("console: Store, Admin and Submit are needed")
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.MaxParts <= 0 {
		cfg.MaxParts = 10
	}
	if cfg.Sessions == nil {
		cfg.Sessions = NewSessions()
	}
	cfg.Sessions.configure(cfg.SessionTTL, cfg.Now)
	c := &Console{cfg: cfg, users: map[string]User{}, sessions: cfg.Sessions}
	for _, u := range cfg.Users {
		if u.Role == "" {
			u.Role = RoleViewer
		}
		c.users[u.Name] = u
	}
	for _, l := range cfg.APILogins {
		name := l.Name
		if name == "" {
			name = tokenUser(l.Secret)
		}
		if _, taken := c.users[name]; !taken && l.Secret != "" {
			c.users[name] = User{Name: name, Role: cfg.APIRole, secret: l.Secret}
		}
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheFor(http.FileServerFS(static))))
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.user(c.logout))
	m.HandleFunc("GET /ui/{$}", c.user(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, "/ui/traffic", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /ui/traffic", c.user(c.trafficPage))
	m.HandleFunc("GET /ui/traffic/rows", c.user(c.trafficRows))
	m.HandleFunc("GET /ui/messages/{id}", c.user(c.messagePage))
	m.HandleFunc("GET /ui/messages/{id}/fax/{file}/{page}", c.user(c.faxPage))
	m.HandleFunc("GET /ui/messages/{id}/audio/{file}", c.user(c.audio))
	m.HandleFunc("POST /ui/messages/{id}/retry", c.admin(c.retry))
	m.HandleFunc("POST /ui/messages/{id}/drop", c.admin(c.drop))
	m.HandleFunc("GET /ui/send", c.user(c.sendPage))
	m.HandleFunc("POST /ui/send", c.admin(c.send))
	m.HandleFunc("GET /ui/directory", c.user(c.directoryPage))
	m.HandleFunc("POST /ui/directory", c.admin(c.setNumber))
	m.HandleFunc("POST /ui/directory/delete", c.admin(c.deleteNumber))
	m.HandleFunc("GET /ui/health", c.user(c.healthPage))
	m.HandleFunc("/ui/", c.user(func(w http.ResponseWriter, r *http.Request, s *session) {
		c.problem(w, r, s, http.StatusNotFound, "No such page.")
	}))
	c.mux = m
}

// ServeHTTP serves /ui/… with the headers every page carries: no caching of
// what may hold message texts, no framing, a script policy that allows only
// our own files.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

// source is where message pages are read from: the API's own code path.
func (c *Console) source(hideText bool) httpapi.Source {
	src := httpapi.Source{Journal: c.cfg.Journal, Reports: c.cfg.Reports, Location: c.cfg.Location, HideText: hideText}
	if c.cfg.Admin != nil {
		src.Locate = c.cfg.Admin.Locate
	}
	return src
}

// hideText reports whether s must not see message texts.
func (c *Console) hideText(s *session) bool {
	return c.cfg.HideTextFromViewers && s.role != RoleAdmin
}
