// Command smsrouter routes short messages inside an Asterisk PBX: it drains the
// app_sms morx spool and delivers every message the way its recipient chose in the
// PBXNumbers directory. Run `smsrouter help` for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
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

type command struct {
	name, args, help string
	run              func(ctx context.Context, env *env, args []string) int
}

// env is what every subcommand gets: where to print and the parsed common flags.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader // nil means os.Stdin (tests set their own)
	log            *slog.Logger
	observer       router.Observer // told every fate (serve's metrics); nil otherwise
	// agiObserve, when set, is told every FastAGI request (serve's metrics; see instrumentAGI).
	agiObserve func(script string, d time.Duration, err error)
	// conns, when set, counts the connections the FastAGI and HTTP listeners
	// hold and turn away (serve's metrics).
	conns  connMetrics
	helped bool // -h was asked for: the usage was printed, which is success
}

func commands() []command {
	return []command{
		{"drain", "[--spool DIR] [--db DSN]", "process everything queued now and exit (safe to run many at once; for System() in the dialplan)", cmdDrain},
		{"serve", "[--spool DIR] [--db DSN]", "watch the spool and deliver as messages arrive", cmdServe},
		{"send", "--from A --to B TEXT", "queue a message as if it had been received from A", cmdSend},
		{"lookup", "NUMBER…", "show a number's service letter and Extension", cmdLookup},
		{"number", "set|delete|voice NUMBER …", "edit the directory: set N LETTER EXT, delete N, voice N LANG [VOICE]", cmdNumber},
		{"migrate", "[--db DSN]", "create or update the database schema (adopts an existing PBXNumbers table)", cmdMigrate},
		{"inspect", "FILE…", "print app_sms spool files parsed, as JSON", cmdInspect},
		{"agi", "[--listen ADDR] [--spool DIR] [--db DSN]", "run the FastAGI server alone (chaninfo, postsms, route for the dialplan)", cmdAGI},
		{"dialplan", "[--manager] [--agi ADDR] [--smsc-exten N]…", "print the extensions.conf contexts (or the manager.conf user) for this setup", cmdDialplan},
		{"render", "fax|voice --text T --from A -o FILE", "render what a channel would deliver, without a spool (page.tiff or msg.wav)", cmdRender},
		{"journal", "[--since 1h] [--state S] [--number N] [--json] | show ID", "list messages with their fate, or show one", cmdJournal},
		{"retry", "ID… | --state deferred", "make deferred messages due now", cmdRetry},
		{"drop", "[--notify] [--reason TEXT] ID…", "end deferred or held messages (optionally telling the sender)", cmdDrop},
		{"evidence", "[--notify]", "record the outcome of archived calls (outgoing_done) in the journal", cmdEvidence},
		{"doctor", "[--spool DIR] [--db DSN]", "check the setup: config, spool, database, AMI, FastAGI, TTS, fonts", cmdDoctor},
		{"demo", "[--keep DIR]", "run a drain on sample messages in a temporary spool with the embedded directory", cmdDemo},
		{"version", "", "print the version", func(_ context.Context, e *env, _ []string) int {
			fmt.Fprintln(e.stdout, "smsrouter", version)
			return exitOK
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "smsrouter %s — routes short messages inside an Asterisk PBX\n\nUsage: smsrouter COMMAND [--config FILE] [flags]\n\nCommands:\n", version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-45s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintf(w, "\nEvery command takes --config FILE (TOML; see smsrouter.example.toml) and -v for debug logs.\n"+
		"Exit codes: 0 done, 1 some messages deferred or rejected, 2 usage or configuration error.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			e := &env{stdout: stdout, stderr: stderr}
			code := c.run(ctx, e, args[1:])
			if e.helped {
				return exitOK
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "smsrouter: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// common are the flags most subcommands share.
type common struct {
	config, spool, db string
	verbose           bool
}

func (c *common) register(fs *flag.FlagSet, withSpoolDB bool) {
	fs.StringVar(&c.config, "config", "", "configuration file (TOML)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	if withSpoolDB {
		fs.StringVar(&c.spool, "spool", "", "Asterisk spool root holding sms/ and outgoing/ (overrides the config)")
		fs.StringVar(&c.db, "db", "", "directory database: sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB (overrides the config)")
	}
}

// load reads the config file and applies the flag overrides.
func (c *common) load(e *env) (Config, error) {
	cfg, err := loadConfig(c.config)
	if err != nil {
		return cfg, err
	}
	if c.spool != "" {
		cfg.Spool = c.spool
	}
	if c.db != "" {
		cfg.DB = c.db
	}
	e.log = newLogger(e.stderr, cfg.Log, c.verbose)
	return cfg, nil
}

// loadStore reads the config and opens its database, schema checked: the start
// of every command that reads or edits the directory or the journal.
func (c *common) loadStore(ctx context.Context, e *env) (*router.Store, error) {
	cfg, err := c.load(e)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg)
}

func newLogger(w io.Writer, lc LogConfig, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	switch lc.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
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

// parseFlags parses a subcommand's flags; errors are usage errors.
//
// Flags may come after the positional arguments too (`number set 1 S PJSIP/1
// --db …`): Go's flag package stops at the first non-flag, which would silently
// ignore them. "--" ends the flags; everything after it is positional.
func parseFlags(fs *flag.FlagSet, e *env, args []string) bool {
	fs.SetOutput(e.stderr)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			e.helped = errors.Is(err, flag.ErrHelp)
			return false
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	_ = fs.Parse(append([]string{"--"}, positional...)) // leaves the flags as parsed; Args() = positional
	return true
}

func fail(e *env, code int, err error) int {
	fmt.Fprintf(e.stderr, "smsrouter: %v\n", err)
	return code
}
