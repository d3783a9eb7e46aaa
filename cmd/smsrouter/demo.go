package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/router"
)

// demoMessages are app_sms morx files as an analogue SMS phone's messages arrive,
// in the exact format Asterisk writes (see testdata/asterisk/morx).
var demoMessages = []struct{ name, body string }{
	{"5550001.2026-11-21T05:39:34-0", "oa=5550001\nda=5551001\nud=Hello World from an FSK phone\nscts=2026-11-21T05:39:34\nmr=0\n"},
	{"5550002.2026-11-21T05:40:08-1", "oa=5550002\nda=5551001\nud=Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144\nscts=2026-11-21T05:40:08\ndcs=8\nmr=1\n"},
	{"5550004.2026-11-21T05:40:30-6", "oa=5550004\nda=5551002\nudh#0003A70202\nud= and this is part two, the end.\nscts=2026-11-21T05:40:30\nmr=6\n"},
	{"5550004.2026-11-21T05:40:28-5", "oa=5550004\nda=5551002\nudh#0003A70201\nud=This is part one of a long message,\nscts=2026-11-21T05:40:28\nmr=5\n"},
	{"5550007.2026-11-21T05:40:38-9", "oa=5550007\nda=5551002\n;ud=Line one\xbfLine two\nud#4C696E65206F6E650A4C696E652074776F\nscts=2026-11-21T05:40:38\ndcs=245\nmr=9\n"},
	{"5550001.2026-11-21T05:41:00-10", "oa=5550001\nda=5553333\nud=Are you there?\nscts=2026-11-21T05:41:00\nmr=10\n"},
	{"5550001.2026-11-21T05:41:05-11", "oa=5550001\nda=5559999\nud=Nobody has this number\nscts=2026-11-21T05:41:05\nmr=11\n"},
	{"5550001.2026-11-21T05:41:09-12", "oa=5550001\nda=../../etc/passwd\nud=hostile recipient\nscts=2026-11-21T05:41:09\n"},
	{"5550001.2026-11-21T05:41:12-13", "oa=5550001\nda=5551001\nud##00480069\nudh#zz\n"},
	{"5550002.2026-11-21T05:41:20-14", "oa=5550002\nda=5552000\nud=Please fax me: Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144\nscts=2026-11-21T05:41:20\nmr=14\n"},
}

// demoCaptured is when the last demo message was captured; demoNow moves every
// time in a sample (the file name's and scts) by the same amount so that the
// last one is now: a message's validity runs from its scts, and the samples
// would otherwise all have expired a week after they were captured.
var (
	demoCaptured = time.Date(2026, 11, 21, 5, 41, 20, 0, time.UTC)
	demoTime     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)
)

func demoNow(s string, now time.Time) string {
	shift := now.UTC().Truncate(time.Second).Sub(demoCaptured)
	return demoTime.ReplaceAllStringFunc(s, func(t string) string {
		at, err := time.Parse("2006-01-02T15:04:05", t)
		if err != nil {
			return t
		}
		return at.Add(shift).Format("2006-01-02T15:04:05")
	})
}

