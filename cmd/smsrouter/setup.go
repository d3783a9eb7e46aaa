package main

// One validation for serve, drain and doctor. prepare builds from a
// configuration everything serve builds before it starts anything (the router's
// settings, the channels, the FastAGI, HTTP and metrics settings), without
// creating a folder, opening a database or binding a port. serve refuses to
// start on what it finds, and doctor lists the very same problems, so a
// configuration that doctor passes starts, and one it fails is refused for the
// same reason.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"smsrouter/asteriskconf/dialplan"
	"smsrouter/channels"
	commandch "smsrouter/channels/command"
	"smsrouter/channels/fax"
	"smsrouter/channels/link"
	"smsrouter/channels/sip"
	"smsrouter/channels/sms"
	"smsrouter/channels/voice"
	"smsrouter/ingress/httpapi"
	"smsrouter/internal/numplan"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
	"smsrouter/router"
)

// configProblem is one thing wrong with a configuration: the reason serve
// gives for refusing it, and what doctor suggests doing about it.
type configProblem struct {
	err error
	fix string
}

// configProblems are all the problems prepare found; it is an error.
type configProblems []configProblem

func (ps configProblems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.err.Error()
	}
	return strings.Join(msgs, "; ")
}

// plan is a checked configuration, ready to be built.
type plan struct {
	cfg Config
	rc  router.Config

	// The S, F and C channels have no side effects to build, so they are
	// built here, and checking them is building them. V and T create folders
	// (recordings, sent markers) and are only checked until build.
	sms     *sms.Channel
	fax     *fax.Channel
	command *commandch.Channel
	voice   voice.Config
	sip     *sip.Config // nil: letter T is not configured

	// Listeners: "" when not configured. http and metrics may share one.
	agiAddr, httpAddr, metricsAddr string
	tokens                         []string
	users                          []httpapi.User
}

// prepareRouting checks what drain and serve both need to route: the
// router's settings and the channels.
func prepareRouting(cfg Config) (*plan, error) {
	p := &plan{cfg: cfg}
	var probs configProblems
	add := func(err error, fix string) {
		if err != nil {
			probs = append(probs, configProblem{err, fix})
		}
	}
	loc, err := cfg.location()
	add(err, "use an IANA name such as Europe/Warsaw, or Local")
	if loc == nil {
		loc = time.Local // so that the rest is still checked
	}
	add(cfg.checkSpool(), "install Asterisk, or set spool = \"…\" to its astspooldir (default /var/spool/asterisk)")
	add(router.CheckDSN(cfg.dsn()), `db = "sqlite:PATH" or "mysql:USER:PASS@tcp(HOST:PORT)/DB"`)
	p.rc = cfg.routerSettings(loc)
	if cfg.Spool != "" {
		add(p.rc.Validate(), "see [notices] and smsc_number in smsrouter.example.toml")
	}
	add(cfg.linkSettings(&p.rc), "see [numbers], [[link]] and [[route]] in smsrouter.example.toml")
	for _, err := range cfg.reachSettings(&p.rc, loc) {
		add(err, "see [quiet], [guards] and [selfservice] in smsrouter.example.toml")
	}

	// Channels are checked even without a spool (a placeholder path), so that
	// one missing folder does not hide every other mistake.
	cc := cfg
	if cc.Spool == "" {
		cc.Spool = "/nonexistent-spool"
	}
	p.sms, err = sms.New(sms.Config{
		Spool: cc.Spool, SMSCNumber: cc.SMSCNumber, CallerIDName: cc.SMS.CallerIDName,
		WaitTime: cc.SMS.WaitTime, MaxRetries: cc.SMS.MaxRetries, RetryTime: cc.SMS.RetryTime,
		MaxParts: cc.SMS.MaxParts, Archive: cc.SMS.Archive, Location: loc,
		OutcomeContext: cc.outcomeContext(dialplan.OutcomeSMSContext),
		Sync:           p.rc.Sync, WorkDir: cc.workDir(),
	})
	add(prefix("[sms]", err), "see [sms] in smsrouter.example.toml")
	if faxCfg, err := cc.Fax.channelConfig(cc, loc); err != nil {
		add(err, "see [fax] in smsrouter.example.toml")
	} else {
		p.fax, err = fax.New(faxCfg)
		add(prefix("[fax]", err), "see [fax] in smsrouter.example.toml (font_file: apt-get install fonts-dejavu-core)")
	}
	p.command, err = commandch.New(cc.Command, commandch.Env{
		Inbox: router.InboxDir(cc.workDir()), WorkDir: cc.workDir(), Location: loc,
	})
	add(prefix("[command]", err), "see [command] in smsrouter.example.toml and examples/commands.toml")
	if voiceCfg, err := cc.Voice.channelConfig(cc, loc, p.rc.DeliveryTimeout); err != nil {
		add(err, "see [voice] in smsrouter.example.toml")
	} else {
		p.voice = voiceCfg
		add(prefix("[voice]", voice.Check(voiceCfg)), "see [voice] in smsrouter.example.toml")
	}
	p.sip, err = sipPlan(cc)
	add(err, "see [sip] in smsrouter.example.toml")
	if len(probs) > 0 {
		return nil, probs
	}
	return p, nil
}

