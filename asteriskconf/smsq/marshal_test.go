package smsq

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMarshalGolden(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"minimal ASCII still hex", msg(func(m *Message) { m.OA, m.Text = "5551234", "Hello" }),
			"oa=5551234\nud#48656C6C6F\n"},
		{"empty text", msg(func(m *Message) { m.OA = "5551234" }),
			"oa=5551234\nud#\n"},
		{"all fields in smsq order", &Message{
			OA: "+4915112345678", DA: "5559999", SCTS: time.Date(2025, 6, 30, 23, 59, 58, 0, time.UTC),
			PID: 64, DCS: 0, MR: 7, VP: 60, SRR: true, RP: true,
			UDH: []byte{0x00, 0x03, 0xab, 0x02, 0x01}, Text: "é",
			Warnings: []string{"ignored"},
		}, "oa=+4915112345678\nda=5559999\nscts=2025-06-30T23:59:58\npid=64\ndcs=0\nmr=7\nsrr=1\nrp=1\nudh#0003AB0201\nvp=60\nud#E9\n"},
		{"empty udh line kept", msg(func(m *Message) { m.HasUDH, m.Text = true, "x" }),
			"udh#\nud#78\n"},
		{"UCS-2 with surrogate pair", msg(func(m *Message) { m.DA, m.Text = "1", "Ż😀" }),
			"da=1\nud##017BD83DDE00\n"},
		{"control characters and 0xFF in ud#", msg(func(m *Message) { m.Text = "a\n\t\u00ff\x00" }),
			"ud#610A09FF00\n"},
		{"scts written in its own location", msg(func(m *Message) {
			m.SCTS, m.Text = time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)), ""
		}), "scts=2024-01-02T03:04:05\nud#\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"letters in oa", msg(func(m *Message) { m.OA = "ACME" }), `oa "ACME": only an optional leading '+'`},
		{"newline injection in da", msg(func(m *Message) { m.DA = "1\nud=x" }), "da"},
		{"path in da", msg(func(m *Message) { m.DA = "../../x" }), "da"},
		{"plus in the middle", msg(func(m *Message) { m.OA = "12+3" }), "oa"},
		{"plus only", msg(func(m *Message) { m.OA = "+" }), `oa "+" has no digits`},
		{"20 characters", msg(func(m *Message) { m.OA = strings.Repeat("1", 20) }), "oa of 20 characters, app_sms takes at most 19"},
		{"invalid UTF-8", msg(func(m *Message) { m.Text = "a\xffb" }), "text is not valid UTF-8"},
		{"pid", msg(func(m *Message) { m.PID = 256 }), "pid 256"},
		{"dcs", msg(func(m *Message) { m.DCS = -2 }), "dcs -2"},
		{"mr", msg(func(m *Message) { m.MR = 300 }), "mr 300"},
		{"vp", msg(func(m *Message) { m.VP = -5 }), "vp -5"},
		{"udh", msg(func(m *Message) { m.UDH = make([]byte, 140) }), "udh of 140 bytes"},
		{"scts year", msg(func(m *Message) { m.SCTS = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "scts year 10000"},
		{"text beyond a line", msg(func(m *Message) { m.Text = strings.Repeat("ż", MaxLineSize/4) }), "does not fit a 163840-byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.m.Marshal()
			if err == nil {
				t.Fatalf("Marshal succeeded: %q", out)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestMarshalAcceptsLongSMSText(t *testing.T) {
	// More than one SMS is app_sms's business (it truncates); Marshal only
	// refuses what cannot be a queue file at all.
	m := msg(func(m *Message) { m.OA, m.Text = "1", strings.Repeat("x", 500) })
	if _, err := m.Marshal(); err != nil {
		t.Fatalf("Marshal: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	texts := map[string]string{
		"ascii":     "Hello World from an FSK phone",
		"polish":    polishLong,
		"greek":     "Καλημέρα κόσμε ΔΦΓΛΩΠΨΣΘΞ",
		"emoji":     "😀 👍🏽 🇵🇱 ✓",
		"controls":  "Line one\nLine two\ttab\r\f\x00\x1b\x7f",
		"latin1 ff": "\u00ff\u00fe\u0080ÿ",
		"mixed":     "Zaż\u00ff😀\n€",
		"empty":     "",
		"fffd":      "\uFFFD",
		"bmp edge":  "\uFFFF\uE000\U0010FFFF",
	}
	for name, text := range texts {
		t.Run(name, func(t *testing.T) {
			in := &Message{OA: "+4915112345678", DA: "5559999", SCTS: time.Date(2026, 11, 21, 5, 39, 34, 0, time.UTC),
				PID: 1, DCS: 8, MR: 3, VP: 1440, SRR: true, RP: true, UDH: []byte{0, 3, 1, 2, 1}, HasUDH: true, Text: text}
			data, err := in.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			out, err := Parse(data, time.UTC)
			if err != nil {
				t.Fatalf("Parse(%q): %v", data, err)
			}
			if out.Text != text {
				t.Errorf("Text = %q, want %q", out.Text, text)
			}
			if !out.SCTS.Equal(in.SCTS) {
				t.Errorf("SCTS = %v, want %v", out.SCTS, in.SCTS)
			}
			out.SCTS = in.SCTS
			if out.OA != in.OA || out.DA != in.DA || out.PID != in.PID || out.DCS != in.DCS || out.MR != in.MR ||
				out.VP != in.VP || out.SRR != in.SRR || out.RP != in.RP || string(out.UDH) != string(in.UDH) || !out.HasUDH {
				t.Errorf("fields differ:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}
