package channels

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"smsrouter/asteriskconf/callfile"
)

// CheckDestination says why a directory Extension cannot work for a number with
// the given service letter, or returns nil. It is the one rule applied both when
// the router reads a PBXNumbers row and when `smsrouter number set` writes one,
// so our own tool can never store a row the router would refuse.
//
// What each letter needs:
//   - S, F, V place a call file: the Extension is its Channel line, Tech/dest,
//     which pbx_spool must read back unchanged (no control characters, no
//     blanks at the ends, no '#' after a blank).
//   - T sends a SIP MESSAGE through AMI: only PJSIP/<endpoint> works.
//   - C and N are never dialled: their Extension is ignored.
//
// The error text is for an administrator: it quotes the value (clipped) and says
// what is wrong with it.
func CheckDestination(letter byte, extension string) error {
	switch letter {
	case 'C', 'N':
		return nil
	case 'S', 'F', 'V':
		return checkDial(letter, extension)
	case 'T':
		_, err := PJSIPEndpoint(extension)
		return err
	}
	return fmt.Errorf("letter %q names no delivery service (want one of S F V C T N)", string(letter))
}

// checkDial checks an Extension that a call file will dial.
func checkDial(letter byte, ext string) error {
	if ext == "" {
		if letter == 0 {
			return errors.New("Extension is empty, but a call must dial it (e.g. PJSIP/1001)")
		}
		return fmt.Errorf("Extension is empty, but letter %c places a call to it (e.g. PJSIP/1001)", letter)
	}
	if tech, dest, ok := strings.Cut(ext, "/"); !ok || tech == "" || dest == "" {
		return fmt.Errorf("Extension %s is not a dialable channel Tech/dest (e.g. PJSIP/1001)", QuoteShort(ext))
	}
	if !utf8.ValidString(ext) {
		return fmt.Errorf("Extension %s is not valid UTF-8", QuoteShort(ext))
	}
	// The call file writer is the authority on what pbx_spool reads back
	// unchanged: ask it rather than keep a second copy of its rules. It
	// renders a whole call file to answer, so its yes is remembered.
	if dialable.has(ext) {
		return nil
	}
	cf := callfile.CallFile{Channel: ext, Application: "Wait", Data: "1"}
	if err := cf.Validate(); err != nil {
		var fe *callfile.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("Extension %s cannot be written into a call file: %s", QuoteShort(ext), fe.Reason)
		}
		return fmt.Errorf("Extension %s cannot be written into a call file: %w", QuoteShort(ext), err)
	}
	dialable.add(ext)
	return nil
}

// dialable remembers Extensions the call file writer accepted: every directory
// row read is checked, and rendering a call file for it was 2,400 instructions
// of each chaninfo request (issue 17, callgrind). The answer depends on the
// text alone, so it never goes stale; the set is emptied when full.
var dialable = extensionSet{m: map[string]struct{}{}}

// maxDialable bounds dialable: a directory of a few thousand numbers fits.
const maxDialable = 16384

type extensionSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (s *extensionSet) has(ext string) bool {
	s.mu.Lock()
	_, ok := s.m[ext]
	s.mu.Unlock()
	return ok
}

func (s *extensionSet) add(ext string) {
	s.mu.Lock()
	if len(s.m) >= maxDialable {
		clear(s.m)
	}
	s.m[strings.Clone(ext)] = struct{}{}
	s.mu.Unlock()
}

// maxEndpointLen bounds an endpoint name taken from the directory; PJSIP ids
// are short and anything longer is a data error, not a phone.
const maxEndpointLen = 64

// PJSIPEndpoint returns the endpoint a T number's Extension names:
// "PJSIP/1000" → "1000".
//
// Only the plain PJSIP/<endpoint> form is accepted. Other technologies (SIP/,
// IAX2/, Local/) cannot take a SIP MESSAGE through res_pjsip_messaging, and
// dial-string extras (PJSIP/1000/sip:…, PJSIP/x@y) would route the message
// somewhere the reachability check did not look. The endpoint name is limited
// to letters, digits, '.', '_' and '-' so that a hostile directory value can
// neither inject AMI headers nor pick another destination form.
func PJSIPEndpoint(extension string) (string, error) {
	tech, rest, ok := strings.Cut(extension, "/")
	if !ok || !strings.EqualFold(tech, "PJSIP") {
		return "", fmt.Errorf("Extension %s is not a PJSIP endpoint (PJSIP/<name>), so it cannot take SIP messages", QuoteShort(extension))
	}
	if rest == "" {
		return "", errors.New("Extension PJSIP/ names no endpoint")
	}
	if len(rest) > maxEndpointLen {
		return "", fmt.Errorf("Extension %s: endpoint name longer than %d characters", QuoteShort(extension), maxEndpointLen)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return "", fmt.Errorf("Extension %s: endpoint name may only hold letters, digits, '.', '_' and '-'", QuoteShort(extension))
		}
	}
	return rest, nil
}

// QuoteShort quotes s for an error text or a log line (Go syntax, so control
// characters show as escapes), clipped so a 10 kB value cannot flood either.
func QuoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
