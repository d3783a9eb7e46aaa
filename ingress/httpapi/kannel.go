package httpapi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/ianaindex"

	"smsrouter/router"
)

// Kannel's sendsms, as applications written for Kannel call it (playSMS, many
// scripts): GET or POST form with
//
//	username | user, password | pass   a configured [[http.users]] entry
//	from, to, text                       one recipient per request
//	coding    0 7-bit (default), 2 UCS-2; 1 (8-bit binary data) is refused: the router carries text
//	charset   the text's encoding: UTF-8 by default, UTF-16BE with coding=2; any IANA name (ISO-8859-1, windows-1250…)
//	udh       a user data header with its length octet, URL-encoded: only a concatenation element, which
//	          makes the message one part of a longer one (the router joins the parts)
//	validity  minutes the router may keep trying
//	dlr-mask, dlr-url   delivery reports (router/dlr; the escape codes are Caller's)
//
// Kannel's routing and billing hints (smsc, account, binfo, priority,
// meta-data) are accepted and ignored: this router routes by its directory.
// Parameters that would change the message in ways it does not do (deferred,
// mclass, mwi, pid, alt-dcs, rpi, compress) are refused rather than ignored.
//
// The answers are Kannel's: 202 "0: Accepted for delivery"; refusals are plain
// text with Kannel's statuses (403 for credentials, 400 for input, 503 when the
// spool or database cannot take it). A refusal never starts with "3:": in
// Kannel that is "3: Queued for later delivery", a success, and clients test
// for it.

// kannelUnsupported are sendsms parameters whose effect this router cannot give.
var kannelUnsupported = []string{"deferred", "mclass", "mwi", "pid", "alt-dcs", "rpi", "compress"}

// The Kannel coding values.
const (
	coding7bit = "0"
	coding8bit = "1"
	codingUCS2 = "2"
)

func (a *API) sendsms(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.fail(w, r, apiErr(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request larger than %d bytes", a.cfg.MaxBody)))
			return
		}
		a.fail(w, r, badRequest("bad_json", "the form cannot be read: send URL-encoded parameters"))
		return
	}
	f := r.Form
	first := func(names ...string) string {
		for _, n := range names {
			if v := f.Get(n); v != "" {
				return v
			}
		}
		return ""
	}
	user := first("username", "user")
	if !a.authorized(r, user, first("password", "pass")) {
		a.fail(w, r, apiErr(http.StatusForbidden, "unauthorized", "Authorization failed for sendsms"))
		return
	}
	for _, p := range kannelUnsupported {
		if f.Has(p) {
			a.fail(w, r, badRequest("unsupported_parameter", "parameter %s is not supported by this gateway; leave it out", p))
			return
		}
	}
	to := f.Get("to")
	if strings.Contains(strings.TrimSpace(to), " ") {
		a.fail(w, r, badRequest("bad_number", "one recipient per request: send a request for each number"))
		return
	}
	coding := f.Get("coding")
	switch coding {
	case "", coding7bit, codingUCS2:
	case coding8bit:
		a.fail(w, r, badRequest("bad_coding", "coding=1 (8-bit binary data) is not supported: send text with coding=0 or coding=2"))
		return
	default:
		a.fail(w, r, badRequest("bad_coding", "coding must be 0 (7-bit) or 2 (UCS-2)"))
		return
	}
	charset := f.Get("charset")
	text, e := decodeText(f.Get("text"), coding, charset)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	m := Message{From: f.Get("from"), To: to, Text: text}
	info := map[string]string{"user": user, "coding": coding, "charset": charset}
	if raw := f.Get("udh"); raw != "" {
		ies, err := router.ConcatUDH([]byte(raw))
		if err != nil {
			a.fail(w, r, badRequest("bad_udh", "udh: %s", strings.TrimPrefix(err.Error(), router.ErrNotConcat.Error()+": ")))
			return
		}
		m.UDH = ies
		info["udh"] = hex.EncodeToString([]byte(raw))
	}
	if v := f.Get("validity"); v != "" {
		d, e := checkValidity(v)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		m.Validity = d
	}
	url, maskText := first("dlr-url", "dlrurl"), first("dlr-mask", "dlrmask")
	if maskText != "" {
		mask, e := checkMask(maskText)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		if mask != 0 && url == "" {
			a.fail(w, r, badRequest("bad_dlr_url", "dlr-mask needs a dlr-url: this gateway has no default one"))
			return
		}
		// As in Kannel, a dlr-url without a dlr-mask (or with 0) asks for nothing.
		if mask != 0 {
			if e := checkDLRURL(url); e != nil {
				a.fail(w, r, e)
				return
			}
			m.Report = &ReportRequest{URL: url, Mask: mask, Info: info}
		}
	}
	id, e := a.submit(r, m)
	if e != nil {
		a.fail(w, r, e)
		return
	}
	a.observe(endpointOf(r), "ok")
	w.Header().Set(HeaderMessageID, id)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "0: Accepted for delivery") //nolint:errcheck // the client went away
}

// decodeText turns the text parameter's bytes into a string: from charset, or
// by Kannel's defaults (UTF-16BE for UCS-2, UTF-8 otherwise).
func decodeText(raw, coding, charset string) (string, *Error) {
	if charset == "" {
		charset = "UTF-8"
		if coding == codingUCS2 {
			charset = "UTF-16BE"
		}
	}
	name := strings.ToUpper(strings.TrimSpace(charset))
	switch name {
	case "UTF-8", "UTF8":
		if !utf8.ValidString(raw) {
			return "", badRequest("text_not_utf8", "the text is not valid UTF-8; name its encoding with charset= (e.g. ISO-8859-1)")
		}
		return raw, nil
	case "UTF-16BE", "UTF-16", "UCS-2", "UCS-2BE", "UTF16-BE":
		if len(raw)%2 != 0 {
			return "", badRequest("bad_charset", "the text has an odd number of bytes, so it is not %s", charset)
		}
		units := make([]uint16, len(raw)/2)
		for i := range units {
			units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		for i := 0; i < len(units); i++ {
			switch u := units[i]; {
			case u >= 0xD800 && u < 0xDC00 && i+1 < len(units) && units[i+1] >= 0xDC00 && units[i+1] < 0xE000:
				i++ // a pair
			case utf16.IsSurrogate(rune(u)):
				return "", badRequest("bad_charset", "the text is not valid %s: a lone surrogate at byte %d", charset, 2*i)
			}
		}
		return string(utf16.Decode(units)), nil
	}
	enc, err := ianaindex.IANA.Encoding(charset)
	if err != nil || enc == nil {
		return "", badRequest("bad_charset", "charset %q is unknown; use an IANA name such as UTF-8, ISO-8859-1, UTF-16BE", charset)
	}
	out, err := enc.NewDecoder().String(raw)
	if err != nil || strings.ContainsRune(out, utf8.RuneError) && !strings.ContainsRune(raw, utf8.RuneError) {
		return "", badRequest("bad_charset", "the text is not valid %s", charset)
	}
	if enc == encoding.Nop {
		return "", badRequest("bad_charset", "charset %q cannot be decoded", charset)
	}
	return out, nil
}

// kannelStatus is the HTTP status Kannel answers a refusal with.
func kannelStatus(e *Error) int {
	if e.Code == "unauthorized" {
		return http.StatusForbidden
	}
	return e.Status
}

// kannelText is a refusal as Kannel words it: plain text, no status prefix.
func kannelText(e *Error) string {
	if e.Code == "unauthorized" {
		return "Authorization failed for sendsms"
	}
	return e.Message
}
