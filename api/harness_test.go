package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// apiHarness is one API server over a private PostgreSQL database and a
// private Redis database (or a private redis-server), served through
// httptest against Handler(). No worker runs: submitted jobs stay queued.
type apiHarness struct {
	t       *testing.T
	cfg     config.Config
	db      *storage.DB
	blobDir string
	blobs   storage.BlobStore
	redis   asynq.RedisConnOpt
	jobs    *queue.Service
	srv     *api.Server
	handler http.Handler
}

// newAPIHarness builds an API server on testenv.Services.
func newAPIHarness(t *testing.T, opts ...func(*config.Config)) *apiHarness {
	t.Helper()
	return newAPIHarnessBlobs(t, nil, opts...)
}

// newAPIHarnessBlobs builds an API server whose blob store is wrap applied
// to the harness's own (nil: that store as it is).
func newAPIHarnessBlobs(t *testing.T, wrap func(storage.BlobStore) storage.BlobStore, opts ...func(*config.Config)) *apiHarness {
	t.Helper()
	sv := testenv.NewServices(t, opts...)
	h := &apiHarness{t: t, cfg: sv.Config, db: sv.DB, blobDir: sv.Config.BlobDir, blobs: sv.Blobs, redis: sv.Redis, jobs: sv.Jobs}
	h.jobs.SetEvents(api.Events{PublicURL: "http://warden.test"}) // as cmd/warden wires it
	var blobs storage.BlobStore = sv.Blobs
	if wrap != nil {
		blobs = wrap(blobs)
	}
	deps := api.Deps{Config: sv.Config, DB: sv.DB, Blobs: blobs, Redis: sv.Redis, Jobs: sv.Jobs, Workers: sv.Jobs,
		Webhooks: sv.Jobs, Outbound: sv.Outbound, Metrics: dashboards.NewMetrics()}
	var err error
	if h.srv, err = api.New(deps); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.srv.Close)
	h.handler = h.srv.Handler()
	return h
}

// org creates an org with an admin API key.
func (h *apiHarness) org(name string) storage.NewOrgCredentials { return testenv.Org(h.t, h.db, name) }

// reqOption adjusts a request before it is served.
type reqOption func(*http.Request)

// as authenticates a request with an org's API key.
func as(c storage.NewOrgCredentials) reqOption {
	return func(r *http.Request) {
		r.Header.Set("x-api-key", c.APIKey)
		r.Header.Set("Org-Id", c.OrgID)
	}
}

// withContentType sets the request's Content-Type.
func withContentType(ct string) reqOption {
	return func(r *http.Request) { r.Header.Set("Content-Type", ct) }
}

