package smsq

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits on what Parse accepts. app_sms and smsq never come close: the
// longest line either writes is a ud## line of 160 units (644 bytes), and a
// whole file stays below 1 KiB. smsrouter's own queue files (smsrouter send,
// FastAGI postsms, joined concatenations) carry a long text whole, up to 255
// parts of 153 characters as ud## (4 bytes a unit), so the limits leave room
// for that and no more.
const (
	MaxFileSize = 256 << 10 // bytes
	MaxLineSize = 160 << 10 // bytes, without the line end
	// MaxUDHLen is the most information-element bytes a header can hold: the
	// UDHL octet plus the elements must fit in the 140 octets of user data.
	MaxUDHLen = 139
)

// sctsLayout is the timestamp form app_sms and smsq write (local time).
const sctsLayout = "2006-01-02T15:04:05"

// Parse reads one app_sms queue file. scts values are read as local time in
// loc (app_sms writes and reads them with the PBX's local time zone); a nil loc
// means time.Local.
//
// Missing oa or da is not an error (protocol 2 files have no oa); callers
// decide. Any error describes the first damaged line on a single line of text
// suitable as a quarantine reason.
//
// Where app_sms is lenient Parse follows it: lines end at \n or \r, empty
// lines and lines starting with ';' are skipped, the key is the leading run of
// ASCII letters and digits (case-insensitive), blanks may sit between key and
// separator, unknown keys are reported in Warnings and otherwise ignored, and
// when a key repeats the last line wins. Where app_sms would silently truncate
// or send empty or wrong data (bad hex, non-numeric values, an unparsable
// scts, overlong lines, NUL bytes), Parse returns an error.
//
// Text is not truncated to 160 units as app_sms does when sending: the
// router sees everything the file holds.
func Parse(data []byte, loc *time.Location) (*Message, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the %d a queue file may have", len(data), MaxFileSize)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		// app_sms reads lines with fgets and C strings, so everything after a
		// NUL on that line would vanish.
		return nil, fmt.Errorf("NUL byte at offset %d", i)
	}
	if loc == nil {
		loc = time.Local
	}
	m := &Message{DCS: -1, MR: -1}
	lineNo := 0
	for len(data) > 0 {
		// Lines end at \n or \r, as in sms_readfile; a \r\n pair just adds an
		// empty line, which is skipped.
		end := bytes.IndexAny(data, "\n\r")
		var line []byte
		if end < 0 {
			line, data = data, nil
		} else {
			line, data = data[:end], data[end+1:]
		}
		lineNo++
		if len(line) > MaxLineSize {
			return nil, fmt.Errorf("line %d: %d bytes long, more than %d", lineNo, len(line), MaxLineSize)
		}
		if len(line) == 0 || line[0] == ';' {
			continue
		}
		if err := m.parseLine(line, loc); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	return m, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isSpace matches C's isspace in the "C" locale (\n and \r never reach it).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return trimRight(b)
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// quote renders a fragment of a damaged line for an error message: short,
// single-line and valid UTF-8 whatever the input.
func quote(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func (m *Message) parseLine(line []byte, loc *time.Location) error {
	k := 0
	for k < len(line) && isAlnum(line[k]) {
		k++
	}
	if k == 0 {
		// app_sms would warn "Cannot parse" and go on; a line that starts
		// with neither a key nor ';' is damage, not a comment.
		return fmt.Errorf("no key at start of line %s", quote(line))
	}
	key := strings.ToLower(string(line[:k]))
	rest := line[k:]
	for len(rest) > 0 && isSpace(rest[0]) {
		rest = rest[1:]
	}
	switch {
	case len(rest) > 0 && rest[0] == '=':
		return m.parseText(key, rest[1:], loc)
	case len(rest) > 1 && rest[0] == '#' && rest[1] == '#':
		if key != "ud" {
			m.Warnings = append(m.Warnings, fmt.Sprintf("ignored %s## (only ud has the ## form)", key))
			return nil
		}
		text, err := decodeUCS2Hex(trimRight(rest[2:]))
		if err != nil {
			return fmt.Errorf("ud##: %w", err)
		}
		m.Text = text
		return nil
	case len(rest) > 0 && rest[0] == '#':
		// Trailing blanks are forgiven; app_sms would stop at them with a
		// warning but keep the digits before.
		hex := trimRight(rest[1:])
		switch key {
		case "ud":
			b, err := decodeHex(hex)
			if err != nil {
				return fmt.Errorf("ud#: %w", err)
			}
			m.Text = latin1(b)
		case "udh":
			b, err := decodeHex(hex)
			if err != nil {
				return fmt.Errorf("udh#: %w", err)
			}
			if len(b) > MaxUDHLen {
				return fmt.Errorf("udh#: %d bytes, more than the %d a header can hold", len(b), MaxUDHLen)
			}
			m.UDH, m.HasUDH = b, true
		default:
			m.Warnings = append(m.Warnings, fmt.Sprintf("ignored %s# (only ud and udh have the # form)", key))
		}
		return nil
	}
	return fmt.Errorf("key %q is not followed by '=', '#' or '##'", key)
}

// parseText handles key=value lines.
func (m *Message) parseText(key string, value []byte, loc *time.Location) error {
	if key == "ud" {
		// app_sms takes the value verbatim here, leading blanks included.
		m.Text = decodeUDText(value)
		return nil
	}
	// For every other key app_sms skips leading blanks; trailing blanks are
	// harmless to its atoi and numcpy, so they are dropped as well.
	value = trimSpace(value)
	var err error
	switch key {
	case "oa":
		m.OA = string(value)
	case "da":
		m.DA = string(value)
	case "pid":
		m.PID, err = parseNumber(value, 255)
	case "dcs":
		m.DCS, err = parseNumber(value, 255)
	case "mr":
		m.MR, err = parseNumber(value, 255)
	case "vp":
		// app_sms keeps vp in an unsigned int and clamps it to the longest
		// relative period (63 weeks) on the wire.
		m.VP, err = parseNumber(value, 1<<32-1)
	case "srr":
		var n int
		n, err = parseNumber(value, 1<<31-1)
		m.SRR = n != 0
	case "rp":
		var n int
		n, err = parseNumber(value, 1<<31-1)
		m.RP = n != 0
	case "scts":
		// app_sms's sscanf would also take unpadded fields; everything that
		// writes these files pads them, so anything else is damage.
		var t time.Time
		t, err = time.ParseInLocation(sctsLayout, string(value), loc)
		if err != nil {
			return fmt.Errorf("scts %s is not YYYY-MM-DDTHH:MM:SS", quote(value))
		}
		m.SCTS = t
	default:
		m.Warnings = append(m.Warnings, fmt.Sprintf("ignored unknown key %q", key))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

var errNotNumber = errors.New("not a decimal number")

// parseNumber accepts plain decimal digits only. app_sms uses atoi, which
// turns garbage into 0 and wraps large values into the octet; both would send
// something other than what the file's author meant.
func parseNumber(value []byte, max int) (int, error) {
	if len(value) == 0 {
		return 0, fmt.Errorf("empty value: %w", errNotNumber)
	}
	n := 0
	for _, c := range value {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s: %w", quote(value), errNotNumber)
		}
		n = n*10 + int(c-'0')
		if n > max {
			return 0, fmt.Errorf("%s is larger than %d", quote(value), max)
		}
	}
	return n, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeHex decodes pairs of hex digits (either case). app_sms stops at the
// first bad digit and sends what it had; that is a damaged file here.
func decodeHex(s []byte) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(s))
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := hexVal(s[2*i])
		lo, ok2 := hexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("invalid hex digit at position %d in %s", 2*i+1, quote(s))
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

// latin1 maps each byte to the code point of the same value, which is how
// app_sms reads ud# (one 16-bit unit per byte).
func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) * 2)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// decodeUCS2Hex decodes ud##: 4 hex digits per UTF-16 unit. Surrogate pairs
// are combined; a lone surrogate cannot be represented in UTF-8 and becomes
// U+FFFD.
func decodeUCS2Hex(s []byte) (string, error) {
	if len(s)%4 != 0 {
		return "", fmt.Errorf("%d hex digits, not a multiple of 4", len(s))
	}
	b, err := decodeHex(s)
	if err != nil {
		return "", err
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(units)), nil
}

// decodeUDText decodes a ud= value the way a correct app_sms would, so that
// what app_sms itself wrote comes back as the units it held:
//   - valid UTF-8 is decoded normally;
//   - app_sms writes each UTF-16 unit separately, so a non-BMP character
//     arrives as two 3-byte surrogate sequences (CESU-8); a high+low pair is
//     combined, a lone surrogate becomes U+FFFD;
//   - any other byte that does not start a valid sequence stands for the code
//     point of its own value, as in app_sms's utf8decode (so the 0xBF app_sms
//     writes for control characters reads as U+00BF).
//
// app_sms itself would also decode 5- and 6-byte forms and cut every code
// point to 16 bits; those never come from a writer that produces valid
// UTF-8, and taking their bytes one by one keeps the result valid UTF-8.
func decodeUDText(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
			i++
			continue
		}
		if r, n := utf8.DecodeRune(b[i:]); r != utf8.RuneError || n > 1 {
			sb.WriteRune(r)
			i += n
			continue
		}
		if s, ok := cesuSurrogate(b[i:]); ok {
			if utf16.IsSurrogate(s) && s < 0xDC00 {
				if lo, ok := cesuSurrogate(b[i+3:]); ok && lo >= 0xDC00 {
					sb.WriteRune(utf16.DecodeRune(s, lo))
					i += 6
					continue
				}
			}
			sb.WriteRune(utf8.RuneError)
			i += 3
			continue
		}
		sb.WriteRune(rune(c))
		i++
	}
	return sb.String()
}

// cesuSurrogate decodes a 3-byte encoded UTF-16 surrogate (ED A0..BF 80..BF).
func cesuSurrogate(b []byte) (rune, bool) {
	if len(b) < 3 || b[0] != 0xED || b[1] < 0xA0 || b[1] > 0xBF || b[2]&0xC0 != 0x80 {
		return 0, false
	}
	return 0xD000 | rune(b[1]&0x3F)<<6 | rune(b[2]&0x3F), true
}
