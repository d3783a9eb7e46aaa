package smsq

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseVariants(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Message
	}{
		{"empty file", "", msg(func(m *Message) {})},
		{"upper-case keys, blanks before separator, CR line ends",
			"OA =5550001\rDa\t=5559999\r\nUD=Hi\r\n",
			msg(func(m *Message) { m.OA, m.DA, m.Text = "5550001", "5559999", "Hi" })},
		{"blank after = is skipped for numbers but kept in ud=",
			"mr= 42 \nud=  two leading blanks \n",
			msg(func(m *Message) { m.MR, m.Text = 42, "  two leading blanks " })},
		{"comments and empty lines ignored",
			"; a comment\n\n;ud=not this\nud=this\n",
			msg(func(m *Message) { m.Text = "this" })},
		{"last ud line wins, whatever its form",
			"ud=first\nud#4142\nud##00430044\nud=last\n",
			msg(func(m *Message) { m.Text = "last" })},
		{"ud# is Latin-1, lower-case hex accepted",
			"ud#e9ff0a\n",
			msg(func(m *Message) { m.Text = "é\u00ff\n" })},
		{"ud## combines surrogate pairs",
			"ud##D83DDE00\n",
			msg(func(m *Message) { m.Text = "😀" })},
		{"ud## lone surrogates become U+FFFD",
			"ud##D83D0041DE00\n",
			msg(func(m *Message) { m.Text = "\uFFFDA\uFFFD" })},
		{"ud= CESU-8 pair combined",
			"ud=\xed\xa0\xbd\xed\xb8\x80!\n",
			msg(func(m *Message) { m.Text = "😀!" })},
		{"ud= lone CESU-8 surrogates become U+FFFD",
			"ud=\xed\xa0\xbdx\xed\xb8\x80\n",
			msg(func(m *Message) { m.Text = "\uFFFDx\uFFFD" })},
		{"ud= invalid bytes are Latin-1 as in app_sms utf8decode",
			"ud=a\xbfb\xc3(\xff\n",
			msg(func(m *Message) { m.Text = "a\u00bfb\u00c3(\u00ff" })},
		{"ud= genuine 4-byte UTF-8",
			"ud=\xf0\x9f\x98\x80\n",
			msg(func(m *Message) { m.Text = "😀" })},
		{"ud= keeps U+FFFD written as UTF-8",
			"ud=\xef\xbf\xbd\n",
			msg(func(m *Message) { m.Text = "\uFFFD" })},
		{"empty ud= and ud#",
			"ud=x\nud#\n",
			msg(func(m *Message) { m.Text = "" })},
		{"empty udh# still sets HasUDH",
			"udh#\nud=x\n",
			msg(func(m *Message) { m.HasUDH, m.UDH, m.Text = true, []byte{}, "x" })},
		{"trailing blanks after hex forgiven",
			"udh#0003010201 \nud#41\t\n",
			msg(func(m *Message) { m.HasUDH, m.UDH, m.Text = true, []byte{0, 3, 1, 2, 1}, "A" })},
		{"srr/rp any non-zero number is true, zero is false",
			"srr=7\nrp=0\n",
			msg(func(m *Message) { m.SRR = true })},
		{"all numeric keys",
			"pid=64\ndcs=245\nmr=255\nvp=635040\n",
			msg(func(m *Message) { m.PID, m.DCS, m.MR, m.VP = 64, 245, 255, 635040 })},
		{"unknown keys and misplaced hex forms are warnings",
			"foo=bar\noa#31\nudh##0000\nud=x\n",
			msg(func(m *Message) {
				m.Text = "x"
				m.Warnings = []string{`ignored unknown key "foo"`, "ignored oa# (only ud and udh have the # form)", "ignored udh## (only ud has the ## form)"}
			})},
		{"oa and da are returned as written",
			"oa= +49 (151) x \nda=\n",
			msg(func(m *Message) { m.OA = "+49 (151) x" })},
		{"no trailing newline",
			"ud=end",
			msg(func(m *Message) { m.Text = "end" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), time.UTC)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseSCTS(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600) // no tzdata installed: same offset in January
	}
	m, err := Parse([]byte("scts=2024-01-02T03:04:05\n"), ny)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 2, 8, 4, 5, 0, time.UTC); !m.SCTS.Equal(want) {
		t.Errorf("SCTS = %v, want %v", m.SCTS.UTC(), want)
	}
	m, err = Parse([]byte("scts=2024-01-02T03:04:05\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.SCTS.Location() != time.Local {
		t.Errorf("nil location: got %v, want time.Local", m.SCTS.Location())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"NUL byte", "oa=1\nud=a\x00b\n", "NUL byte at offset 9"},
		{"file too large", strings.Repeat("ud=x\n", MaxFileSize/5+1), "more than the 262144"},
		{"line too long", "ud=" + strings.Repeat("x", MaxLineSize) + "\n", "line 1: 163843 bytes long"},
		{"no key", "oa=1\n=5\n", `line 2: no key at start of line "=5"`},
		{"leading blank", " oa=1\n", "line 1: no key"},
		{"no separator", "hello world\n", `line 1: key "hello" is not followed by '=', '#' or '##'`},
		{"key only", "oa\n", `key "oa" is not followed`},
		{"odd ud# hex", "ud#414\n", "line 1: ud#: odd number of hex digits (3)"},
		{"bad ud# digit", "ud#41G1\n", "ud#: invalid hex digit at position 3"},
		{"blank inside hex", "ud#41 42\n", "ud#: odd number of hex digits"},
		{"ud## not multiple of 4", "ud##004100\n", "ud##: 6 hex digits, not a multiple of 4"},
		{"bad ud## digit", "ud##00x1\n", "ud##: invalid hex digit"},
		{"bad udh hex", "udh#0003zz\n", "udh#: invalid hex digit"},
		{"udh too long", "udh#" + strings.Repeat("00", MaxUDHLen+1) + "\n", "udh#: 140 bytes, more than the 139"},
		{"pid not a number", "pid=abc\n", `line 1: pid: "abc": not a decimal number`},
		{"dcs empty", "dcs=\n", "dcs: empty value"},
		{"dcs out of range", "dcs=256\n", `dcs: "256" is larger than 255`},
		{"mr negative", "mr=-1\n", "mr: \"-1\": not a decimal number"},
		{"vp with unit", "vp=60m\n", "vp: \"60m\": not a decimal number"},
		{"vp overflow", "vp=99999999999999999999999\n", "vp: \"99999999999999999999999\" is larger"},
		{"srr junk", "srr=yes\n", "srr:"},
		{"scts wrong format", "scts=2024-01-02 03:04:05\n", `line 1: scts "2024-01-02 03:04:05" is not YYYY-MM-DDTHH:MM:SS`},
		{"scts unpadded", "scts=2024-1-2T3:04:05\n", "scts"},
		{"scts impossible date", "scts=2024-02-30T03:04:05\n", "scts"},
		{"scts trailing junk", "scts=2024-01-02T03:04:05Z\n", "scts"},
		{"line number counts CR", "oa=1\r\r\nbad\n", "line 4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in), time.UTC)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", m)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error %q is not a single line", err)
			}
		})
	}
}

