package main

// The command line, declared with cobra: every command and flag with its
// description and examples, `help COMMAND`, `--version` and shell completion
// come from one declaration. Each command's RunE only hands the parsed flags to
// the function that does the work (cmdDrain, cmdLookup…) and keeps its exit
// code; a new command is one more entry in newRoot and a file of its own.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"smsrouter/asteriskconf/agi"
	"smsrouter/asteriskconf/dialplan"
)

// Command groups, in the order `smsrouter help` lists them.
const (
	groupMessages = "messages"
	groupDir      = "directory"
	groupJournal  = "journal"
	groupSetup    = "setup"
)

// execute runs the command line args and returns the exit code.
func execute(ctx context.Context, e *env, args []string) int {
	root := newRoot(e, args)
	root.SetArgs(args)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		// Only parsing fails here (unknown command or flag, wrong arguments):
		// the commands themselves report through e.code.
		fmt.Fprintf(e.stderr, "smsrouter: %v\n", strings.TrimRight(err.Error(), "\n"))
		if cmd != nil {
			fmt.Fprintf(e.stderr, "usage: %s\nRun `%s --help` for the flags and examples.\n", cmd.UseLine(), cmd.CommandPath())
		}
		return exitUsage
	}
	return e.code
}

// namedCommand is a top-level command with the function that declares it.
type namedCommand struct {
	name  string
	build func(*env) *cobra.Command
}

// commands are the top-level commands, in no particular order (help sorts).
func commands() []namedCommand {
	return []namedCommand{
		{"drain", drainCommand}, {"serve", serveCommand}, {"send", sendCommand}, {"agi", agiCommand},
		{"lookup", lookupCommand}, {"route", routeCommand}, {"explain", explainCommand}, {"number", numberCommand}, {"migrate", migrateCommand},
		{"journal", journalCommand}, {"retry", retryCommand}, {"drop", dropCommand}, {"evidence", evidenceCommand},
		{"doctor", doctorCommand}, {"dialplan", dialplanCommand}, {"render", renderCommand}, {"inspect", inspectCommand},
		{"demo", demoCommand}, {"version", versionCommand}, {"console", consoleCommand},
	}
}

// newRoot declares the command line. When args start with a command's name
// only that command is declared: the dialplan runs `drain` once per message,
// and declaring every command's flags is work (and memory) it does not need.
// Help, completion and typo suggestions, which list the others, get them all.
func newRoot(e *env, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "smsrouter",
		Short: "Routes short messages inside an Asterisk PBX",
		Long: `smsrouter routes short messages inside an Asterisk PBX acting as an SMS Centre.
Asterisk's SMS() drops each message from an analogue SMS phone into sms/morx;
smsrouter picks it up, looks the recipient up in the PBXNumbers directory and
delivers it the way the recipient chose: S (SMS to the phone), F (fax), V (read
out on a call), C (a command service), T (SIP message), N (disabled: the sender
is told).

Configuration: --config FILE, else $SMSROUTER_CONFIG, else
` + systemConfig + ` if it exists, else built-in defaults (spool
/var/spool/asterisk, the embedded SQLite directory in its smsrouter/ folder).
-v says which one a command used.

Exit codes: 0 done, 1 some messages deferred or rejected (or some items of the
request failed), 2 usage or configuration error.`,
		Example: `  smsrouter migrate                     # create the directory and journal tables
  smsrouter number set 5551001 S PJSIP/1001
  smsrouter drain                       # deliver what is queued, print one summary line
  smsrouter journal --since 1h          # what happened lately
  smsrouter help drain`,
		Version: version,
		// No Args: cobra's own check then suggests a command for a typo.
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No command at all: the overview, and the exit code of a usage error.
			e.code = exitUsage
			return cmd.Help()
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
	}
	root.SetVersionTemplate("smsrouter {{.Version}}\n")
	// Declared here so that cobra gives it no -v: every command's -v is --verbose.
	root.Flags().Bool("version", false, "print the version")
	root.AddGroup(
		&cobra.Group{ID: groupMessages, Title: "Moving messages:"},
		&cobra.Group{ID: groupDir, Title: "The directory (who gets what):"},
		&cobra.Group{ID: groupJournal, Title: "Where is my message:"},
		&cobra.Group{ID: groupSetup, Title: "Setting up and checking:"},
	)
	root.SetHelpCommandGroupID(groupSetup)
	root.SetCompletionCommandGroupID(groupSetup)
	for _, c := range commands() {
		if len(args) > 0 && args[0] == c.name {
			root.AddCommand(c.build(e))
			return root
		}
	}
	for _, c := range commands() {
		root.AddCommand(c.build(e))
	}
	return root
}

