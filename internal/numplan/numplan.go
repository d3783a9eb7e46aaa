// Package numplan is the one number normalisation smsrouter uses wherever a
// number is compared or sent: the directory lookup, routes to the mobile
// network, the numbers a mobile link owns, what an SMSC or a modem is given,
// and how a mobile sender is shown to a PBX phone.
//
// A number is either outside the PBX, written in full international form
// ("+48221234567"), or local, written as the PBX knows it ("1001", a short
// code). Without a country code the plan is off and every number is compared
// exactly as written, which is how smsrouter behaved before it had links.
//
// The plan never takes "+1000" for the extension 1000: a number with a plus
// is international. Only a DID prefix ("+4822123" with extensions of four
// digits) says that a full number is a PBX extension.
package numplan

import (
	"errors"
	"fmt"
	"strings"
)

// Show is how numbers outside the PBX are shown to PBX phones.
const (
	ShowInternational = "international" // +48601234567
	ShowNational      = "national"      // 0601234567, and 004915112345678 for other countries
)

// Plan is the numbering plan. The zero value is "off": numbers as written.
type Plan struct {
	// CountryCode is the E.164 country code of the PBX, digits without a
	// plus ("48"). Empty turns the plan off.
	CountryCode string
	// InternationalPrefix is dialled before a country code ("00").
	InternationalPrefix string
	// NationalPrefix is the trunk prefix before a national number ("0");
	// empty in countries that dial national numbers without one, where a
	// number longer than ExtensionLength is national.
	NationalPrefix string
	// ExtensionLength, when not 0, is the number of digits of a PBX
	// extension: a number that short is local, never rewritten.
	ExtensionLength int
	// DIDPrefix, when set, is the full international prefix of the PBX's
	// direct-dial range ("+4822123"): +48221231001 is the extension 1001,
	// and 1001 is presented to the mobile network as +48221231001.
	DIDPrefix string
	// Show is ShowInternational (default) or ShowNational.
	Show string
}

// MaxLen is the longest number smsrouter carries (app_sms's limit).
const MaxLen = 19

// Check reports a plan that cannot work.
func (p Plan) Check() error {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	switch {
	case p.CountryCode == "":
		if p.DIDPrefix != "" {
			return errors.New("numbers: did_prefix needs country_code")
		}
		if p.Show != "" && p.Show != ShowInternational {
			return errors.New("numbers: show_senders needs country_code")
		}
		return nil
	case !digits(p.CountryCode) || len(p.CountryCode) > 3:
		return fmt.Errorf("numbers: country_code %q is not 1 to 3 digits", p.CountryCode)
	case !digits(p.InternationalPrefix) || !digits(p.NationalPrefix):
		return errors.New("numbers: international_prefix and national_prefix must be digits")
	case p.InternationalPrefix == "":
		return errors.New("numbers: international_prefix is empty")
	case p.InternationalPrefix == p.NationalPrefix:
		return errors.New("numbers: international_prefix and national_prefix are the same")
	case p.ExtensionLength < 0 || p.ExtensionLength > 12:
		return fmt.Errorf("numbers: extension_length %d is not 0 to 12", p.ExtensionLength)
	case p.NationalPrefix == "" && p.ExtensionLength == 0:
		return errors.New("numbers: without a national_prefix, extension_length must say how long extensions are (longer numbers are national)")
	case p.Show != "" && p.Show != ShowInternational && p.Show != ShowNational:
		return fmt.Errorf("numbers: show_senders %q is neither %q nor %q", p.Show, ShowInternational, ShowNational)
	}
	if p.DIDPrefix != "" {
		if !strings.HasPrefix(p.DIDPrefix, "+") || !digits(p.DIDPrefix[1:]) {
			return fmt.Errorf("numbers: did_prefix %q is not + and digits", p.DIDPrefix)
		}
		if len(p.DIDPrefix)+max(p.ExtensionLength, 1) > MaxLen {
			return fmt.Errorf("numbers: did_prefix %q leaves no room for an extension", p.DIDPrefix)
		}
	}
	return nil
}

// On reports whether the plan rewrites numbers at all.
func (p Plan) On() bool { return p.CountryCode != "" }

