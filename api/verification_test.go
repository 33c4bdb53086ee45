package api_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// submitVerify uploads a PNG and returns the job id, failing unless the
// answer is 200 {job_id, status: pending}.
func (h *apiHarness) submitVerify(opts ...reqOption) string {
	h.t.Helper()
	r := h.upload("photo.png", pngBytes(h.t), opts...)
	if r.Code != http.StatusOK {
		h.t.Fatalf("POST /api/verify: status %d, want 200; body %s", r.Code, r.Raw)
	}
	id, _ := r.Body["job_id"].(string)
	if _, err := uuid.Parse(id); err != nil {
		h.t.Fatalf("POST /api/verify: job_id %q is not a UUID; body %s", id, r.Raw)
	}
	if r.Body["status"] != "pending" || len(r.Body) != 2 {
		h.t.Fatalf("POST /api/verify: body %s, want exactly {job_id, status: pending}", r.Raw)
	}
	return id
}

// TestVerifyAnonymity checks spec 003's visibility rules: an anonymous
// verification is visible to anyone holding its id (with or without
// credentials); an org's verification only to that org.
func TestVerifyAnonymity(t *testing.T) {
	h := newAPIHarness(t)
	a, b := h.org("org-a"), h.org("org-b")
	anonID := h.submitVerify()
	orgID := h.submitVerify(as(a))

	if j, ok := h.job(anonID); !ok || j.OrgID != nil || j.Kind != "verify_media" || j.Status != records.JobQueued {
		t.Fatalf("anonymous job row: found %v %+v, want a queued verify_media job without org", ok, j)
	}
	if j, ok := h.job(orgID); !ok || j.OrgID == nil || *j.OrgID != a.OrgID {
		t.Fatalf("org job row: found %v %+v, want org %s", ok, j, a.OrgID)
	}

	none := (*storage.NewOrgCredentials)(nil)
	bad := storage.NewOrgCredentials{OrgID: a.OrgID, APIKey: b.APIKey}
	cases := []struct {
		name   string
		method string
		path   string
		who    *storage.NewOrgCredentials
		status int
		jobID  string // the job the answer is about
	}{
		{"anonymous reads anonymous job", "GET", "/api/verify/" + anonID, none, 200, anonID},
		{"org A reads anonymous job", "GET", "/api/verify/" + anonID, &a, 200, anonID},
		{"org B reads anonymous job", "GET", "/api/verify/" + anonID, &b, 200, anonID},
		{"org A reads its job", "GET", "/api/verify/" + orgID, &a, 200, orgID},
		{"org B reads org A's job", "GET", "/api/verify/" + orgID, &b, 404, orgID},
		{"anonymous reads org A's job", "GET", "/api/verify/" + orgID, none, 404, orgID},
		{"org B deletes org A's job", "DELETE", "/api/verify/" + orgID, &b, 404, orgID},
		{"anonymous deletes org A's job", "DELETE", "/api/verify/" + orgID, none, 404, orgID},
		{"org A reads its job after failed deletes", "GET", "/api/verify/" + orgID, &a, 200, orgID},
		// Wrong credentials are refused even where anonymous use is allowed,
		// before the job is looked up (so the error names no job).
		{"wrong key on an anonymous job", "GET", "/api/verify/" + anonID, &bad, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOption
			if tc.who != nil {
				opts = append(opts, as(*tc.who))
			}
			r := h.do(tc.method, tc.path, nil, opts...)
			what := tc.method + " " + tc.path
			if tc.status != http.StatusOK {
				assertVerifyError(t, what, r, tc.status, tc.jobID)
				if tc.status == http.StatusNotFound && r.Body["error"] != "Job not found" {
					t.Errorf("%s: error %v, want %q", what, r.Body["error"], "Job not found")
				}
				return
			}
			if r.Code != http.StatusOK {
				t.Fatalf("%s: status %d, want 200; body %s", what, r.Code, r.Raw)
			}
			if r.Body["job_id"] != tc.jobID || r.Body["status"] != "pending" {
				t.Errorf("%s: body %s, want job %s pending", what, r.Raw, tc.jobID)
			}
			if rs, ok := r.Body["reasons"].([]any); !ok || len(rs) != 0 {
				t.Errorf("%s: reasons %v, want []", what, r.Body["reasons"])
			}
			if _, has := r.Body["label"]; has {
				t.Errorf("%s: a pending job has a label: %s", what, r.Raw)
			}
		})
	}
	for _, id := range []string{anonID, orgID} {
		if _, ok := h.job(id); !ok {
			t.Errorf("job %s vanished", id)
		}
	}
	// Anonymous verifications are a spec 003 rule only: /v1/jobs shows an
	// org its own jobs and nothing else.
	r := h.do("GET", "/v1/jobs/"+anonID, nil, as(a))
	assertSandboxError(t, "GET /v1/jobs/<anonymous id>", r, http.StatusNotFound, "not_found")
	r = h.do("GET", "/v1/jobs/"+orgID, nil, as(a))
	if r.Code != http.StatusOK || r.Body["kind"] != "verify_media" {
		t.Errorf("GET /v1/jobs/<org A verification> as A: %d %s, want 200 verify_media", r.Code, r.Raw)
	}
}

