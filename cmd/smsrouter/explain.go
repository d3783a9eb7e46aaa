package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"smsrouter/router"
)

func explainCommand(e *env) *cobra.Command {
	var c common
	var from, to, text string
	var mr int
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "explain --from NUMBER --to NUMBER [--text TEXT]",
		GroupID: groupDir,
		Short:   "Say step by step how a message would go now, and why (a dry run)",
		Long: `explain follows one message through the router's decisions as they stand now:
the numbering plan, the duplicate guard (with --mr, the phone's message
reference), the self-service number, the directory row or the [[route]] to a
mobile link, the further ways in smsrouter_number_way, quiet hours, the command
rule the text would match (letter C), and the outcome a drain would record now.
It only reads: nothing is sent, queued or written, and the database is opened
read-only. Exit code 1 when the message would not be delivered now.`,
		Example: `  smsrouter explain --from 5550001 --to 5551001
  smsrouter explain --from 5551001 --to 7999 --text "SET T,S"
  smsrouter explain --from 5550001 --to 5551001 --text "Hi" --mr 7 --json`,
		Args: cobra.NoArgs,
		RunE: runs(e, func(ctx context.Context, _ []string) int {
			return cmdExplain(ctx, e, &c, router.ExplainRequest{From: from, To: to, Text: text, MR: mr}, asJSON)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the sender's number")
	f.StringVar(&to, "to", "", "the recipient's number")
	f.StringVar(&text, "text", "", "the message text (command rules, self-service, the duplicate guard read it)")
	f.IntVar(&mr, "mr", -1, "the phone's message reference (mr=), for the duplicate guard")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	c.register(cmd, withSpoolDB)
	return cmd
}

func cmdExplain(ctx context.Context, e *env, c *common, req router.ExplainRequest, asJSON bool) int {
	cfg, store, err := c.openStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	p, err := prepareRouting(cfg)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	req.Letters = "SFVC"
	if p.sip != nil {
		req.Letters += "T"
	}
	req.Rule = p.command.Explain
	x, err := router.ExplainMessage(ctx, p.rc, store, router.NewSQLDirectory(store), req)
	switch {
	case errors.Is(err, router.ErrNotNumber):
		return fail(e, exitUsage, err)
	case err != nil:
		return fail(e, exitPartial, err)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			return fail(e, exitPartial, err)
		}
	} else {
		fmt.Fprintf(e.stdout, "%s → %s\n", x.From, x.To)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, s := range x.Steps {
			fmt.Fprintf(tw, "  %s:\t%s\n", s.Step, s.Result)
			if s.Why != "" {
				fmt.Fprintf(tw, "  \t  %s\n", s.Why)
			}
		}
		tw.Flush()
		out := string(x.Outcome)
		switch {
		case x.Link != "":
			out += " through the mobile link " + x.Link
		case x.Letter != "" && x.Outcome == router.StateDelivered:
			out += " by " + x.Letter
		case x.HeldUntil != nil:
			out = "held (deferred) until " + x.HeldUntil.Format("2006-01-02 15:04 MST")
		}
		fmt.Fprintf(e.stdout, "outcome: %s\n", out)
	}
	if x.Outcome != router.StateDelivered {
		return exitPartial
	}
	return exitOK
}
