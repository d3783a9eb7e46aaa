// Package httpapi is the HTTP send API: scripts and monitoring systems queue a
// message with `POST /v1/messages` (JSON) or Kannel's `GET /cgi-bin/sendsms`, and
// get back the id the journal will know it by.
//
// It is an ingress like FastAGI's postsms, so it lives beside the router: a
// message accepted here is written into the morx spool exactly as `smsrouter
// send` does (router.SubmitTo) and from then on is an ordinary message. Every
// request is authenticated (bearer tokens or users, compared in constant time),
// rate limited per client address before the credentials are even looked at (so
// guessing passwords is slow too) and bounded in size.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"smsrouter/router"
)

// User is a username and password, as Kannel's sendsms takes them (and as HTTP
// Basic authentication on /v1/messages).
type User struct {
	Name     string `toml:"name"`
	Password string `toml:"password"`
}

// Config configures the API.
type Config struct {
	Tokens []string // accepted as "Authorization: Bearer <token>"
	Users  []User
	// Rate is the number of requests per second one client address may make,
	// Burst how many it may make at once. Rate 0 means 10 per second.
	Rate  float64
	Burst int
	// MaxBody bounds a request body; 0 means 64 KiB, far more than the longest
	// message (router.MaxSubmitText characters, at most 4 bytes each, as JSON).
	MaxBody int64
	// Submit queues a message and returns its id (router.SubmitTo into the morx
	// folder).
	Submit func(from, to, text string) (string, error)
	// Observe, when set, is told every request's endpoint and status (metrics).
	Observe func(endpoint string, code int)
	Log     *slog.Logger
	Now     func() time.Time // for tests; default time.Now
}

// HeaderMessageID carries the accepted message's journal id in every answer.
const HeaderMessageID = "X-Message-Id"

// API is the http.Handler of the send API.
type API struct {
	cfg    Config
	tokens [][32]byte
	users  map[string][32]byte
	limit  *limiter
	mux    *http.ServeMux
}

// New checks the configuration. An API with no tokens and no users is refused:
// an open relay into the phones is never what anyone meant.
func New(cfg Config) (*API, error) {
	if len(cfg.Tokens) == 0 && len(cfg.Users) == 0 {
		return nil, errors.New("httpapi: no tokens or users configured")
	}
	if cfg.Submit == nil {
		return nil, errors.New("httpapi: no Submit function")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.Rate*2))
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, users: map[string][32]byte{}, mux: http.NewServeMux()}
	for i, t := range cfg.Tokens {
		if len(t) < 16 {
			return nil, fmt.Errorf("httpapi: token %d is shorter than 16 characters", i+1)
		}
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	for _, u := range cfg.Users {
		if u.Name == "" || u.Password == "" {
			return nil, fmt.Errorf("httpapi: user %q needs a name and a password", u.Name)
		}
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("httpapi: user %q configured twice", u.Name)
		}
		a.users[u.Name] = sha256.Sum256([]byte(u.Password))
	}
	a.limit = newLimiter(cfg.Rate, float64(cfg.Burst), cfg.Now)
	a.mux.HandleFunc("/v1/messages", a.postMessage)
	a.mux.HandleFunc("/cgi-bin/sendsms", a.sendsms)
	return a, nil
}

// ServeHTTP rate-limits, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !a.limit.allow(host) {
		w.Header().Set("Retry-After", "1")
		a.reply(w, r, http.StatusTooManyRequests, "too many requests", "")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Accepted is the JSON answer of POST /v1/messages.
type Accepted struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
}

// Submission is the JSON body of POST /v1/messages.
type Submission struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
}

func (a *API) postMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		a.reply(w, r, http.StatusMethodNotAllowed, "use POST", "")
		return
	}
	if !a.authorized(r, "", "") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smsrouter"`)
		a.reply(w, r, http.StatusUnauthorized, "authorization failed", "")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.reply(w, r, http.StatusUnsupportedMediaType, "send Content-Type: application/json", "")
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var s Submission
	if err := dec.Decode(&s); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.reply(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", a.cfg.MaxBody), "")
			return
		}
		a.reply(w, r, http.StatusBadRequest, "bad JSON: "+err.Error(), "")
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		a.reply(w, r, http.StatusBadRequest, "bad JSON: more than one object", "")
		return
	}
	a.submit(w, r, s)
}

