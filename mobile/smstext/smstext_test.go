package smstext

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSplitCodingAndBytes(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		coding Coding
		data   string // hex of the single part's data
	}{
		{"ascii", "Hi @1", GSM7, "486920003" + "1"},
		{"gsm specials", "£$¥èΔ_", GSM7, "0102030410" + "11"},
		{"extension table", "€[]", GSM7, "1b651b3c1b3e"},
		{"Ç is GSM, ç is not", "Ç", GSM7, "09"},
		{"ç needs UCS-2", "ç", UCS2, "00e7"},
		{"polish", "Zażółć", UCS2, "005a0061017c00f3014201070"},
		{"greek lower case", "Γειά", UCS2, "039303b503b903ac"},
		{"greek capitals in GSM", "ΔΦΓΛΩΠΨΣΘΞ", GSM7, "10121314151617181" + "91a"},
		{"literal escape goes UCS-2", "a\x1bb", UCS2, "0061001b0062"},
		{"emoji keeps its surrogate pair", "😀", UCS2, "d83dde00"},
		{"empty", "", GSM7, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := strings.ReplaceAll(tt.data, " ", "")
			if tt.name == "polish" {
				want = "005a0061017c00f301420107"
			}
			c, parts, err := Split(tt.text, 7, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.coding {
				t.Errorf("coding = %v, want %v", c, tt.coding)
			}
			if len(parts) != 1 || parts[0].UDH != nil {
				t.Fatalf("parts = %+v, want one without header", parts)
			}
			if got := hex.EncodeToString(parts[0].Data); got != want {
				t.Errorf("data = %s, want %s", got, want)
			}
			back, bin, err := Decode(byte(c), parts[0].Data)
			if err != nil || bin || back != tt.text {
				t.Errorf("Decode = %q, %v, %v; want %q", back, bin, err, tt.text)
			}
		})
	}
}

func TestSplitLong(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		coding  Coding
		lengths []int // data octets per part
	}{
		{"160 GSM fit one", strings.Repeat("a", 160), GSM7, []int{160}},
		{"161 GSM need two", strings.Repeat("a", 161), GSM7, []int{153, 8}},
		{"400 GSM", strings.Repeat("x", 400), GSM7, []int{153, 153, 94}},
		{"escape not cut", strings.Repeat("a", 152) + "€" + strings.Repeat("b", 10), GSM7, []int{152, 12}},
		{"70 UCS-2 fit one", strings.Repeat("ż", 70), UCS2, []int{140}},
		{"400 UCS-2", strings.Repeat("ą", 400), UCS2, []int{134, 134, 134, 134, 134, 130}},
		{"surrogate not cut", strings.Repeat("ą", 66) + "😀xxxxx", UCS2, []int{132, 14}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, parts, err := Split(tt.text, 0xab, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.coding {
				t.Errorf("coding = %v, want %v", c, tt.coding)
			}
			if len(parts) != len(tt.lengths) {
				t.Fatalf("%d parts, want %d", len(parts), len(tt.lengths))
			}
			var joined strings.Builder
			for i, p := range parts {
				if len(p.Data) != tt.lengths[i] {
					t.Errorf("part %d: %d octets, want %d", i+1, len(p.Data), tt.lengths[i])
				}
				if len(parts) > 1 {
					want := []byte{5, 0, 3, 0xab, byte(len(parts)), byte(i + 1)}
					if !bytes.Equal(p.UDH, want) {
						t.Errorf("part %d header % x, want % x", i+1, p.UDH, want)
					}
					cc, n, ok := ConcatFromUDH(p.Bytes())
					if !ok || n != 6 || cc != (Concat{Ref: 0xab, Total: len(parts), Seq: i + 1}) {
						t.Errorf("part %d: ConcatFromUDH = %+v %d %v", i+1, cc, n, ok)
					}
				} else if p.UDH != nil {
					t.Errorf("single part has a header % x", p.UDH)
				}
				s, _, err := Decode(byte(c), p.Data)
				if err != nil {
					t.Fatalf("part %d: %v", i+1, err)
				}
				joined.WriteString(s)
			}
			if joined.String() != tt.text {
				t.Errorf("joined parts differ from the text")
			}
		})
	}
}

func TestSplitLimits(t *testing.T) {
	if _, _, err := Split(strings.Repeat("a", 400), 1, 2); !errors.Is(err, ErrTooLong) {
		t.Errorf("3 parts with max 2: err = %v, want ErrTooLong", err)
	}
	if _, _, err := Split("a\xffb", 1, 0); err == nil {
		t.Error("invalid UTF-8 was accepted")
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		dc      byte
		data    []byte
		want    string
		binary  bool
		wantErr bool
	}{
		{"gsm", 0, []byte{0x48, 0x69, 0x00}, "Hi@", false, false},
		{"gsm class 1 via f1", 0xf1, []byte{0x48, 0x69}, "Hi", false, false},
		{"ia5", 1, []byte("plain"), "plain", false, false},
		{"ia5 high octet", 1, []byte{0x41, 0xe9}, "A\ufffd", false, false},
		{"latin1", 3, []byte{0x63, 0x61, 0x66, 0xe9}, "café", false, false},
		{"ucs2", 8, []byte{0x04, 0x1f, 0x04, 0x40}, "Пр", false, false},
		{"ucs2 odd length", 8, []byte{0x00, 0x41, 0x00}, "A", false, true},
		{"ucs2 lone surrogate", 8, []byte{0xd8, 0x3d, 0x00, 0x41}, "\ufffdA", false, true},
		{"binary", 4, []byte{0x00, 0xff}, "\x00ÿ", true, false},
		{"septet above 0x7f", 0, []byte{0x41, 0x80}, "A?", false, true},
		{"reserved group", 0x80, []byte{0x41}, "A", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bin, err := Decode(tt.dc, tt.data)
			if got != tt.want || bin != tt.binary || (err != nil) != tt.wantErr {
				t.Errorf("Decode = %q, %v, %v; want %q, %v, err %v", got, bin, err, tt.want, tt.binary, tt.wantErr)
			}
		})
	}
}