// withHeader sets a request header.
func withHeader(name, value string) reqOption {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// withContentLength overrides the declared Content-Length (-1: unknown,
// as for a chunked body).
func withContentLength(n int64) reqOption {
	return func(r *http.Request) { r.ContentLength = n }
}

// fromIP sets the client address the request comes from.
func fromIP(ip string) reqOption {
	return func(r *http.Request) { r.RemoteAddr = ip + ":40000" }
}

// apiResponse is a served response with its JSON body decoded.
type apiResponse struct {
	Code   int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// do serves one request through the server's handler.
func (h *apiHarness) do(method, path string, body io.Reader, opts ...reqOption) apiResponse {
	h.t.Helper()
	req := httptest.NewRequest(method, path, body)
	for _, o := range opts {
		o(req)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	res := apiResponse{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.Bytes()}
	if len(res.Raw) > 0 && res.Raw[0] == '{' {
		if err := json.Unmarshal(res.Raw, &res.Body); err != nil {
			h.t.Fatalf("%s %s: bad JSON %q: %v", method, path, res.Raw, err)
		}
	}
	return res
}

// postJSON posts a JSON document given as text.
func (h *apiHarness) postJSON(path, doc string, opts ...reqOption) apiResponse {
	h.t.Helper()
	return h.do("POST", path, bytes.NewBufferString(doc), append([]reqOption{withContentType("application/json")}, opts...)...)
}

// upload posts data as the multipart field "file" to /api/verify.
func (h *apiHarness) upload(filename string, data []byte, opts ...reqOption) apiResponse {
	h.t.Helper()
	body, ct := multipartFile(h.t, filename, data)
	return h.do("POST", "/api/verify", body, append([]reqOption{withContentType(ct)}, opts...)...)
}

// multipartFile builds a multipart body with one "file" field.
func multipartFile(t *testing.T, filename string, data []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// multipartFields builds a multipart body of text fields.
func multipartFields(t *testing.T, fields map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range keys(toAny(fields)) {
		if err := w.WriteField(k, fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pngBytes encodes a small valid PNG.
func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			img.Set(x, y, color.RGBA{R: uint8(x * 16), G: uint8(y * 16), B: 128, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jobCount counts rows in jobs.
func (h *apiHarness) jobCount() int64 {
	h.t.Helper()
	var n int64
	if err := h.db.Gorm().Model(&records.Job{}).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// blobRowCount counts rows in blobs.
func (h *apiHarness) blobRowCount() int64 {
	h.t.Helper()
	var n int64
	if err := h.db.Gorm().Model(&records.Blob{}).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// job loads a job row straight from the database; ok is false when absent.
func (h *apiHarness) job(id string) (records.Job, bool) {
	h.t.Helper()
	var js []records.Job
	if err := h.db.Gorm().Where("id = ?", id).Find(&js).Error; err != nil {
		h.t.Fatal(err)
	}
	if len(js) == 0 {
		return records.Job{}, false
	}
	return js[0], true
}

// blobFiles lists the regular files under the blob root (relative paths).
func (h *apiHarness) blobFiles() []string {
	h.t.Helper()
	var out []string
	err := filepath.WalkDir(h.blobDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(h.blobDir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// submitAttack writes a queued attack job of org straight through the job
// service (launching one through the API needs an active model).
func (h *apiHarness) submitAttack(orgID string) records.Job {
	h.t.Helper()
	sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: "mdl_test", AttackMethodID: "fgsm",
		Params: map[string]any{"epsilon": 0.1}, Inputs: []json.RawMessage{json.RawMessage(`[0.1,0.2]`)}})
	if err != nil {
		h.t.Fatal(err)
	}
	sub.OrgID = orgID
	j, err := h.jobs.Submit(context.Background(), sub)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// keys returns a map's keys, sorted.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// assertSandboxError checks spec 002's error shape: exactly code, message
// and details (an object), with the given status and code.
func assertSandboxError(t *testing.T, what string, r apiResponse, status int, code string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Code, status, r.Raw)
	}
	if r.Body == nil {
		t.Fatalf("%s: body is not a JSON object: %q", what, r.Raw)
	}
	if got := keys(r.Body); len(got) != 3 || got[0] != "code" || got[1] != "details" || got[2] != "message" {
		t.Fatalf("%s: keys %v, want [code details message]; body %s", what, got, r.Raw)
	}
	if r.Body["code"] != code {
		t.Fatalf("%s: code %v, want %q; body %s", what, r.Body["code"], code, r.Raw)
	}
	if m, _ := r.Body["message"].(string); m == "" {
		t.Fatalf("%s: empty message; body %s", what, r.Raw)
	}
	if _, ok := r.Body["details"].(map[string]any); !ok {
		t.Fatalf("%s: details is not an object; body %s", what, r.Raw)
	}
}

// assertVerifyError checks spec 003's error shape: error (non-empty), and
// optionally detail and job_id, nothing else; with the given status, and
// job_id equal to jobID ("" when the body must have none).
func assertVerifyError(t *testing.T, what string, r apiResponse, status int, jobID string) {
	t.Helper()
	if r.Code != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Code, status, r.Raw)
	}
	if r.Body == nil {
		t.Fatalf("%s: body is not a JSON object: %q", what, r.Raw)
	}
	for _, k := range keys(r.Body) {
		if k != "error" && k != "detail" && k != "job_id" {
			t.Fatalf("%s: unexpected key %q in the verification error shape; body %s", what, k, r.Raw)
		}
	}
	if e, _ := r.Body["error"].(string); e == "" {
		t.Fatalf("%s: empty or missing error; body %s", what, r.Raw)
	}
	got, has := r.Body["job_id"]
	switch {
	case jobID == "" && has:
		t.Fatalf("%s: unexpected job_id %v; body %s", what, got, r.Raw)
	case jobID != "" && got != jobID:
		t.Fatalf("%s: job_id %v, want %q; body %s", what, got, jobID, r.Raw)
	}
}
