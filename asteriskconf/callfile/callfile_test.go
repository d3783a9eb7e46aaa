package callfile

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixtureDir holds call files captured from a real Asterisk 22 and smsq
// (copied from the shared asterisk/fixtures/call).
const fixtureDir = "testdata/asterisk"

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, rel))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func TestMarshalMatchesSmsq(t *testing.T) {
	tests := []struct {
		fixture string
		cf      CallFile
	}{
		{"mt-all_fields/smsq.mttx.1000.1", CallFile{
			Channel: "Local/1000@phones", CallerID: "SMS <9001>", Application: "SMS", Data: "1000,s",
			MaxRetries: 100, RetryTime: 30, WaitTime: 10,
		}},
		{"mo-plain_ascii/smsq.motx.5550001.1", CallFile{
			Channel: "Local/9000@smsc", CallerID: "SMS <5550001>", Application: "SMS", Data: "5550001",
			MaxRetries: 10, RetryTime: 1, WaitTime: 10,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			want := readFixture(t, tt.fixture)
			got, err := tt.cf.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal =\n%s\nwant (smsq)\n%s", got, want)
			}
		})
	}
}

func TestMarshalGolden(t *testing.T) {
	no := false
	tests := []struct {
		name string
		cf   CallFile
	}{
		{"all_fields_app", CallFile{
			Channel: "Local/rec@voice", CallerID: `"Voice; test" <5551234>`,
			Application: "Playback", Data: "/var/spool/voice/a;b#c",
			MaxRetries: 2, RetryTime: 60, WaitTime: 20,
			Account: "smsrouter", Codecs: "slin,ulaw",
			Vars:    []Var{{"__RECFILE", "/var/spool/voice/rec/x"}, {"_MSGID", " leading blank kept;#hash"}, {"EMPTY", ""}},
			Archive: true, AlwaysDelete: &no,
		}},
		{"extension", CallFile{
			Channel: "PJSIP/1000", Context: "sms-out", Extension: "s", Priority: "2", EarlyMedia: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cf.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			path := filepath.Join("testdata", tt.name+".call")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
			}
			r, err := Parse(got)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertCallFileEqual(t, &r.CallFile, &tt.cf)
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	ok := CallFile{Channel: "Local/1000@phones", Application: "SMS", Data: "1000,s"}
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name  string
		edit  func(c *CallFile)
		field string
	}{
		{"no channel", func(c *CallFile) { c.Channel = "" }, "Channel"},
		{"channel without slash", func(c *CallFile) { c.Channel = "Local" }, "Channel"},
		{"channel empty tech", func(c *CallFile) { c.Channel = "/1000" }, "Channel"},
		{"channel empty dest", func(c *CallFile) { c.Channel = "Local/" }, "Channel"},
		{"LF injection in Data", func(c *CallFile) { c.Data = "1000\nApplication: System" }, "Data"},
		{"CR in CallerID", func(c *CallFile) { c.CallerID = "SMS <1>\r" }, "Callerid"},
		{"NUL in Channel", func(c *CallFile) { c.Channel = "Local/1\x00000" }, "Channel"},
		{"TAB in Account", func(c *CallFile) { c.Account = "a\tb" }, "Account"},
		{"ESC in Codecs", func(c *CallFile) { c.Codecs = "ulaw\x1b" }, "Codecs"},
		{"DEL in Data", func(c *CallFile) { c.Data = "a\x7f" }, "Data"},
		{"LF in var value", func(c *CallFile) { c.Vars = []Var{{"X", "1\nChannel: x/y"}} }, "Setvar[0] X"},
		{"hash after blank", func(c *CallFile) { c.Data = "a #b" }, "Data"},
		{"leading hash", func(c *CallFile) { c.Data = "#b" }, "Data"},
		{"hash after blank in var", func(c *CallFile) { c.Vars = []Var{{"X", "a #b"}} }, "Setvar[0] X"},
		{"leading blank", func(c *CallFile) { c.Data = " 1000" }, "Data"},
		{"trailing blank", func(c *CallFile) { c.Data = "1000 " }, "Data"},
		{"trailing blank in var", func(c *CallFile) { c.Vars = []Var{{"X", "v "}} }, "Setvar[0] X"},
		{"2000-byte value", func(c *CallFile) { c.Data = long }, "Data"},
		{"line just over max", func(c *CallFile) { c.Data = strings.Repeat("x", MaxLine-len("Data: ")+1) }, "Data"},
		{"escapes push line over max", func(c *CallFile) { c.Data = strings.Repeat(";", MaxLine/2) }, "Data"},
		{"var name with =", func(c *CallFile) { c.Vars = []Var{{"A=B", "c"}} }, "Setvar[0]"},
		{"var name empty", func(c *CallFile) { c.Vars = []Var{{"", "c"}} }, "Setvar[0]"},
		{"var name only underscores", func(c *CallFile) { c.Vars = []Var{{"__", "c"}} }, "Setvar[0]"},
		{"var name three underscores", func(c *CallFile) { c.Vars = []Var{{"___X", "c"}} }, "Setvar[0]"},
		{"var name leading digit", func(c *CallFile) { c.Vars = []Var{{"1X", "c"}} }, "Setvar[0]"},
		{"var name blank", func(c *CallFile) { c.Vars = []Var{{"A B", "c"}} }, "Setvar[0]"},
		{"var name function unclosed", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(ecm", "c"}} }, "Setvar[0]"},
		{"var name function empty args", func(c *CallFile) { c.Vars = []Var{{"FAXOPT()", "c"}} }, "Setvar[0]"},
		{"var name function no name", func(c *CallFile) { c.Vars = []Var{{"(ecm)", "c"}} }, "Setvar[0]"},
		{"var name function inherited", func(c *CallFile) { c.Vars = []Var{{"__FAXOPT(ecm)", "c"}} }, "Setvar[0]"},
		{"var name function nested", func(c *CallFile) { c.Vars = []Var{{"A(B(c))", "c"}} }, "Setvar[0]"},
		{"var name function blank", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(e cm)", "c"}} }, "Setvar[0]"},
		{"var name function semicolon", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(a;b)", "c"}} }, "Setvar[0]"},
		{"var name function hash", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(a#b)", "c"}} }, "Setvar[0]"},
		{"var name function dollar", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(${X})", "c"}} }, "Setvar[0]"},
		{"var name function equals", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(a=b)", "c"}} }, "Setvar[0]"},
		{"var name function trailing text", func(c *CallFile) { c.Vars = []Var{{"FAXOPT(ecm)x", "c"}} }, "Setvar[0]"},
		{"var name newline", func(c *CallFile) { c.Vars = []Var{{"A\nB", "c"}} }, "Setvar[0]"},
		{"no app no exten", func(c *CallFile) { c.Application, c.Data = "", "" }, "Application"},
		{"app and exten", func(c *CallFile) { c.Extension = "s" }, "Extension"},
		{"data without app", func(c *CallFile) { c.Application, c.Extension = "", "s" }, "Data"},
		{"context without exten", func(c *CallFile) { c.Context = "x" }, "Context"},
		{"priority without exten", func(c *CallFile) { c.Priority = "1" }, "Priority"},
		{"early media with app", func(c *CallFile) { c.EarlyMedia = true }, "Early_media"},
		{"priority zero", func(c *CallFile) { c.Application, c.Data, c.Extension, c.Priority = "", "", "s", "0" }, "Priority"},
		{"priority leading zero", func(c *CallFile) { c.Application, c.Data, c.Extension, c.Priority = "", "", "s", "01" }, "Priority"},
		{"priority label", func(c *CallFile) { c.Application, c.Data, c.Extension, c.Priority = "", "", "s", "start" }, "Priority"},
		{"negative WaitTime", func(c *CallFile) { c.WaitTime = -1 }, "WaitTime"},
		{"negative MaxRetries", func(c *CallFile) { c.MaxRetries = -5 }, "MaxRetries"},
		{"huge RetryTime", func(c *CallFile) { c.RetryTime = 1 << 40 }, "RetryTime"},
		{"callerid name too long", func(c *CallFile) { c.CallerID = `"` + strings.Repeat("n", 80) + `" <1>` }, "Callerid"},
		{"file too large", func(c *CallFile) {
			for range 100 {
				c.Vars = append(c.Vars, Var{"V", strings.Repeat("v", 1000)})
			}
		}, "file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Vars = nil
			tt.edit(&c)
			b, err := c.Marshal()
			if err == nil {
				t.Fatalf("Marshal accepted it:\n%s", b)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not a *FieldError wrapping ErrInvalid", err)
			}
			if !strings.HasPrefix(fe.Field, tt.field) {
				t.Errorf("error names field %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if b != nil {
				t.Errorf("Marshal returned bytes with an error")
			}
			if c.Validate() == nil {
				t.Errorf("Validate accepted what Marshal refuses")
			}
		})
	}
}

func TestMarshalAccepts(t *testing.T) {
	tests := []struct {
		name string
		cf   CallFile
		line string // must appear in the output
	}{
		{"semicolon escaped", CallFile{Channel: "Local/1@x", Application: "A", Data: "a;b"}, "Data: a\\;b\n"},
		{"backslash before semicolon", CallFile{Channel: "Local/1@x", Application: "A", Data: `a\;b`}, "Data: a\\\\;b\n"},
		{"hash not after blank", CallFile{Channel: "Local/1@x", Application: "A", Data: "a#b"}, "Data: a#b\n"},
		{"leading hash in var value", CallFile{Channel: "Local/1@x", Application: "A", Vars: []Var{{"X", "#1"}}}, "Setvar: X=#1\n"},
		{"leading blank in var value", CallFile{Channel: "Local/1@x", Application: "A", Vars: []Var{{"X", " 1"}}}, "Setvar: X= 1\n"},
		{"equals in var value", CallFile{Channel: "Local/1@x", Application: "A", Vars: []Var{{"X", "a=b"}}}, "Setvar: X=a=b\n"},
		{"function var name", CallFile{Channel: "Local/1@x", Application: "A", Vars: []Var{{"FAXOPT(ecm)", "yes"}}}, "Setvar: FAXOPT(ecm)=yes\n"},
		{"function var name with args", CallFile{Channel: "Local/1@x", Application: "A", Vars: []Var{{"HASH(fax_1,rate.max-2)", "1"}}}, "Setvar: HASH(fax_1,rate.max-2)=1\n"},
		{"utf-8 value", CallFile{Channel: "Local/1@x", Application: "A", CallerID: `"Zażółć" <1>`}, "Callerid: \"Zażółć\" <1>\n"},
		{"line exactly max", CallFile{Channel: "Local/1@x", Application: "A", Data: strings.Repeat("x", MaxLine-len("Data: "))}, "Data: x"},
		{"zero numbers omitted", CallFile{Channel: "Local/1@x", Application: "A"}, "Channel: Local/1@x\nApplication: A\n"},
		{"always delete yes", CallFile{Channel: "Local/1@x", Application: "A", AlwaysDelete: new(true)}, "AlwaysDelete: yes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.cf.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Contains(b, []byte(tt.line)) {
				t.Errorf("output lacks %q:\n%s", tt.line, b)
			}
			r, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertCallFileEqual(t, &r.CallFile, &tt.cf)
			if len(r.Unknown) != 0 {
				t.Errorf("Unknown = %q", r.Unknown)
			}
		})
	}
}

// assertCallFileEqual compares what a call file means (a nil and an empty
// Vars slice are the same file).
func assertCallFileEqual(t testing.TB, got, want *CallFile) {
	t.Helper()
	if d := diffCallFile(got, want); d != "" {
		t.Errorf("call file differs: %s", d)
	}
}
