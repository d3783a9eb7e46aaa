package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// journalCommand declares `smsrouter journal` and its verbs (show, prune).
func journalCommand(e *env) *cobra.Command {
	var c common
	var f journalFlags
	cmd := &cobra.Command{
		Use:     "journal",
		GroupID: groupJournal,
		Short:   "List messages with their fate, newest first (or show one, or prune old ones)",
		Long: `journal lists what happened to messages: when each arrived, its id, state,
letter, sender and recipient, attempts, the outcome of its last call, the start of
its text and its last error. States: ` + strings.Join(stateNames(), ", ") + `.

--since and --until take a length of time ago (90m, 2d, 1w3d) or a time: a date
(2026-12-01), a date and time (2026-12-01 14:00), both in the configured
timezone, or RFC 3339 with its own offset (2026-12-01T14:00:00+01:00). Times are
printed in the configured timezone with their offset.

Listings show the first characters of each text, since a message is most often
recognised by what it says; --no-text leaves texts out (a screen being shared, a
listing pasted into a ticket).

--follow keeps printing rows as they are written, like tail -f: a new message, and
the same message again each time its state changes. Ctrl-C ends it.

It only reads: it never creates the database.`,
		Example: `  smsrouter journal --since 1h
  smsrouter journal --since 2d --state deferred
  smsrouter journal --since "2026-12-01 08:00" --until "2026-12-01 12:00"
  smsrouter journal --number 5551001 --json --no-text
  smsrouter journal --follow
  smsrouter journal show 1795239855123-0a1b2c3d4e
  smsrouter journal prune --dry-run`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdJournal(ctx, e, &c, f) }),
	}
	c.register(cmd, withSpoolDB)
	fl := cmd.Flags()
	fl.StringVar(&f.since, "since", "", "only messages received since then: 90m, 2d, 1w3d ago, or 2026-12-01, \"2026-12-01 14:00\", RFC 3339")
	fl.StringVar(&f.until, "until", "", "only messages received before then (same forms as --since)")
	fl.StringVar(&f.state, "state", "", "only messages in this state ("+strings.Join(stateNames(), ", ")+")")
	fl.StringVar(&f.number, "number", "", "only messages from or to this number")
	fl.IntVar(&f.limit, "limit", 100, "at most this many rows, newest first (0: all)")
	fl.BoolVar(&f.json, "json", false, "one JSON object per line")
	fl.BoolVar(&f.noText, "no-text", false, "leave the messages' texts out")
	fl.BoolVarP(&f.follow, "follow", "f", false, "then keep printing rows as they are written, until Ctrl-C")
	fl.DurationVar(&f.poll, "poll", 0, "how often --follow looks (default 500ms)")
	_ = fl.MarkHidden("poll")
	_ = cmd.RegisterFlagCompletionFunc("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return stateNames(), cobra.ShellCompDirectiveNoFileComp
	})

	var sc common
	var asJSON, noText bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one message: its text, every try, its files and calls, notices, delivery reports",
		Long: `show prints everything known about one message: sender and recipient,
letter, state and what it means, times (in the configured timezone), its text,
every try with its time, outcome and reason, the files written for Asterisk and
the outcome of each call, the notices or replies it caused, the parts it was
joined from and the delivery reports asked for it. The id of a part of a joined
message shows the whole message. A message not in the journal yet is looked for
in the spool (queued, processing, held). --json prints what the HTTP API's
GET /v1/messages/{id} answers, plus the raw detail.`,
		Example: `  smsrouter journal show 1795239855123-0a1b2c3d4e
  smsrouter journal show --json 1795239855123-0a1b2c3d4e`,
		Args: cobra.ExactArgs(1),
		RunE: runs(e, func(ctx context.Context, args []string) int { return journalShow(ctx, e, &sc, asJSON, noText, args[0]) }),
	}
	sc.register(show, withSpoolDB)
	show.Flags().BoolVar(&asJSON, "json", false, "print the message as JSON")
	show.Flags().BoolVar(&noText, "no-text", false, "leave the text out")
	cmd.AddCommand(show)

	var pc common
	var olderThan string
	var dryRun bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove messages older than the retention, with their tries and delivery reports",
		Long: `prune removes the journal rows of messages last changed longer ago than
[journal] retention (default 90d), or --older-than, together with their tries,
their delivery-report requests and part links, a few hundred at a time so the
journal is never locked for long. Messages still being retried (deferred) are
kept whatever their age. Batch ids are forgotten by their own rule (after 30
days). serve does the same every [journal] prune_every; this is for a one-off.
--dry-run only counts.`,
		Example: `  smsrouter journal prune --dry-run
  smsrouter journal prune --older-than 30d`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int { return cmdPrune(ctx, e, &pc, olderThan, dryRun) }),
	}
	pc.register(prune, withSpoolDB)
	prune.Flags().StringVar(&olderThan, "older-than", "", "prune messages last changed longer ago than this (e.g. 30d, 12w); default [journal] retention")
	prune.Flags().BoolVar(&dryRun, "dry-run", false, "only count what would be removed")
	cmd.AddCommand(prune)
	return cmd
}
