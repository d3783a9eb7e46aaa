package voice

import (
	"testing"
	"time"
)

func TestCompose(t *testing.T) {
	d := DefaultPhrases()
	sent := time.Date(2026, time.November, 21, 6, 4, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  Request
		lang string
		want string
	}{
		{"digits", Request{From: "5551234", Text: "Hello"}, "en", "Message from 5 5 5 1 2 3 4. Hello"},
		{"plus and separators", Request{From: "+48 (22) 555-12", Text: "Hi"}, "en", "Message from plus 4 8 2 2 5 5 5 1 2. Hi"},
		{"polish", Request{From: "5551234", Text: "Zażółć gęślą jaźń"}, "pl", "Wiadomość od 5 5 5 1 2 3 4. Zażółć gęślą jaźń"},
		{"date en", Request{From: "12", Sent: sent, IncludeDate: true, Text: "x"}, "en", "Message from 1 2. Sent 21 November 2026, 6:04. x"},
		{"date pl", Request{From: "12", Sent: sent, IncludeDate: true, Text: "x"}, "pl", "Wiadomość od 1 2. Wysłano 21 listopada 2026, 6:04. x"},
		{"date de", Request{From: "12", Sent: sent, IncludeDate: true, Text: "x"}, "de", "Nachricht von 1 2. Gesendet am 21. November 2026, 6:04 Uhr. x"},
		{"date not asked", Request{From: "12", Sent: sent, Text: "x"}, "en", "Message from 1 2. x"},
		{"zero date", Request{From: "12", IncludeDate: true, Text: "x"}, "en", "Message from 1 2. x"},
		{"reference", Request{From: "12", Ref: "A7 3", Text: "x"}, "en", "Message from 1 2. Reference A 7 3. x"},
		{"alphanumeric sender", Request{From: "BANK", Text: "x"}, "en", "Message from BANK. x"},
		{"long alphanumeric sender", Request{From: "A very long sender name that goes on and on", Text: "x"}, "en", "Message from A very long sender name that goe. x"},
		{"unknown sender", Request{Text: "x"}, "en", "Message from an unknown sender. x"},
		{"control characters", Request{From: "1\n2", Text: "a\x00b\r\n\tc\u200bd \xff e  "}, "en", "Message from 1 2. a b c d e"},
		{"text starting with dash", Request{From: "1", Text: "-v xx"}, "en", "Message from 1. -v xx"},
		{"empty text", Request{From: "1", Text: " \n"}, "en", "Message from 1."},
		{"question kept", Request{From: "1", Text: "Ok?"}, "en", "Message from 1. Ok?"},
		{"nothing", Request{}, "none", ""},
		{"only text", Request{Text: "-hi"}, "none", "-hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compose(tt.req, d[tt.lang]); got != tt.want {
				t.Errorf("Compose = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultPhrasesComplete(t *testing.T) {
	for lang, p := range DefaultPhrases() {
		if p.MessageFrom == "" || p.UnknownSender == "" || p.Sent == "" || p.DateLayout == "" || p.Reference == "" || p.Plus == "" {
			t.Errorf("%s: empty phrase in %+v", lang, p)
		}
		for i, m := range p.Months {
			if m == "" {
				t.Errorf("%s: month %d has no name", lang, i+1)
			}
		}
	}
}

func TestRendererPhrasesFallback(t *testing.T) {
	custom := map[string]Phrases{"pl": {MessageFrom: "Od"}, "en": {MessageFrom: "From"}}
	for _, tt := range []struct {
		lang, def string
		table     map[string]Phrases
		want      string
	}{
		{"pl", "", nil, "Wiadomość od"},
		{"pl-PL", "", nil, "Wiadomość od"},
		{"pl_pl", "", nil, "Wiadomość od"},
		{"fr", "", nil, "Message from"},
		{"fr", "de", nil, "Nachricht von"},
		{"", "de", nil, "Nachricht von"},
		{"pl", "", custom, "Od"},
		{"cs", "", custom, "From"},
		{"cs", "", map[string]Phrases{"de": {MessageFrom: "Von"}}, "Message from"},
	} {
		r := Renderer{DefaultLang: tt.def, Phrases: tt.table}
		if got := r.phrases(r.lang(tt.lang)).MessageFrom; got != tt.want {
			t.Errorf("lang %q default %q: %q, want %q", tt.lang, tt.def, got, tt.want)
		}
	}
}
