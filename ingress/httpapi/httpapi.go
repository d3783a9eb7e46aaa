// Package httpapi is the HTTP API: scripts and monitoring systems queue a message
// with `POST /v1/messages` (JSON) or Kannel's `GET /cgi-bin/sendsms`, get back the
// id the journal will know it by, and ask what became of it with
// `GET /v1/messages/{id}` and `GET /v1/messages`. `GET /v1/openapi.json`
// describes it all.
//
// It is an ingress like FastAGI's postsms, so it lives beside the router: a
// message accepted here is written into the inbox exactly as `smsrouter send`
// does (router.SubmitMessage) and from then on is an ordinary message. Every
// request is authenticated (bearer tokens or users, compared in constant time),
// rate limited per client address before the credentials are even looked at (so
// guessing passwords is slow too) and bounded in size. Every refusal says why in
// words and with a stable machine code (errors.go); Kannel's sendsms answers in
// Kannel's own plain-text dialect (kannel.go), and Kannel's dlr-url callbacks are
// made by Caller (dlrcall.go) for the router/dlr dispatcher.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"smsrouter/router"
	"smsrouter/router/dlr"
)

// User is a username and password, as Kannel's sendsms takes them (and as HTTP
// Basic authentication on /v1/messages).
type User struct {
	Name     string `toml:"name"`
	Password string `toml:"password"`
}

// Message is what a client asks to queue, checked.
type Message struct {
	From, To, Text string
	Validity       time.Duration // 0: the configured default
	UDH            []byte        // a concatenation element (router.ConcatUDH): the message is one part
	Report         *ReportRequest
}

// ReportRequest asks for delivery reports (Kannel's dlr-url and dlr-mask).
type ReportRequest struct {
	URL  string
	Mask dlr.Type
	// Info is what the callback's escape codes need beyond the journal: the
	// sendsms user, coding, charset, udh (see Caller).
	Info map[string]string
}

// Journal is where the API reads messages from (*router.Journal).
type Journal interface {
	Get(ctx context.Context, id string) (router.Record, error)
	GetMany(ctx context.Context, ids []string) ([]router.Record, error)
	Attempts(ctx context.Context, id string) ([]router.Attempt, error)
	List(ctx context.Context, f router.Filter) ([]router.Record, error)
	PartOf(ctx context.Context, id string) (string, error)
	Parts(ctx context.Context, id string) ([]string, error)
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
	// Submit queues a checked message and returns its id (router.SubmitMessage
	// into the inbox, with the report request stored first when there is one).
	// Its errors are the server's (the spool, the database), never the client's.
	Submit func(ctx context.Context, m Message) (string, error)
	// Journal, Locate and Reports answer GET /v1/messages/…; without Journal
	// those routes answer 503 "unavailable". Locate finds a message the journal
	// does not know yet in the spool (router.Admin.Locate); Reports lists the
	// delivery reports asked for it (dlr.Store.Of).
	Journal  Journal
	Locate   func(id string) (router.Spooled, bool, error)
	Reports  func(ctx context.Context, id string) ([]dlr.Status, error)
	Location *time.Location // times in answers are given in this zone; nil: Local
	// HideText leaves messages' texts out of every answer: an API token then
	// lets a script follow messages without reading what people wrote.
	HideText bool
	// Observe, when set, is told every request's endpoint and result: "ok" or
	// the error code. Both come from fixed sets (Endpoints, Codes).
	Observe func(endpoint, result string)
	Log     *slog.Logger
	Now     func() time.Time // for tests; default time.Now
}

// HeaderMessageID carries the accepted message's journal id in every answer.
const HeaderMessageID = "X-Message-Id"

// HeaderErrorCode carries the error code in every refusal, Kannel's plain-text
// ones included.
const HeaderErrorCode = "X-Error-Code"

// API is the http.Handler of the API.
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
	if cfg.Location == nil {
		cfg.Location = time.Local
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
	a.routes()
	return a, nil
}

// route is one operation the API serves: the routing table and the OpenAPI
// description are checked against each other (TestOpenAPIDescribesEveryRoute).
type route struct {
	method, path string // path in the mux's pattern syntax ({id})
	endpoint     string // the metrics label
	auth         bool   // needs credentials (checked before the handler runs)
	handle       func(w http.ResponseWriter, r *http.Request)
}

func (a *API) table() []route {
	return []route{
		{"POST", "/v1/messages", "submit", true, a.postMessage},
		{"GET", "/v1/messages", "messages", true, a.listMessages},
		{"GET", "/v1/messages/{id}", "message", true, a.getMessage},
		{"GET", "/v1/openapi.json", "openapi", false, a.openAPI},
		{"GET", "/cgi-bin/sendsms", "sendsms", false, a.sendsms},
		{"POST", "/cgi-bin/sendsms", "sendsms", false, a.sendsms},
	}
}

// Endpoints are the values of the endpoint label Observe gets.
var Endpoints = []string{"submit", "messages", "message", "openapi", "sendsms", "other"}

// routes registers the table, plus, for each path, an answer for the other
// methods (405 with Allow) and, below /v1/, a JSON 404: every answer of the API
// is in its own dialect, never net/http's plain text.
func (a *API) routes() {
	allow := map[string][]string{}
	var paths []string
	for _, rt := range a.table() {
		rt := rt
		if _, ok := allow[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		a.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			r = withEndpoint(r, rt.endpoint)
			if rt.auth && !a.authorized(r, "", "") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="smsrouter"`)
				a.fail(w, r, errUnauthorized)
				return
			}
			rt.handle(w, r)
		})
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		endpoint := "other"
		for _, rt := range a.table() {
			if rt.path == p {
				endpoint = rt.endpoint
			}
		}
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			r = withEndpoint(r, endpoint)
			w.Header().Set("Allow", methods)
			a.fail(w, r, apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "use "+strings.Replace(methods, ", ", " or ", 1)))
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, withEndpoint(r, "other"), apiErr(http.StatusNotFound, "not_found", "no such path; GET /v1/openapi.json lists them"))
	})
}

type endpointKey struct{}

func withEndpoint(r *http.Request, e string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), endpointKey{}, e))
}

func endpointOf(r *http.Request) string {
	if e, ok := r.Context().Value(endpointKey{}).(string); ok {
		return e
	}
	return "other"
}

// ServeHTTP rate-limits, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !a.limit.allow(host) {
		w.Header().Set("Retry-After", "1")
		if strings.HasPrefix(r.URL.Path, "/cgi-bin/") {
			r = withEndpoint(r, "sendsms")
		}
		a.fail(w, r, apiErr(http.StatusTooManyRequests, "rate_limited", "too many requests; slow down"))
		return
	}
	a.mux.ServeHTTP(w, r)
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
