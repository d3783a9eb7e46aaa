package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of the table (TestOpenAPIDescribesEveryRoute
// holds the two to each other).
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI is the API's OpenAPI 3 description, as served at /v1/openapi.json.
func OpenAPI() []byte { return openAPIDoc }

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	a.observe(endpointOf(r), "ok")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(openAPIDoc) //nolint:errcheck // the client went away
}
