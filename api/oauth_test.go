package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenlab/warden/config"
)

// assertTokenError checks POST /v1/auth/token's error shape: RFC 6749's
// error and error_description with spec 002's code, message and details,
// nothing else.
func assertTokenError(t *testing.T, what string, r apiResponse, status int, oauthCode, code string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Code, status, r.Raw)
	}
	if got := strings.Join(keys(r.Body), ","); got != "code,details,error,error_description,message" {
		t.Fatalf("%s: keys %s; body %s", what, got, r.Raw)
	}
	if r.Body["error"] != oauthCode || r.Body["code"] != code {
		t.Fatalf("%s: error %v code %v, want %s %s; body %s", what, r.Body["error"], r.Body["code"], oauthCode, code, r.Raw)
	}
	if d, _ := r.Body["error_description"].(string); d == "" || d != r.Body["message"] {
		t.Fatalf("%s: error_description and message differ or are empty; body %s", what, r.Raw)
	}
	if _, ok := r.Body["details"].(map[string]any); !ok {
		t.Fatalf("%s: details is not an object; body %s", what, r.Raw)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q", what, r.Header.Get("Cache-Control"))
	}
}

// TestTokenJSONBody: the token endpoint takes the grant's parameters as a
// JSON object as well as a form, with Basic client authentication or in
// the body.
func TestTokenJSONBody(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	r := h.postJSON("/v1/auth/token", `{"grant_type":"client_credentials","client_id":"`+a.ClientID+`","client_secret":"`+a.ClientSecret+`","scope":"viewer"}`)
	if r.Code != http.StatusOK || r.Body["token_type"] != "Bearer" || r.Body["scope"] != "viewer" || r.Body["access_token"] == "" {
		t.Fatalf("JSON body: %d %s", r.Code, r.Raw)
	}
	if r := h.do("GET", "/v1/webhooks/deliveries", nil, withHeader("Authorization", "Bearer "+r.Body["access_token"].(string))); r.Code != http.StatusOK {
		t.Errorf("the token does not work: %d %s", r.Code, r.Raw)
	}
	basic := func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(a.ClientID), url.QueryEscape(a.ClientSecret)) }
	if r := h.postJSON("/v1/auth/token", `{"grant_type":"client_credentials","audience":{"ignored":true}}`, basic); r.Code != http.StatusOK {
		t.Errorf("JSON body with Basic: %d %s", r.Code, r.Raw)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.ClientID}, "client_secret": {a.ClientSecret}}
	if r := h.do("POST", "/v1/auth/token", strings.NewReader(form.Encode()), withContentType("application/x-www-form-urlencoded")); r.Code != http.StatusOK {
		t.Errorf("form body: %d %s", r.Code, r.Raw)
	}

	cases := []struct {
		name, ct, body  string
		opts            []reqOption
		status          int
		oauthCode, code string
	}{
		{"wrong secret", "application/json", `{"grant_type":"client_credentials","client_id":"` + a.ClientID + `","client_secret":"wrong"}`, nil, 401, "invalid_client", "unauthorized"},
		{"no client", "application/json", `{"grant_type":"client_credentials"}`, nil, 400, "invalid_request", "invalid"},
		{"number secret", "application/json", `{"grant_type":"client_credentials","client_id":"` + a.ClientID + `","client_secret":12}`, nil, 400, "invalid_request", "invalid"},
		{"array body", "application/json", `["client_credentials"]`, nil, 400, "invalid_request", "invalid"},
		{"null body", "application/json", `null`, nil, 400, "invalid_request", "invalid"},
		{"malformed JSON", "application/json", `{"grant_type":`, nil, 400, "invalid_request", "invalid"},
		{"password grant", "application/json", `{"grant_type":"password","username":"a","password":"b"}`, nil, 400, "unsupported_grant_type", "invalid"},
		{"unknown scope", "application/json", `{"grant_type":"client_credentials","client_id":"` + a.ClientID + `","client_secret":"` + a.ClientSecret + `","scope":"root"}`, nil, 400, "invalid_scope", "invalid"},
		{"text/plain", "text/plain", `grant_type=client_credentials`, nil, 400, "invalid_request", "invalid"},
		{"oversized", "application/json", `{"grant_type":"` + strings.Repeat("x", 9<<10) + `"}`, nil, 400, "invalid_request", "invalid"},
		{"cross-site", "application/x-www-form-urlencoded", form.Encode(), []reqOption{withHeader("Origin", "https://evil.example")}, 403, "forbidden", "forbidden"},
	}
	for _, tc := range cases {
		r := h.do("POST", "/v1/auth/token", strings.NewReader(tc.body), append([]reqOption{withContentType(tc.ct)}, tc.opts...)...)
		assertTokenError(t, tc.name, r, tc.status, tc.oauthCode, tc.code)
		if tc.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
}

// TestTokenRateLimitShape: the token endpoint's 429 has the same combined
// shape as its other errors, with Retry-After.
func TestTokenRateLimitShape(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.RateToken = 1 })
	var last apiResponse
	for i := 0; i < 3; i++ {
		last = h.postJSON("/v1/auth/token", `{"grant_type":"client_credentials","client_id":"wc_x","client_secret":"guess"}`)
		if last.Code == http.StatusTooManyRequests {
			break
		}
	}
	assertTokenError(t, "429", last, http.StatusTooManyRequests, "rate_limited", "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
