package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// servedOpenAPI loads the document the server serves at /openapi.json.
func servedOpenAPI(t *testing.T, h *apiHarness) *openapi3.T {
	t.Helper()
	r := h.do("GET", "/openapi.json", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("/openapi.json: %d", r.Code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.Raw)
	if err != nil {
		t.Fatalf("load /openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentValid: the served document is a valid OpenAPI 3
// document (every schema well formed, every $ref resolved).
func TestOpenAPIDocumentValid(t *testing.T) {
	doc := servedOpenAPI(t, newAPIHarness(t))
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not valid OpenAPI: %v", err)
	}
	if doc.Paths.Len() < 20 {
		t.Errorf("only %d paths documented", doc.Paths.Len())
	}
}

// TestOpenAPIDeclaresErrors: every operation that takes credentials
// declares the 401 and 403 it answers without them, every operation with a
// path parameter its 404, and every operation its 429 with Retry-After.
func TestOpenAPIDeclaresErrors(t *testing.T) {
	doc := servedOpenAPI(t, newAPIHarness(t))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.Security != nil && len(*op.Security) > 0 && strings.HasPrefix(path, "/v1/") && path != "/v1/auth/token" {
				for _, code := range []int{401, 403} {
					if op.Responses.Status(code) == nil {
						t.Errorf("%s: no %d", name, code)
					}
				}
			}
			if strings.Contains(path, "{") && op.Responses.Status(404) == nil {
				t.Errorf("%s: no 404", name)
			}
			if strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/api/") {
				r := op.Responses.Status(429)
				if r == nil || r.Value.Headers["Retry-After"] == nil {
					t.Errorf("%s: no 429 with Retry-After", name)
				}
			}
		}
	}
}
