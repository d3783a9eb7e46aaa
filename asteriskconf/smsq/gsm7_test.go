package smsq

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestGSM7CostMatchesTables checks the fast switch in gsm7Cost against
// app_sms's two tables for every code point of the BMP.
func TestGSM7CostMatchesTables(t *testing.T) {
	if n := utf8.RuneCountInString(gsm7Default); n != 128 {
		t.Fatalf("default table has %d entries, want 128", n)
	}
	if r, _ := utf8.DecodeRuneInString(gsm7Default[strings.Index(gsm7Default, "ò")+len("ò"):]); r != 'ç' {
		t.Fatalf("position 9 is %q, want ç (app_sms quirk)", r)
	}
	want := map[rune]int{}
	for _, r := range gsm7Default {
		want[r] = 1
	}
	delete(want, '\u00a0') // the escape position: deliberately not codable
	for _, r := range gsm7Escapes {
		want[r] = 2
	}
	for r := rune(0); r < 0x10000; r++ {
		if got := gsm7Cost(r); got != want[r] {
			t.Errorf("gsm7Cost(%U %q) = %d, want %d", r, r, got, want[r])
		}
	}
}

func TestGSM7Septets(t *testing.T) {
	tests := []struct {
		text    string
		septets int
		ok      bool
	}{
		{"", 0, true},
		{"Hello", 5, true},
		{"@£$¥èéùìòçØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r", 44, true},
		{"^{}\\[~]|€\f", 20, true},
		{escapesText, 53 + 9, true}, // 53 characters, 9 of them escaped,
		{"Ç", 0, false},             // app_sms's table has ç at position 9, not Ç
		{"`", 0, false},             // not in GSM 03.38
		{"a\tb", 0, false},          // TAB is not in GSM 03.38
		{"\u00a0", 0, false},        // would be sent as a bare ESC
		{"\x00", 0, false},          // app_sms rejects NUL
		{"ż", 0, false},             // Polish needs UCS-2
		{"😀", 0, false},             // outside the BMP
		{"a\xffb", 0, false},        // invalid UTF-8
		{"ą", 0, false},             //
		{"Ω€", 3, true},             //
		{"ü" + "{", 3, true},        //
		{"\u0394\u0394", 2, true},   // Greek capitals in the table
	}
	for _, tt := range tests {
		n, ok := GSM7Septets(tt.text)
		if n != tt.septets || ok != tt.ok {
			t.Errorf("GSM7Septets(%q) = %d, %v; want %d, %v", tt.text, n, ok, tt.septets, tt.ok)
		}
	}
}

