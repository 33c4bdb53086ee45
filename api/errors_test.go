package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/config"
)

// TestErrorShapePerSurface checks that each surface renders its errors in
// its own shape, for matched routes and for paths no route matches.
func TestErrorShapePerSurface(t *testing.T) {
	h := newAPIHarness(t)
	id := uuid.NewString()
	const (
		sandbox = "sandbox"
		verify  = "verify"
	)
	cases := []struct {
		name    string
		method  string
		path    string
		status  int
		shape   string
		code    string // sandbox: expected code
		jobID   string // verify: expected job_id ("" for none)
		message string // expected message / error text ("" to skip)
	}{
		{"v1 unknown route", "GET", "/v1/nope", 404, sandbox, "not_found", "", "Not Found"},
		{"v1 unknown nested route", "GET", "/v1/nope/deeper/still", 404, sandbox, "not_found", "", ""},
		// echo lets a trailing path parameter span slashes: this reaches
		// GET /api/verify/:job_id with job_id "<uuid>/extra", not a uuid.
		{"verify job id with extra segment", "GET", "/api/verify/" + id + "/extra", 404, verify, "", id + "/extra", "Job not found"},
		{"v1 prefix itself", "GET", "/v1", 404, sandbox, "not_found", "", ""},
		{"v1 matched route without credentials", "GET", "/v1/jobs/" + id, 401, sandbox, "unauthorized", "", "authentication required"},
		{"verify malformed job id", "GET", "/api/verify/not-a-uuid", 404, verify, "", "not-a-uuid", "Job not found"},
		{"verify unknown job id", "GET", "/api/verify/" + id, 404, verify, "", id, "Job not found"},
		{"verify delete malformed job id", "DELETE", "/api/verify/xyz", 404, verify, "", "xyz", "Job not found"},
		{"api unknown route", "GET", "/api/nope", 404, verify, "", "", "Not Found"},
		{"unknown root path", "GET", "/nope", 404, verify, "", "", "Not Found"},
		{"path only sharing the v1 letters", "GET", "/v1x/jobs", 404, verify, "", "", ""},
		{"health-adjacent path", "GET", "/health/nope", 404, verify, "", "", ""},
		{"metrics bad days", "GET", "/api/metrics?days=0", 400, verify, "", "", "days must be an integer between 1 and 3650"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, nil)
			what := tc.method + " " + tc.path
			switch tc.shape {
			case sandbox:
				assertSandboxError(t, what, r, tc.status, tc.code)
				if tc.message != "" && r.Body["message"] != tc.message {
					t.Errorf("%s: message %v, want %q", what, r.Body["message"], tc.message)
				}
			case verify:
				assertVerifyError(t, what, r, tc.status, tc.jobID)
				if tc.message != "" && r.Body["error"] != tc.message {
					t.Errorf("%s: error %v, want %q", what, r.Body["error"], tc.message)
				}
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type %q, want application/json", what, ct)
			}
		})
	}
}

// TestMethodNotAllowedKeepsStatus checks that echo's 405 stays a 405 on
// every surface, rendered in that surface's shape, with an Allow header.
func TestMethodNotAllowedKeepsStatus(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	id := uuid.NewString()
	cases := []struct {
		name    string
		method  string
		path    string
		sandbox bool
		allow   string // a method the Allow header must list
		auth    bool
	}{
		{"v1 PUT launch", "PUT", "/v1/attacks/launch", true, "POST", false},
		{"v1 PUT launch with credentials", "PUT", "/v1/attacks/launch", true, "POST", true},
		{"v1 DELETE probe", "DELETE", "/v1/diagnostics/probe", true, "POST", false},
		{"v1 POST job", "POST", "/v1/jobs/" + id, true, "GET", true},
		{"verify PATCH job", "PATCH", "/api/verify/" + id, false, "GET", false},
		{"verify GET upload", "GET", "/api/verify", false, "POST", false},
		{"verify DELETE metrics", "DELETE", "/api/metrics", false, "GET", false},
		{"platform POST health", "POST", "/health", false, "GET", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOption
			if tc.auth {
				opts = append(opts, as(a))
			}
			r := h.do(tc.method, tc.path, strings.NewReader("{}"), append(opts, withContentType("application/json"))...)
			what := tc.method + " " + tc.path
			if tc.sandbox {
				assertSandboxError(t, what, r, http.StatusMethodNotAllowed, "method_not_allowed")
			} else {
				assertVerifyError(t, what, r, http.StatusMethodNotAllowed, "")
				if r.Body["error"] != "Method Not Allowed" {
					t.Errorf("%s: error %v, want %q", what, r.Body["error"], "Method Not Allowed")
				}
			}
			if allow := r.Header.Get("Allow"); !strings.Contains(allow, tc.allow) {
				t.Errorf("%s: Allow %q, want it to list %s", what, allow, tc.allow)
			}
		})
	}
	if n := h.jobCount(); n != 0 {
		t.Errorf("405s stored %d jobs", n)
	}
}

// TestHeadErrorHasNoBody checks that a HEAD request's error keeps its
// status and has no body.
func TestHeadErrorHasNoBody(t *testing.T) {
	h := newAPIHarness(t)
	for _, path := range []string{"/v1/nope", "/api/verify/not-a-uuid", "/nope"} {
		r := h.do("HEAD", path, nil)
		if r.Code != http.StatusNotFound && r.Code != http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s: status %d, want 404 or 405", path, r.Code)
		}
		if len(r.Raw) != 0 {
			t.Errorf("HEAD %s: body %q, want none", path, r.Raw)
		}
	}
}

// TestRateLimitedShape exhausts a one-request-per-second budget on each
// surface: the next request is 429 in that surface's shape with
// Retry-After, and its work is not done.
func TestRateLimitedShape(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.RateGeneral = 1 })
	a := h.org("acme")
	id := uuid.NewString()
	// Each case comes from its own client IP: the general budget is one
	// per IP, shared by every route.
	cases := []struct {
		name    string
		send    func() apiResponse
		sandbox bool
	}{
		{"v1 probe", func() apiResponse {
			return h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a), fromIP("192.0.2.10"))
		}, true},
		{"verify get", func() apiResponse { return h.do("GET", "/api/verify/"+id, nil, fromIP("192.0.2.11")) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.send()
			if first.Code == http.StatusTooManyRequests {
				t.Fatalf("first request already limited: %s", first.Raw)
			}
			jobs := h.jobCount()
			r := tc.send()
			if tc.sandbox {
				assertSandboxError(t, tc.name, r, http.StatusTooManyRequests, "rate_limited")
				if d := r.Body["details"].(map[string]any); d["retry_after_seconds"] != "1" {
					t.Errorf("details %v, want retry_after_seconds 1", d)
				}
			} else {
				assertVerifyError(t, tc.name, r, http.StatusTooManyRequests, "")
				if r.Body["error"] != "Rate limit exceeded" || r.Body["detail"] != "retry_after_seconds: 1" {
					t.Errorf("body %s, want Rate limit exceeded with retry_after_seconds: 1", r.Raw)
				}
			}
			if ra := r.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After %q, want 1", ra)
			}
			if n := h.jobCount(); n != jobs {
				t.Errorf("a refused request changed the job rows: %d -> %d", jobs, n)
			}
		})
	}
}
