package dialplan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestGenerateGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"default.conf", Options{SMSCNumber: "9001"}},
		{"drain-route.conf", Options{
			SMSCNumber: "+48221234567", SMSCExtens: []string{"9000", "9002"}, AGIAddr: "192.0.2.10:4574",
			SMSCContext: "sms-centre", MessagesContext: "sip-messages", Route: true,
			Drain: "/usr/local/bin/smsrouter drain -q --config /etc/asterisk/smsrouter.toml",
		}},
		{"outcome.conf", Options{SMSCNumber: "9001", Outcome: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Generate(c.o)
			if err != nil {
				t.Fatal(err)
			}
			checkDialplan(t, got)
			golden(t, c.name, got)
		})
	}
}

// checkDialplan checks what Asterisk's parser would choke on or misread:
// every line is a comment, a section, a global or an extension line; the
// parentheses and ${…} of each application balance; every label a GotoIf
// jumps to exists in the same context; no line uses a variable the handlers
// do not set, misspelled.
func checkDialplan(t *testing.T, conf []byte) {
	t.Helper()
	labels := map[string]map[string]bool{}
	jumps := map[string][]string{}
	ctx := ""
	appLine := regexp.MustCompile(`^(exten => [^,]+,1|\s*same => n(\(([a-z]+)\))?),([A-Za-z]+)\((.*)\)$`)
	for i, line := range strings.Split(strings.TrimSuffix(string(conf), "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			ctx = line[1 : len(line)-1]
			labels[ctx] = map[string]bool{}
		case ctx == "globals" && regexp.MustCompile(`^[A-Z_]+=\S+$`).MatchString(line):
		default:
			m := appLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d: not an extension line: %q", i+1, line)
				continue
			}
			if m[3] != "" {
				labels[ctx][m[3]] = true
			}
			if strings.Count(m[5], "(") != strings.Count(m[5], ")") || strings.Count(m[5], "${") > strings.Count(m[5], "}") {
				t.Errorf("line %d: unbalanced: %q", i+1, line)
			}
			if strings.Contains(m[5], ";") {
				t.Errorf("line %d: ';' would start a comment: %q", i+1, line)
			}
			if m[4] == "GotoIf" {
				l := m[5][strings.LastIndexByte(m[5], '?')+1:]
				jumps[ctx] = append(jumps[ctx], l)
			}
		}
	}
	for c, ls := range jumps {
		for _, l := range ls {
			if !labels[c][l] {
				t.Errorf("context %s: GotoIf to missing label %q", c, l)
			}
		}
	}
	for _, v := range regexp.MustCompile(`\$\{(MSG_[A-Z_]+|SMSROUTER_[A-Z_]+|SMSC_[A-Z_]+)`).FindAllStringSubmatch(string(conf), -1) {
		switch v[1] {
		case "MSG_CHAN_OPT", "MSG_CHAN_EXT", "SMSROUTER_STATUS", "SMSROUTER_REASON", "SMSROUTER_FROM", "SMSROUTER_AGI", "SMSC_NUMBER", "SMSROUTER_ID",
			"SMSROUTER_DATA", "SMSROUTER_TRIES": // the call file's Setvars (channels.DataVar, channels.TriesVar)
		default:
			t.Errorf("unknown variable %s", v[1])
		}
	}
}

func TestGenerateRefusesUnsafeValues(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"no smsc number", Options{}, "SMS Centre number"},
		{"exten", Options{SMSCNumber: "9001", SMSCExtens: []string{"9000\nexten => s,1,System(rm)"}}, "extension"},
		{"pattern exten", Options{SMSCNumber: "9001", SMSCExtens: []string{"_X."}}, "extension"},
		{"agi address", Options{SMSCNumber: "9001", AGIAddr: "127.0.0.1"}, "host:port"},
		{"agi address injection", Options{SMSCNumber: "9001", AGIAddr: "h/x?y:1"}, "host:port"},
		{"context", Options{SMSCNumber: "9001", SMSCContext: "a]\n[b"}, "context"},
		{"same contexts", Options{SMSCNumber: "9001", SMSCContext: "x", MessagesContext: "x"}, "differ"},
		{"drain comment", Options{SMSCNumber: "9001", Drain: "smsrouter drain; rm -rf /"}, "';'"},
		{"drain variable", Options{SMSCNumber: "9001", Drain: "smsrouter ${EXTEN}"}, "'${'"},
		{"drain newline", Options{SMSCNumber: "9001", Drain: "a\nb"}, "line break"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Generate(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestManagerGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		o    ManagerOptions
	}{
		{"manager-default.conf", ManagerOptions{}},
		{"manager-custom.conf", ManagerOptions{User: "sms-t", Secret: "s3cr3t-from-config", Permit: "10.0.0.5/255.255.255.255"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Manager(c.o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(got, []byte("\nwrite = system,message\n")) || !bytes.Contains(got, []byte("\ndeny = 0.0.0.0/0.0.0.0\n")) {
				t.Errorf("missing least-privilege lines:\n%s", got)
			}
			golden(t, c.name, got)
		})
	}
	for _, o := range []ManagerOptions{
		{Secret: "a b"}, {Secret: "x\nwrite = all"}, {Secret: "x;y"}, {User: "a]\n[b"}, {Permit: "0.0.0.0/0 ; x"},
	} {
		if _, err := Manager(o); err == nil {
			t.Errorf("Manager(%+v) accepted", o)
		}
	}
}
