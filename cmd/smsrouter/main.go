// Command smsrouter routes short messages inside an Asterisk PBX: it drains the
// app_sms morx spool and delivers every message the way its recipient chose in the
// PBXNumbers directory. Run `smsrouter help` for the subcommands; cli.go
// declares them, and each command's work is in the file named after it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smsrouter/router"
)

// Exit codes, as scripts and the dialplan's System() see them.
const (
	exitOK      = 0 // done
	exitPartial = 1 // some messages deferred or rejected (a summary is printed)
	exitUsage   = 2 // usage or configuration error
)

// version is set by the Makefile (-ldflags "-X main.version=…").
var version = "dev"

// env is what every subcommand gets: where to print, and what the process
// was started with beyond its arguments.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader // nil means os.Stdin (tests set their own)
	log            *slog.Logger
	observer       router.Observer // told every fate (serve's metrics); nil otherwise
	// agiObserve, when set, is told every FastAGI request (serve's metrics; see instrumentAGI).
	agiObserve func(script string, d time.Duration, err error)
	// conns, when set, counts the connections the FastAGI and HTTP listeners
	// hold and turn away (serve's metrics).
	conns connMetrics

	// configEnv ($SMSROUTER_CONFIG) and systemConfig are where config discovery
	// looks after --config (findConfig). main fills them; run leaves them
	// empty, so that a test never picks up the machine's own configuration.
	configEnv, systemConfig string

	code int // the exit code the command chose
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdout: os.Stdout, stderr: os.Stderr,
		configEnv: os.Getenv("SMSROUTER_CONFIG"), systemConfig: systemConfigPath()}
	code := execute(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run is the command line without config discovery beyond --config: what the
// tests and demo call in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, &env{stdout: stdout, stderr: stderr}, args)
}

// common are the flags most subcommands share, and what they resolved to.
type common struct {
	config, spool, db string
	verbose           bool

	// quietLog raises the log threshold to warnings unless -v: for drain,
	// which the dialplan runs once per message and whose summary says how
	// each message ended; what an admin must act on (a malformed file, a bad
	// directory row, a failing journal) is still logged.
	quietLog bool

	choice configChoice // the configuration load used
}

// load finds and reads the config file and applies the flag overrides.
func (c *common) load(e *env) (Config, error) {
	choice, err := findConfig(c.config, e.configEnv, e.systemConfig)
	if err != nil {
		return defaultConfig(), err
	}
	c.choice = choice
	if c.verbose {
		fmt.Fprintf(e.stderr, "smsrouter: config %s\n", choice)
	}
	cfg, err := loadConfig(choice.path)
	if err != nil {
		return cfg, err
	}
	if c.spool != "" {
		cfg.Spool = c.spool
	}
	if c.db != "" {
		cfg.DB = c.db
	}
	floor := slog.LevelDebug
	if c.quietLog {
		floor = slog.LevelWarn
	}
	e.log = newLogger(e.stderr, cfg.Log, c.verbose, floor)
	return cfg, nil
}

// openStore reads the config and opens its database, schema checked
// (openStore): the start of every command that reads or edits the directory
// or the journal. Either error is a usage or configuration error to its callers.
func (c *common) openStore(ctx context.Context, e *env, mode router.OpenMode) (Config, *router.Store, error) {
	cfg, err := c.load(e)
	if err != nil {
		return cfg, nil, err
	}
	store, err := openStore(ctx, cfg, mode)
	return cfg, store, err
}

// newLogger logs at the configured level, at debug with -v, and never below
// floor without -v.
func newLogger(w io.Writer, lc LogConfig, verbose bool, floor slog.Level) *slog.Logger {
	level := slog.LevelInfo
	switch lc.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	level = max(level, floor)
	if verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	w = logOutput(w, lc) // stderr, or syslog when configured (logging.go)
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func fail(e *env, code int, err error) int {
	var probs configProblems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintf(e.stderr, "smsrouter: %v\n", p.err)
		}
		return code
	}
	fmt.Fprintf(e.stderr, "smsrouter: %v\n", err)
	return code
}
