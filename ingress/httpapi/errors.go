package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error is an answer that refuses a request: an HTTP status, a stable machine
// code a client can branch on, and a message a person can act on. It never
// carries Go's or the database's own error text.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

func apiErr(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

func badRequest(code, format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

// Codes are every error code the API answers with, as the OpenAPI description
// lists them and the metrics label them.
var Codes = []string{
	"unauthorized", "method_not_allowed", "not_found", "unsupported_media_type", "body_too_large", "rate_limited",
	"bad_json", "unknown_field", "wrong_type", "bad_number", "text_missing", "text_too_long", "text_not_utf8",
	"bad_validity", "bad_dlr_url", "bad_dlr_mask", "bad_udh", "bad_coding", "bad_charset", "unsupported_parameter",
	"bad_id", "bad_time", "bad_state", "bad_limit", "bad_cursor", "unknown_parameter", "unavailable",
}

var (
	errUnauthorized = apiErr(http.StatusUnauthorized, "unauthorized", "authorization failed: send a bearer token or a user's name and password")
	errUnavailable  = apiErr(http.StatusServiceUnavailable, "unavailable", "cannot do that now; try again later")
)

// fail answers with e in the endpoint's dialect: JSON {"error", "code"} on /v1,
// Kannel's plain text on sendsms.
func (a *API) fail(w http.ResponseWriter, r *http.Request, e *Error) {
	endpoint := endpointOf(r)
	a.observe(endpoint, e.Code)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(HeaderErrorCode, e.Code)
	if endpoint == "sendsms" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(kannelStatus(e))
		io.WriteString(w, kannelText(e)) //nolint:errcheck // the client went away
		return
	}
	writeJSON(w, e.Status, e)
}

func (a *API) observe(endpoint, result string) {
	if a.cfg.Observe != nil {
		a.cfg.Observe(endpoint, result)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // the client went away
}

// jsonError turns a decoding failure into words: which field, what was wrong,
// where in the body; never the decoder's own message.
func jsonError(err error, maxBody int64, known []string) *Error {
	var (
		tooBig *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return apiErr(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxBody))
	case errors.Is(err, io.EOF):
		return badRequest("bad_json", "the body is empty; send one JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("bad_json", "the JSON ends too early: an object or string is not closed")
	case errors.As(err, &syntax):
		return badRequest("bad_json", "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		want := typ.Type.String()
		switch want {
		case "string":
			want = "a string"
		case "int", "int64":
			want = "a whole number"
		}
		if typ.Field == "" {
			return badRequest("wrong_type", "the body must be one JSON object, not %s", typ.Value)
		}
		return badRequest("wrong_type", "field %q must be %s, not %s", typ.Field, want, typ.Value)
	}
	// encoding/json reports an unknown field only in its message: take the name
	// from it, so the answer can still say which.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest("unknown_field", "unknown field %s; the fields are %s", name, strings.Join(known, ", "))
	}
	return badRequest("bad_json", "the body is not a JSON object of the expected shape")
}
