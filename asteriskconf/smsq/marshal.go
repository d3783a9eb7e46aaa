package smsq

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxAddrLen mirrors app_sms, which ignores an oa or da of 20 characters or
// more (its buffers hold 19 plus the terminating NUL).
const maxAddrLen = 19

// ErrInvalid is wrapped by every error Marshal returns for a message it
// refuses to write.
var ErrInvalid = errors.New("invalid message")

// Marshal renders m as a queue file for sms/mttx (or sms/motx), in the key
// order smsq uses: oa, da, scts, pid, dcs, mr, srr, rp, udh, vp, then the
// text.
//
// The text is always written in a hex form, never as ud=: app_sms in Asterisk
// 20.15+/21.10+/22.5+ mangles non-ASCII ud= lines, and on some builds even
// ASCII ones. ud# is used when every UTF-16 unit is below 0x100, otherwise
// ud## with surrogate pairs for characters outside the BMP.
//
// SCTS is written in its own location; convert it with In first if the PBX
// uses another time zone. Fields at their "absent" value (PID 0, DCS and MR
// -1, VP 0, SRR and RP false, empty OA and DA, zero SCTS) are left out.
//
// Marshal refuses an OA or DA other than an optional '+' and digits, or of 20
// characters or more (app_sms would silently drop it), and text that is not
// valid UTF-8. It does not refuse text longer than one SMS (app_sms truncates
// it when sending; use Split to avoid that), only text too long for a queue
// file line at all.
func (m *Message) Marshal() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	units, wide := 0, false
	for _, r := range m.Text {
		units += utf16Cost(r)
		wide = wide || r >= 0x100
	}
	udLen := 3 + 2*units
	if wide {
		udLen = 4 + 4*units
	}
	if udLen > MaxLineSize {
		return nil, fmt.Errorf("%w: text of %d UTF-16 units does not fit a %d-byte queue file line", ErrInvalid, units, MaxLineSize)
	}

	b := make([]byte, 0, 128+udLen+2*len(m.UDH))
	if m.OA != "" {
		b = append(append(append(b, "oa="...), m.OA...), '\n')
	}
	if m.DA != "" {
		b = append(append(append(b, "da="...), m.DA...), '\n')
	}
	if !m.SCTS.IsZero() {
		b = append(m.SCTS.AppendFormat(append(b, "scts="...), sctsLayout), '\n')
	}
	if m.PID != 0 {
		b = append(strconv.AppendInt(append(b, "pid="...), int64(m.PID), 10), '\n')
	}
	if m.DCS >= 0 {
		b = append(strconv.AppendInt(append(b, "dcs="...), int64(m.DCS), 10), '\n')
	}
	if m.MR >= 0 {
		b = append(strconv.AppendInt(append(b, "mr="...), int64(m.MR), 10), '\n')
	}
	if m.SRR {
		b = append(b, "srr=1\n"...)
	}
	if m.RP {
		b = append(b, "rp=1\n"...)
	}
	if m.HasUDH || m.UDH != nil {
		b = append(b, "udh#"...)
		for _, c := range m.UDH {
			b = appendHex(b, uint16(c), 2)
		}
		b = append(b, '\n')
	}
	if m.VP > 0 {
		b = append(strconv.AppendInt(append(b, "vp="...), int64(m.VP), 10), '\n')
	}
	if wide {
		b = append(b, "ud##"...)
		for _, r := range m.Text {
			if r >= 0x10000 {
				hi, lo := utf16.EncodeRune(r)
				b = appendHex(appendHex(b, uint16(hi), 4), uint16(lo), 4)
				continue
			}
			b = appendHex(b, uint16(r), 4)
		}
	} else {
		b = append(b, "ud#"...)
		for _, r := range m.Text {
			b = appendHex(b, uint16(r), 2)
		}
	}
	return append(b, '\n'), nil
}

func appendHex(b []byte, v uint16, digits int) []byte {
	const hexdigits = "0123456789ABCDEF"
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b = append(b, hexdigits[(v>>shift)&0xF])
	}
	return b
}

func (m *Message) validate() error {
	if err := checkAddr("oa", m.OA); err != nil {
		return err
	}
	if err := checkAddr("da", m.DA); err != nil {
		return err
	}
	if !m.SCTS.IsZero() {
		if y := m.SCTS.Year(); y < 0 || y > 9999 {
			return fmt.Errorf("scts year %d cannot be written as YYYY", y)
		}
	}
	switch {
	case m.PID < 0 || m.PID > 255:
		return fmt.Errorf("pid %d outside 0..255", m.PID)
	case m.DCS < -1 || m.DCS > 255:
		return fmt.Errorf("dcs %d outside 0..255 (or -1 for none)", m.DCS)
	case m.MR < -1 || m.MR > 255:
		return fmt.Errorf("mr %d outside 0..255 (or -1 for none)", m.MR)
	case m.VP < 0 || m.VP > 1<<32-1:
		return fmt.Errorf("vp %d outside 0..4294967295 minutes", m.VP)
	case len(m.UDH) > MaxUDHLen:
		return fmt.Errorf("udh of %d bytes, more than %d", len(m.UDH), MaxUDHLen)
	case !utf8.ValidString(m.Text):
		return errors.New("text is not valid UTF-8")
	}
	return nil
}

// checkAddr enforces what app_sms can carry: an optional leading '+' (which
// becomes TON/NPI 0x91) and digits, fewer than 20 characters in all. Anything
// else would be silently filtered or dropped by app_sms, and a newline would
// inject keys into the file.
func checkAddr(key, a string) error {
	if a == "" {
		return nil
	}
	if len(a) > maxAddrLen {
		return fmt.Errorf("%s of %d characters, app_sms takes at most %d", key, len(a), maxAddrLen)
	}
	digits := a
	if digits[0] == '+' {
		digits = digits[1:]
	}
	if digits == "" {
		return fmt.Errorf("%s %q has no digits", key, a)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return fmt.Errorf("%s %q: only an optional leading '+' and digits are allowed", key, a)
		}
	}
	return nil
}
