package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"smsrouter/router"
	"smsrouter/router/dlr"
)

// Accepted is the JSON answer of POST /v1/messages.
type Accepted struct {
	ID string `json:"id"`
}

// Submission is the JSON body of POST /v1/messages.
type Submission struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
	// Validity is how many minutes the router may keep trying (Kannel's
	// validity); 0 or absent: the configured default.
	Validity int `json:"validity,omitempty"`
	// DLRURL and DLRMask ask for delivery reports, as Kannel's dlr-url and
	// dlr-mask do (the same escape codes are filled in).
	DLRURL  string `json:"dlr_url,omitempty"`
	DLRMask int    `json:"dlr_mask,omitempty"`
}

var submissionFields = []string{"from", "to", "text", "validity", "dlr_url", "dlr_mask"}

// MaxValidity bounds a requested validity: a year of retries is already more
// than any message is worth.
const MaxValidity = 365 * 24 * time.Hour

func (a *API) postMessage(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.fail(w, r, apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"))
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var s Submission
	if err := dec.Decode(&s); err != nil {
		a.fail(w, r, jsonError(err, a.cfg.MaxBody, submissionFields))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.fail(w, r, jsonError(err, a.cfg.MaxBody, submissionFields))
			return
		}
		a.fail(w, r, badRequest("bad_json", "the body holds more than one JSON value; send one object"))
		return
	}
	m := Message{From: s.From, To: s.To, Text: s.Text}
	if s.Validity != 0 {
		v, e := checkValidity(fmt.Sprint(s.Validity))
		if e != nil {
			a.fail(w, r, e)
			return
		}
		m.Validity = v
	}
	if s.DLRURL != "" || s.DLRMask != 0 {
		if s.DLRURL == "" {
			a.fail(w, r, badRequest("bad_dlr_url", "dlr_mask needs a dlr_url to call"))
			return
		}
		mask, e := checkMask(fmt.Sprint(s.DLRMask))
		if e != nil {
			a.fail(w, r, e)
			return
		}
		if mask == 0 {
			a.fail(w, r, badRequest("bad_dlr_mask", "dlr_url needs a dlr_mask saying which reports to send (3: delivered and failed; 31: all)"))
			return
		}
		if e := checkDLRURL(s.DLRURL); e != nil {
			a.fail(w, r, e)
			return
		}
		m.Report = &ReportRequest{URL: s.DLRURL, Mask: mask, Info: map[string]string{}}
	}
	id, e := a.submit(r, m)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	a.observe(endpointOf(r), "ok")
	w.Header().Set(HeaderMessageID, id)
	writeJSON(w, http.StatusAccepted, Accepted{ID: id})
}

// submit checks what every way in has in common and queues the message.
func (a *API) submit(r *http.Request, m Message) (string, *Error) {
	for _, c := range []struct{ role, v string }{{"sender", m.From}, {"recipient", m.To}} {
		if err := router.CheckNumber(c.role, c.v); err != nil {
			if strings.HasPrefix(c.v, " ") {
				// A '+' sent unencoded in a query string arrives as a space.
				return "", badRequest("bad_number", "%s (a + must be sent as %%2B in a URL)", err.Error())
			}
			return "", badRequest("bad_number", "%s", err.Error())
		}
	}
	if !utf8.ValidString(m.Text) {
		return "", badRequest("text_not_utf8", "the text is not valid UTF-8 (name its encoding with charset=)")
	}
	if m.Text == "" {
		return "", badRequest("text_missing", "the text is missing")
	}
	if n := utf8.RuneCountInString(m.Text); n > router.MaxSubmitText {
		return "", badRequest("text_too_long", "the text has %d characters; at most %d fit in one concatenated SMS", n, router.MaxSubmitText)
	}
	if m.Report != nil {
		m.Report.Info["from"], m.Report.Info["to"] = m.From, m.To
	}
	id, err := a.cfg.Submit(r.Context(), m)
	if err != nil {
		// Validation happened above, so what is left is the spool or the
		// database: our problem, not the client's.
		a.cfg.Log.Error("http send: cannot queue", "from", m.From, "to", m.To, "err", err)
		return "", apiErr(http.StatusServiceUnavailable, "unavailable", "cannot queue the message now; try again later")
	}
	a.cfg.Log.Info("http send: queued", "id", id, "from", m.From, "to", m.To, "remote", r.RemoteAddr, "report", m.Report != nil)
	return id, nil
}

// checkValidity reads a validity in minutes.
func checkValidity(s string) (time.Duration, *Error) {
	var v int64
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || fmt.Sprint(v) != strings.TrimSpace(s) {
		return 0, badRequest("bad_validity", "validity %q is not a number of minutes", s)
	}
	d := time.Duration(v) * time.Minute
	if v < 1 || d > MaxValidity {
		return 0, badRequest("bad_validity", "validity is the minutes the message may wait: 1 to %d", int(MaxValidity/time.Minute))
	}
	return d, nil
}

func checkMask(s string) (dlr.Type, *Error) {
	mask, err := dlr.ParseMask(s)
	if err != nil {
		return 0, badRequest("bad_dlr_mask", "%s", err.Error())
	}
	return mask, nil
}

// checkDLRURL accepts an absolute http or https URL. Its escape codes (%d…) are
// not URL syntax, so they are taken out before parsing.
func checkDLRURL(s string) *Error {
	if len(s) > dlr.MaxTarget {
		return badRequest("bad_dlr_url", "dlr-url is longer than %d bytes", dlr.MaxTarget)
	}
	u, err := url.Parse(strings.ReplaceAll(Expand(s, placeholder), " ", "%20"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return badRequest("bad_dlr_url", "dlr-url must be an absolute http:// or https:// URL")
	}
	return nil
}
