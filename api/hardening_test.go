package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestIPv6RateBucketsPerSlash64: addresses of one IPv6 /64 share a budget
// (a subscriber holds the whole /64); another /64 has its own.
func TestIPv6RateBucketsPerSlash64(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.RateGeneral = 1 })
	get := func(ip string) int { return h.do("GET", "/api/verify/"+uuid.NewString(), nil, fromIP(ip)).Code }
	if code := get("[2001:db8:1:2::1]"); code != http.StatusNotFound {
		t.Fatalf("first request: %d", code)
	}
	if code := get("[2001:db8:1:2:ffff::7]"); code != http.StatusTooManyRequests {
		t.Errorf("same /64, other address: %d, want 429", code)
	}
	if code := get("[2001:db8:1:3::1]"); code != http.StatusNotFound {
		t.Errorf("another /64: %d, want its own budget", code)
	}
}

// TestVerificationHonoursRoles: anonymous callers may verify (spec 003),
// but a caller with a viewer credential may neither submit nor delete.
func TestVerificationHonoursRoles(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	_, viewerKey, err := h.db.CreateCredential(context.Background(), a.OrgID, records.CredentialAPIKey, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	viewer := storage.NewOrgCredentials{OrgID: a.OrgID, APIKey: viewerKey}
	png := pngBytes(t)
	if r := h.upload("photo.png", png, as(viewer)); r.Code != http.StatusForbidden {
		t.Errorf("viewer upload: %d %s", r.Code, r.Raw)
	}
	if r := h.postJSON("/api/verify-url", `{"url":"http://127.0.0.1:1/x.png"}`, as(viewer)); r.Code != http.StatusForbidden {
		t.Errorf("viewer verify-url: %d %s", r.Code, r.Raw)
	}
	r := h.upload("photo.png", png, as(a))
	if r.Code != http.StatusOK {
		t.Fatalf("admin upload: %d %s", r.Code, r.Raw)
	}
	id := r.Body["job_id"].(string)
	if r := h.do("GET", "/api/verify/"+id, nil, as(viewer)); r.Code != http.StatusOK {
		t.Errorf("viewer read: %d %s", r.Code, r.Raw)
	}
	if r := h.do("DELETE", "/api/verify/"+id, nil, as(viewer)); r.Code != http.StatusForbidden {
		t.Errorf("viewer delete: %d %s", r.Code, r.Raw)
	}
	if _, ok := h.job(id); !ok {
		t.Fatal("the job is gone after a refused delete")
	}
	if r := h.upload("photo.png", png); r.Code != http.StatusOK {
		t.Errorf("anonymous upload: %d %s", r.Code, r.Raw)
	}
	if r := h.do("DELETE", "/api/verify/"+id, nil, as(a)); r.Code != http.StatusOK {
		t.Errorf("admin delete: %d %s", r.Code, r.Raw)
	}
}

// TestCredentialCap: an org has at most storage.MaxCredentialsPerOrg
// active credentials; revoking one makes room.
func TestCredentialCap(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme") // starts with an admin API key and an admin client
	var last string
	for i := 2; i < storage.MaxCredentialsPerOrg; i++ {
		r := h.postJSON("/v1/credentials", `{"kind":"api_key","role":"viewer"}`, as(a))
		if r.Code != http.StatusCreated {
			t.Fatalf("credential %d: %d %s", i, r.Code, r.Raw)
		}
		last = r.Body["id"].(string)
	}
	r := h.postJSON("/v1/credentials", `{"kind":"api_key","role":"viewer"}`, as(a))
	assertSandboxError(t, "credential over the cap", r, http.StatusConflict, "conflict")
	if r := h.do("DELETE", "/v1/credentials/"+last, nil, as(a)); r.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Code, r.Raw)
	}
	if r := h.postJSON("/v1/credentials", `{"kind":"oauth_client","role":"developer"}`, as(a)); r.Code != http.StatusCreated {
		t.Errorf("after a revocation: %d %s", r.Code, r.Raw)
	}
}