func TestSplit(t *testing.T) {
	a153, a160 := strings.Repeat("a", 153), strings.Repeat("a", 160)
	z67, z70 := strings.Repeat("ż", 67), strings.Repeat("ż", 70)
	udh := func(total, seq byte) []byte { return []byte{0x00, 0x03, 0x42, total, seq} }
	tests := []struct {
		name string
		text string
		max  int
		want []Part
	}{
		{"empty", "", 5, []Part{{Text: "", DCS: -1}}},
		{"short GSM7", "Hello", 5, []Part{{Text: "Hello", DCS: -1}}},
		{"160 septets is one SMS", a160, 5, []Part{{Text: a160, DCS: -1}}},
		{"158 + escape = 160 septets is one SMS", a160[:158] + "€", 5, []Part{{Text: a160[:158] + "€", DCS: -1}}},
		{"161 septets is two parts", a160 + "b", 5, []Part{
			{UDH: udh(2, 1), Text: a153, DCS: -1},
			{UDH: udh(2, 2), Text: "aaaaaaab", DCS: -1},
		}},
		{"159 + escape = 161 septets is two parts", a160[:159] + "{", 5, []Part{
			{UDH: udh(2, 1), Text: a153, DCS: -1},
			{UDH: udh(2, 2), Text: "aaaaaa{", DCS: -1},
		}},
		{"escape pair not split at 153", a153[:152] + "€" + strings.Repeat("c", 10), 5, []Part{
			{UDH: udh(2, 1), Text: a153[:152], DCS: -1},
			{UDH: udh(2, 2), Text: "€" + strings.Repeat("c", 10), DCS: -1},
		}},
		{"escape exactly filling 153", a153[:151] + "€" + strings.Repeat("c", 10), 5, []Part{
			{UDH: udh(2, 1), Text: a153[:151] + "€", DCS: -1},
			{UDH: udh(2, 2), Text: strings.Repeat("c", 10), DCS: -1},
		}},
		{"three GSM7 parts", strings.Repeat("x", 153*2+1), 3, []Part{
			{UDH: udh(3, 1), Text: strings.Repeat("x", 153), DCS: -1},
			{UDH: udh(3, 2), Text: strings.Repeat("x", 153), DCS: -1},
			{UDH: udh(3, 3), Text: "x", DCS: -1},
		}},
		{"70 UCS-2 units is one SMS", z70, 5, []Part{{Text: z70, DCS: 8}}},
		{"emoji counts two units: 68 + emoji = 70", z70[:68*2] + "😀", 5, []Part{{Text: z70[:68*2] + "😀", DCS: 8}}},
		{"71 UCS-2 units is two parts", z70 + "ą", 5, []Part{
			{UDH: udh(2, 1), Text: z67, DCS: 8},
			{UDH: udh(2, 2), Text: "żżżą", DCS: 8},
		}},
		{"surrogate pair not split at 67", z67[:66*2] + "😀" + "abcd", 5, []Part{
			{UDH: udh(2, 1), Text: z67[:66*2], DCS: 8},
			{UDH: udh(2, 2), Text: "😀abcd", DCS: 8},
		}},
		{"surrogate pair exactly filling 67", z67[:65*2] + "😀" + "abcd", 5, []Part{
			{UDH: udh(2, 1), Text: z67[:65*2] + "😀", DCS: 8},
			{UDH: udh(2, 2), Text: "abcd", DCS: 8},
		}},
		{"one non-GSM7 character makes everything UCS-2", a160[:69] + "Ç", 5, []Part{{Text: a160[:69] + "Ç", DCS: 8}}},
		{"UCS-2 throughout a long mixed text", a153 + "ż", 5, []Part{
			{UDH: udh(3, 1), Text: a153[:67], DCS: 8},
			{UDH: udh(3, 2), Text: a153[:67], DCS: 8},
			{UDH: udh(3, 3), Text: a153[:19] + "ż", DCS: 8},
		}},
		{"maxParts 0 means 255", a160 + "b", 0, []Part{
			{UDH: udh(2, 1), Text: a153, DCS: -1},
			{UDH: udh(2, 2), Text: "aaaaaaab", DCS: -1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.text, 0x42, tt.max)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d parts, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Text != w.Text || g.DCS != w.DCS || !bytes.Equal(g.UDH, w.UDH) || (g.UDH == nil) != (w.UDH == nil) {
					t.Errorf("part %d = {UDH:% X Text:%q DCS:%d}, want {UDH:% X Text:%q DCS:%d}",
						i+1, g.UDH, g.Text, g.DCS, w.UDH, w.Text, w.DCS)
				}
			}
		})
	}
}

func TestSplitTooLong(t *testing.T) {
	tests := []struct {
		name string
		text string
		max  int
		ok   bool
	}{
		{"2 parts allowed 2", strings.Repeat("a", 306), 2, true},
		{"3 parts allowed 2", strings.Repeat("a", 307), 2, false},
		{"UCS-2 2 parts allowed 2", strings.Repeat("ż", 134), 2, true},
		{"UCS-2 3 parts allowed 2", strings.Repeat("ż", 135), 2, false},
		{"single allowed 1", strings.Repeat("a", 160), 1, true},
		{"two allowed 1", strings.Repeat("a", 161), 1, false},
		{"255 parts is the ceiling", strings.Repeat("a", 153*255), 1000, true},
		{"256 parts never", strings.Repeat("a", 153*255+1), 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := Split(tt.text, 1, tt.max)
			if tt.ok {
				if err != nil {
					t.Fatalf("Split: %v", err)
				}
				if n := len(parts); n > 1 && parts[n-1].UDH[3] != byte(n) {
					t.Errorf("total in UDH %d, want %d", parts[n-1].UDH[3], n)
				}
				return
			}
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("err = %v, want ErrTooLong", err)
			}
		})
	}
}

func TestSplitInvalidUTF8(t *testing.T) {
	if _, err := Split("a\xffb", 1, 3); err == nil || errors.Is(err, ErrTooLong) {
		t.Errorf("err = %v, want an invalid UTF-8 error", err)
	}
}