func TestParseErrorQuotesAreShortAndValid(t *testing.T) {
	in := "pid=" + strings.Repeat("\xff", 200) + "\n"
	_, err := Parse([]byte(in), time.UTC)
	if err == nil {
		t.Fatal("no error")
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long: %q", len(err.Error()), err)
	}
	if !errors.Is(err, errNotNumber) {
		t.Errorf("error %v does not wrap errNotNumber", err)
	}
}

func TestMessageBinary(t *testing.T) {
	tests := []struct {
		dcs  int
		want bool
	}{
		{-1, false}, {0x00, false}, {0x04, true}, {0x08, false}, {0x0C, false},
		{0x14, true}, {0x44, true}, {0x48, false}, {0xC4, false}, {0xE4, false},
		{0xF1, false}, {0xF4, true}, {0xF5, true}, {0xF6, true}, {0xF7, true}, {245, true},
	}
	for _, tt := range tests {
		m := &Message{DCS: tt.dcs}
		if got := m.Binary(); got != tt.want {
			t.Errorf("DCS %#x: Binary() = %v, want %v", tt.dcs, got, tt.want)
		}
	}
}

func TestMessageConcat(t *testing.T) {
	tests := []struct {
		name       string
		udh        []byte
		ref        uint16
		total, seq uint8
		ok         bool
	}{
		{"none", nil, 0, 0, 0, false},
		{"8-bit ref", []byte{0x00, 0x03, 0xA7, 0x02, 0x01}, 0xA7, 2, 1, true},
		{"16-bit ref", []byte{0x08, 0x04, 0x12, 0x34, 0x03, 0x03}, 0x1234, 3, 3, true},
		{"after another element", []byte{0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x01, 0x02, 0x02}, 1, 2, 2, true},
		{"UDHL wrongly included (fixture pitfall)", []byte{0x05, 0x00, 0x03, 0xA7, 0x02, 0x01}, 0, 0, 0, false},
		{"truncated element", []byte{0x00, 0x03, 0xA7, 0x02}, 0, 0, 0, false},
		{"seq 0", []byte{0x00, 0x03, 0x01, 0x02, 0x00}, 0, 0, 0, false},
		{"seq > total", []byte{0x00, 0x03, 0x01, 0x02, 0x03}, 0, 0, 0, false},
		{"total 0", []byte{0x00, 0x03, 0x01, 0x00, 0x00}, 0, 0, 0, false},
		{"wrong length for IEI 00", []byte{0x00, 0x04, 0x01, 0x02, 0x01, 0x00}, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{UDH: tt.udh, HasUDH: tt.udh != nil}
			ref, total, seq, ok := m.Concat()
			if ref != tt.ref || total != tt.total || seq != tt.seq || ok != tt.ok {
				t.Errorf("Concat() = %#x %d %d %v, want %#x %d %d %v", ref, total, seq, ok, tt.ref, tt.total, tt.seq, tt.ok)
			}
		})
	}
}