// sendsms is Kannel's interface: GET (or POST form) with username, password,
// from, to and text. Kannel's replies are plain text starting with a status.
func (a *API) sendsms(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		a.reply(w, r, http.StatusMethodNotAllowed, "use GET", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.reply(w, r, http.StatusRequestEntityTooLarge, "request too large", "")
			return
		}
		a.reply(w, r, http.StatusBadRequest, "bad request: "+err.Error(), "")
		return
	}
	if !a.authorized(r, r.Form.Get("username"), r.Form.Get("password")) {
		a.reply(w, r, http.StatusForbidden, "Authorization failed for sendsms", "")
		return
	}
	a.submit(w, r, Submission{From: r.Form.Get("from"), To: r.Form.Get("to"), Text: r.Form.Get("text")})
}

func (a *API) submit(w http.ResponseWriter, r *http.Request, s Submission) {
	if !utf8.ValidString(s.Text) {
		a.reply(w, r, http.StatusBadRequest, "text is not valid UTF-8", "")
		return
	}
	for _, c := range []struct{ role, v string }{{"sender", s.From}, {"recipient", s.To}} {
		if err := router.CheckNumber(c.role, c.v); err != nil {
			a.reply(w, r, http.StatusBadRequest, err.Error(), "")
			return
		}
	}
	if s.Text == "" {
		a.reply(w, r, http.StatusBadRequest, "text is missing", "")
		return
	}
	if n := utf8.RuneCountInString(s.Text); n > router.MaxSubmitText {
		a.reply(w, r, http.StatusBadRequest, fmt.Sprintf("text has %d characters; at most %d fit in one concatenated SMS", n, router.MaxSubmitText), "")
		return
	}
	id, err := a.cfg.Submit(s.From, s.To, s.Text)
	if err != nil {
		// Validation happened above, so what is left is the spool: our problem,
		// not the client's.
		a.cfg.Log.Error("http send: cannot queue", "from", s.From, "to", s.To, "err", err)
		a.reply(w, r, http.StatusServiceUnavailable, "cannot queue the message now", "")
		return
	}
	a.cfg.Log.Info("http send: queued", "id", id, "from", s.From, "to", s.To, "remote", r.RemoteAddr)
	a.reply(w, r, http.StatusAccepted, "", id)
}

// authorized accepts a bearer token, HTTP Basic credentials or the given
// username/password. Every secret is compared through its SHA-256 in constant
// time, and every configured one is tried, so neither the length of a secret nor
// which one matched shows in the timing.
func (a *API) authorized(r *http.Request, user, pass string) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
			match := 0
			for _, t := range a.tokens {
				match |= subtle.ConstantTimeCompare(sum[:], t[:])
			}
			return match == 1
		}
		if u, p, ok := r.BasicAuth(); ok {
			user, pass = u, p
		}
	}
	if user == "" {
		return false
	}
	want, known := a.users[user]
	sum := sha256.Sum256([]byte(pass))
	ok := subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	return known && ok
}

// reply answers in the dialect of the endpoint: JSON for /v1, Kannel's plain
// text ("0: Accepted for delivery", "3: …") for sendsms. The journal id is in the
// body and in the X-Message-Id header for both.
func (a *API) reply(w http.ResponseWriter, r *http.Request, code int, msg, id string) {
	endpoint := "v1"
	if strings.HasPrefix(r.URL.Path, "/cgi-bin/") {
		endpoint = "sendsms"
	} else if r.URL.Path != "/v1/messages" {
		endpoint = "other"
	}
	if a.cfg.Observe != nil {
		a.cfg.Observe(endpoint, code)
	}
	w.Header().Set("Cache-Control", "no-store")
	if id != "" {
		w.Header().Set(HeaderMessageID, id)
	}
	if endpoint == "sendsms" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		if id != "" {
			fmt.Fprintf(w, "0: Accepted for delivery %s\n", id)
		} else {
			fmt.Fprintf(w, "3: %s\n", msg)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(Accepted{ID: id, Error: msg}) //nolint:errcheck // the client went away
}

// limiter is a token bucket per client address. Buckets that are full again are
// forgotten, so the map stays as small as the set of recently busy clients.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: burst, now: now, buckets: map[string]*bucket{}}
}

func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
