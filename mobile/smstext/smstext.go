// Package smstext turns text into the user data of SMS parts for the mobile
// network and back: the GSM 03.38 default alphabet (7-bit, unpacked one septet
// per octet as SMPP carries it) or UCS-2, concatenated parts with an 8-bit
// reference header, and the reassembly of incoming parts. The SMPP and modem
// clients share it so that both links cut, name and join parts the same way.
//
// It is not asteriskconf/smsq: app_sms uses its own 7-bit table (ç where GSM
// 03.38 has Ç at position 9), so a text smsq calls 7-bit may not be codable on
// the mobile network and the other way round. The coding here is the standard
// one, done by github.com/warthog618/sms.
package smstext

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// Coding is how the user data of a part is coded. The values are the SMPP
// data_coding values and the TP-DCS values of the general data coding group
// with no message class, so they can be put on the wire as they are.
type Coding byte

const (
	GSM7   Coding = 0x00 // GSM 03.38 default alphabet and its extension table
	Binary Coding = 0x04 // 8-bit data
	UCS2   Coding = 0x08 // UTF-16 big-endian (UCS-2 with surrogate pairs kept whole)
)

func (c Coding) String() string {
	switch c {
	case GSM7:
		return "GSM7"
	case Binary:
		return "8-bit"
	case UCS2:
		return "UCS2"
	}
	return fmt.Sprintf("coding(%#02x)", byte(c))
}

// MaxParts is the most parts an 8-bit concatenation reference can number.
const MaxParts = 255

// ErrTooLong is returned when a text needs more than the allowed parts.
var ErrTooLong = errors.New("text too long for the allowed number of SMS parts")

// Part is the user data of one SMS.
type Part struct {
	// UDH is the whole user data header, its length octet first (00 03 ref
	// total seq after it), or nil for a single SMS.
	UDH []byte
	// Data is the user data after the header: septets one per octet for
	// GSM7, UTF-16BE octets for UCS2.
	Data []byte
}

// Bytes is the part as SMPP's short_message carries it: the header, then the
// data.
func (p Part) Bytes() []byte {
	b := make([]byte, 0, len(p.UDH)+len(p.Data))
	return append(append(b, p.UDH...), p.Data...)
}

// Encode codes the whole text without splitting it (SMPP message_payload):
// GSM7 when every character is in the default alphabet or its extension table,
// otherwise UCS2. Never a silent transliteration.
func Encode(text string) (Coding, []byte, error) {
	if !utf8.ValidString(text) {
		return 0, nil, errors.New("encode: text is not valid UTF-8")
	}
	// A literal ESC would be coded as the escape septet and swallow the next
	// character on the handset; UCS-2 carries it intact.
	if !strings.ContainsRune(text, 0x1b) {
		if d, err := gsm7.Encode([]byte(text)); err == nil {
			return GSM7, d, nil
		}
	}
	return UCS2, ucs2.Encode([]rune(text)), nil
}

// Split codes text (see Encode) and cuts it into the parts of one message:
// a single part with no header when it fits 160 septets or 70 UTF-16 units,
// otherwise parts of at most 153 septets or 67 units, each with the header
// 00 03 ref total seq. An escape pair or a surrogate pair is never cut. Empty
// text gives one empty part. maxParts outside 1..255 means 255; more parts
// than that give an error wrapping ErrTooLong.
func Split(text string, ref uint8, maxParts int) (Coding, []Part, error) {
	coding, ud, err := Encode(text)
	if err != nil {
		return 0, nil, fmt.Errorf("split: %w", err)
	}
	if maxParts < 1 || maxParts > MaxParts {
		maxParts = MaxParts
	}
	if len(ud) == 0 {
		return coding, []Part{{}}, nil
	}
	tmpl := tpdu.TPDU{}
	if err := tmpl.SetSmsType(tpdu.SmsSubmit); err != nil {
		return 0, nil, fmt.Errorf("split: %w", err)
	}
	tmpl.SetDCS(byte(coding))
	segs := tmpl.Segment(ud, tpdu.WithConcatRef(fixedRef(ref)))
	if len(segs) > maxParts {
		return 0, nil, fmt.Errorf("split: %d parts needed, at most %d allowed: %w", len(segs), maxParts, ErrTooLong)
	}
	parts := make([]Part, len(segs))
	for i, s := range segs {
		udh, err := s.UDH.MarshalBinary()
		if err != nil {
			return 0, nil, fmt.Errorf("split: part %d header: %w", i+1, err)
		}
		parts[i] = Part{UDH: udh, Data: s.UD}
	}
	return coding, parts, nil
}