var demoDirectory = []router.Entry{
	{Number: "5550001", Letter: 'S', Extension: "PJSIP/5550001"},
	{Number: "5550002", Letter: 'S', Extension: "PJSIP/5550002"},
	{Number: "5550004", Letter: 'S', Extension: "PJSIP/5550004"},
	{Number: "5550007", Letter: 'S', Extension: "PJSIP/5550007"},
	{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"},
	{Number: "5551002", Letter: 'S', Extension: "DAHDI/2"},
	{Number: "5553333", Letter: 'N', Extension: ""},
	{Number: "5552000", Letter: 'F', Extension: "PJSIP/fax2000"},
}

// cmdDemo builds a throw-away spool with the embedded SQLite directory, drops in
// sample messages as Asterisk would, runs the real `drain` and shows what happened.
func cmdDemo(ctx context.Context, e *env, keep string, verbose bool) int {
	root := keep
	if root == "" {
		tmp, err := os.MkdirTemp("", "smsrouter-demo-")
		if err != nil {
			return fail(e, exitUsage, err)
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	spool := filepath.Join(root, "spool")
	morx := filepath.Join(spool, "sms", "morx")
	for _, d := range []string{morx, filepath.Join(spool, "outgoing")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(e, exitUsage, err)
		}
	}
	conf := filepath.Join(root, "smsrouter.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("spool = %q\nsmsc_number = \"9001\"\ntimezone = \"UTC\"\n", spool)), 0o644); err != nil {
		return fail(e, exitUsage, err)
	}
	quiet := &env{stdout: devNull{}, stderr: e.stderr}
	if code := run(ctx, []string{"migrate", "--config", conf}, quiet.stdout, quiet.stderr); code != exitOK {
		return code
	}
	dc := common{config: conf}
	cfg, store, err := dc.openStore(ctx, quiet, router.OpenExisting)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	for _, entry := range demoDirectory {
		if err := store.Set(ctx, entry); err != nil {
			return fail(e, exitUsage, err)
		}
	}
	for _, m := range demoMessages {
		name, body := demoNow(m.name, time.Now()), demoNow(m.body, time.Now())
		if err := os.WriteFile(filepath.Join(morx, name), []byte(body), 0o644); err != nil {
			return fail(e, exitUsage, err)
		}
	}
	fmt.Fprintf(e.stdout, "Demo spool %s\nDirectory (embedded SQLite %s):\n", spool, cfg.dsn())
	for _, d := range demoDirectory {
		fmt.Fprintf(e.stdout, "  %-8s %c %-14s %s\n", d.Number, d.Letter, d.Extension, letterMeaning(d.Letter))
	}
	fmt.Fprintf(e.stdout, "\n%d files dropped into sms/morx as Asterisk's SMS() would; running `smsrouter drain`:\n\n", len(demoMessages))
	logTo := devNull{}
	drainArgs := []string{"drain", "--config", conf}
	var code int
	if verbose {
		code = run(ctx, drainArgs, e.stdout, e.stderr)
	} else {
		code = run(ctx, drainArgs, e.stdout, logTo)
	}
	fmt.Fprintf(e.stdout, "(drain exit code %d: 1 means some input was rejected or deferred)\n\nJournal:\n", code)
	recs, err := router.NewJournal(store).List(ctx, router.Filter{})
	if err != nil {
		return fail(e, exitPartial, err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	for _, r := range recs {
		line := fmt.Sprintf("  %s %-9s %-8s → %-8s letter %-1s", r.ID, r.State, r.OA, clipDemo(r.DA, 12), r.Letter)
		if r.LastError != "" {
			line += "  (" + r.LastError + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
	fmt.Fprintln(e.stdout, "\nFiles written for Asterisk:")
	for _, sub := range []string{"sms/mttx", "outgoing", "smsrouter/rejected", "fax"} {
		entries, _ := os.ReadDir(filepath.Join(spool, sub))
		for _, en := range entries {
			p := filepath.Join(spool, sub, en.Name())
			if sub == "fax" {
				info, _ := en.Info()
				fmt.Fprintf(e.stdout, "\n  %s  (%d bytes: a G3 fax page for SendFax; open it with any TIFF viewer)\n", filepath.Join(sub, en.Name()), info.Size())
				continue
			}
			fmt.Fprintf(e.stdout, "\n  %s\n", filepath.Join(sub, en.Name()))
			data, _ := os.ReadFile(p)
			for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
				fmt.Fprintf(e.stdout, "    | %s\n", l)
			}
			if sub == "sms/mttx" {
				// The queue file holds the text in hex (SPEC §1.5 says why); show it.
				if m, err := smsq.Parse(data, time.UTC); err == nil {
					fmt.Fprintf(e.stdout, "    text: %q\n", m.Text)
				}
			}
		}
	}
	if keep != "" {
		fmt.Fprintf(e.stdout, "\nKept in %s (config %s).\n", root, conf)
	}
	return exitOK
}

func clipDemo(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }
