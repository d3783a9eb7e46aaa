// Package selfservice reads the commands a person texts to the self-service
// number to change their own directory entry: which way messages reach them
// (SET), the language they are read out in (LANG), their quiet hours (QUIET),
// their PIN (PIN) and what is set now (STATUS). A PIN, when the number has one,
// is the first word: "1234 SET F", "1234 PIN 5678". The router carries the commands out; this package only
// parses, so the parser can be fuzzed on its own.
package selfservice

import (
	"errors"
	"strings"

	"smsrouter/internal/quiet"
)

// Verb names a command.
type Verb string

const (
	Set    Verb = "SET"    // Letters: the first replaces PBXNumbers.Message, the rest are further ways
	Lang   Verb = "LANG"   // Lang: a voice language ("" = the default)
	Quiet  Verb = "QUIET"  // Window (Off: no quiet hours); Default: back to the configured window
	Status Verb = "STATUS" // what is set now
	Help   Verb = "HELP"   // the commands
	Pin    Verb = "PIN"    // NewPIN: the number's new PIN ("" with PINOff: none)
)

// Command is one parsed request.
type Command struct {
	Verb    Verb
	PIN     string       // "" when none was given
	Letters string       // SET: upper-case service letters in order, no repeats
	Lang    string       // LANG
	Window  quiet.Window // QUIET; the zero Window with Default false is "off"
	Default bool         // QUIET DEFAULT
	NewPIN  string       // PIN
	PINOff  bool         // PIN OFF
}

// Usage is the short help a phone gets for a request it cannot read.
const Usage = "Send SET S (or SET T,S), LANG pl, QUIET 22-07, QUIET OFF or STATUS. With a PIN: 1234 SET F; a new PIN: 1234 PIN 5678"

// Error is a parse failure; its text is written for the person who texted.
type Error struct{ Reply string }

func (e *Error) Error() string { return e.Reply }

func fail(s string) error { return &Error{s} }

// IsError reports whether err is a parse failure with a reply for the sender.
func IsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// letters a person may choose: not C (a service) nor N (off: use the admin).
const chooseable = "SFVT"

// maxLen bounds what is parsed: one SMS is plenty for any command.
const maxLen = 160

// Parse reads a request such as "SET T,S", "1234 quiet 22-07" or "status".
// Words are separated by blanks; case does not matter.
func Parse(text string) (Command, error) {
	if len(text) > maxLen {
		return Command{}, fail("Too long. " + Usage)
	}
	words := strings.Fields(strings.ToUpper(text))
	var c Command
	if len(words) > 0 && isPIN(words[0]) {
		c.PIN, words = words[0], words[1:]
	}
	if len(words) == 0 {
		return c, fail(Usage)
	}
	c.Verb = Verb(words[0])
	args := words[1:]
	switch c.Verb {
	case Status, Help:
		if len(args) > 0 {
			return c, fail(string(c.Verb) + " takes nothing after it.")
		}
	case Set:
		// "SET T,S", "SET T S", "SET TS" all read the same.
		joined := strings.NewReplacer(",", "", ";", "", "/", "").Replace(strings.Join(args, ""))
		if joined == "" {
			return c, fail("SET needs a letter: S (SMS), F (fax), V (voice) or T (SIP).")
		}
		if len(joined) > len(chooseable) {
			return c, fail("SET takes at most 4 letters, e.g. SET T,S.")
		}
		for _, l := range joined {
			if !strings.ContainsRune(chooseable, l) {
				return c, fail("SET letters are S (SMS), F (fax), V (voice) and T (SIP).")
			}
			if strings.ContainsRune(c.Letters, l) {
				return c, fail("SET names each letter once.")
			}
			c.Letters += string(l)
		}
	case Lang:
		if len(args) != 1 {
			return c, fail("LANG needs one language code, e.g. LANG pl, or LANG OFF.")
		}
		if args[0] == "OFF" || args[0] == "DEFAULT" {
			return c, nil
		}
		c.Lang = strings.ToLower(args[0])
		if !validLang(c.Lang) {
			return c, fail("LANG needs a language code such as pl or en-gb.")
		}
	case Quiet:
		if len(args) != 1 {
			return c, fail("QUIET needs hours, e.g. QUIET 22-07, or QUIET OFF.")
		}
		if args[0] == "DEFAULT" {
			c.Default = true
			return c, nil
		}
		w, err := quiet.Parse(args[0])
		if err != nil {
			return c, fail("QUIET needs hours such as 22-07 or 22:30-06:45, or OFF.")
		}
		c.Window = w
	case Pin:
		if len(args) != 1 {
			return c, fail("PIN needs the new PIN (4 to 8 digits), e.g. 1234 PIN 5678, or PIN OFF.")
		}
		if args[0] == "OFF" {
			c.PINOff = true
			return c, nil
		}
		if !isPIN(args[0]) {
			return c, fail("A PIN is 4 to 8 digits, e.g. 1234 PIN 5678.")
		}
		c.NewPIN = args[0]
	default:
		return c, fail("Unknown command. " + Usage)
	}
	return c, nil
}

// isPIN is the first word's test: 4 to 8 digits.
func isPIN(w string) bool {
	if len(w) < 4 || len(w) > 8 {
		return false
	}
	for _, c := range w {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ValidPIN is what a stored PIN must look like to be usable.
func ValidPIN(p string) bool { return isPIN(p) }

// validLang accepts a language tag such as "pl", "en-gb", "pt-br": 2 or 3
// letters, optionally a dash and 2 to 8 letters or digits.
func validLang(s string) bool {
	base, sub, hasSub := strings.Cut(s, "-")
	if len(base) < 2 || len(base) > 3 || !allIn(base, "abcdefghijklmnopqrstuvwxyz") {
		return false
	}
	if hasSub {
		return len(sub) >= 2 && len(sub) <= 8 && allIn(sub, "abcdefghijklmnopqrstuvwxyz0123456789")
	}
	return true
}

func allIn(s, set string) bool {
	for _, c := range s {
		if !strings.ContainsRune(set, c) {
			return false
		}
	}
	return true
}
