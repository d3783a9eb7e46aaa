package agi

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestQuoteRoundTrip(t *testing.T) {
	tests := []struct {
		words []string
		line  string // exact line expected, "" to skip the byte check
	}{
		{[]string{"GET", "VARIABLE", "MSG_CHAN_OPT"}, "GET VARIABLE MSG_CHAN_OPT\n"},
		{[]string{"SET", "VARIABLE", "QUOTED", "value with spaces"}, "SET VARIABLE QUOTED \"value with spaces\"\n"},
		{[]string{"STREAM", "FILE", "beep", ""}, "STREAM FILE beep \"\"\n"},
		{[]string{"SET", "VARIABLE", "X", `say "hi"`}, `SET VARIABLE X "say \"hi\""` + "\n"},
		{[]string{"SET", "VARIABLE", "X", `C:\path\`}, `SET VARIABLE X "C:\\path\\"` + "\n"},
		{[]string{"SET", "VARIABLE", "X", "tab\there"}, "SET VARIABLE X \"tab\there\"\n"},
		{[]string{"SET", "VARIABLE", "UTF8", "zażółć"}, "SET VARIABLE UTF8 zażółć\n"},
		{[]string{"SET", "VARIABLE", "X", "Zażółć gęślą jaźń 😀"}, ""},
		{[]string{"SET", "VARIABLE", "X", `"`}, ""},
		{[]string{"SET", "VARIABLE", "X", `\`}, ""},
		{[]string{"SET", "VARIABLE", "X", ` leading and trailing `}, ""},
		{[]string{"SET", "VARIABLE", "X", `a"b c"d`}, ""},
		{[]string{"GET", "FULL", "VARIABLE", "${CALLERID(all)}-${EXTEN}"}, "GET FULL VARIABLE ${CALLERID(all)}-${EXTEN}\n"},
	}
	for _, tt := range tests {
		line, err := FormatCommand(tt.words...)
		if err != nil {
			t.Errorf("FormatCommand(%q): %v", tt.words, err)
			continue
		}
		if tt.line != "" && line != tt.line {
			t.Errorf("FormatCommand(%q) = %q, want %q", tt.words, line, tt.line)
		}
		if strings.Count(line, "\n") != 1 || strings.Contains(line, "\r") {
			t.Errorf("FormatCommand(%q) = %q: want exactly one LF and no CR", tt.words, line)
		}
		if got := parseArgs(strings.TrimSuffix(line, "\n")); !equalWords(got, tt.words) {
			t.Errorf("parse_args(%q) = %q, want %q", line, got, tt.words)
		}
	}
}

func TestQuoteRefuses(t *testing.T) {
	for _, w := range []string{"a\nb", "a\rb", "a\x00b", "\n"} {
		if _, err := FormatCommand("SET", "VARIABLE", "X", w); !errors.Is(err, ErrUnquotable) {
			t.Errorf("FormatCommand with %q: err = %v, want ErrUnquotable", w, err)
		}
	}
	if _, err := FormatCommand(); err == nil {
		t.Error("empty command accepted")
	}
	long := strings.Repeat("x", MaxCommandBytes)
	if _, err := FormatCommand("SET", "VARIABLE", "X", long); !errors.Is(err, ErrCommandTooLong) {
		t.Errorf("long command: err = %v, want ErrCommandTooLong", err)
	}
	fits := strings.Repeat("x", MaxCommandBytes-len("SET VARIABLE X \n"))
	if _, err := FormatCommand("SET", "VARIABLE", "X", fits); err != nil {
		t.Errorf("command of exactly MaxCommandBytes refused: %v", err)
	}
}

// TestParseArgsModel pins the test's parse_args model to the lines of the
// real transcripts, so the round-trip tests rest on observed behaviour.
func TestParseArgsModel(t *testing.T) {
	tests := map[string][]string{
		`SET VARIABLE QUOTED "value with spaces"`: {"SET", "VARIABLE", "QUOTED", "value with spaces"},
		`STREAM FILE beep ""`:                     {"STREAM", "FILE", "beep", ""},
		`EXEC Set "FROM_EXEC=1"`:                  {"EXEC", "Set", "FROM_EXEC=1"},
		`VERBOSE "hello from fastagi" 1`:          {"VERBOSE", "hello from fastagi", "1"},
		"a\t b":                                   {"a", "b"},
		`a\ b "c\"d" e\\`:                         {"a b", `c"d`, `e\`},
		`a"b c"d`:                                 {"ab cd"},
	}
	for line, want := range tests {
		if got := parseArgs(line); !equalWords(got, want) {
			t.Errorf("parseArgs(%q) = %q, want %q", line, got, want)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "with space", `q"uote`, `back\slash`, "tab\t", "zażółć 😀", `\"`} {
		f.Add(s, "second word")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		words := []string{"SET", "VARIABLE", a, b}
		line, err := FormatCommand(words...)
		if err != nil {
			if !errors.Is(err, ErrUnquotable) && !errors.Is(err, ErrCommandTooLong) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if got := parseArgs(strings.TrimSuffix(line, "\n")); !equalWords(got, words) {
			t.Fatalf("round trip of %q via %q gave %q", words, line, got)
		}
	})
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		line string
		want Reply
	}{
		{"200 result=1", Reply{Code: 200, Result: 1}},
		{"200 result=0", Reply{Code: 200}},
		{"200 result=-1", Reply{Code: 200, Result: -1}},
		{"200 result=1 ()", Reply{Code: 200, Result: 1, HasData: true}},
		{"200 result=1 (S)", Reply{Code: 200, Result: 1, Data: "S", HasData: true}},
		{`200 result=1 ("" <>-s)`, Reply{Code: 200, Result: 1, Data: `"" <>-s`, HasData: true}},
		{"200 result=1 (a) b)", Reply{Code: 200, Result: 1, Data: "a) b", HasData: true}},
		{"200 result=1 (x) endpos=5)", Reply{Code: 200, Result: 1, Data: "x) endpos=5", HasData: true}},
		{"200 result=1 ((nested))", Reply{Code: 200, Result: 1, Data: "(nested)", HasData: true}},
		{"200 result=1 (Zażółć 😀)", Reply{Code: 200, Result: 1, Data: "Zażółć 😀", HasData: true}},
		{"200 result=0 endpos=12345", Reply{Code: 200, Extra: map[string]string{"endpos": "12345"}}},
		{"200 result=1 (timeout) endpos=960", Reply{Code: 200, Result: 1, Data: "timeout", HasData: true, Extra: map[string]string{"endpos": "960"}}},
		{"200 result=1 (a) b) endpos=1", Reply{Code: 200, Result: 1, Data: "a) b", HasData: true, Extra: map[string]string{"endpos": "1"}}},
		{"510 Invalid or unknown command", Reply{Code: 510, Text: "Invalid or unknown command"}},
		{"511 Command Not Permitted on a dead channel or intercept routine", Reply{Code: 511, Text: "Command Not Permitted on a dead channel or intercept routine"}},
		{"520 Invalid command syntax.  Proper usage not available.", Reply{Code: 520, Text: "Invalid command syntax.  Proper usage not available."}},
	}
	for _, tt := range tests {
		got, err := ParseReply(tt.line)
		if err != nil {
			t.Errorf("ParseReply(%q): %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseReply(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
	for _, bad := range []string{"", "HANGUP", "200", "200 ", "200 result=", "200 result=x", "200 resul=1",
		"20 result=1", "2000 result=1", "abc def", "200 result=1 (open", "200 result=1 junk", "200 result=1 (a) junk",
		"520-Invalid command syntax.  Proper usage follows:", "000 zero"} {
		if r, err := ParseReply(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseReply(%q) = %+v, %v; want ErrProtocol", bad, r, err)
		}
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Reply
		hangups int
		rest    string // left in the reader
	}{
		{"plain", "200 result=1 (S)\n200 result=0\n", Reply{Code: 200, Result: 1, Data: "S", HasData: true}, 0, "200 result=0\n"},
		{"hangup first", "HANGUP\n200 result=1 (S)\n", Reply{Code: 200, Result: 1, Data: "S", HasData: true}, 1, ""},
		{"two hangups", "HANGUP\nHANGUP\n511 Command Not Permitted\nHANGUP\n", Reply{Code: 511, Text: "Command Not Permitted"}, 2, "HANGUP\n"},
		{"520 single", "520 Invalid command syntax.  Proper usage not available.\n200 result=1\n",
			Reply{Code: 520, Text: "Invalid command syntax.  Proper usage not available."}, 0, "200 result=1\n"},
		{"520 multi", "520-Invalid command syntax.  Proper usage follows:\nline one\nExample return code: 200 result=1 (x)\nHANGUP\n520 End of proper usage.\n200 result=1\n",
			Reply{Code: 520, Text: "Invalid command syntax.  Proper usage follows:", Usage: []string{"line one", "Example return code: 200 result=1 (x)", "HANGUP"}}, 0, "200 result=1\n"},
		{"520 multi empty", "520-Invalid command syntax.  Proper usage follows:\n520 End of proper usage.\n",
			Reply{Code: 520, Text: "Invalid command syntax.  Proper usage follows:"}, 0, ""},
		{"value with newline", "200 result=1 (line one\nline two)\n200 result=0\n", Reply{Code: 200, Result: 1, Data: "line one\nline two", HasData: true}, 0, "200 result=0\n"},
		{"value with newline and paren", "200 result=1 (a)b\nc\nd)\n", Reply{Code: 200, Result: 1, Data: "a)b\nc\nd", HasData: true}, 0, ""},
		{"set reply", "200 result=1\nHANGUP\n", Reply{Code: 200, Result: 1}, 0, "HANGUP\n"},
		{"result 10", "200 result=10\n", Reply{Code: 200, Result: 10}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			got, hangups, err := ReadReply(br, 0)
			if err != nil {
				t.Fatalf("ReadReply: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) || hangups != tt.hangups {
				t.Errorf("got %+v, %d hangups; want %+v, %d", got, hangups, tt.want, tt.hangups)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.rest {
				t.Errorf("left %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestReadReplyErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"eof", "", 0, io.EOF},
		{"eof after hangup", "HANGUP\n", 0, io.EOF},
		{"partial line", "200 resu", 0, io.ErrUnexpectedEOF},
		{"set reply cut", "200 result=1", 0, io.ErrUnexpectedEOF},
		{"garbage", "hello\n", 0, ErrProtocol},
		{"unterminated 520", "520-Invalid\nusage\n", 0, io.EOF},
		{"long line", strings.Repeat("x", 100) + "\n", 50, ErrLineTooLong},
		{"long 520 block", "520-x\n" + strings.Repeat("usage\n", 20) + "520 End\n", 50, ErrLineTooLong},
		{"long continuation", "200 result=1 (a\n" + strings.Repeat("b\n", 40) + ")\n", 50, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadReply(bufio.NewReader(strings.NewReader(tt.in)), tt.max)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzParseReply feeds arbitrary bytes as a reply stream: ReadReply must
// not panic, must stay within its byte bound, and a 200 reply that parses
// must carry a data part that re-renders to a line parsing the same way.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"200 result=1 (S)\n", "HANGUP\n200 result=0\n", "200 result=1 (a) b) endpos=3\n",
		"520-Invalid command syntax.  Proper usage follows:\nusage\n520 End of proper usage.\n",
		"510 Invalid or unknown command\n", "200 result=1 (a\nb)\n", "511 x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 1024
		r, hangups, err := ReadReply(bufio.NewReaderSize(strings.NewReader(string(in)), 16), max)
		// Read from a full buffer, or a byte at a time: the same reply.
		bytewise, hangupsBytewise, errBytewise := ReadReply(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(string(in))), 16), max)
		if (err == nil) != (errBytewise == nil) || err == nil && (!reflect.DeepEqual(r, bytewise) || hangups != hangupsBytewise) {
			t.Fatalf("buffered: %+v, %d, %v; byte by byte: %+v, %d, %v", r, hangups, err, bytewise, hangupsBytewise, errBytewise)
		}
		if err != nil {
			return
		}
		if r.Code < 100 || r.Code > 999 {
			t.Fatalf("code %d out of range", r.Code)
		}
		size := len(r.Data) + len(r.Text)
		for _, u := range r.Usage {
			size += len(u)
		}
		if size > max {
			t.Fatalf("reply of %d bytes above bound %d", size, max)
		}
		if r.Code == 200 && r.HasData && r.Extra == nil && !strings.Contains(r.Data, "\n") {
			line := "200 result=" + itoa(r.Result) + " (" + r.Data + ")"
			again, err := ParseReply(line)
			if err != nil || again.Data != r.Data || again.Result != r.Result {
				t.Fatalf("re-rendered %q parsed as %+v, %v", line, again, err)
			}
		}
		_, _ = ParseReply(string(in))
	})
}

func TestReadEnv(t *testing.T) {
	block := envBlock("chaninfo?var=X", "arg1", "arg two", "")
	br := bufio.NewReader(strings.NewReader(block + "200 result=1\n"))
	env, err := ReadEnv(br, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Args(); !equalWords(got, []string{"arg1", "arg two", ""}) {
		t.Errorf("Args = %q", got)
	}
	if v, ok := env.Lookup("agi_accountcode"); !ok || v != "" {
		t.Errorf("agi_accountcode = %q, %v; want empty and present", v, ok)
	}
	if _, ok := env.Lookup("agi_nope"); ok {
		t.Error("Lookup of a missing key reported present")
	}
	if env.NetworkScript() != "chaninfo?var=X" || env.Channel() != "Local/s@agitest-0000002b;2" {
		t.Errorf("helpers: %q %q", env.NetworkScript(), env.Channel())
	}
	if v, ok := env.Arg(2); !ok || v != "arg two" {
		t.Errorf("Arg(2) = %q, %v", v, ok)
	}
	if _, ok := env.Arg(4); ok {
		t.Error("Arg(4) reported present")
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "200 result=1\n" {
		t.Errorf("ReadEnv consumed past the block: left %q", rest)
	}

	// A long block (looked up through a map) answers like a short one.
	long, err := ReadEnv(bufio.NewReader(strings.NewReader(manyLines(100)+"\n")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := long.Lookup("agi_x_99"); !ok || v != "yyyyyyyy" || len(long.Fields()) != 100 {
		t.Errorf("long block: agi_x_99 = %q, %v; %d fields", v, ok, len(long.Fields()))
	}

	bad := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"empty", "", 0, io.EOF},
		{"cut", "agi_network: yes\n", 0, io.ErrUnexpectedEOF},
		{"cut mid line", "agi_network: y", 0, io.ErrUnexpectedEOF},
		{"no colon", "agi_network yes\n\n", 0, nil},
		{"space in key", "agi network: yes\n\n", 0, nil},
		{"reply instead", "200 result=1\n\n", 0, nil},
		{"duplicate", "agi_network_script: a\nagi_network_script: b\n\n", 0, nil},
		{"long line", "agi_x: " + strings.Repeat("y", MaxEnvLineBytes) + "\n\n", 0, ErrLineTooLong},
		{"too large", manyLines(200), 1000, ErrEnvTooLarge},
		// Above linearFields lines the keys go into a map: a repeat is still caught.
		{"duplicate in a long block", manyLines(100) + "agi_x_7: again\n\n", 0, nil},
	}
	for _, tt := range bad {
		_, err := ReadEnv(bufio.NewReader(strings.NewReader(tt.in)), tt.max)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzReadEnv(f *testing.F) {
	f.Add([]byte(envBlock("chaninfo?x=1", "a b")))
	f.Add([]byte("agi_network: yes\nagi_accountcode: \n\n200 result=1\n"))
	f.Add([]byte("agi_x:\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 2048
		env, err := ReadEnv(bufio.NewReaderSize(strings.NewReader(string(in)), 16), max)
		// Read whole from the buffer, or a byte at a time: the same block.
		// (Which error a bad one gets may depend on the buffer's size.)
		whole, errWhole := ReadEnv(bufio.NewReaderSize(strings.NewReader(string(in)), 4096), max)
		bytewise, errBytewise := ReadEnv(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(string(in))), 16), max)
		if (errWhole == nil) != (errBytewise == nil) || !slices.Equal(whole.Fields(), bytewise.Fields()) {
			t.Fatalf("buffered: %q, %v; byte by byte: %q, %v", whole.Fields(), errWhole, bytewise.Fields(), errBytewise)
		}
		if err != nil {
			return
		}
		size := 0
		for _, fl := range env.Fields() {
			size += len(fl.Key) + len(fl.Value)
			if fl.Key == "" || strings.ContainsAny(fl.Key, ": \n") || strings.Contains(fl.Value, "\n") {
				t.Fatalf("bad field %q", fl)
			}
			if v, ok := env.Lookup(fl.Key); !ok || v != fl.Value {
				t.Fatalf("Lookup(%q) = %q, %v", fl.Key, v, ok)
			}
		}
		if size > max {
			t.Fatalf("env of %d bytes above bound", size)
		}
		_ = env.Args()
		_ = utf8.ValidString(env.Channel())
	})
}

// manyLines returns n distinct environment lines without the end line.
func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("agi_x_" + itoa(i) + ": yyyyyyyy\n")
	}
	return b.String()
}

func TestQuoteWord(t *testing.T) {
	tests := map[string]string{
		"plain":    "plain",
		"":         `""`,
		"a b":      `"a b"`,
		`a"b`:      `"a\"b"`,
		`a\b`:      `"a\\b"`,
		"zażółć":   "zażółć",
		"${EXTEN}": "${EXTEN}",
	}
	for in, want := range tests {
		if got, err := Quote(in); got != want || err != nil {
			t.Errorf("Quote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Quote("a\nb"); !errors.Is(err, ErrUnquotable) {
		t.Errorf("Quote with LF: %v", err)
	}
}

// TestErrorTexts checks that errors name the command but not its
// arguments, which may be message text.
func TestErrorTexts(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&UsageError{Command: verb([]string{"GET", "VARIABLE"}), Reply: Reply{Code: 520, Usage: []string{"Returns 0"}}},
			"agi: GET VARIABLE: invalid command syntax (520): Returns 0"},
		{&ReplyError{Command: verb([]string{"STREAM", "FILE", "beep", ""}), Reply: Reply{Code: 511, Text: "Command Not Permitted"}},
			"agi: STREAM FILE: 511 Command Not Permitted"},
		{&ReplyError{Command: verb([]string{"SET", "VARIABLE", "BODY", "secret text"}), Reply: Reply{Code: 510, Text: "x"}},
			"agi: SET VARIABLE BODY: 510 x"},
		{&ReplyError{Command: verb([]string{"lower case"}), Reply: Reply{Code: 300, Text: "y"}},
			`agi: "lower case": 300 y`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if errors.Is(&ReplyError{Reply: Reply{Code: 300}}, ErrHangup) || !errors.Is(&ReplyError{Reply: Reply{Code: 511}}, ErrHangup) {
		t.Error("ReplyError.Is maps codes wrongly")
	}
}
