package api_test

import (
	"context"
	"net/http"
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

// TestJSONRoutesRequireJSONContentType: a state-changing JSON route refuses
// bodies a cross-site page could make a visitor's browser send without a
// preflight (text/plain, a form, no type) with 415 in its surface's error
// shape, and creates nothing; application/json with parameters and +json
// types are accepted.
func TestJSONRoutesRequireJSONContentType(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonp", "bogus/;;"} {
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
		if r.Code != http.StatusAccepted && r.Code != http.StatusOK {
			t.Errorf("probe as %q: %d %s", ct, r.Code, r.Raw)
		}
	}
}
