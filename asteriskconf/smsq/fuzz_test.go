package smsq

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, dir := range []string{"morx/emoji_surrogates", "morx/binary_8bit_dcs4", "morx/control_chars_ucs2",
		"morx/raw_utf8_ud_line", "mttx/all_fields", "mttx/ucs2_emoji_surrogates"} {
		data, err := os.ReadFile(fixtureFile(f, dir))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("OA = +1\r\nud##D83D0041\nudh#\nscts=2024-02-29T23:59:59\nfoo#1\n"))
	f.Add([]byte("ud=\xed\xa0\xbd\xed\xb8\x80\xbf\xff\xf0\x9f\x98\x80"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, time.UTC)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if !utf8.ValidString(m.Text) {
			t.Fatalf("Text %q is not valid UTF-8", m.Text)
		}
		out, err := m.Marshal()
		if err != nil {
			return // OA/DA not writable, or text too long for one line
		}
		back, err := Parse(out, time.UTC)
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v\nfile %q", err, out)
		}
		if back.Text != m.Text {
			t.Fatalf("round trip Text %q, want %q", back.Text, m.Text)
		}
		if back.OA != m.OA || back.DA != m.DA || !back.SCTS.Equal(m.SCTS) || back.PID != m.PID ||
			back.DCS != m.DCS || back.MR != m.MR || back.VP != m.VP || back.SRR != m.SRR || back.RP != m.RP ||
			back.HasUDH != m.HasUDH || string(back.UDH) != string(m.UDH) {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, m)
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add("Hello", uint8(1), 3)
	f.Add(strings.Repeat("a", 152)+"€€", uint8(2), 0)
	f.Add(strings.Repeat("ż", 66)+"😀😀", uint8(3), 2)
	f.Add("", uint8(0), 1)
	f.Fuzz(func(t *testing.T, text string, ref uint8, maxParts int) {
		parts, err := Split(text, ref, maxParts)
		if err != nil {
			if utf8.ValidString(text) && !strings.Contains(err.Error(), "parts needed") {
				t.Fatalf("unexpected error for valid text: %v", err)
			}
			return
		}
		limit := maxParts
		if limit < 1 || limit > MaxParts {
			limit = MaxParts
		}
		if len(parts) == 0 || len(parts) > limit {
			t.Fatalf("%d parts (limit %d)", len(parts), limit)
		}
		var joined strings.Builder
		for i, p := range parts {
			joined.WriteString(p.Text)
			if p.DCS != parts[0].DCS || (p.DCS != -1 && p.DCS != 8) {
				t.Fatalf("part %d DCS %d, first %d", i+1, p.DCS, parts[0].DCS)
			}
			septets, gsm := GSM7Septets(p.Text)
			units := len(utf16.Encode([]rune(p.Text)))
			single := len(parts) == 1
			switch {
			case p.DCS == -1 && !gsm:
				t.Fatalf("part %d is 7-bit but not GSM7: %q", i+1, p.Text)
			case p.DCS == -1 && single && septets > SingleSeptets,
				p.DCS == -1 && !single && septets > PartSeptets,
				p.DCS == 8 && single && units > SingleUnits,
				p.DCS == 8 && !single && units > PartUnits:
				t.Fatalf("part %d too big: %d septets / %d units (%d parts)", i+1, septets, units, len(parts))
			}
			if single {
				if p.UDH != nil {
					t.Fatalf("single part has UDH % X", p.UDH)
				}
				continue
			}
			want := []byte{0, 3, ref, byte(len(parts)), byte(i + 1)}
			if string(p.UDH) != string(want) {
				t.Fatalf("part %d UDH % X, want % X", i+1, p.UDH, want)
			}
		}
		if joined.String() != text {
			t.Fatalf("parts rejoin to %q, want %q", joined.String(), text)
		}
		if _, gsm := GSM7Septets(text); gsm != (parts[0].DCS == -1) {
			t.Fatalf("coding DCS %d for text with GSM7=%v", parts[0].DCS, gsm)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, dir := range []string{"morx/plain_ascii", "morx/emoji_surrogates", "morx/control_chars_ucs2"} {
		data, err := os.ReadFile(fixtureFile(b, dir))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(dir), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data, time.UTC); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	for name, text := range map[string]string{"ascii": "Hello World from an FSK phone", "ucs2": emojiText, "160": strings.Repeat("x", 160)} {
		m := &Message{OA: "5551234", DA: "5559999", SCTS: time.Date(2026, 11, 21, 5, 39, 34, 0, time.UTC),
			DCS: -1, MR: 7, UDH: []byte{0, 3, 1, 2, 1}, Text: text}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSplit(b *testing.B) {
	text := strings.Repeat("Zażółć gęślą jaźń ", 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(text, 1, 10); err != nil {
			b.Fatal(err)
		}
	}
}