// TestJSONRoutesRequireJSONContentType: a state-changing route reads JSON
// (application/json with parameters, +json types) and forms
// (urlencoded, multipart); any other body type (text/plain, none, a
// malformed type) is refused with 415 in the surface's error shape, and a
// request a browser marks as cross-site is refused with 403 whatever its
// type. Refused requests create nothing.
func TestJSONRoutesRequireJSONContentType(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "", "application/jsonp", "bogus/;;", "application/xml"} {
		jobs := h.jobCount()
		r := h.do("POST", "/api/verify-url", strings.NewReader(`{"url":"http://127.0.0.1:9/a.jpg"}`), withContentType(ct))
		assertVerifyError(t, "verify-url as "+ct, r, http.StatusUnsupportedMediaType, "")
		r = h.do("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`), withContentType(ct), as(a))
		assertSandboxError(t, "probe as "+ct, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
		r = h.do("POST", "/v1/credentials", strings.NewReader(`{"kind":"api_key","role":"viewer"}`), withContentType(ct), as(a))
		assertSandboxError(t, "credentials as "+ct, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
		if n := h.jobCount(); n != jobs {
			t.Errorf("%q: %d jobs created by refused requests", ct, n-jobs)
		}
	}
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON", "application/vnd.warden+json"} {
		r := h.do("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`), withContentType(ct), as(a))
		if r.Code != http.StatusAccepted {
			t.Errorf("probe as %q: %d %s", ct, r.Code, r.Raw)
		}
	}
	// Forms name the JSON keys; numbers are read from their text.
	r := h.do("POST", "/v1/diagnostics/probe", strings.NewReader("hold_ms=0"), withContentType("application/x-www-form-urlencoded"), as(a))
	if r.Code != http.StatusAccepted {
		t.Errorf("probe as a form: %d %s", r.Code, r.Raw)
	}
	body, ct := multipartFields(t, map[string]string{"kind": "api_key", "role": "viewer"})
	r = h.do("POST", "/v1/credentials", body, withContentType(ct), as(a))
	if r.Code != http.StatusCreated || r.Body["role"] != "viewer" {
		t.Errorf("credentials as multipart: %d %s", r.Code, r.Raw)
	}
	png := pngBytes(t)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(png) }))
	defer files.Close()
	r = h.do("POST", "/api/verify-url", strings.NewReader(url.Values{"url": {files.URL + "/a.png"}}.Encode()), withContentType("application/x-www-form-urlencoded"))
	if r.Code != http.StatusOK || r.Body["job_id"] == nil {
		t.Errorf("verify-url as a form: %d %s", r.Code, r.Raw)
	}
	// The same bodies from another site's page in a visitor's browser.
	for _, cross := range []reqOption{withHeader("Origin", "https://evil.example"), withHeader("Origin", "null"),
		withHeader("Sec-Fetch-Site", "cross-site"), withHeader("Sec-Fetch-Site", "same-site")} {
		jobs := h.jobCount()
		r := h.do("POST", "/api/verify-url", strings.NewReader("url=http%3A%2F%2F127.0.0.1%3A9%2Fa.jpg"), withContentType("application/x-www-form-urlencoded"), cross)
		assertVerifyError(t, "cross-site verify-url", r, http.StatusForbidden, "")
		r = h.do("POST", "/v1/diagnostics/probe", strings.NewReader("hold_ms=0"), withContentType("text/plain"), as(a), cross)
		assertSandboxError(t, "cross-site probe", r, http.StatusForbidden, "forbidden")
		r = h.do("DELETE", "/api/verify/"+uuid.NewString(), nil, cross)
		assertVerifyError(t, "cross-site delete", r, http.StatusForbidden, "")
		if n := h.jobCount(); n != jobs {
			t.Errorf("%d jobs created by cross-site requests", n-jobs)
		}
	}
	// The API's own origin, a same-origin fetch, and reads stay open.
	for _, own := range []reqOption{withHeader("Origin", h.cfg.PublicURL), withHeader("Sec-Fetch-Site", "same-origin"), withHeader("Sec-Fetch-Site", "none")} {
		r := h.do("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`), withContentType("application/json"), as(a), own)
		if r.Code != http.StatusAccepted {
			t.Errorf("same-origin probe: %d %s", r.Code, r.Raw)
		}
	}
	if r := h.do("GET", "/v1/credentials", nil, as(a), withHeader("Origin", "https://evil.example"), withHeader("Sec-Fetch-Site", "cross-site")); r.Code != http.StatusOK {
		t.Errorf("cross-site read: %d %s", r.Code, r.Raw)
	}
}
