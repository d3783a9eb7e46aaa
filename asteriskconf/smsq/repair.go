package smsq

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// RepairDoubleDecoded undoes the ud= decoding bug of app_sms in Asterisk
// 20.15+/21.10+/22.5+ (optimised builds): app_sms advances only one byte per
// decoded character, so every multi-byte UTF-8 character comes out as the
// right code point followed by its own continuation bytes as extra
// characters U+0080..U+00BF. A 4-byte character is additionally cut to its
// low 16 bits (app_sms keeps 16-bit units) and followed by three such
// characters.
//
// The repair is all or nothing: it returns the cleaned text and true only when
// every character from U+0080 up is followed by exactly its junk, and at
// least one was. Otherwise (a correctly decoded text, the different mangling
// of unoptimised builds, anything ambiguous) it returns text unchanged and
// false. A text cut at app_sms's 160-unit limit may end in a character
// whose junk was cut off; that character is kept.
//
// A 4-byte character is rebuilt from its three continuation bytes, which
// carry 18 of its 21 bits; the repair assumes the top three are zero, as they
// are for every character in planes 1 to 3 (emoji, CJK extensions). A
// character from a higher plane would come back in the wrong plane; they are
// tags and private-use characters and are not expected in SMS text.
func RepairDoubleDecoded(text string) (string, bool) {
	if !utf8.ValidString(text) {
		return text, false
	}
	runes := []rune(text)
	var sb strings.Builder
	sb.Grow(len(text))
	repaired := false
	for i := 0; i < len(runes); {
		r := runes[i]
		if r < utf8.RuneSelf {
			sb.WriteRune(r)
			i++
			continue
		}
		if cp, ok := fourByteJunk(r, runes[i+1:]); ok {
			sb.WriteRune(cp)
			i += 4
			repaired = true
			continue
		}
		var enc [utf8.UTFMax]byte
		n := utf8.EncodeRune(enc[:], r)
		junk := enc[1:n]
		j := 0
		for j < len(junk) && i+1+j < len(runes) && runes[i+1+j] == rune(junk[j]) {
			j++
		}
		if j < len(junk) && !(i+1+j == len(runes) && utf16Len(runes) == appSMSMaxUnits) {
			return text, false
		}
		sb.WriteRune(r)
		i += 1 + j
		repaired = true
	}
	if !repaired {
		return text, false
	}
	return sb.String(), true
}

// appSMSMaxUnits is the size of app_sms's text buffer (SMSLEN): a ud= line is
// cut after this many decoded units.
const appSMSMaxUnits = 160

// fourByteJunk recognises a 4-byte UTF-8 character as app_sms leaves it: its
// code point cut to 16 bits (r), then its three continuation bytes.
func fourByteJunk(r rune, next []rune) (rune, bool) {
	if r < 0x800 || len(next) < 3 {
		// The low 16 bits of a code point >= 0x10000 can be below 0x800,
		// but then r itself is indistinguishable from ordinary text.
		return 0, false
	}
	var cp rune
	for _, c := range next[:3] {
		if c < 0x80 || c > 0xBF {
			return 0, false
		}
		cp = cp<<6 | c&0x3F
	}
	if cp < 0x10000 || cp&0xFFFF != r || utf16.IsSurrogate(r) {
		return 0, false
	}
	return cp, true
}

func utf16Len(runes []rune) int {
	n := 0
	for _, r := range runes {
		n += utf16Cost(r)
	}
	return n
}

// RepairLatin1 decodes text that is UTF-8 read one byte per character, as app_sms
// writes what a protocol-2 phone sent (SPEC §1.7: "Zażółć" arrives as "ZaÅ¼Ã³Å‚Ä‡").
// Like RepairDoubleDecoded it is all or nothing: it returns the decoded text and true
// only when every character is below U+0100, at least one is not ASCII, and the
// bytes they stand for are valid UTF-8. A Latin-1 text that really is Latin-1
// ("café" as é) fails that test and is returned unchanged.
func RepairLatin1(text string) (string, bool) {
	b := make([]byte, 0, len(text))
	high := false
	for _, r := range text {
		if r > 0xFF || r == utf8.RuneError {
			return text, false
		}
		if r >= utf8.RuneSelf {
			high = true
		}
		b = append(b, byte(r))
	}
	if !high || !utf8.Valid(b) {
		return text, false
	}
	return string(b), true
}