// TestVerifyDelete checks that DELETE /api/verify/{id} removes the job row,
// its blob rows and the stored file, for an anonymous job and for an org's.
func TestVerifyDelete(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("org-a")
	png := pngBytes(t)
	cases := []struct {
		name string
		who  []reqOption
	}{
		{"anonymous job", nil},
		{"org job", []reqOption{as(a)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := h.submitVerify(tc.who...)
			file := filepath.Join(h.blobDir, "jobs", id, "input")
			stored, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("stored upload: %v", err)
			}
			if !bytes.Equal(stored, png) {
				t.Fatalf("stored upload is %d bytes, differs from the %d uploaded", len(stored), len(png))
			}
			var blobs []records.Blob
			if err := h.db.Gorm().Where("job_id = ?", id).Find(&blobs).Error; err != nil {
				t.Fatal(err)
			}
			if len(blobs) != 1 || blobs[0].Key != "jobs/"+id+"/input" || blobs[0].ContentType != "image/png" || blobs[0].Size != int64(len(png)) {
				t.Fatalf("blob rows %+v, want one image/png of %d bytes at jobs/%s/input", blobs, len(png), id)
			}

			r := h.do("DELETE", "/api/verify/"+id, nil, tc.who...)
			if r.Code != http.StatusOK || r.Body["job_id"] != id || r.Body["deleted"] != true {
				t.Fatalf("DELETE: %d %s, want 200 {job_id, deleted: true}", r.Code, r.Raw)
			}
			if _, ok := h.job(id); ok {
				t.Error("job row still exists after DELETE")
			}
			var n int64
			if err := h.db.Gorm().Model(&records.Blob{}).Where("job_id = ?", id).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d blob rows left after DELETE", n)
			}
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("stored file after DELETE: %v, want it gone", err)
			}
			if ok, err := h.blobs.Exists(context.Background(), "jobs/"+id+"/input"); err != nil || ok {
				t.Errorf("blob store Exists after DELETE: %v %v, want false", ok, err)
			}
			assertVerifyError(t, "GET after DELETE", h.do("GET", "/api/verify/"+id, nil, tc.who...), http.StatusNotFound, id)
			assertVerifyError(t, "DELETE again", h.do("DELETE", "/api/verify/"+id, nil, tc.who...), http.StatusNotFound, id)
		})
	}
	if n := h.jobCount(); n != 0 {
		t.Errorf("%d job rows left", n)
	}
	if files := h.blobFiles(); len(files) != 0 {
		t.Errorf("blob files left: %v", files)
	}
}

// TestSubmissionSurvivesRedisOutage stops the server's Redis and submits:
// the job row is the system of record, so submissions still succeed and
// stay queued for the reconciler to enqueue later.
func TestSubmissionSurvivesRedisOutage(t *testing.T) {
	rs := testenv.StartRedisServer(t)
	h := newAPIHarness(t, func(c *config.Config) { c.RedisURL = rs.URL() })
	a := h.org("org-a")

	// Sanity: with Redis up, a probe is enqueued as an asynq task.
	r := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a))
	if r.Code != http.StatusAccepted {
		t.Fatalf("probe with Redis up: %d %s", r.Code, r.Raw)
	}
	up := r.Body["job_id"].(string)
	if info, err := h.jobs.TaskInfo("cpu", up); err != nil || info.ID != up {
		t.Fatalf("task of %s with Redis up: %v %v", up, info, err)
	}

	rs.Stop(t)
	cases := []struct {
		name string
		send func() apiResponse
		code int
		kind string
		org  *string
	}{
		{"probe", func() apiResponse { return h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a)) }, http.StatusAccepted, "probe", &a.OrgID},
		{"anonymous upload", func() apiResponse { return h.upload("photo.png", pngBytes(t)) }, http.StatusOK, "verify_media", nil},
		{"org upload", func() apiResponse { return h.upload("photo.png", pngBytes(t), as(a)) }, http.StatusOK, "verify_media", &a.OrgID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := tc.send()
			if r.Code != tc.code {
				t.Fatalf("with Redis down: status %d, want %d; body %s", r.Code, tc.code, r.Raw)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("submission with Redis down took %s", d)
			}
			id, _ := r.Body["job_id"].(string)
			j, ok := h.job(id)
			if !ok || j.Status != records.JobQueued || j.Kind != tc.kind {
				t.Fatalf("job row %q: found %v %+v, want a queued %s", id, ok, j, tc.kind)
			}
			if (tc.org == nil) != (j.OrgID == nil) || (tc.org != nil && *j.OrgID != *tc.org) {
				t.Errorf("job org %v, want %v", j.OrgID, tc.org)
			}
		})
	}
	// Reads come from the database too.
	r = h.do("GET", "/v1/jobs/"+up, nil, as(a))
	if r.Code != http.StatusOK || r.Body["status"] != records.JobQueued {
		t.Errorf("GET /v1/jobs with Redis down: %d %s, want 200 queued", r.Code, r.Raw)
	}
	// Health says Redis is down.
	r = h.do("GET", "/health", nil)
	if r.Code != http.StatusServiceUnavailable || r.Body["redis"] != "disconnected" || r.Body["database"] != "connected" {
		t.Errorf("GET /health with Redis down: %d %s, want 503 redis disconnected", r.Code, r.Raw)
	}
	if n := h.jobCount(); n != 4 {
		t.Errorf("%d job rows, want 4", n)
	}
}
