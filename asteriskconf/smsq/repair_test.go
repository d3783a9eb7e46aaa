package smsq

import (
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// mangle reproduces app_sms's -O3 ud= decoding (one byte consumed per
// decoded character, units cut to 16 bits, at most 160 units).
func mangle(s string) string {
	b := []byte(s)
	var out []rune
	for i := 0; i < len(b) && len(out) < appSMSMaxUnits; i++ {
		if b[i] < 0xC0 {
			out = append(out, rune(b[i]))
			continue
		}
		r, _ := utf8.DecodeRune(b[i:])
		if r >= 0x10000 {
			r &= 0xFFFF
		}
		out = append(out, r)
	}
	return string(out)
}

func TestRepairDoubleDecodedFixture(t *testing.T) {
	data, err := os.ReadFile(fixtureFile(t, "morx/raw_utf8_ud_line"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := RepairDoubleDecoded(m.Text)
	if !ok || got != "Zażółć gęślą jaźń" {
		t.Errorf("RepairDoubleDecoded = %q, %v; want %q, true", got, ok, "Zażółć gęślą jaźń")
	}
	if mangle("Zażółć gęślą jaźń") != m.Text {
		t.Errorf("test model of the bug disagrees with the fixture: %q", mangle("Zażółć gęślą jaźń"))
	}
}

func TestRepairDoubleDecoded(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"Latin-1 range characters", mangle("£5 © ÿ"), "£5 © ÿ", true},
		{"3-byte characters", mangle("€ – ‘x’ ✓"), "€ – ‘x’ ✓", true},
		{"emoji (4-byte, cut to 16 bits)", mangle("hi 😀 🇵🇱"), "hi 😀 🇵🇱", true},
		{"Greek", mangle(" Καλημέρα"), " Καλημέρα", true},
		{"cut at 160 units mid-junk keeps the character",
			mangle(strings.Repeat("a", 159) + "ż"), strings.Repeat("a", 159) + "ż", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RepairDoubleDecoded(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RepairDoubleDecoded(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRepairDoubleDecodedLeavesNormalText(t *testing.T) {
	for _, text := range []string{
		"", "Hello World", polishLong, polishShort, emojiText, escapesText, mtUCS2Text, mtEmojiText,
		ucs1Text, ucs2Text, binaryText, "Καλημέρα κόσμε", "日本語", "£", "naïve café",
		mangledO0,                      // the -O0 build mangles differently: leave it alone
		"Zaż\u00bcó\u00b3ł",            // pattern broken at the last letter
		"ż\u00bc ż",                    // pattern present once, missing once
		strings.Repeat("a", 150) + "ż", // ends without junk but not at the 160-unit cut
		"\u00c3\u00a9",                 // double-encoded é (protocol 2), not this bug
	} {
		got, ok := RepairDoubleDecoded(text)
		if ok || got != text {
			t.Errorf("RepairDoubleDecoded(%q) = %q, %v; want it unchanged and false", text, got, ok)
		}
	}
}