// fixedRef hands the caller's reference to the segmenter, which otherwise
// counts its own.
type fixedRef uint8

func (r fixedRef) Count() int { return int(r) }

// Decode turns user data (without its header) into text. dataCoding is an
// SMPP data_coding or a TP-DCS value: 0 is the GSM default alphabet, 1 IA5
// (ASCII), 3 Latin-1, 8 UCS-2; the TS 23.038 coding groups are honoured.
// binary reports 8-bit data, which is returned as Latin-1 so no octet is
// lost. On damaged data (odd UCS-2 length, a lone surrogate, a septet above
// 0x7f) the text holds what could be read, with a replacement character ('?'
// or U+FFFD) for the rest, and err says what was wrong: the caller decides
// whether a damaged text is still worth delivering.
func Decode(dataCoding byte, data []byte) (text string, binary bool, err error) {
	switch dataCoding {
	case 0x01: // IA5: ASCII
		return latin1(data, true), false, nil
	case 0x03: // Latin-1
		return latin1(data, false), false, nil
	case 0x02, 0x04:
		return latin1(data, false), true, nil
	}
	alpha, aerr := tpdu.DCS(dataCoding).Alphabet()
	if aerr != nil {
		// Reserved groups: SMSCs put vendor values here. The default
		// alphabet is the safest reading; say so.
		alpha = tpdu.Alpha7Bit
		err = fmt.Errorf("decode: data_coding %#02x is reserved; read as GSM 7-bit", dataCoding)
	}
	switch alpha {
	case tpdu.AlphaUCS2:
		t, uerr := decodeUTF16(data)
		if uerr != nil {
			err = uerr
		}
		return t, false, err
	case tpdu.Alpha8Bit:
		return latin1(data, false), true, nil
	}
	t, gerr := decodeGSM7(data)
	if gerr != nil {
		err = gerr
	}
	return t, false, err
}

func latin1(b []byte, ascii bool) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if ascii && c >= 0x80 {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func decodeGSM7(data []byte) (string, error) {
	bad := 0
	clean := data
	for i, c := range data {
		if c >= 0x80 {
			if bad == 0 {
				clean = append([]byte(nil), data...)
			}
			clean[i] = 0x3f // '?' keeps the position; replaced below
			bad++
		}
	}
	out, err := gsm7.Decode(clean)
	if err != nil {
		return "", fmt.Errorf("decode GSM 7-bit: %w", err)
	}
	if bad > 0 {
		return string(out), fmt.Errorf("decode GSM 7-bit: %d octets above 0x7f", bad)
	}
	return string(out), nil
}

func decodeUTF16(data []byte) (string, error) {
	var err error
	if len(data)%2 == 1 {
		err = fmt.Errorf("decode UCS-2: odd length %d", len(data))
		data = data[:len(data)-1]
	}
	u := make([]uint16, len(data)/2)
	for i := range u {
		u[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
	}
	for i := 0; i < len(u) && err == nil; i++ {
		switch {
		case utf16.IsSurrogate(rune(u[i])) && u[i] < 0xdc00 && i+1 < len(u) && u[i+1] >= 0xdc00 && u[i+1] <= 0xdfff:
			i++ // a whole pair
		case utf16.IsSurrogate(rune(u[i])):
			err = errors.New("decode UCS-2: lone surrogate")
		}
	}
	return string(utf16.Decode(u)), err
}
