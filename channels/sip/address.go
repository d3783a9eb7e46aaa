package sip

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"smsrouter/channels"
)

// MessageURI turns a directory Extension into the PJSIP endpoint it names and
// the MessageSend destination for it: "PJSIP/1000" → ("1000", "pjsip:1000").
// channels.PJSIPEndpoint holds the rule, shared with the directory check, so a
// row the router accepts for letter T is one this channel can send to.
func MessageURI(extension string) (endpoint, uri string, err error) {
	endpoint, err = channels.PJSIPEndpoint(extension)
	if err != nil {
		return "", "", err
	}
	return endpoint, "pjsip:" + endpoint, nil
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
