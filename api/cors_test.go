package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wardenlab/warden/config"
)

// TestCORS: origins of WARDEN_CORS_ORIGINS get preflights answered with the
// methods and headers the API reads, CORS headers on answers (errors too),
// and may change state from a browser; other origins get no CORS headers
// and no state changes; without the setting there are no CORS headers.
func TestCORS(t *testing.T) {
	const app, evil = "https://app.example", "https://evil.example"
	h := newAPIHarness(t, func(c *config.Config) { c.CORSOrigins = []string{app} })
	a := h.org("acme")
	preflight := func(origin string) apiResponse {
		return h.do("OPTIONS", "/v1/diagnostics/probe", nil, withHeader("Origin", origin),
			withHeader("Access-Control-Request-Method", "POST"), withHeader("Access-Control-Request-Headers", "authorization,content-type,org-id,x-api-key"))
	}
	r := preflight(app)
	if r.Code != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("preflight from %s: %d %v", app, r.Code, r.Header)
	}
	for _, want := range []string{"Authorization", "x-api-key", "Org-Id", "Content-Type"} {
		if !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), strings.ToLower(want)) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", r.Header.Get("Access-Control-Allow-Headers"), want)
		}
	}
	for _, want := range []string{"GET", "POST", "DELETE"} {
		if !strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), want) {
			t.Errorf("Access-Control-Allow-Methods %q lacks %s", r.Header.Get("Access-Control-Allow-Methods"), want)
		}
	}
	if r.Header.Get("Access-Control-Max-Age") == "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight headers %v", r.Header)
	}
	if r := preflight(evil); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s allowed: %v", evil, r.Header)
	}
	// The page on the allowed origin calls the API.
	r = h.do("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`), withContentType("application/json"), as(a),
		withHeader("Origin", app), withHeader("Sec-Fetch-Site", "cross-site"))
	if r.Code != http.StatusAccepted || r.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("POST from %s: %d %v %s", app, r.Code, r.Header, r.Raw)
	}
	r = h.do("GET", "/v1/credentials", nil, withHeader("Origin", app))
	if r.Code != http.StatusUnauthorized || r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("401 to %s without CORS headers: %d %v", app, r.Code, r.Header)
	}
	// Another site: no CORS headers, no state change.
	r = h.do("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`), withContentType("application/json"), as(a), withHeader("Origin", evil))
	assertSandboxError(t, "POST from "+evil, r, http.StatusForbidden, "forbidden")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers for %s: %v", evil, r.Header)
	}

	plain := newAPIHarness(t)
	if r := plain.do("GET", "/health", nil, withHeader("Origin", app)); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without WARDEN_CORS_ORIGINS: %v", r.Header)
	}
	if r := plain.do("POST", "/api/verify-url", strings.NewReader(`{"url":"http://127.0.0.1:9/a.png"}`), withContentType("application/json"), withHeader("Origin", app)); r.Code != http.StatusForbidden {
		t.Errorf("POST from %s without WARDEN_CORS_ORIGINS: %d %s", app, r.Code, r.Raw)
	}
}