// with wires flags that most commands share.
type with int

const (
	withConfig      with = iota // --config and -v
	withSpoolDB                 // and --spool and --db
	withVerboseOnly             // -v only (demo: it builds its own configuration)
)

func (c *common) register(cmd *cobra.Command, w with) {
	f := cmd.Flags()
	f.BoolVarP(&c.verbose, "verbose", "v", false, "debug logging, and say which configuration file is used")
	if w == withVerboseOnly {
		return
	}
	f.StringVar(&c.config, "config", "", "configuration file (TOML, see smsrouter.example.toml); default $SMSROUTER_CONFIG, else "+systemConfig+" if it exists, else built-in defaults")
	_ = cmd.MarkFlagFilename("config", "toml")
	if w == withSpoolDB {
		f.StringVar(&c.spool, "spool", "", "Asterisk spool root holding sms/ and outgoing/ (overrides spool in the config)")
		f.StringVar(&c.db, "db", "", "directory database, sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB (overrides db in the config)")
		_ = cmd.MarkFlagDirname("spool")
	}
}

// runs adapts a command's function to cobra: the exit code goes to e.code.
func runs(e *env, f func(ctx context.Context, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e.code = f(cmd.Context(), args)
		return nil
	}
}

func drainCommand(e *env) *cobra.Command {
	var c common
	var quiet bool
	cmd := &cobra.Command{
		Use:     "drain",
		GroupID: groupMessages,
		Short:   "Deliver everything queued now, print one summary line and exit",
		Long: `drain processes every message waiting in sms/morx (and every deferred one whose
time has come), then exits. It is made to run from the dialplan's System() after
each SMS Centre call; any number of drains, and a running serve, can work at once
without delivering anything twice.

It prints one summary line, each word explained:
  delivered  handed to its channel (files for Asterisk written, or sent)
  held       parts waiting for the rest of a concatenated message
  deferred   a temporary failure (database, engine…): will be retried
  bounced    cannot be delivered: the sender got a notice
  expired    retried until its validity ended: the sender got a notice
  rejected   malformed: moved to smsrouter/rejected with a .reason file
  dropped    undeliverable, and no one to tell
-v adds a line per message that did not get through, and the router's log
line for every message; without it only warnings are logged (a malformed file,
a bad directory row, a failing database). -q leaves out the summary. The
journal keeps every message's fate either way.`,
		Example: `  smsrouter drain
  smsrouter drain -q --config /etc/asterisk/smsrouter.toml   # from System() in the dialplan
  smsrouter drain -v                                         # why was something deferred?`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdDrain(ctx, e, &c, quiet) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no summary line (the exit code still says whether everything got through; warnings are still logged)")
	cmd.MarkFlagsMutuallyExclusive("quiet", "verbose")
	return cmd
}

func serveCommand(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:     "serve",
		GroupID: groupMessages,
		Short:   "Watch the spool and deliver messages as they arrive (the service)",
		Long: `serve watches sms/morx with inotify (and rescans every [queue] rescan) and
delivers each message as it arrives. With [agi] listen, [http] listen or
[metrics] listen set it also runs the FastAGI server, the HTTP send API and the
Prometheus metrics. packaging/smsrouter.service runs it under systemd.

It logs one line when it starts (version, configuration and how it was found,
spool, work folder, database, listeners) and one when it stops (why, and how
many messages it handled).

It checks the configuration with the same code as doctor and refuses to start
on a problem (exit 2), naming each. A database that does not answer is waited
for instead: serve starts, retries every 1 s to 30 s, reports it in /healthz
and smsrouter_dependency_up{dependency="db"}, answers chaninfo with E and keeps
what arrives in the spool, and starts routing once the database answers.

SIGHUP (systemctl reload smsrouter) reads and checks the configuration again.
A configuration that fails is refused with a log line saying why, and the one
in force stays. One that passes takes effect between two batches, so no
message is lost or delivered twice: notices, queue and channel settings,
listeners (a moved one is reopened, others keep their socket), the database.
Only spool and work_dir need a restart. SIGTERM or Ctrl-C stops it cleanly,
finishing the batch at hand.`,
		Example: `  smsrouter serve --config /etc/asterisk/smsrouter.toml
  systemctl enable --now smsrouter
  systemctl reload smsrouter        # after editing the configuration`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdServe(ctx, e, &c) }),
	}
	c.register(cmd, withSpoolDB)
	return cmd
}

