package sip

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxEndpointLen bounds an endpoint name taken from the directory; PJSIP ids
// are short and anything longer is a data error, not a phone.
const maxEndpointLen = 64

// MessageURI turns a directory Extension into the PJSIP endpoint it names and
// the MessageSend destination for it: "PJSIP/1000" → ("1000", "pjsip:1000").
//
// Only the plain PJSIP/<endpoint> form is accepted. Other technologies (SIP/,
// IAX2/, Local/) cannot take a SIP MESSAGE through res_pjsip_messaging, and
// dial-string extras (PJSIP/1000/sip:…, PJSIP/x@y) would route the message
// somewhere the reachability check did not look. The endpoint name is limited
// to letters, digits, '.', '_' and '-' so that a hostile directory value can
// neither inject AMI headers nor pick another destination form.
func MessageURI(extension string) (endpoint, uri string, err error) {
	tech, rest, ok := strings.Cut(extension, "/")
	if !ok || !strings.EqualFold(tech, "PJSIP") {
		return "", "", fmt.Errorf("extension %s is not a PJSIP endpoint (PJSIP/<name>), so it cannot take SIP messages", quoteShort(extension))
	}
	if rest == "" {
		return "", "", errors.New("extension PJSIP/ names no endpoint")
	}
	if len(rest) > maxEndpointLen {
		return "", "", fmt.Errorf("extension %s: endpoint name longer than %d characters", quoteShort(extension), maxEndpointLen)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return "", "", fmt.Errorf("extension %s: endpoint name may only hold letters, digits, '.', '_' and '-'", quoteShort(extension))
		}
	}
	return rest, "pjsip:" + rest, nil
}

// quoteShort quotes s for an error text, clipped so a 10 kB value cannot
// flood a notice or a log line.
func quoteShort(s string) string {
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

// Split cuts text into bodies of at most limit bytes each. A text that fits is
// returned as it is; a longer one becomes parts numbered "(1/3) ", "(2/3) "…,
// each prefix counted within limit. Cuts fall on UTF-8 sequence boundaries,
// never inside a character, and preferably after a space or line break near
// the end of a part so words stay whole. limit must leave room for the prefix
// and at least one character (limit ≥ 16 always does up to 9999 parts).
func Split(text string, limit int) []string {
	if len(text) <= limit {
		return []string{text}
	}
	// The prefix length depends on the number of parts, which depends on the
	// prefix length: start with one digit and grow until the count fits.
	for digits := 1; ; digits++ {
		room := limit - (2*digits + 4) // "(" n "/" total ") "
		if room < utf8.UTFMax {
			room = utf8.UTFMax
		}
		chunks := cut(text, room)
		if len(fmt.Sprint(len(chunks))) <= digits {
			out := make([]string, len(chunks))
			for i, c := range chunks {
				out[i] = fmt.Sprintf("(%d/%d) %s", i+1, len(chunks), c)
			}
			return out
		}
	}
}

// wordSlack is how far back from a part's end a cut looks for a space.
const wordSlack = 80

func cut(text string, room int) []string {
	var out []string
	for len(text) > room {
		n := room
		for n > 0 && !utf8.RuneStart(text[n]) {
			n--
		}
		if n == 0 { // cannot happen with room ≥ UTFMax on valid UTF-8; keep progress anyway
			n = room
		}
		if i := strings.LastIndexAny(text[:n], " \n\t"); i >= 0 && n-i-1 <= wordSlack && i > 0 {
			n = i + 1
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return append(out, text)
}