// prepare checks everything serve builds: prepareRouting, and the listeners,
// the log and the dialplan settings.
func prepare(cfg Config) (*plan, error) {
	p, err := prepareRouting(cfg)
	var probs configProblems
	if err != nil {
		probs = err.(configProblems)
	}
	add := func(err error, fix string) {
		if err != nil {
			probs = append(probs, configProblem{err, fix})
		}
	}
	probs = append(probs, cfg.Log.check()...)
	var agiAddr, httpAddr, metricsAddr string
	if cfg.AGI.Listen != "" {
		if _, _, err := net.SplitHostPort(cfg.AGI.Listen); err != nil {
			add(fmt.Errorf("[agi] listen %q: %w", cfg.AGI.Listen, err), "write host:port, e.g. 127.0.0.1:4573")
		} else {
			agiAddr = cfg.AGI.Listen
		}
	}
	if cfg.Metrics.Listen != "" {
		a, err := localAddr(cfg.Metrics.Listen)
		add(prefix("[metrics]", err), "write host:port, e.g. 127.0.0.1:9465")
		metricsAddr = a
	}
	var tokens []string
	var users []httpapi.User
	if cfg.HTTP.Listen != "" {
		a, err := localAddr(cfg.HTTP.Listen)
		add(prefix("[http]", err), "write host:port, e.g. 127.0.0.1:8080")
		httpAddr = a
		tokens, users, err = cfg.HTTP.credentials()
		switch {
		case err != nil:
			add(err, "fix [http] secrets_file: a TOML file with tokens = [\"…\"] and [[users]], chmod 600")
		case len(tokens)+len(users) == 0:
			add(errors.New("[http] listen is set but no tokens or users are configured"), "add tokens = [\"…\"] or [[http.users]] (or a secrets_file)")
		default:
			// The API's own checks (token length, users), with a Submit that
			// is never called.
			_, err := httpapi.New(httpapi.Config{Tokens: tokens, Users: users, Rate: cfg.HTTP.Rate,
				Burst: cfg.HTTP.Burst, MaxBody: cfg.HTTP.MaxBody, Submit: func(context.Context, httpapi.Message) (string, error) {
					return "", errors.New("not serving")
				}})
			add(prefix("[http]", err), "tokens need at least 16 characters (openssl rand -hex 16); users a name and a password")
		}
	}
	add(cfg.Console.check(cfg.HTTP), "set [http] listen and add [[console.users]] with a password_hash from `smsrouter console hash-password`")
	_, err = cfg.dialplanOptions()
	add(prefix("[dialplan]", err), "see [dialplan] in smsrouter.example.toml")
	_, err = cfg.Journal.retention()
	add(err, "see [journal] in smsrouter.example.toml")
	// The links as serve runs them (with their secrets), unless their
	// settings failed already above.
	if plan, err := cfg.Numbers.plan(); err == nil {
		if _, err := cfg.linkSpecs(plan, false); err == nil {
			add(cfg.checkLinks(plan), "see [[link]] in smsrouter.example.toml and README \"Mobile network\"")
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	p.agiAddr, p.httpAddr, p.metricsAddr = agiAddr, httpAddr, metricsAddr
	p.tokens, p.users = tokens, users
	return p, nil
}

// prefix puts the config section before an error that does not name it, in
// place of the package's own prefix ("[fax] font: …", not "fax: font: …").
func prefix(section string, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), section) {
		return err
	}
	msg := err.Error()
	name := strings.Trim(section, "[]")
	for _, pkg := range []string{name + ": ", "httpapi: "} {
		if rest, ok := strings.CutPrefix(msg, pkg); ok {
			return fmt.Errorf("%s %s", section, rest)
		}
	}
	return fmt.Errorf("%s %w", section, err)
}

// check refuses [log] values that would be silently ignored.
func (lc LogConfig) check() []configProblem {
	var out []configProblem
	for _, k := range []struct {
		key, value string
		allowed    []string
		fix        string
	}{
		{"output", lc.Output, []string{"", "stderr", "syslog"}, `use "stderr" (journald) or "syslog"`},
		{"level", lc.Level, []string{"", "debug", "info", "warn", "error"}, `use "debug", "info", "warn" or "error"`},
		{"format", lc.Format, []string{"", "text", "json"}, `use "text" or "json"`},
	} {
		if !slices.Contains(k.allowed, k.value) {
			out = append(out, configProblem{fmt.Errorf("[log] %s = %q is not known", k.key, k.value), k.fix})
		}
	}
	return out
}