func sendCommand(e *env) *cobra.Command {
	var c common
	var from, to, via string
	cmd := &cobra.Command{
		Use:     "send --from A --to B [--via LINK] TEXT…",
		GroupID: groupMessages,
		Short:   "Queue a message as if it had been received from A; prints its journal id",
		Long: `send writes a message into sms/morx exactly as Asterisk's SMS() would, so it
takes the same way as any other: a running serve or the next drain delivers it.
The words of TEXT are joined with spaces; TEXT "-" reads the text from standard
input (one trailing newline dropped). It prints the message's journal id.

--via LINK sends a message for a number outside the PBX through that mobile
link ([[link]] name), whatever the [[route]]s say: it is queued, retried and
journaled like any other, and the serve process that runs the link sends it.
A PBX number keeps its own letter, so --via refuses one.`,
		Example: `  smsrouter send --from 5550001 --to 5551001 Hello there
  echo "Server room too hot" | smsrouter send --from 9001 --to 5551001 -
  smsrouter send --from 1001 --to +48600111222 --via gsm "Test through the modem"`,
		Args: cobra.MinimumNArgs(1),
		RunE: runs(e, func(ctx context.Context, args []string) int { return cmdSend(ctx, e, &c, from, to, via, args) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().StringVar(&from, "from", "", "sender number (required)")
	cmd.Flags().StringVar(&to, "to", "", "recipient number (required)")
	cmd.Flags().StringVar(&via, "via", "", "send through this mobile link ([[link]] name) whatever the routes say")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func agiCommand(e *env) *cobra.Command {
	var c common
	var listen string
	cmd := &cobra.Command{
		Use:     "agi",
		GroupID: groupMessages,
		Short:   "Run the FastAGI server alone (chaninfo, postsms, route for the dialplan)",
		Long: `agi serves the dialplan's AGI(agi://…) calls without serve: chaninfo (a
number's letter and Extension), postsms (queue a SIP MESSAGE) and route (queue
it and wait for the router's decision). Use it on a box where drain runs from
System() instead of serve; serve runs the same server itself when [agi] listen
is set.`,
		Example: `  smsrouter agi --listen 127.0.0.1:4573 --config /etc/asterisk/smsrouter.toml`,
		Args:    cobra.NoArgs,
		RunE:    runs(e, func(ctx context.Context, _ []string) int { return cmdAGI(ctx, e, &c, listen) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().StringVar(&listen, "listen", "", "host:port to listen on (default: [agi] listen, else "+agi.DefaultAddr+")")
	return cmd
}

func lookupCommand(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:     "lookup NUMBER…",
		GroupID: groupDir,
		Short:   "Show each number's service letter and Extension",
		Long: `lookup prints, for each number, a tab-separated line: the number, its letter,
its Extension and what the letter means, or "unknown" or "invalid". It only
reads: it never creates the database (a missing one is reported with how to
create it). Exit code 1 when some number is unknown or invalid.`,
		Example: `  smsrouter lookup 5551001 5551002`,
		Args:    cobra.MinimumNArgs(1),
		RunE:    runs(e, func(ctx context.Context, args []string) int { return cmdLookup(ctx, e, &c, args) }),
	}
	c.register(cmd, withSpoolDB)
	return cmd
}

func routeCommand(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:     "route NUMBER…",
		GroupID: groupDir,
		Short:   "Say which way a message to each number would go now, and why (a dry run)",
		Long: `route prints, for each number, how the numbering plan ([numbers]) reads it,
then the way a message to it would take now: its PBXNumbers row and letter, a
mobile link's own number and where messages to it go, the [[route]] and link
that would carry it to the mobile network, or "unknown" (the sender would get
the unknown notice). Nothing is sent or queued. Exit code 1 when some number
goes nowhere or is not a number.`,
		Example: `  smsrouter route 1001 0601234567 +4915112345678`,
		Args:    cobra.MinimumNArgs(1),
		RunE:    runs(e, func(ctx context.Context, args []string) int { return cmdRoute(ctx, e, &c, args) }),
	}
	c.register(cmd, withSpoolDB)
	return cmd
}

func numberCommand(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:     "number set|delete|voice|ways|pin|unlock NUMBER …",
		GroupID: groupDir,
		Short:   "Edit the directory: a number's letter and Extension, or its voice",
		Long: `number edits PBXNumbers, the same table admins edit with SQL; a change applies
to the very next message.`,
		Example: `  smsrouter number set 5551001 S PJSIP/1001
  smsrouter number voice 5551003 pl
  smsrouter number delete 5551001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e.code = exitUsage
			cmd.SetOut(e.stderr)
			return cmd.Usage()
		},
	}
	c.register(cmd, withSpoolDB)
	var noCheck bool
	const noCheckUsage = "store the language and voice without asking the [voice] engine whether it has them (a box without the engine)"
	// Also declared, hidden, on number itself: `number --no-check voice …`
	// reads naturally, and cobra must know the flag takes no value to find voice.
	cmd.Flags().BoolVar(&noCheck, "no-check", false, noCheckUsage)
	_ = cmd.Flags().MarkHidden("no-check")
	sub := func(use, short, long, example string, args cobra.PositionalArgs, verb string) *cobra.Command {
		var c common
		s := &cobra.Command{
			Use: use, Short: short, Long: long, Example: example, Args: args,
			RunE: runs(e, func(ctx context.Context, args []string) int {
				return cmdNumber(ctx, e, &c, noCheck, append([]string{verb}, args...))
			}),
		}
		c.register(s, withSpoolDB)
		return s
	}
	voice := sub("voice NUMBER LANG|default [VOICE]", "Choose the language (and engine voice) a V number's messages are read in",
		`voice sets the language, and optionally the engine voice, used when messages
to this number are read out (letter V); "default" goes back to [voice]
default_lang. It first asks the configured engine whether it has them and
refuses one it lacks (--no-check skips that).`,
		`  smsrouter number voice 5551003 pl
  smsrouter number voice 5551003 en-gb en-gb+f3
  smsrouter number voice 5551003 default
  smsrouter number voice --no-check 5551003 pl   # the engine is not installed here`, cobra.RangeArgs(2, 3), "voice")
	voice.Flags().BoolVar(&noCheck, "no-check", false, noCheckUsage)
	cmd.AddCommand(
		sub("set NUMBER LETTER EXTENSION", "Give a number its letter and Extension (added or replaced)",
			`set writes one PBXNumbers row. LETTER is one of S (SMS to the phone), F (fax),
V (voice call), C (command service), T (SIP message), N (messaging disabled), in
either case. EXTENSION is what Asterisk dials (PJSIP/1001, DAHDI/2…); for C
it names the command service, for N it may be empty ("").`,
			`  smsrouter number set 5551001 S PJSIP/1001
  smsrouter number set 5552000 F PJSIP/fax2000
  smsrouter number set 5553333 N ""`, cobra.ExactArgs(3), "set"),
		sub("delete NUMBER", "Remove a number from the directory",
			`delete removes the number's PBXNumbers row: messages to it are bounced as to an
unknown number from then on.`,
			`  smsrouter number delete 5551001`, cobra.ExactArgs(1), "delete"),
		voice,
		waysCommand(e),
		sub("pin NUMBER PIN|off", "Set or remove a number's self-service PIN (and end a lockout)",
			`pin sets the PIN (4 to 8 digits) a number must put first in its self-service
requests by SMS, or removes it with "off". Either ends a lockout after too
many wrong PINs. The change is recorded in smsrouter_admin_action.`,
			`  smsrouter number pin 5551001 4821
  smsrouter number pin 5551001 off`, cobra.ExactArgs(2), "pin"),
		sub("unlock NUMBER", "End a number's self-service lockout after too many wrong PINs",
			`unlock lets a number that texted too many wrong PINs use self-service again at
once, and forgets its wrong PINs so far. Recorded in smsrouter_admin_action.`,
			`  smsrouter number unlock 5551001`, cobra.ExactArgs(1), "unlock"),
	)
	return cmd
}

func migrateCommand(e *env) *cobra.Command {
	var c common
	var createDB bool
	cmd := &cobra.Command{
		Use:     "migrate",
		GroupID: groupDir,
		Short:   "Create or update the database schema (adopts an existing PBXNumbers table)",
		Long: `migrate creates PBXNumbers(Account, Message, Extension) if it is missing and
adopts an existing one untouched, rows and columns, then adds smsrouter's own
tables (the journal, the schema version). Running it again is harmless. It is the
only command that creates the database: the embedded SQLite file and its folder,
or with --create-database a MySQL/MariaDB database that does not exist yet.`,
		Example: `  smsrouter migrate --config /etc/asterisk/smsrouter.toml
  smsrouter migrate --db 'mysql:smsrouter:secret@tcp(127.0.0.1:3306)/asterisk' --create-database`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdMigrate(ctx, e, &c, createDB) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().BoolVar(&createDB, "create-database", false, "MySQL/MariaDB: create the database named in the DSN if it does not exist (utf8mb4)")
	return cmd
}

func retryCommand(e *env) *cobra.Command {
	var c common
	var state string
	cmd := &cobra.Command{
		Use:     "retry ID… | --state deferred",
		GroupID: groupJournal,
		Short:   "Make deferred messages due now",
		Long: `retry makes the given deferred messages (or all of them with --state deferred)
due at once instead of at their next attempt time. A running serve takes them at
its next rescan; or run drain.`,
		Example: `  smsrouter retry 1795239855123-0a1b2c3d4e
  smsrouter retry --state deferred && smsrouter drain`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (state == "") {
				return errors.New("name message ids or --state deferred, not both")
			}
			return nil
		},
		RunE: runs(e, func(ctx context.Context, args []string) int { return cmdRetry(ctx, e, &c, state, args) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().StringVar(&state, "state", "", "retry every message in this state (only deferred can be retried)")
	return cmd
}

func dropCommand(e *env) *cobra.Command {
	var c common
	var notify bool
	var reason string
	cmd := &cobra.Command{
		Use:     "drop ID…",
		GroupID: groupJournal,
		Short:   "End deferred or held messages, optionally telling the sender",
		Long: `drop ends messages that are still waiting (deferred or held): they are
journaled as dropped and never delivered. With --notify the sender gets the
failed notice.`,
		Example: `  smsrouter drop --reason spam 1795239855123-0a1b2c3d4e
  smsrouter drop --notify --reason "number retired" 1795239855123-0a1b2c3d4e`,
		Args: cobra.MinimumNArgs(1),
		RunE: runs(e, func(ctx context.Context, args []string) int { return cmdDrop(ctx, e, &c, notify, reason, args) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().BoolVar(&notify, "notify", false, "tell the sender with the failed notice")
	cmd.Flags().StringVar(&reason, "reason", "", "the reason journaled (and, with --notify, sent)")
	return cmd
}

func evidenceCommand(e *env) *cobra.Command {
	var c common
	var notify bool
	cmd := &cobra.Command{
		Use:     "evidence",
		GroupID: groupJournal,
		Short:   "Record the outcome of archived calls (outgoing_done) in the journal",
		Long: `evidence reads the call files Asterisk archived in outgoing_done/ (channels with
archive = true) and records each call's outcome (Completed, Expired, Failed)
with its message. serve does this every [evidence] interval and drain at its end;
this command does it now.`,
		Example: `  smsrouter evidence
  smsrouter evidence --notify`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdEvidence(ctx, e, &c, notify) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().BoolVar(&notify, "notify", false, "tell senders whose calls expired or failed (default: [evidence] notify)")
	return cmd
}

func doctorCommand(e *env) *cobra.Command {
	var c common
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "doctor",
		GroupID: groupSetup,
		Short:   "Check the setup: config, spool, database, directory rows, AMI, FastAGI, TTS, dialplan",
		Long: `doctor runs every check and prints one line each (ok, skip, warn, FAIL), with a
fix under each warning or failure. It never stops at the first problem, and it
changes nothing: it creates no file, folder or database.

The configuration is checked by the very code serve runs before it starts, so
a configuration doctor passes starts, and one it fails ("config" lines) is
refused by serve with the same words. Then what serve meets at run time: the
spool folders, the database and its schema, every PBXNumbers row (bad letters,
NULL or empty rows, duplicate numbers, Extensions that cannot dial, C numbers
no [command] rule serves, T numbers without [sip], V numbers whose language or
voice the engine lacks), the AMI login, the listeners, the speech engine, and
whether the [smsc] and [messages] contexts in [dialplan] extensions_conf
(default /etc/asterisk/extensions.conf and its #includes) match what
` + "`smsrouter dialplan`" + ` prints.

Exit code 1 when some check failed, 2 when the configuration file itself
cannot be read. --json prints the checks as a JSON array of
{name, status (ok, warn or fail), message, fix} for monitoring.`,
		Example: `  smsrouter doctor --config /etc/asterisk/smsrouter.toml
  smsrouter doctor --json | jq '.[] | select(.status != "ok")'`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdDoctor(ctx, e, &c, asJSON) }),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON (name, status, message, fix) for monitoring")
	return cmd
}

func dialplanCommand(e *env) *cobra.Command {
	var c common
	var f dialplanFlags
	cmd := &cobra.Command{
		Use:     "dialplan",
		GroupID: groupSetup,
		Short:   "Print the extensions.conf contexts (or the manager.conf user) for this setup",
		Long: `dialplan prints the [smsc] and [messages] contexts to paste into extensions.conf:
the SMS Centre extension the phones dial, and the handling of SIP MESSAGEs through
FastAGI. With --manager it prints the manager.conf user the T channel needs.
Its settings come from [dialplan] in the configuration, each flag overriding one;
keep them there, and doctor can tell whether the dialplan Asterisk runs is this.`,
		Example: `  smsrouter dialplan > /etc/asterisk/extensions_smsrouter.conf
  smsrouter dialplan --drain "/usr/local/bin/smsrouter drain -q --config /etc/asterisk/smsrouter.toml"
  smsrouter dialplan --manager --secret "$(openssl rand -hex 16)"`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdDialplan(ctx, e, &c, f) }),
	}
	c.register(cmd, withConfig)
	fl := cmd.Flags()
	fl.BoolVar(&f.manager, "manager", false, "print the manager.conf user of the SIP (T) channel instead")
	fl.StringVar(&f.agiAddr, "agi", "", "FastAGI address the dialplan calls (default: [dialplan] agi, else [agi] listen, else "+dialplan.DefaultAGIAddr+")")
	fl.StringVar(&f.extens, "smsc-exten", "", "comma-separated numbers analogue SMS phones dial (default: [dialplan] smsc_exten, else "+dialplan.DefaultSMSCExten+")")
	fl.StringVar(&f.smscCtx, "smsc-context", "", "context of the SMS Centre extension (default: [dialplan] smsc_context, else "+dialplan.DefaultSMSCContext+")")
	fl.StringVar(&f.msgCtx, "messages-context", "", "context of incoming SIP MESSAGEs (default: [dialplan] messages_context, else "+dialplan.DefaultMessagesContext+")")
	fl.StringVar(&f.drain, "drain", "", "command line System() runs after each SMS Centre call (e.g. \"/usr/local/bin/smsrouter drain -q --config /etc/asterisk/smsrouter.toml\"); default [dialplan] drain, empty when serve runs")
	fl.BoolVar(&f.route, "route", false, "SIP MESSAGEs wait for the router's decision (route) instead of only being queued (postsms); default [dialplan] route")
	fl.StringVar(&f.user, "user", dialplan.DefaultManagerUser, "with --manager: the AMI user name")
	fl.StringVar(&f.secret, "secret", "", "with --manager: the AMI secret (default: the placeholder "+dialplan.SecretPlaceholder+")")
	return cmd
}

func renderCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "render fax|voice",
		GroupID: groupSetup,
		Short:   "Render what a channel would deliver, without a spool (page.tiff or msg.wav)",
		Long: `render shows exactly what the F or V channel would deliver for a text, with the
layout, font, engine and phrases of the configuration, and needs no spool or
database.`,
		Example: `  smsrouter render fax --text "Hello" --from 5551234 -o page.tiff
  smsrouter render voice --text "Cześć" --from 5551234 --lang pl -o msg.wav`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e.code = exitUsage
			if len(args) > 0 {
				fmt.Fprintf(e.stderr, "smsrouter render: unknown kind %q (want one of fax, voice)\n", args[0])
			}
			fmt.Fprintf(e.stderr, "usage: smsrouter render {fax|voice} [flags]\n")
			return nil
		},
	}
	cmd.AddCommand(renderFaxCommand(e), renderVoiceCommand(e))
	return cmd
}

func renderFaxCommand(e *env) *cobra.Command {
	var c common
	var f renderFaxFlags
	cmd := &cobra.Command{
		Use:   "fax --text TEXT|- --from NUMBER -o page.tiff",
		Short: "Render a text as the F channel would fax it: a G3 TIFF, optionally a PDF copy",
		Long: `render fax draws the text with the fax layout, header and font of the
configuration ([fax]) into a multi-page G3 TIFF as SendFax gets it, and with
--pdf also the PDF copy.`,
		Example: `  smsrouter render fax --text "Zażółć gęślą jaźń" --from 5551234 -o page.tiff --pdf page.pdf
  fortune | smsrouter render fax --text - --from 5551234 -o page.tiff --resolution superfine`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdRenderFax(ctx, e, &c, f) }),
	}
	c.register(cmd, withConfig)
	fl := cmd.Flags()
	fl.StringVar(&f.text, "text", "", "message text, or - to read it from stdin")
	fl.StringVar(&f.from, "from", "", "sender number shown in the header (required)")
	fl.StringVar(&f.ref, "ref", "", "reference shown in the header (the F channel uses the message id; default a new id)")
	fl.StringVarP(&f.out, "output", "o", "", "TIFF file to write (required)")
	fl.StringVar(&f.pdf, "pdf", "", "also write a PDF copy to this file")
	fl.StringVar(&f.res, "resolution", "", "standard, fine or superfine (default from the config: fine)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagFilename("output", "tiff", "tif")
	_ = cmd.MarkFlagFilename("pdf", "pdf")
	_ = cmd.RegisterFlagCompletionFunc("resolution", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"standard", "fine", "superfine"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func renderVoiceCommand(e *env) *cobra.Command {
	var c common
	var f renderVoiceFlags
	cmd := &cobra.Command{
		Use:   "voice --text TEXT|- --from NUMBER -o msg.wav",
		Short: "Speak a text as the V channel would read it: an 8 kHz mono WAV",
		Long: `render voice speaks the text with the engine, phrases and lead silence of the
configuration ([voice]) into the 8 kHz mono 16-bit WAV that Playback gets.`,
		Example: `  smsrouter render voice --text "Cześć, jutro o dziewiątej" --from 5551234 --lang pl -o msg.wav
  smsrouter render voice --text "Hello" --from 5551234 --voice en-gb+f3 -o msg.wav`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdRenderVoice(ctx, e, &c, f) }),
	}
	c.register(cmd, withConfig)
	fl := cmd.Flags()
	fl.StringVar(&f.text, "text", "", "message text, or - to read it from stdin (required)")
	fl.StringVar(&f.from, "from", "", "sender number, read out digit by digit")
	fl.StringVarP(&f.out, "output", "o", "", "WAV file to write (required)")
	fl.StringVar(&f.lang, "lang", "", "language, e.g. pl or en-gb (default from the config: [voice] default_lang)")
	fl.StringVar(&f.voice, "voice", "", "engine voice (default from the config: [voice] default_voice)")
	_ = cmd.MarkFlagRequired("text")
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagFilename("output", "wav")
	return cmd
}

func inspectCommand(e *env) *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:     "inspect FILE…",
		GroupID: groupSetup,
		Short:   "Print app_sms spool files (morx, mttx…) parsed, as JSON",
		Long: `inspect reads app_sms queue files the way the router does and prints each as a
JSON object: sender, recipient, time stamp, text (decoded from ud#/ud## hex and
repaired), header, data coding and warnings, or the error that would reject it.
Times are read in the configured timezone. Exit code 1 when some file does not
parse.`,
		Example: `  smsrouter inspect /var/spool/asterisk/sms/morx/*
  smsrouter inspect /var/spool/asterisk/smsrouter/rejected/5550001.2026-11-21T05:41:12-13`,
		Args: cobra.MinimumNArgs(1),
		RunE: runs(e, func(ctx context.Context, args []string) int { return cmdInspect(ctx, e, &c, args) }),
	}
	c.register(cmd, withConfig)
	return cmd
}

func demoCommand(e *env) *cobra.Command {
	var c common
	var keep string
	cmd := &cobra.Command{
		Use:     "demo",
		GroupID: groupSetup,
		Short:   "Run a real drain on sample messages in a temporary spool (make demo)",
		Long: `demo builds a throw-away spool with the embedded SQLite directory, drops in
sample messages as Asterisk's SMS() would (plain, Polish, concatenated, a fax, a
disabled number, an unknown number, hostile input), runs the real drain and shows
the journal and every file written for Asterisk. It needs no Asterisk, no
database server and no configuration.`,
		Example: `  smsrouter demo
  smsrouter demo --keep /tmp/smsdemo    # keep the spool and config to look around`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdDemo(ctx, e, keep, c.verbose) }),
	}
	c.register(cmd, withVerboseOnly)
	cmd.Flags().StringVar(&keep, "keep", "", "build the demo spool in this folder and keep it (default: a temporary folder, removed)")
	_ = cmd.MarkFlagDirname("keep")
	return cmd
}

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		GroupID: groupSetup,
		Short:   "Print the version (as --version does)",
		Long: `version prints "smsrouter" and the version it was built as (make build
stamps it from git describe; "dev" otherwise).`,
		Example: `  smsrouter version`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(e.stdout, "smsrouter", version)
			return nil
		},
	}
}
