package api_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// withQuota sets the per-org caps of a harness.
func withQuota(jobs, bytes int64) func(*config.Config) {
	return func(c *config.Config) { c.OrgMaxActiveJobs, c.OrgMaxStoredBytes = jobs, bytes }
}

// probe posts a probe job as org c.
func (h *apiHarness) probe(c storage.NewOrgCredentials) apiResponse {
	h.t.Helper()
	return h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(c))
}

// accepted fails unless r is the 202 of a probe and answers its job id.
func accepted(t *testing.T, what string, r apiResponse) string {
	t.Helper()
	if r.Code != http.StatusAccepted {
		t.Fatalf("%s: status %d, want 202; body %s", what, r.Code, r.Raw)
	}
	return r.Body["job_id"].(string)
}

// assertJobQuota checks a 429 job_quota_exceeded in spec 002's shape with
// the count, the cap and Retry-After.
func assertJobQuota(t *testing.T, what string, r apiResponse, active, max int) {
	t.Helper()
	assertSandboxError(t, what, r, http.StatusTooManyRequests, "job_quota_exceeded")
	d := r.Body["details"].(map[string]any)
	if d["active_jobs"] != strconv.Itoa(active) || d["max_active_jobs"] != strconv.Itoa(max) || d["retry_after_seconds"] != "30" {
		t.Errorf("%s: details %v, want active_jobs %d, max_active_jobs %d, retry_after_seconds 30", what, d, active, max)
	}
	if m := r.Body["message"].(string); !strings.Contains(m, strconv.Itoa(active)) || !strings.Contains(m, strconv.Itoa(max)) {
		t.Errorf("%s: message %q names neither the count nor the cap", what, m)
	}
	if ra := r.Header.Get("Retry-After"); ra != "30" {
		t.Errorf("%s: Retry-After %q, want 30", what, ra)
	}
}

// TestOrgJobQuota: at the cap, a probe (/v1) and an upload (/api/verify)
// are refused with 429 in their surface's shape, with Retry-After, storing
// nothing; a cancelled, completed or deleted job frees a slot; another
// org and anonymous callers are not limited.
func TestOrgJobQuota(t *testing.T) {
	h := newAPIHarness(t, withQuota(3, 0))
	a, b := h.org("org-a"), h.org("org-b")
	atk := h.submitAttack(a.OrgID)
	probe := accepted(t, "probe 2", h.probe(a))
	verify := h.submitVerify(as(a))

	jobs, files := h.jobCount(), h.blobFiles()
	assertJobQuota(t, "probe over the cap", h.probe(a), 3, 3)
	r := h.upload("photo.png", pngBytes(t), as(a))
	assertVerifyError(t, "upload over the cap", r, http.StatusTooManyRequests, "")
	if e := r.Body["error"].(string); !strings.Contains(e, "3 queued or running jobs") || !strings.Contains(e, "at most 3") {
		t.Errorf("upload over the cap: error %q names neither the count nor the cap", e)
	}
	if d, _ := r.Body["detail"].(string); !strings.Contains(d, "active_jobs: 3") || !strings.Contains(d, "max_active_jobs: 3") {
		t.Errorf("upload over the cap: detail %q", d)
	}
	if ra := r.Header.Get("Retry-After"); ra != "30" {
		t.Errorf("upload over the cap: Retry-After %q, want 30", ra)
	}
	if n, f := h.jobCount(), h.blobFiles(); n != jobs || strings.Join(f, ",") != strings.Join(files, ",") {
		t.Fatalf("refused submissions left rows or files: %d jobs (was %d), files %v (was %v)", n, jobs, f, files)
	}

	// Cross-tenant and anonymous submissions are not counted against a.
	accepted(t, "other org", h.probe(b))
	h.submitVerify()

	// Each way a job ends frees a slot.
	if r := h.do("POST", "/v1/attacks/"+atk.ID+"/cancel", nil, as(a)); r.Code != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Code, r.Raw)
	}
	accepted(t, "after a cancel", h.probe(a))
	assertJobQuota(t, "full again", h.probe(a), 3, 3)
	ctx := context.Background()
	if _, ok, err := h.db.StartJob(ctx, probe); !ok || err != nil {
		t.Fatalf("start: %v %v", ok, err)
	}
	if done, err := h.db.CompleteJob(ctx, probe, storage.Completion{Result: records.Result{Data: "{}"}}); !done || err != nil {
		t.Fatalf("complete: %v %v", done, err)
	}
	accepted(t, "after a completion", h.probe(a))
	assertJobQuota(t, "full again", h.probe(a), 3, 3)
	if r := h.do("DELETE", "/api/verify/"+verify, nil, as(a)); r.Code != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	h.submitVerify(as(a))
	assertJobQuota(t, "full again", h.probe(a), 3, 3)
}

