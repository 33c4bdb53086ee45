package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every response an e2e test receives is checked against the API's own
// /openapi.json, so the document cannot drift from what the API does: a
// status the operation does not declare, a body of another content type or
// one its schema refuses fails the test. Objects are checked closed: a
// field the document does not name fails too (the served document leaves
// them open, so that clients accept fields added later).

// undocumented are the path prefixes the document leaves out on purpose
// (pages and assets that are not API); their responses are not checked.
var undocumented = []string{
	"/monitoring/",  // asynqmon's own UI and JSON API
	"/docs/assets/", // Swagger UI and ReDoc files
}

// contract is the served document, fetched once per test binary.
var contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

// openAPIRouter loads /openapi.json from s's server (the first time) and
// returns a router over its operations.
func (s *stack) openAPIRouter() (routers.Router, error) {
	contract.once.Do(func() { contract.router, contract.err = loadContract(s.srv.URL + "/openapi.json") })
	return contract.router, contract.err
}

func loadContract(url string) (routers.Router, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("get /openapi.json: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get /openapi.json: status %d: %w", resp.StatusCode, err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load /openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("/openapi.json is not a valid OpenAPI document: %w", err)
	}
	doc.Servers = nil // each stack listens elsewhere: route by path alone
	closeResponseObjects(doc)
	return legacy.NewRouter(doc)
}

// closeResponseObjects makes every response object schema that names its
// properties and says nothing of others refuse other properties.
func closeResponseObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					closeObjects(mt.Schema, seen)
				}
			}
		}
	}
}

func closeObjects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	sc := ref.Value
	seen[sc] = true
	if len(sc.Properties) > 0 && sc.AdditionalProperties.Has == nil && sc.AdditionalProperties.Schema == nil {
		closed := false
		sc.AdditionalProperties.Has = &closed
	}
	for _, p := range sc.Properties {
		closeObjects(p, seen)
	}
	closeObjects(sc.Items, seen)
	closeObjects(sc.AdditionalProperties.Schema, seen)
	for _, sub := range append(append(append(openapi3.SchemaRefs{}, sc.AllOf...), sc.AnyOf...), sc.OneOf...) {
		closeObjects(sub, seen)
	}
}

func isUndocumented(path string) bool {
	for _, p := range undocumented {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// checkContract fails the test when the response to req (status, headers
// and body) does not conform to the served OpenAPI document.
func (s *stack) checkContract(req *http.Request, status int, header http.Header, body []byte) {
	s.t.Helper()
	if err := s.contractError(req, status, header, body); err != nil {
		s.t.Errorf("OpenAPI contract: %s %s → %d: %v\nbody: %.2000s", req.Method, req.URL.Path, status, err, body)
	}
}

func (s *stack) contractError(req *http.Request, status int, header http.Header, body []byte) error {
	if isUndocumented(req.URL.Path) {
		return nil
	}
	router, err := s.openAPIRouter()
	if err != nil {
		return err
	}
	// Route by the path as sent: an escaped slash stays in its segment.
	routed := req.Clone(req.Context())
	routed.URL.Path, routed.URL.RawPath = req.URL.EscapedPath(), ""
	route, params, err := router.FindRoute(routed)
	switch {
	case isRouteError(err, routers.ErrPathNotFound) && status == http.StatusNotFound,
		isRouteError(err, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed:
		return nil // the document has no such operation, and the API says so
	case err != nil:
		return fmt.Errorf("not in the document (list it in undocumented if it is meant to be left out): %w", err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()}},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// isRouteError reports whether err is the router's error like target.
func isRouteError(err, target error) bool {
	var re *routers.RouteError
	return errors.As(err, &re) && re.Error() == target.Error()
}

// readChecked reads resp's body and checks the response against the
// document, for the tests that send requests without s.do.
func (s *stack) readChecked(req *http.Request, resp *http.Response) []byte {
	s.t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.checkContract(req, resp.StatusCode, resp.Header, b)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// TestContractCatchesDrift: the checker refuses what the document does not
// declare (a status, a field, a null, a wrong type, an unknown operation)
// and accepts the API's real answers.
func TestContractCatchesDrift(t *testing.T) {
	s := newStack(t, false)
	get := func(path string) *http.Request {
		req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
		return req
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	health := `{"status":"healthy","version":"x","timestamp":"2026-01-01T00:00:00Z","database":"connected","redis":"connected","ml_models_loaded":false,"workers":0,"sandbox":[]}`
	status := `{"attack_id":"atk_1","status":"queued","progress_percentage":0,"current_stage":"queued","started_at":null,"updated_at":"2026-01-01T00:00:00Z","result_available_at":null,"error":null}`
	for _, c := range []struct {
		name   string
		req    *http.Request
		status int
		body   string
		ok     bool
	}{
		{"real health", get("/health"), 200, health, true},
		{"nulls the document allows", get("/v1/attacks/atk_1/status"), 200, status, true},
		{"undeclared status", get("/health"), 418, health, false},
		{"undeclared field", get("/health"), 200, strings.Replace(health, `"workers":0`, `"workers":0,"extra":1`, 1), false},
		{"wrong type", get("/health"), 200, strings.Replace(health, `"workers":0`, `"workers":"none"`, 1), false},
		{"not a date-time", get("/health"), 200, strings.Replace(health, `"2026-01-01T00:00:00Z"`, `"yesterday"`, 1), false},
		{"null where not nullable", get("/v1/attacks/atk_1/status"), 200, strings.Replace(status, `"updated_at":"2026-01-01T00:00:00Z"`, `"updated_at":null`, 1), false},
		{"error in another surface's shape", get("/v1/models/mdl_1"), 404, `{"error":"Job not found"}`, false},
		{"unknown operation answered", get("/v1/nothing"), 200, `{}`, false},
		{"unknown operation refused", get("/v1/nothing"), 404, `{"code":"not_found","message":"Not Found","details":{}}`, true},
		{"left out on purpose", get("/monitoring/api/queues"), 200, `[]`, true},
	} {
		err := s.contractError(c.req, c.status, jsonHeader, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