// routerSettings is the router's configuration from the file, in loc.
func (c Config) routerSettings(loc *time.Location) router.Config {
	sync := true
	if c.Queue.Sync != nil {
		sync = *c.Queue.Sync
	}
	return router.Config{
		Spool: c.Spool, WorkDir: c.WorkDir, SMSCNumber: c.SMSCNumber, Location: loc,
		DefaultValidity: c.Queue.DefaultValidity.Duration, RetryMin: c.Queue.RetryMin.Duration,
		RetryMax: c.Queue.RetryMax.Duration, ConcatTimeout: c.Queue.ConcatTimeout.Duration, Settle: c.Queue.Settle.Duration,
		BatchSize: c.Queue.BatchSize, Parallel: c.Queue.Parallel, DeliveryTimeout: c.Queue.DeliveryTimeout.Duration,
		Sync: sync, RepairUTF8: c.Queue.RepairUTF8, Rescan: c.Queue.Rescan.Duration, Notices: c.Notices,
		Retry: c.retryRules(), Reports: router.Reports{Letters: c.StatusReports.Letters},
		CallResultWait: cmp.Or(c.Evidence.ResultWait.Duration, router.DefaultCallResultWait),
	}
}

// build makes the channels of a prepared configuration: the S, F and C channels
// prepare made, and the V and T channels, which create their folders now. store,
// when not nil, gives letter V each number's language.
func (p *plan) build(store *router.Store) (map[byte]channels.Channel, error) {
	chans := map[byte]channels.Channel{'S': p.sms, 'F': p.fax, 'C': p.command}
	vc := p.voice
	if store != nil {
		vc.Options = store.VoiceOptions
	}
	v, err := voice.New(vc)
	if err != nil {
		return nil, fmt.Errorf("[voice] %w", err)
	}
	chans['V'] = v
	if p.sip != nil {
		if err := buildSIP(chans, *p.sip); err != nil {
			return nil, fmt.Errorf("[sip] %w", err)
		}
	}
	return chans, nil
}

// DialplanConfig is the [dialplan] section: what `smsrouter dialplan` prints,
// and where doctor finds the dialplan Asterisk runs to compare it with.
type DialplanConfig struct {
	ExtensionsConf  string   `toml:"extensions_conf"`  // default /etc/asterisk/extensions.conf
	AGI             string   `toml:"agi"`              // FastAGI address the dialplan calls; default [agi] listen
	SMSCExtens      []string `toml:"smsc_exten"`       // numbers analogue SMS phones dial; default ["9000"]
	SMSCContext     string   `toml:"smsc_context"`     // default "smsc"
	MessagesContext string   `toml:"messages_context"` // default "messages"
	Drain           string   `toml:"drain"`            // System() command after each SMS Centre call; "" when serve runs
	Route           bool     `toml:"route"`            // SIP MESSAGEs wait for the router's decision
	// Outcome sends the S, F and V calls through the generated outcome
	// contexts, which report the fax's result and busy/congestion/no answer
	// to FastAGI callresult. Off: call files run the application directly.
	Outcome bool `toml:"outcome"`
}

// outcomeContext is the context a channel's call files start in, or "" when
// [dialplan] outcome is off.
func (c Config) outcomeContext(name string) string {
	if !c.Dialplan.Outcome {
		return ""
	}
	return name
}

// defaultExtensionsConf is where Asterisk reads its dialplan on Debian.
const defaultExtensionsConf = "/etc/asterisk/extensions.conf"

// dialplanOptions are the generator's options from the config, checked.
func (c Config) dialplanOptions() (dialplan.Options, error) {
	d := c.Dialplan
	addr := d.AGI
	if addr == "" {
		addr = c.AGI.Listen
	}
	o := dialplan.Options{
		AGIAddr: addr, SMSCNumber: c.SMSCNumber, SMSCExtens: d.SMSCExtens,
		SMSCContext: d.SMSCContext, MessagesContext: d.MessagesContext, Drain: d.Drain, Route: d.Route,
		Outcome: d.Outcome,
	}
	check := o
	if check.SMSCNumber == "" {
		// No SMS Centre number is the router's business (notices are then
		// dropped); what is checked here is the [dialplan] section.
		check.SMSCNumber = "0"
	}
	_, err := dialplan.Generate(check)
	return o, err
}

// checkLinks checks the mobile links as serve builds them (secrets read, the
// clients' and channels' settings), without creating their folders or
// connecting anything.
func (c Config) checkLinks(plan numplan.Plan) error {
	specs, err := c.linkSpecs(plan, true)
	if err != nil {
		return err
	}
	for _, s := range specs {
		switch s.Kind {
		case "smpp":
			cc := s.smpp
			cc.Handler = func(*smpp.Delivery) {}
			if _, err := smpp.New(cc); err != nil {
				return fmt.Errorf("link %s: %w", s.Name, err)
			}
		case "modem":
			cc := s.modem
			cc.Handler = func(*modem.Message) {}
			if _, err := modem.New(cc); err != nil {
				return fmt.Errorf("link %s: %w", s.Name, err)
			}
		}
		if err := link.Check(link.Config{Name: s.Name, Number: s.number, Source: s.Source, Plan: plan,
			Text: s.Text, MarkerDir: c.markerDir(s.Name)}); err != nil {
			return err
		}
	}
	return nil
}