// TestOrgJobQuotaConcurrent: 20 probes of one org at once under a cap of
// 5: exactly 5 are accepted and 5 rows written; the others are 429 with
// Retry-After.
func TestOrgJobQuotaConcurrent(t *testing.T) {
	h := newAPIHarness(t, withQuota(5, 0))
	a := h.org("org-a")
	codes := make([]int, 20)
	retry := make([]string, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("POST", "/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`))
			req.Header.Set("Content-Type", "application/json")
			as(a)(req)
			rec := httptest.NewRecorder()
			<-start
			h.handler.ServeHTTP(rec, req)
			codes[i], retry[i] = rec.Code, rec.Header().Get("Retry-After")
		}()
	}
	close(start)
	wg.Wait()
	n := map[int]int{}
	for i, c := range codes {
		n[c]++
		if c == http.StatusTooManyRequests && retry[i] != "30" {
			t.Errorf("429 with Retry-After %q", retry[i])
		}
	}
	if n[http.StatusAccepted] != 5 || n[http.StatusTooManyRequests] != 15 {
		t.Fatalf("statuses %v, want 5 × 202 and 15 × 429", n)
	}
	if rows := h.jobCount(); rows != 5 {
		t.Fatalf("%d job rows, want 5", rows)
	}
}

// modelUpload posts a multipart model registration with a file of size bytes.
func (h *apiHarness) modelUpload(c storage.NewOrgCredentials, name string, size int) apiResponse {
	h.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("name", name)
	w.WriteField("type", "CV")
	w.WriteField("metadata", `{"input_shape":[1,8,8],"labels":["dark","bright"],"input_range":[0,1]}`)
	fw, _ := w.CreateFormFile("file", "model.pt")
	fw.Write(append([]byte("PK\x03\x04"), make([]byte, size-4)...))
	w.Close()
	return h.do("POST", "/v1/models", &buf, as(c), withContentType(w.FormDataContentType()))
}

// TestOrgStorageQuota: an upload (/api/verify, /api/verify-url, /v1/models)
// that would pass the org's byte cap is 413 in its surface's shape with the
// bytes stored, the cap and its size, and the file it streamed into the
// blob store is deleted; another org and anonymous callers are not limited.
func TestOrgStorageQuota(t *testing.T) {
	png := pngBytes(t)
	size := len(png)
	capBytes := size + size/2
	h := newAPIHarness(t, withQuota(0, int64(capBytes)))
	a, b := h.org("org-a"), h.org("org-b")
	h.submitVerify(as(a))
	jobs, files := h.jobCount(), h.blobFiles()
	unchanged := func(what string) {
		t.Helper()
		if n, f := h.jobCount(), h.blobFiles(); n != jobs || strings.Join(f, ",") != strings.Join(files, ",") {
			t.Fatalf("%s left rows or files: %d jobs (was %d), files %v (was %v)", what, n, jobs, f, files)
		}
		if n := h.blobRowCount(); n != 1 {
			t.Fatalf("%s: %d blob rows, want 1", what, n)
		}
	}
	want := []string{"stored_bytes: " + strconv.Itoa(size), "max_stored_bytes: " + strconv.Itoa(capBytes), "upload_bytes: " + strconv.Itoa(size)}

	r := h.upload("photo.png", png, as(a))
	assertVerifyError(t, "upload over the byte cap", r, http.StatusRequestEntityTooLarge, "")
	for _, w := range want {
		if d, _ := r.Body["detail"].(string); !strings.Contains(d, w) {
			t.Errorf("upload over the byte cap: detail %q lacks %q", d, w)
		}
	}
	if e := r.Body["error"].(string); !strings.Contains(e, strconv.Itoa(capBytes)) {
		t.Errorf("upload over the byte cap: error %q does not name the cap", e)
	}
	unchanged("a refused upload")

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(png) }))
	t.Cleanup(srv.Close)
	r = h.postJSON("/api/verify-url", `{"url":"`+srv.URL+`/photo.png"}`, as(a))
	assertVerifyError(t, "verify-url over the byte cap", r, http.StatusRequestEntityTooLarge, "")
	unchanged("a refused verify-url")

	r = h.modelUpload(a, "m", size)
	assertSandboxError(t, "model upload over the byte cap", r, http.StatusRequestEntityTooLarge, "storage_quota_exceeded")
	d := r.Body["details"].(map[string]any)
	if d["stored_bytes"] != strconv.Itoa(size) || d["max_stored_bytes"] != strconv.Itoa(capBytes) || d["upload_bytes"] != strconv.Itoa(size) {
		t.Errorf("model upload over the byte cap: details %v", d)
	}
	if r.Header.Get("Retry-After") != "" {
		t.Errorf("413 with Retry-After %q", r.Header.Get("Retry-After"))
	}
	var models int64
	h.db.Gorm().Model(&records.Model{}).Count(&models)
	if models != 0 {
		t.Errorf("%d model rows after a refused registration", models)
	}
	unchanged("a refused model upload")

	// Room left for a smaller file; other orgs and anonymous uploads are
	// not limited by a's bytes.
	if r := h.modelUpload(a, "small", size/2); r.Code != http.StatusCreated {
		t.Fatalf("model within the cap: %d %s", r.Code, r.Raw)
	}
	h.submitVerify(as(b))
	h.submitVerify()
}

// TestOrgQuotaZeroIsUnlimited: with both caps 0 an org submits past what
// the other tests refuse.
func TestOrgQuotaZeroIsUnlimited(t *testing.T) {
	h := newAPIHarness(t, withQuota(0, 0))
	a := h.org("org-a")
	for i := range 8 {
		accepted(t, "probe "+strconv.Itoa(i), h.probe(a))
		h.submitVerify(as(a))
	}
	if r := h.modelUpload(a, "m", 4096); r.Code != http.StatusCreated {
		t.Fatalf("model: %d %s", r.Code, r.Raw)
	}
}