// Normalize returns the canonical form of a number: "+" and digits for a
// number outside the PBX (or in its DID range: then the extension), the
// number as written for a local one. A number that is not "+"/digits, or
// whose full form would be too long, is returned as it is: the caller's own
// checks refuse it.
func (p Plan) Normalize(n string) string {
	if !p.On() || !plausible(n) {
		return n
	}
	var intl string // digits after the country's "+"
	switch {
	case n[0] == '+':
		intl = n[1:]
	case p.ExtensionLength > 0 && len(n) <= p.ExtensionLength:
		return n
	case strings.HasPrefix(n, p.InternationalPrefix) && len(n) > len(p.InternationalPrefix):
		intl = n[len(p.InternationalPrefix):]
	case p.NationalPrefix != "" && strings.HasPrefix(n, p.NationalPrefix) && len(n) > len(p.NationalPrefix):
		intl = p.CountryCode + n[len(p.NationalPrefix):]
	case p.NationalPrefix == "" && p.ExtensionLength > 0:
		intl = p.CountryCode + n
	default:
		return n
	}
	full := "+" + intl
	if len(full) > MaxLen {
		return n
	}
	if ext, ok := p.didExtension(full); ok {
		return ext
	}
	return full
}

func (p Plan) didExtension(full string) (string, bool) {
	if p.DIDPrefix == "" || !strings.HasPrefix(full, p.DIDPrefix) {
		return "", false
	}
	ext := full[len(p.DIDPrefix):]
	if ext == "" || p.ExtensionLength > 0 && len(ext) != p.ExtensionLength {
		return "", false
	}
	return ext, true
}

// Outside reports whether a canonical number is outside the PBX, so that a
// route to the mobile network may carry it. With the plan off every number
// may be routed.
func (p Plan) Outside(canonical string) bool {
	if !p.On() {
		return true
	}
	return strings.HasPrefix(canonical, "+")
}

// Shown returns how a canonical number is shown to a PBX phone: in a form
// the phone can reply to, which Normalize turns back into the same number.
func (p Plan) Shown(canonical string) string {
	if !p.On() || p.Show != ShowNational || !strings.HasPrefix(canonical, "+") {
		return canonical
	}
	var s string
	if rest, ok := strings.CutPrefix(canonical, "+"+p.CountryCode); ok && rest != "" {
		s = p.NationalPrefix + rest
	} else {
		s = p.InternationalPrefix + canonical[1:]
	}
	if len(s) > MaxLen || p.Normalize(s) != canonical {
		return canonical // the short form would be read as something else
	}
	return s
}

// Presented returns how a PBX number is presented to the mobile network as a
// sender: its full DID number when the plan has a DID range and the number
// fits it, else the number unchanged.
func (p Plan) Presented(canonical string) string {
	if p.DIDPrefix == "" || strings.HasPrefix(canonical, "+") || !plausible(canonical) {
		return canonical
	}
	if p.ExtensionLength > 0 && len(canonical) != p.ExtensionLength {
		return canonical
	}
	full := p.DIDPrefix + canonical
	if len(full) > MaxLen {
		return canonical
	}
	return full
}

// Explain says in words how Normalize read n, for `smsrouter route`.
func (p Plan) Explain(n string) string {
	c := p.Normalize(n)
	var how string
	switch {
	case !p.On():
		return "no numbering plan ([numbers] country_code unset): compared as written"
	case !plausible(n):
		return "not a number"
	case n[0] == '+':
		how = "international"
	case p.ExtensionLength > 0 && len(n) <= p.ExtensionLength:
		return fmt.Sprintf("local: at most %d digits, a PBX extension or short code", p.ExtensionLength)
	case c == n:
		return "local: no prefix of the plan applies"
	case strings.HasPrefix(n, p.InternationalPrefix):
		how = "international prefix " + p.InternationalPrefix
	case p.NationalPrefix != "" && strings.HasPrefix(n, p.NationalPrefix):
		how = fmt.Sprintf("national prefix %s, country code %s", p.NationalPrefix, p.CountryCode)
	default:
		how = fmt.Sprintf("national number (longer than %d digits), country code %s", p.ExtensionLength, p.CountryCode)
	}
	if !strings.HasPrefix(c, "+") {
		how += fmt.Sprintf("; in the DID range %s: extension %s", p.DIDPrefix, c)
	}
	return how
}

// plausible accepts "+"/digits of a sane length; anything else is left to
// the caller's validation.
func plausible(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	d := n
	if d[0] == '+' {
		d = d[1:]
	}
	if d == "" {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}