func TestConcatFromUDH(t *testing.T) {
	tests := []struct {
		name string
		udh  string
		want Concat
		n    int
		ok   bool
	}{
		{"8-bit", "050003ab0302", Concat{0xab, 3, 2}, 6, true},
		{"16-bit", "0608041234020 1", Concat{0x1234, 2, 1}, 7, true},
		{"port element then concat", "0b0504158a00000003070201", Concat{7, 2, 1}, 12, true},
		{"no concat element", "0605040b8423f0", Concat{}, 7, false},
		{"seq 0", "050003ab0300", Concat{0xab, 3, 0}, 6, false},
		{"seq beyond total", "050003ab0304", Concat{0xab, 3, 4}, 6, false},
		{"header longer than data", "090003ab0301", Concat{}, 0, false},
		{"element overruns header", "0300050102", Concat{}, 0, false},
		{"empty", "", Concat{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(tt.udh, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			c, n, ok := ConcatFromUDH(b)
			if ok != tt.ok || (ok && c != tt.want) || n != tt.n {
				t.Errorf("ConcatFromUDH = %+v, %d, %v; want %+v, %d, %v", c, n, ok, tt.want, tt.n, tt.ok)
			}
		})
	}
}

func TestReassembler(t *testing.T) {
	var r Reassembler[string]
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	k := Key{From: "48600111222", To: "100", Ref: 9, Total: 3}
	if whole, _, _ := r.Add(k, 3, "c", t0); whole != nil {
		t.Fatal("complete after one part")
	}
	if whole, _, _ := r.Add(k, 1, "a", t0.Add(time.Second)); whole != nil {
		t.Fatal("complete after two parts")
	}
	// The same part again (a redelivery): the newer copy replaces the older.
	if _, old, had := r.Add(k, 1, "a2", t0.Add(2*time.Second)); !had || old != "a" {
		t.Fatalf("superseded = %q, %v; want a, true", old, had)
	}
	// Another sender's message with the same reference is another message.
	other := k
	other.From = "48600999999"
	r.Add(other, 1, "x", t0)
	whole, _, _ := r.Add(k, 2, "b", t0.Add(3*time.Second))
	if strings.Join(whole, "") != "a2bc" {
		t.Fatalf("whole = %q, want a2 b c in order", whole)
	}
	if r.Pending() != 1 {
		t.Fatalf("pending = %d, want 1", r.Pending())
	}
	if exp := r.Expire(t0.Add(-time.Second)); len(exp) != 0 {
		t.Fatalf("expired too early: %+v", exp)
	}
	exp := r.Expire(t0)
	if len(exp) != 1 || exp[0].Key != other || strings.Join(exp[0].Parts, "") != "x" {
		t.Fatalf("expired = %+v", exp)
	}
	if whole, _, _ := r.Add(k, 4, "stray", t0); len(whole) != 1 || whole[0] != "stray" {
		t.Fatalf("out-of-range part = %v, want it alone", whole)
	}
	if r.Pending() != 0 {
		t.Fatalf("pending = %d after all settled", r.Pending())
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(byte(0), []byte("hello"))
	f.Add(byte(8), []byte{0xd8, 0x3d, 0xde, 0x00})
	f.Add(byte(0xf5), []byte{0x00, 0xff})
	f.Fuzz(func(t *testing.T, dc byte, data []byte) {
		s, _, _ := Decode(dc, data)
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(%#x, % x) gave invalid UTF-8", dc, data)
		}
	})
}

func FuzzConcatFromUDH(f *testing.F) {
	f.Add([]byte{5, 0, 3, 1, 2, 1})
	f.Add([]byte{6, 8, 4, 0, 1, 2, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, ok := ConcatFromUDH(b)
		if n > len(b) {
			t.Fatalf("header length %d beyond %d octets", n, len(b))
		}
		if ok && !c.Valid() {
			t.Fatalf("ok with an invalid place %+v", c)
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add("hello", uint8(1))
	f.Add(strings.Repeat("€", 100), uint8(2))
	f.Add(strings.Repeat("😀", 50), uint8(3))
	f.Fuzz(func(t *testing.T, text string, ref uint8) {
		c, parts, err := Split(text, ref, 0)
		if err != nil {
			if utf8.ValidString(text) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("Split: %v", err)
			}
			return
		}
		var joined strings.Builder
		for i, p := range parts {
			limit := 140
			if len(parts) > 1 {
				limit = 134
			}
			if c == GSM7 {
				limit = limit * 8 / 7
				if len(parts) > 1 {
					limit = 153
				}
			}
			if len(p.Data) > limit {
				t.Fatalf("part %d has %d units, limit %d", i+1, len(p.Data), limit)
			}
			s, _, err := Decode(byte(c), p.Data)
			if err != nil {
				t.Fatalf("part %d does not decode: %v", i+1, err)
			}
			joined.WriteString(s)
		}
		if joined.String() != text {
			t.Fatalf("round trip: %q != %q", joined.String(), text)
		}
	})
}
