package voice

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Phrases are the words wrapped around a message in one language. All of
// them are configurable; DefaultPhrases supplies en, pl and de.
type Phrases struct {
	MessageFrom   string     // "Message from", followed by the sender
	UnknownSender string     // spoken instead of an empty sender; "" leaves the intro out
	Plus          string     // spoken for a leading "+" of the sender's number
	Sent          string     // "Sent", followed by the date
	DateLayout    string     // "{day} {month} {year}, {hour}:{minute}"
	Months        [12]string // month names as used in DateLayout (genitive in Polish)
	Reference     string     // "Reference", followed by the reference read character by character
}

// DefaultPhrases returns the built-in phrases for the languages we ship:
// "en", "pl" and "de".
func DefaultPhrases() map[string]Phrases {
	return map[string]Phrases{
		"en": {
			MessageFrom:   "Message from",
			UnknownSender: "Message from an unknown sender",
			Plus:          "plus",
			Sent:          "Sent",
			DateLayout:    "{day} {month} {year}, {hour}:{minute}",
			Months: [12]string{"January", "February", "March", "April", "May", "June",
				"July", "August", "September", "October", "November", "December"},
			Reference: "Reference",
		},
		"pl": {
			MessageFrom:   "Wiadomość od",
			UnknownSender: "Wiadomość od nieznanego nadawcy",
			Plus:          "plus",
			Sent:          "Wysłano",
			DateLayout:    "{day} {month} {year}, {hour}:{minute}",
			Months: [12]string{"stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca",
				"lipca", "sierpnia", "września", "października", "listopada", "grudnia"},
			Reference: "Numer referencyjny",
		},
		"de": {
			MessageFrom:   "Nachricht von",
			UnknownSender: "Nachricht von unbekanntem Absender",
			Plus:          "plus",
			Sent:          "Gesendet am",
			DateLayout:    "{day}. {month} {year}, {hour}:{minute} Uhr",
			Months: [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni",
				"Juli", "August", "September", "Oktober", "November", "Dezember"},
			Reference: "Referenz",
		},
	}
}

// Request is one message to speak.
type Request struct {
	From        string    // sender number (read digit by digit) or alphanumeric name
	Ref         string    // optional reference, read character by character
	Sent        time.Time // when the message was sent; spoken only with IncludeDate
	Text        string    // the message body
	Lang        string    // language code, e.g. "pl" or "pl-PL"; "" means the renderer's default
	Voice       string    // engine voice; "" lets the engine preset choose (espeak-ng: the language)
	IncludeDate bool      // speak the sent date after the sender
}

// maxSenderRunes bounds an alphanumeric sender; real ones are at most 11.
const maxSenderRunes = 32

// Compose builds the sentence the engine reads:
//
//	Message from 5 5 5 1 2 3 4. Sent 21 November 2026, 6:04. Reference 4 2. <text>
//
// The number is spelled digit by digit so the engine does not read it as
// "five million…". Text is cleaned: invalid UTF-8 and control characters
// become spaces and runs of white space collapse to one. The result may be
// empty when there is nothing to say.
func Compose(req Request, p Phrases) string {
	var parts []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		if last := s[len(s)-1]; last != '.' && last != '!' && last != '?' {
			s += "."
		}
		parts = append(parts, s)
	}

	if from := spokenSender(req.From, p.Plus); from != "" {
		add(p.MessageFrom + " " + from)
	} else {
		add(p.UnknownSender)
	}
	if req.IncludeDate && !req.Sent.IsZero() {
		add(p.Sent + " " + spokenDate(req.Sent, p))
	}
	if ref := spell(clean(req.Ref)); ref != "" {
		add(p.Reference + " " + ref)
	}
	if text := clean(req.Text); text != "" {
		parts = append(parts, text) // the sender's own punctuation stands
	}
	return clean(strings.Join(parts, " "))
}

// spokenSender spells a phone number digit by digit (separators dropped, a
// leading "+" spoken) and passes an alphanumeric sender through, cleaned and
// shortened.
func spokenSender(from, plus string) string {
	from = clean(from)
	if from == "" {
		return ""
	}
	var digits []string
	for i, r := range from {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, string(r))
		case r == '+' && i == 0 && plus != "":
			digits = append(digits, plus)
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.', r == '/':
		default:
			// Not a number: an alphanumeric sender such as "BANK".
			if utf8.RuneCountInString(from) > maxSenderRunes {
				from = string([]rune(from)[:maxSenderRunes])
			}
			return from
		}
	}
	return strings.Join(digits, " ")
}

// spell separates the characters of a reference so they are read one by
// one ("A7" → "A 7").
func spell(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsSpace(r) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func spokenDate(t time.Time, p Phrases) string {
	layout := p.DateLayout
	if layout == "" {
		layout = "{day} {month} {year}, {hour}:{minute}"
	}
	return strings.NewReplacer(
		"{day}", strconv.Itoa(t.Day()),
		"{month}", p.Months[t.Month()-1],
		"{year}", strconv.Itoa(t.Year()),
		"{hour}", strconv.Itoa(t.Hour()),
		"{minute}", t.Format("04"),
	).Replace(layout)
}

// clean makes text safe and tidy for an engine: invalid UTF-8, control and
// format characters become spaces, white space runs collapse, ends trimmed.
func clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drops leading white space
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(r)
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}
