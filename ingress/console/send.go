package console

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/router"
)

// Count is what the send form's counter shows for a text: the S channel's
// own split (smsq.Split), which static/console.js mirrors in the browser
// (TestCounterMatchesSplit holds the two together).
type Count struct {
	Coding string // "GSM 7-bit" or "UCS-2"
	Chars  int    // characters (code points)
	Units  int    // septets or UTF-16 units
	Parts  int    // SMS parts; 0 when more than the allowed maximum would be needed
}

// CountText counts text as the S channel will split it into at most maxParts.
func CountText(text string, maxParts int) Count {
	c := Count{Chars: utf8.RuneCountInString(text), Coding: "GSM 7-bit"}
	if n, ok := smsq.GSM7Septets(text); ok {
		c.Units = n
	} else {
		c.Coding = "UCS-2"
		for _, r := range text {
			c.Units++
			if r >= 0x10000 {
				c.Units++
			}
		}
	}
	if parts, err := smsq.Split(text, 0, maxParts); err == nil {
		c.Parts = len(parts)
	}
	return c
}

type sendData struct {
	From, To, Text string
	MaxParts       int
	Count          Count
	Error, SentID  string
}

func (c *Console) sendPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "send", sendData{MaxParts: c.cfg.MaxParts, SentID: r.URL.Query().Get("sent")})
}

func (c *Console) send(w http.ResponseWriter, r *http.Request, s *session) {
	// A browser sends a textarea's line breaks as CR LF; the text typed (and
	// counted) has LF alone.
	text := strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n")
	d := sendData{From: strings.TrimSpace(r.PostFormValue("from")), To: strings.TrimSpace(r.PostFormValue("to")), Text: text, MaxParts: c.cfg.MaxParts}
	d.Count = CountText(text, c.cfg.MaxParts)
	var bad []string
	for _, n := range []struct{ what, v string }{{"sender", d.From}, {"recipient", d.To}} {
		if err := router.CheckNumber(n.what, n.v); err != nil {
			bad = append(bad, err.Error())
		}
	}
	switch {
	case !utf8.ValidString(text):
		bad = append(bad, "the text is not valid UTF-8")
	case d.Count.Chars > router.MaxSubmitText:
		bad = append(bad, "the text is longer than one concatenated SMS can carry")
	}
	if len(bad) > 0 {
		d.Error = strings.Join(bad, "; ")
		c.render(w, r, s, http.StatusUnprocessableEntity, "send", d)
		return
	}
	id, err := c.cfg.Submit(r.Context(), d.From, d.To, text)
	if err != nil {
		if errors.Is(err, router.ErrBadEntry) {
			d.Error = err.Error()
			c.render(w, r, s, http.StatusUnprocessableEntity, "send", d)
			return
		}
		c.internal(w, r, s, "queue the message", err)
		return
	}
	c.audit(r.Context(), s, "send", id, "from="+d.From+" to="+d.To)
	http.Redirect(w, r, "/ui/send?sent="+id, http.StatusSeeOther)
}
