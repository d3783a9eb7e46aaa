package smsq

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// gsm7Default is app_sms's 7-bit table (defaultalphabet in apps/app_sms.c),
// septet value = position. It is the GSM 03.38 default alphabet except that
// position 9 holds ç (U+00E7) where the standard has Ç, so Ç does not fit
// 7-bit with app_sms. Position 27 is the escape code, which app_sms stores as
// U+00A0 (no-break space).
const gsm7Default = "@£$¥èéùìòç\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u00a0ÆæßÉ" +
	" !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" +
	"¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Escapes are the characters of app_sms's escapes table: each costs the
// escape septet plus one.
const gsm7Escapes = "\f^{}\\[~]|€"

// gsm7Cost returns how many septets r takes in app_sms's 7-bit coding, or 0
// when it cannot be coded. It is a switch rather than a table lookup because
// it sits on the hot path of Split; gsm7_test.go checks it against the two
// tables above.
//
// U+00A0 is deliberately not codable although app_sms's table contains it:
// app_sms would send it as the bare escape septet, and the receiving phone
// would then read it together with the next character as an escape sequence.
// Coding such a text as UCS-2 carries it intact.
func gsm7Cost(r rune) int {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '%' && r <= '?':
		return 1
	}
	switch r {
	case '\n', '\r', ' ', '!', '"', '#', '$', '@', '_',
		'£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'ç', 'Ø', 'ø', 'Å', 'å',
		'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 'Æ', 'æ', 'ß', 'É',
		'¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	case '\f', '^', '{', '}', '\\', '[', '~', ']', '|', '€':
		return 2
	}
	return 0
}

// GSM7Septets reports how many septets text takes in app_sms's 7-bit coding
// (its own default alphabet and escape table; escaped characters count 2),
// and ok=false when some character cannot be coded that way (or text is not
// valid UTF-8).
func GSM7Septets(text string) (septets int, ok bool) {
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		c := gsm7Cost(r)
		if c == 0 {
			return 0, false
		}
		septets += c
		i += size
	}
	return septets, true
}

// Capacities of one SMS (3GPP TS 23.040), and of one part of a concatenated
// message, whose 6-octet header (UDHL + 00 03 ref total seq) costs 7 septets
// or 3 UCS-2 units.
const (
	SingleSeptets = 160
	PartSeptets   = 153
	SingleUnits   = 70
	PartUnits     = 67
	// MaxParts is the most parts an 8-bit concatenation element can number.
	MaxParts = 255
)

// ErrTooLong is returned by Split when the text needs more parts than allowed.
var ErrTooLong = errors.New("text too long for the allowed number of SMS parts")

// Part is one SMS of a (possibly concatenated) message.
type Part struct {
	UDH  []byte // information elements without UDHL; nil for a single SMS
	Text string
	DCS  int // -1 = no dcs line (7-bit, app_sms's default), 8 = UCS-2
}

// Split cuts text into SMS parts as app_sms will send them without
// truncation. The coding is chosen once for the whole text: GSM 7-bit when
// every character is in app_sms's table, otherwise UCS-2 (never app_sms's
// 8-bit fallback, which phones show as data, and never a silent
// transliteration).
//
// Text that fits one SMS (160 septets, or 70 UTF-16 units) gives one Part with
// a nil UDH. Longer text gives parts of at most 153 septets or 67 units, each
// with the header 00 03 ref total seq (seq from 1); an escape pair or a
// surrogate pair is never cut. Empty text gives one empty part.
//
// maxParts outside 1..255 means 255. Split returns an error wrapping
// ErrTooLong when more parts would be needed, and an error for text that is
// not valid UTF-8.
func Split(text string, ref uint8, maxParts int) ([]Part, error) {
	if !utf8.ValidString(text) {
		return nil, errors.New("split: text is not valid UTF-8")
	}
	if maxParts < 1 || maxParts > MaxParts {
		maxParts = MaxParts
	}
	var (
		cost          func(rune) int
		single, limit int
		dcs           int
	)
	if n, ok := GSM7Septets(text); ok {
		if n <= SingleSeptets {
			return []Part{{Text: text, DCS: -1}}, nil
		}
		cost, limit, dcs = gsm7Cost, PartSeptets, -1
	} else {
		cost, single, limit, dcs = utf16Cost, SingleUnits, PartUnits, 8
		n := 0
		for _, r := range text {
			n += utf16Cost(r)
		}
		if n <= single {
			return []Part{{Text: text, DCS: dcs}}, nil
		}
	}

	var texts []string
	start, used := 0, 0
	for i, r := range text {
		c := cost(r)
		if used+c > limit {
			texts = append(texts, text[start:i])
			if len(texts) >= maxParts {
				return nil, fmt.Errorf("split: more than %d parts needed: %w", maxParts, ErrTooLong)
			}
			start, used = i, 0
		}
		used += c
	}
	texts = append(texts, text[start:])

	parts := make([]Part, len(texts))
	for i, t := range texts {
		parts[i] = Part{
			UDH:  []byte{0x00, 0x03, ref, uint8(len(texts)), uint8(i + 1)},
			Text: t,
			DCS:  dcs,
		}
	}
	return parts, nil
}

func utf16Cost(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}
