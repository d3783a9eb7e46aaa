package main

// The web console (ingress/console) inside serve: its [console] section, how
// it is wired to the running system, and `smsrouter console hash-password`.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"smsrouter/ingress/console"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// ConsoleConfig is the web console, served under /ui/ on the [http] listener.
type ConsoleConfig struct {
	Enabled bool           `toml:"enabled"`
	Users   []console.User `toml:"users"`
	// HideTextFromViewers leaves messages' texts out of what viewers see.
	HideTextFromViewers bool `toml:"hide_text_from_viewers"`
	// SecureCookies marks the session cookie Secure behind a TLS proxy.
	SecureCookies bool     `toml:"secure_cookies"`
	SessionTTL    duration `toml:"session_ttl"`
	// APIRole admits the [http] users and tokens with this role; "none" keeps
	// them out. Default viewer: they can read messages over the API already.
	APIRole string `toml:"api_role"`
}

// apiRole is [console] api_role with its default.
func (c ConsoleConfig) apiRole() string {
	if c.APIRole == "" {
		return console.RoleViewer
	}
	return c.APIRole
}

// apiLogins are the [http] credentials the console admits (none with api_role
// "none").
func (c ConsoleConfig) apiLogins(h HTTPConfig) ([]console.APILogin, error) {
	if c.apiRole() == "none" {
		return nil, nil
	}
	tokens, users, err := h.credentials()
	if err != nil {
		return nil, err
	}
	var out []console.APILogin
	for _, t := range tokens {
		out = append(out, console.APILogin{Secret: t})
	}
	for _, u := range users {
		out = append(out, console.APILogin{Name: u.Name, Secret: u.Password})
	}
	return out, nil
}

// check is prepare's view of [console].
func (c ConsoleConfig) check(h HTTPConfig) error {
	if !c.Enabled {
		return nil
	}
	if h.Listen == "" {
		return errors.New("[console] enabled needs [http] listen: the console is served under /ui/ on the API's listener")
	}
	switch c.apiRole() {
	case console.RoleViewer, console.RoleAdmin, "none":
	default:
		return fmt.Errorf("[console] api_role %q: want viewer, admin or none", c.APIRole)
	}
	logins, err := c.apiLogins(h)
	if err != nil {
		return prefix("[console]", err)
	}
	return prefix("[console]", console.CheckUsers(c.Users, len(logins)))
}

// newConsole builds the console over the running system s (nil while serve
// waits for the database: the console then answers 503).
func (sv *service) newConsole(p *plan, s *system) http.Handler {
	if s == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "smsrouter is waiting for its database; the console opens once it answers", http.StatusServiceUnavailable)
		})
	}
	cfg := p.cfg
	admin, err := router.NewAdmin(p.rc, s.journal)
	if err != nil {
		return sv.consoleBroken(err)
	}
	inbox := router.InboxDir(cfg.workDir())
	reqs := dlr.NewStore(s.store)
	maxParts := cfg.SMS.MaxParts
	logins, err := cfg.Console.apiLogins(cfg.HTTP)
	if err != nil {
		return sv.consoleBroken(err)
	}
	cc := console.Config{
		Users: cfg.Console.Users, APILogins: logins, APIRole: cfg.Console.apiRole(),
		HideTextFromViewers: cfg.Console.HideTextFromViewers,
		SecureCookies:       cfg.Console.SecureCookies, SessionTTL: cfg.Console.SessionTTL.Duration,
		Sessions: sv.consoleSessions, Store: s.store, Journal: s.journal, Admin: admin, Reports: reqs.Of,
		// Exactly `smsrouter send`'s path.
		Submit: func(_ context.Context, from, to, text string) (string, error) {
			return router.SubmitTo(inbox, from, to, text, time.Now())
		},
		Health: func(ctx context.Context) []console.Finding {
			d := &doctor{cfg: cfg, configPath: sv.c.choice.String(), configFile: sv.c.choice.path}
			d.run(ctx)
			return findings(d.checks)
		},
		Lint: func(ctx context.Context) []console.Finding {
			d := &doctor{cfg: cfg}
			d.checkDirectoryData(ctx, s.store, p)
			cs := d.checks
			if len(cs) > 1 {
				cs = cs[1:] // the first line sums up the findings that follow
			}
			var out []console.Finding
			for _, f := range findings(cs) {
				if len(f.Numbers) > 0 || f.Level != "ok" {
					out = append(out, f)
				}
			}
			return out
		},
		CheckVoice: func(ctx context.Context, lang, voice string) error {
			r, err := cfg.Voice.renderer()
			if err != nil {
				return err
			}
			return r.CheckVoice(ctx, lang, voice)
		},
		MaxParts: maxParts, Location: p.rc.Location, Log: sv.e.log,
	}
	con, err := console.New(cc)
	if err != nil {
		return sv.consoleBroken(err)
	}
	return con
}

// consoleBroken is the console when it could not be built (prepare checked
// its settings, so this is not expected): the reason is logged, not shown.
func (sv *service) consoleBroken(err error) http.Handler {
	sv.e.log.Error("console not served", "err", err)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the console is not available; the log says why", http.StatusServiceUnavailable)
	})
}

// findings turns doctor checks into what the console shows.
func findings(cs []check) []console.Finding {
	out := make([]console.Finding, len(cs))
	for i, c := range cs {
		level := map[checkLevel]string{checkOK: "ok", checkSkip: "skip", checkWarn: "warn", checkFail: "fail"}[c.Level]
		out[i] = console.Finding{Name: c.Name, Level: level, Detail: c.Detail, Fix: c.Fix, Numbers: c.Numbers}
	}
	return out
}

func consoleCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "console hash-password",
		GroupID: groupSetup,
		Short:   "Helpers for the web console: make a user's password hash",
		Long: `The web console runs inside serve, under /ui/ on the [http] listener, when
[console] enabled is set. Its users are configured as [[console.users]] with a
bcrypt password_hash, which hash-password makes.`,
		Example: `  smsrouter console hash-password`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e.code = exitUsage
			cmd.SetOut(e.stderr)
			return cmd.Usage()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "hash-password",
		Short: "Read a password from standard input and print its bcrypt hash for [[console.users]] password_hash",
		Long: `hash-password reads one line (the password) from standard input and prints
the bcrypt hash to put into the configuration as a console user's password_hash.
The password itself is never stored.`,
		Example: `  smsrouter console hash-password    # type the password, then Enter
  printf '%s\n' "$PASSWORD" | smsrouter console hash-password`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdHashPassword(e) }),
	})
	return cmd
}

func cmdHashPassword(e *env) int {
	in := e.stdin
	if in == nil {
		in = os.Stdin
	}
	if f, ok := in.(*os.File); ok {
		// On a terminal: ask, and do not echo what is typed.
		if old, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			quiet := *old
			quiet.Lflag &^= unix.ECHO
			if unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet) == nil {
				defer func() {
					unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, old) //nolint:errcheck // best effort
					fmt.Fprintln(e.stderr)
				}()
			}
			fmt.Fprint(e.stderr, "password: ")
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return fail(e, exitUsage, fmt.Errorf("no password on standard input: %w", err))
	}
	pass := strings.TrimRight(line, "\r\n")
	if len(pass) < 8 {
		return fail(e, exitUsage, errors.New("the password has fewer than 8 characters"))
	}
	if len(pass) > 72 {
		return fail(e, exitUsage, errors.New("the password has more than 72 bytes, which bcrypt cannot use"))
	}
	h, err := console.HashPassword(pass)
	if err != nil {
		return fail(e, exitPartial, err)
	}
	fmt.Fprintln(e.stdout, h)
	return exitOK
}
