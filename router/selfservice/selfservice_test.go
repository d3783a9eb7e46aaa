package selfservice

import (
	"strings"
	"testing"
	"unicode/utf8"

	"smsrouter/internal/quiet"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Command{
		"SET F":            {Verb: Set, Letters: "F"},
		"set t,s":          {Verb: Set, Letters: "TS"},
		" SET T, S , V ":   {Verb: Set, Letters: "TSV"},
		"1234 SET F":       {Verb: Set, Letters: "F", PIN: "1234"},
		"LANG pl":          {Verb: Lang, Lang: "pl"},
		"lang EN-GB":       {Verb: Lang, Lang: "en-gb"},
		"LANG off":         {Verb: Lang},
		"QUIET 22-07":      {Verb: Quiet, Window: quiet.Window{Start: 22 * 60, End: 7 * 60}},
		"quiet 22:30-6:45": {Verb: Quiet, Window: quiet.Window{Start: 22*60 + 30, End: 6*60 + 45}},
		"QUIET OFF":        {Verb: Quiet},
		"QUIET default":    {Verb: Quiet, Default: true},
		"status":           {Verb: Status},
		"98765432 STATUS":  {Verb: Status, PIN: "98765432"},
		"help":             {Verb: Help},
		"1234 PIN 5678":    {Verb: Pin, PIN: "1234", NewPIN: "5678"},
		"pin 87654321":     {Verb: Pin, NewPIN: "87654321"},
		"1234 pin off":     {Verb: Pin, PIN: "1234", PINOff: true},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1234", "SET", "SET C", "SET N", "SET SS", "SET SFVTS", "SET X",
		"LANG", "LANG ../x", "LANG -v", "LANG pl en", "QUIET", "QUIET 25-07", "QUIET 22", "STATUS now",
		"HELLO", "123 SET F", "PIN", "1234 PIN", "PIN 12", "PIN 12345a", "1234 PIN 5678 9012", strings.Repeat("SET F ", 40)} {
		_, err := Parse(bad)
		e, ok := IsError(err)
		if !ok || e.Reply == "" {
			t.Errorf("Parse(%q) = %v, want a reply error", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"SET F", "1234 SET T,S", "LANG pl", "QUIET 22-07", "QUIET OFF", "STATUS", "1234 PIN 5678", "PIN OFF", "x", "\xff SET"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			e, ok := IsError(err)
			if !ok || e.Reply == "" || len(e.Reply) > 160 || !utf8.ValidString(e.Reply) {
				t.Fatalf("Parse(%q): error %v is not a short reply", s, err)
			}
			return
		}
		switch c.Verb {
		case Set:
			if c.Letters == "" || len(c.Letters) > 4 || strings.Trim(c.Letters, chooseable) != "" {
				t.Fatalf("Parse(%q): letters %q", s, c.Letters)
			}
		case Lang:
			if c.Lang != "" && (!validLang(c.Lang) || strings.HasPrefix(c.Lang, "-")) {
				t.Fatalf("Parse(%q): lang %q", s, c.Lang)
			}
		case Pin:
			if c.PINOff == (c.NewPIN != "") || c.NewPIN != "" && !ValidPIN(c.NewPIN) {
				t.Fatalf("Parse(%q): new pin %q off %v", s, c.NewPIN, c.PINOff)
			}
		case Quiet, Status, Help:
		default:
			t.Fatalf("Parse(%q): verb %q", s, c.Verb)
		}
		if c.PIN != "" && !ValidPIN(c.PIN) {
			t.Fatalf("Parse(%q): pin %q", s, c.PIN)
		}
	})
}
