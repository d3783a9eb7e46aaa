package dialplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handWritten is default.conf as an admin might have typed it into their
// extensions.conf: other spacing, "exten =" and repeated extensions instead
// of "same =>", numbered priorities, comments everywhere, a block comment,
// different case in application names, the old "App,args" form for Hangup.
// It does the same as the generated text and must compare equal.
const handWritten = `; my PBX
[general]
static=yes

[globals]
FOO=bar
SMSROUTER_AGI=agi://127.0.0.1:4573 ; where smsrouter listens
SMSC_NUMBER = 9001

;-- an old attempt, kept for reference
[smsc]
exten => 9000,1,Playback(hello)
--;
[smsc]
exten = 9000 , 1 , answer()
exten => 9000,n,SMS(${CALLERID(num)},sa)   ; app_sms as the centre
exten => 9000,3,Hangup

[messages]
exten => _[+0-9].,1,Set(MESSAGE_FROM=${MESSAGE(from)})
 same => n,Set(MSG_B64=${BASE64_ENCODE(${MESSAGE(body)})})
 same => n,AGI(${SMSROUTER_AGI}/postsms)
 same => n,GotoIf($["${AGISTATUS}" != "SUCCESS"]?unavailable)
 same => n,GotoIf($["${SMSROUTER_STATUS}" = "QUEUED"]?done)
 same => n,GotoIf($["${SMSROUTER_FROM}" = ""]?done)
 same => n,AGI(${SMSROUTER_AGI}/chaninfo?var=SMSROUTER_FROM)
 same => n,GotoIf($["${MSG_CHAN_OPT}" != "T"]?done)
 same => n,Set(MESSAGE(body)=Cannot deliver SMS to ${EXTEN}. ${SMSROUTER_REASON})
 same => n,MessageSend(${TOLOWER(${CUT(MSG_CHAN_EXT,/,1)})}:${CUT(MSG_CHAN_EXT,/,2)},${SMSC_NUMBER})
 same => n(done),Hangup()
 same => n(unavailable),Log(WARNING,SIP MESSAGE to ${EXTEN} from ${MESSAGE_FROM} not queued: no FastAGI at ${SMSROUTER_AGI})
 same => n,Hangup()
`

func generated(t *testing.T, o Options) *Conf {
	t.Helper()
	out, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	return ParseExtensions(out)
}

func TestCompareIgnoresFormOnly(t *testing.T) {
	want := generated(t, Options{SMSCNumber: "9001"})
	if got := Compare(want, want, "globals", "smsc", "messages"); len(got) != 0 {
		t.Fatalf("the generated dialplan differs from itself: %v", got)
	}
	got := ParseExtensions([]byte(handWritten))
	if diffs := Compare(want, got, "globals", "smsc", "messages"); len(diffs) != 0 {
		t.Fatalf("a hand-written equivalent differs: %v", diffs)
	}
}

func TestCompareFindsEachDifference(t *testing.T) {
	want := generated(t, Options{SMSCNumber: "9001"})
	for _, c := range []struct {
		name, from, to string
		wantDiff       string
	}{
		{"a line missing", "exten => 9000,3,Hangup\n", "", "[smsc]: missing exten => 9000,3,hangup()"},
		{"another application", "exten => 9000,n,SMS(${CALLERID(num)},sa)", "exten => 9000,n,SMS(${CALLERID(num)},s)",
			"[smsc]: exten => 9000,2,sms(${CALLERID(num)},s) (line 16), smsrouter dialplan has exten => 9000,2,sms(${CALLERID(num)},sa)"},
		{"an extra line", " same => n,Hangup()\n", " same => n,Hangup()\n same => n,Playback(beep)\n", "[messages]: exten => _[+0-9].,14,playback(beep) (line 33) is not in smsrouter dialplan's output"},
		{"the old lookup of the recipient", "chaninfo?var=SMSROUTER_FROM", "chaninfo", "[messages]: exten => _[+0-9].,7,agi(${SMSROUTER_AGI}/chaninfo) (line 26)"},
		{"another FastAGI address", "SMSROUTER_AGI=agi://127.0.0.1:4573", "SMSROUTER_AGI=agi://127.0.0.1:4574", "[globals]: SMSROUTER_AGI=agi://127.0.0.1:4574"},
		{"no messages context", "[messages]", "[sip-in]", "[messages]: no such context"},
		{"a label moved", " same => n(done),Hangup()", " same => n,Hangup()", "[messages]: exten => _[+0-9].,11,hangup() (line 30), smsrouter dialplan has exten => _[+0-9].,11(done),hangup()"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(handWritten, c.from, c.to, 1)
			if text == handWritten {
				t.Fatalf("the replacement of %q changed nothing", c.from)
			}
			diffs := Compare(want, ParseExtensions([]byte(text)), "globals", "smsc", "messages")
			var all []string
			for _, d := range diffs {
				all = append(all, d.String())
			}
			joined := strings.Join(all, "\n")
			if !strings.Contains(joined, c.wantDiff) {
				t.Fatalf("differences:\n%s\nwant one containing %q", joined, c.wantDiff)
			}
		})
	}
}

// TestReadExtensionsFollowsIncludes: Debian's extensions.conf usually
// #includes a file of smsrouter's own; includes are read relative to the
// config folder, globs and #tryinclude work, a loop is read once.
func TestReadExtensionsFollowsIncludes(t *testing.T) {
	dir := t.TempDir()
	gen, err := Generate(Options{SMSCNumber: "9001"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("extensions.conf", "[general]\nstatic=yes\n#include \"extensions.d/*.conf\"\n#tryinclude <missing.conf>\n#exec /bin/date\n")
	write("extensions.d/50-smsrouter.conf", string(gen))
	write("extensions.d/90-loop.conf", "#include extensions.conf\n[other]\nexten => 1,1,NoOp()\n")
	conf, err := ReadExtensions(filepath.Join(dir, "extensions.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if diffs := Compare(ParseExtensions(gen), conf, "globals", "smsc", "messages"); len(diffs) != 0 {
		t.Fatalf("differences through #include: %v", diffs)
	}
	if len(conf.Files) != 3 {
		t.Errorf("read %v, want the main file and two included ones", conf.Files)
	}
	notes := strings.Join(conf.Notes, "\n")
	for _, want := range []string{"missing.conf", "#exec", "included twice"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if _, err := ReadExtensions(filepath.Join(dir, "nope.conf")); err == nil {
		t.Error("a missing extensions.conf must be an error")
	}
}

func FuzzParseExtensions(f *testing.F) {
	f.Add([]byte(handWritten))
	f.Add([]byte("[a]\nsame => n,x\nexten => ,hint,\n;-- x\n[b](+)\nexten=>1,n(l),App(a,b\\;c)\n#include\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := ParseExtensions(data)
		// Every statement, written canonically, reads back as itself.
		for name, sts := range c.Contexts {
			for _, s := range sts {
				if s.Key != "exten" || s.Prio == "hint" || strings.ContainsAny(s.String(), ";\n\r") || strings.ContainsAny(name, "[]();\n\r") || name == "" {
					continue
				}
				back := ParseExtensions([]byte("[" + name + "]\n" + s.String() + "\n"))
				got := back.Contexts[name]
				if len(got) != 1 || got[0].String() != s.String() {
					t.Fatalf("%q reads back as %v", s.String(), got)
				}
			}
		}
		_ = Compare(c, c, "globals", "smsc", "messages")
	})
}
