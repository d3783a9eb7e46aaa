package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"smsrouter/router"
)

// waysCommand is `smsrouter number ways`: show, set or clear the ways a number
// is reached by, in order. The first is PBXNumbers' own letter and Extension,
// the rest go to smsrouter_number_way.
func waysCommand(e *env) *cobra.Command {
	var c common
	var exts []string
	var clear bool
	cmd := &cobra.Command{
		Use:   "ways NUMBER [LETTERS]",
		Short: "Show or set the ways a number is reached by, in order (T,S,V: SIP message, else SMS, else a call)",
		Long: `ways lists the ways messages to NUMBER are tried by, in order: first the
letter and Extension of its PBXNumbers row, then each further way when the one
before fails by its own evidence (no registered softphone, a call that was not
answered or could not be placed). With LETTERS (e.g. T,S,V; each one of S F V T)
the first becomes the PBXNumbers letter and the others the further ways; each
uses the number's Extension unless --ext gives one for its letter. --clear
removes the further ways and leaves the PBXNumbers row as it is. Every way is
checked like number set: one its channel cannot dial is refused.`,
		Example: `  smsrouter number ways 5551000
  smsrouter number ways 5551000 T,S,V
  smsrouter number ways 5551000 T,S,F --ext T=PJSIP/1000 --ext F=PJSIP/fax1000
  smsrouter number ways 5551000 --clear`,
		Args: cobra.RangeArgs(1, 2),
		RunE: runs(e, func(ctx context.Context, args []string) int {
			return cmdNumberWays(ctx, e, &c, args, exts, clear)
		}),
	}
	c.register(cmd, withSpoolDB)
	cmd.Flags().StringArrayVar(&exts, "ext", nil, "LETTER=EXTENSION: the Extension for that letter's way (repeatable)")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the further ways")
	return cmd
}

func cmdNumberWays(ctx context.Context, e *env, c *common, args, exts []string, clear bool) int {
	number := args[0]
	if err := router.CheckNumber("number", number); err != nil {
		return fail(e, exitUsage, err)
	}
	if clear && len(args) > 1 {
		return fail(e, exitUsage, errors.New("--clear takes no LETTERS"))
	}
	byLetter := map[byte]string{}
	for _, x := range exts {
		l, ext, ok := strings.Cut(x, "=")
		l = strings.ToUpper(strings.TrimSpace(l))
		if !ok || len(l) != 1 || !strings.Contains(router.WayLetters, l) {
			return fail(e, exitUsage, fmt.Errorf("--ext %q: want LETTER=EXTENSION with a letter of %s", x, router.WayLetters))
		}
		byLetter[l[0]] = strings.TrimSpace(ext)
	}
	var letters []byte
	if len(args) > 1 {
		for _, f := range strings.Split(args[1], ",") {
			f = strings.ToUpper(strings.TrimSpace(f))
			if len(f) != 1 || !strings.Contains(router.WayLetters, f) {
				return fail(e, exitUsage, fmt.Errorf("way %q: each way is one of %s", f, strings.Join(strings.Split(router.WayLetters, ""), " ")))
			}
			if strings.IndexByte(string(letters), f[0]) >= 0 {
				return fail(e, exitUsage, fmt.Errorf("way %s is listed twice", f))
			}
			letters = append(letters, f[0])
		}
	}
	_, store, err := c.openStore(ctx, e, router.OpenExisting)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	dir := router.NewSQLDirectory(store)
	entry, err := dir.Lookup(ctx, number)
	switch {
	case errors.Is(err, router.ErrUnknownNumber):
		return fail(e, exitUsage, fmt.Errorf("%w: add it first with smsrouter number set", err))
	case err != nil:
		return fail(e, exitPartial, err)
	}
	switch {
	case clear:
		err = store.SetWays(ctx, number, nil)
	case len(letters) > 0:
		err = setWays(ctx, store, entry, letters, byLetter)
	}
	switch {
	case errors.Is(err, router.ErrBadEntry), errors.Is(err, router.ErrUnknownNumber):
		return fail(e, exitUsage, err)
	case err != nil:
		return fail(e, exitPartial, err)
	}
	if entry, err = dir.Lookup(ctx, number); err != nil {
		return fail(e, exitPartial, err)
	}
	printWays(e, entry)
	return exitOK
}

// setWays checks every way before it writes anything, so a refused list
// leaves the number as it was.
func setWays(ctx context.Context, store *router.Store, entry router.Entry, letters []byte, byLetter map[byte]string) error {
	ext := func(l byte) string {
		if x, ok := byLetter[l]; ok {
			return x
		}
		return entry.Extension
	}
	first := letters[0]
	if _, err := router.ParseEntry(entry.Number, string(first), ext(first)); err != nil {
		return fmt.Errorf("number %s: %w", entry.Number, err)
	}
	var further []router.NumberWay
	for _, l := range letters[1:] {
		if _, err := router.ParseWay(string(l), ext(l), ext(first)); err != nil {
			return fmt.Errorf("number %s: %w", entry.Number, err)
		}
		further = append(further, router.NumberWay{Letter: l, Extension: ext(l)})
	}
	_, err := store.SetNumberWays(ctx, entry.Number, string(first), ext(first), further)
	return err
}

func printWays(e *env, entry router.Entry) {
	fmt.Fprintf(e.stdout, "%s: %s\n", entry.Number, entry.WaysText())
	for i := 0; ; i++ {
		w, ok := entry.Way(i)
		if !ok {
			return
		}
		line := fmt.Sprintf("  %d. %c %s", i+1, w.Letter, w.Extension)
		if w.Problem != "" {
			line += " (skipped: " + w.Problem + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
}

// wayFindings lists, for doctor, the further ways the router would skip.
func wayFindings(ctx context.Context, store *router.Store) []check {
	bad, err := store.BadWays(ctx)
	if err != nil {
		return []check{{Name: "directory", Level: checkFail, Detail: err.Error(), Fix: "smsrouter migrate"}}
	}
	var out []check
	for _, b := range bad {
		acc, _, _ := strings.Cut(strings.TrimPrefix(b, "smsrouter_number_way row Account="), " ")
		out = append(out, check{Name: "directory", Level: checkWarn, Detail: b + "; the router skips this way",
			Fix: fmt.Sprintf("smsrouter number ways %s LETTERS [--ext LETTER=EXTENSION] (or --clear)", strings.Trim(acc, "'"))})
	}
	return out
}
