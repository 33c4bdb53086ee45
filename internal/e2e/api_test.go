package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

// assertVerifyError checks spec 003's error shape.
func assertVerifyError(t *testing.T, code int, m map[string]any, wantCode int) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d (%v)", code, wantCode, m)
	}
	if e, ok := m["error"].(string); !ok || e == "" {
		t.Fatalf("error shape: %v", m)
	}
	for k := range m {
		if k != "error" && k != "detail" && k != "job_id" {
			t.Errorf("unexpected key %q in error body %v", k, m)
		}
	}
}

// assertV1Error checks spec 002's error shape.
func assertV1Error(t *testing.T, code int, m map[string]any, wantCode int, wantField string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d (%v)", code, wantCode, m)
	}
	if m["code"] == nil || m["message"] == nil || m["details"] == nil {
		t.Fatalf("error shape: %v", m)
	}
	if wantField != "" {
		if _, ok := m["details"].(map[string]any)[wantField]; !ok {
			t.Errorf("details lack %q: %v", wantField, m)
		}
	}
}

// countRows counts jobs and blob files; a rejected request stores neither.
func (s *stack) stored() (jobs int64, files int) {
	s.db.Gorm().Model(&records.Job{}).Count(&jobs)
	filepath.Walk(s.cfg.BlobDir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files++
		}
		return nil
	})
	return jobs, files
}

func TestUploadRejections(t *testing.T) {
	s := newStack(t, false)
	jpeg := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	twoFiles := func() (*bytes.Buffer, string) {
		body, ct := multipartBody(t, "a.jpg", jpeg, nil)
		raw := body.String()
		// Insert a second file part before the closing boundary.
		boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
		second := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" + string(jpeg) + "\r\n"
		raw = strings.Replace(raw, "--"+boundary+"--", second+"--"+boundary+"--", 1)
		return bytes.NewBufferString(raw), ct
	}
	cases := []struct {
		name string
		body func() (*bytes.Buffer, string)
		want int
		msg  string
	}{
		{"json instead of multipart", func() (*bytes.Buffer, string) { return bytes.NewBufferString(`{"file":"x"}`), "application/json" }, 400, "multipart"},
		{"no file field", func() (*bytes.Buffer, string) { return multipartBody(t, "", nil, map[string]string{"other": "1"}) }, 400, "required"},
		{"empty file", func() (*bytes.Buffer, string) { return multipartBody(t, "e.jpg", []byte{}, nil) }, 400, "empty"},
		{"text named .jpg", func() (*bytes.Buffer, string) {
			return multipartBody(t, "evil.jpg", []byte("#!/bin/sh\nrm -rf /\n"), nil)
		}, 400, "Invalid file type"},
		{"pdf", func() (*bytes.Buffer, string) { return multipartBody(t, "x.png", []byte("%PDF-1.7\n1 0 obj\n"), nil) }, 400, "Invalid file type"},
		{"zip", func() (*bytes.Buffer, string) {
			return multipartBody(t, "x.png", []byte("PK\x03\x04\x14\x00\x00\x00"), nil)
		}, 400, "Invalid file type"},
		{"two files", twoFiles, 400, "exactly one"},
		{"truncated multipart", func() (*bytes.Buffer, string) {
			b, ct := multipartBody(t, "a.jpg", jpeg, nil)
			return bytes.NewBuffer(b.Bytes()[:b.Len()/2]), ct
		}, 400, "malformed"},
		{"callback without credentials", func() (*bytes.Buffer, string) {
			return multipartBody(t, "a.jpg", jpeg, map[string]string{"callback_url": "http://127.0.0.1:1/hook"})
		}, 400, "callback_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := c.body()
			code, m, _ := s.do("POST", "/api/verify", body, ct)
			assertVerifyError(t, code, m, c.want)
			if !strings.Contains(fmt.Sprint(m["error"], m["detail"]), c.msg) {
				t.Errorf("error %v does not mention %q", m, c.msg)
			}
			if jobs, files := s.stored(); jobs != 0 || files != 0 {
				t.Errorf("rejected upload left %d jobs and %d files", jobs, files)
			}
		})
	}
	// A NUL in a part header is malformed; a traversal name is only a label:
	// the blob always lives under its job id.
	body, ct := multipartBody(t, "../../../etc/passwd\x00.jpg", jpeg, nil)
	code, m, _ := s.do("POST", "/api/verify", body, ct)
	assertVerifyError(t, code, m, 400)
	code, m = s.upload("../../../etc/passwd.jpg", jpeg, nil)
	if code != 200 {
		t.Fatalf("upload with hostile name: %d %v", code, m)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BlobDir, "jobs", m["job_id"].(string), "input")); err != nil {
		t.Errorf("blob not under its job: %v", err)
	}
}

// zeroReader yields a JPEG header followed by n zero bytes, from a fixed
// buffer, so the client side allocates nothing in proportion to n.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// TestUpload413 sends 101 MB: once announced by Content-Length (refused
// before the body is read) and once chunked (refused while streaming, the
// body never buffered whole: the process allocates far less than the body).
func TestUpload413(t *testing.T) {
	s := newStack(t, false)
	const size = 101 << 20
	t.Run("content-length", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest("POST", s.srv.URL+"/api/verify", pr)
		req.ContentLength = size + 1000
		req.Header.Set("Content-Type", "multipart/form-data; boundary=xyz")
		go pw.Write([]byte("--xyz\r\n")) // the server answers without reading on
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		s.readChecked(req, resp)
		if resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			fmt.Fprintf(pw, "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
			pw.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0})
			_, err := io.CopyBuffer(pw, &zeroReader{n: size}, make([]byte, 64<<10))
			if err == nil {
				fmt.Fprintf(pw, "\r\n--xyz--\r\n")
			}
			pw.CloseWithError(err)
		}()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		req, _ := http.NewRequest("POST", s.srv.URL+"/api/verify", pr)
		req.Header.Set("Content-Type", "multipart/form-data; boundary=xyz")
		resp, err := http.DefaultClient.Do(req)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		b := s.readChecked(req, resp)
		if resp.StatusCode != 413 || !strings.Contains(string(b), "100MB") {
			t.Fatalf("status %d body %s", resp.StatusCode, b)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
			t.Errorf("handling a 101 MB upload allocated %d MB: the body is being buffered", alloc>>20)
		}
		if jobs, files := s.stored(); jobs != 0 || files != 0 {
			t.Errorf("oversized upload left %d jobs and %d files", jobs, files)
		}
	})
}

// TestVerifyURL covers the download path: success, SSRF refusals after
// resolution and on redirects, size cap, wrong type, bad input.
func TestVerifyURL(t *testing.T) {
	jpeg := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.jpg":
			w.Write(jpeg)
		case "/text":
			w.Write([]byte("just some text, not an image"))
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(101<<20))
			w.WriteHeader(200)
		case "/404":
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	private := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the private server was reached: %s", r.URL)
	}))
	defer private.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	defer redirector.Close()

	// Only the file server and the redirector are allowed; every other
	// address, loopback included, is refused.
	hostOf := func(u string) string { return strings.TrimPrefix(u, "http://") }
	s := newStack(t, true, func(c *config.Config) { c.VerifyURLAllow = hostOf(files.URL) + "," + hostOf(redirector.URL) })
	_, privPort, _ := net.SplitHostPort(hostOf(private.URL))

	code, m := s.postJSON("/api/verify-url", map[string]string{"url": files.URL + "/photo.jpg"})
	if code != 200 || m["status"] != "pending" {
		t.Fatalf("verify-url: %d %v", code, m)
	}
	if done := s.waitVerify(m["job_id"].(string)); done["status"] != "completed" {
		t.Fatalf("downloaded job: %v", done)
	}
	jobsBefore, filesBefore := s.stored()

	cases := []struct {
		name, url string
		want      int
		msg       string
	}{
		{"loopback", "http://127.0.0.1:" + privPort + "/x", 400, "loopback"},
		{"ipv6 loopback", "http://[::1]:" + privPort + "/x", 400, "refusing"},
		{"localhost name", "http://localhost:" + privPort + "/x", 400, "refusing"},
		{"metadata", "http://169.254.169.254/latest/meta-data/", 400, "refusing"},
		{"private", "http://10.0.0.1/x", 400, "refusing"},
		{"redirect to private", redirector.URL + "/?to=http://10.0.0.1/x", 400, "refusing"},
		{"redirect to loopback", redirector.URL + "/?to=" + private.URL + "/x", 400, "refusing"},
		{"ftp", "ftp://example.com/x.jpg", 400, "scheme"},
		{"file", "file:///etc/passwd", 400, "scheme"},
		{"not a url", "::::", 400, "Invalid URL"},
		{"too large", files.URL + "/big", 413, "100MB"},
		{"not an image", files.URL + "/text", 400, "Invalid file type"},
		{"404", files.URL + "/404", 400, "Download failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := s.postJSON("/api/verify-url", map[string]string{"url": c.url})
			assertVerifyError(t, code, m, c.want)
			if !strings.Contains(fmt.Sprint(m["error"], " ", m["detail"]), c.msg) {
				t.Errorf("%v does not mention %q", m, c.msg)
			}
		})
	}
	if jobs, files := s.stored(); jobs != jobsBefore || files != filesBefore {
		t.Errorf("refused URLs stored something: jobs %d→%d files %d→%d", jobsBefore, jobs, filesBefore, files)
	}
	for _, body := range []string{`{"url": 5}`, `{"url":"http://x/","extra":1}`, `not json`, `{}`, `{"url":"` + strings.Repeat("a", 20000) + `"}`} {
		code, m, _ := s.do("POST", "/api/verify-url", strings.NewReader(body), "application/json")
		if code != 400 && code != 413 {
			t.Errorf("body %.40q: status %d %v", body, code, m)
		}
	}
}

func TestNotFoundAndValidation(t *testing.T) {
	s := newStack(t, false)
	for _, p := range []string{"/api/verify/550e8400-e29b-41d4-a716-446655440000", "/api/verify/not-a-uuid", "/api/verify/..%2f..%2fetc"} {
		code, m := s.getJSON(p)
		assertVerifyError(t, code, m, 404)
	}
	code, m, _ := s.do("DELETE", "/api/verify/550e8400-e29b-41d4-a716-446655440000", nil, "")
	assertVerifyError(t, code, m, 404)
	if m["job_id"] != "550e8400-e29b-41d4-a716-446655440000" {
		t.Errorf("404 lacks the job_id: %v", m)
	}
	for _, q := range []string{"abc", "0", "-3", "99999"} {
		code, m := s.getJSON("/api/metrics?days=" + q)
		assertVerifyError(t, code, m, 400)
	}
	code, m = s.getJSON("/api/metrics")
	if code != 200 || m["total_verifications"].(float64) != 0 {
		t.Errorf("empty metrics: %d %v", code, m)
	}
}

func TestHealth(t *testing.T) {
	s := newStack(t, true)
	code, m := s.getJSON("/health")
	if code != 200 || m["status"] != "healthy" || m["database"] != "connected" || m["version"] == "" || m["timestamp"] == "" {
		t.Fatalf("health %d %v", code, m)
	}
	testenv.Eventually(t, 30*time.Second, "a worker to register", func() bool {
		_, m = s.getJSON("/health")
		return m["ml_models_loaded"] == true
	})
	// Redis down (nothing listens on the port): 503.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	down := newStack(t, false, func(c *config.Config) { c.RedisURL = "redis://" + dead + "/0" })
	code, m = down.getJSON("/health")
	if code != 503 || m["redis"] != "disconnected" || m["status"] != "unhealthy" {
		t.Errorf("redis down: %d %v", code, m)
	}
	// An upload while Redis is down is still accepted and stored: the
	// reconciler enqueues it once Redis is back.
	code, m = down.upload("a.jpg", fixture(t, "media/c2pa/testdata/no_manifest.jpg"), nil)
	if code != 200 {
		t.Errorf("upload with redis down: %d %v", code, m)
	}
}

func TestRateLimits(t *testing.T) {
	s := newStack(t, false, func(c *config.Config) { c.RateGeneral, c.RateUpload = 5, 2 })
	jpeg := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	var limited int
	for i := 0; i < 6; i++ {
		body, ct := multipartBody(t, "a.jpg", jpeg, nil)
		code, m, h := s.do("POST", "/api/verify", body, ct)
		if code == 429 {
			limited++
			assertVerifyError(t, code, m, 429)
			if h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Error("6 uploads in a burst at 2/s were never limited")
	}
	// Per credential: a separate budget that follows the key, not the IP.
	c := newStack(t, false, func(c *config.Config) { c.RateCredential = 1 })
	org := c.org("limited")
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		code, _ := c.getJSON("/v1/webhooks/deliveries", withKey(org))
		codes[code]++
	}
	if codes[429] == 0 || codes[200] == 0 {
		t.Errorf("per-credential limit: %v", codes)
	}
}

// TestRateLimitsShareOneScript: the client-IP and credential budgets are
// spent together (one Redis round trip, all or nothing), a client guessing
// keys meets the IP budget, and one refused budget does not refuse others.
func TestRateLimitsShareOneScript(t *testing.T) {
	s := newStack(t, false, func(c *config.Config) { c.RateGeneral, c.RateUpload, c.RateCredential = 3, 1, 2 })
	a, b := s.org("a"), s.org("b")
	ctx := context.Background()
	ropt, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	// A caller whose credential budget (2/s) runs out before the IP budget
	// (3/s): the refusals spend nothing of the IP's budget, and another
	// credential from the same IP still gets through.
	codes := map[int]int{}
	for range 4 {
		code, _ := s.getJSON("/v1/webhooks/deliveries", withKey(a))
		codes[code]++
	}
	if codes[200] != 2 || codes[429] != 2 {
		t.Fatalf("credential budget 2/s, 4 requests: %v", codes)
	}
	if code, m := s.getJSON("/v1/webhooks/deliveries", withKey(b)); code != 200 {
		t.Fatalf("another credential from the same IP after the first one's refusals: %d %v", code, m)
	}
	pa, err := s.db.AuthenticateAPIKey(ctx, a.OrgID, a.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"warden:rl:ip:127.0.0.1", "warden:rl:cred:" + pa.CredentialID} {
		if n, err := rdb.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("bucket %s not spent: %v %v", k, n, err)
		}
	}

	// Guessing keys: wrong credentials answer 401 until the IP budget is
	// gone, then 429 with Retry-After, never a database error.
	g := newStack(t, false, func(c *config.Config) { c.RateGeneral = 3 })
	org := g.org("victim")
	codes = map[int]int{}
	for i := range 8 {
		code, m, h := g.do("GET", "/v1/webhooks/deliveries", nil, "", header("x-api-key", fmt.Sprintf("wk_guess.%d", i)), header("Org-Id", org.OrgID))
		codes[code]++
		if code == 429 && h.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After: %v", m)
		}
	}
	if codes[401] == 0 || codes[429] == 0 || codes[401]+codes[429] != 8 {
		t.Fatalf("8 guesses at 3/s: %v", codes)
	}
	// The valid key is refused too while the IP's budget is spent.
	if code, _ := g.getJSON("/v1/webhooks/deliveries", withKey(org)); code != 429 {
		t.Errorf("valid key from a refused IP: %d", code)
	}

	// The upload budget (1/s) running out leaves reads of the same IP alone.
	u := newStack(t, false, func(c *config.Config) { c.RateGeneral, c.RateUpload = 100, 1 })
	jpeg := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	var refused bool
	for range 3 {
		body, ct := multipartBody(t, "a.jpg", jpeg, nil)
		if code, _, _ := u.do("POST", "/api/verify", body, ct); code == 429 {
			refused = true
		}
	}
	if !refused {
		t.Fatal("3 uploads at 1/s were never limited")
	}
	if code, m := u.getJSON("/api/verify/550e8400-e29b-41d4-a716-446655440000"); code != 404 {
		t.Errorf("a read after the upload budget ran out: %d %v", code, m)
	}
}

func TestAuthAndRoles(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	viewerID, viewerKey, err := s.db.CreateCredential(context.Background(), org.OrgID, records.CredentialAPIKey, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	_ = viewerID
	viewer := org
	viewer.APIKey = viewerKey
	other := s.org("other")

	code, m := s.getJSON("/v1/webhooks/deliveries")
	assertV1Error(t, code, m, 401, "")
	code, m = s.getJSON("/v1/webhooks/deliveries", header("x-api-key", org.APIKey))
	assertV1Error(t, code, m, 401, "")
	code, m = s.getJSON("/v1/webhooks/deliveries", header("x-api-key", org.APIKey), header("Org-Id", other.OrgID))
	assertV1Error(t, code, m, 401, "")
	code, m = s.getJSON("/v1/webhooks/deliveries", header("x-api-key", org.APIKey+"x"), header("Org-Id", org.OrgID))
	assertV1Error(t, code, m, 401, "")
	code, m = s.getJSON("/v1/webhooks/deliveries", header("x-api-key", "garbage"), header("Org-Id", org.OrgID))
	assertV1Error(t, code, m, 401, "")
	// Wrong credentials on an anonymous-friendly route are still a 401.
	code, m = s.getJSON("/api/verify/550e8400-e29b-41d4-a716-446655440000", header("x-api-key", "wk_0.nope"), header("Org-Id", org.OrgID))
	assertVerifyError(t, code, m, 401)

	code, m = s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withKey(viewer))
	assertV1Error(t, code, m, 403, "")
	code, m = s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": -1}, withKey(org))
	assertV1Error(t, code, m, 400, "hold_ms")
	code, m = s.postJSON("/v1/diagnostics/probe", map[string]any{"hold_ms": 0, "callback_url": "gopher://x"}, withKey(org))
	assertV1Error(t, code, m, 400, "callback_url")
	code, m = s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withKey(org))
	if code != 202 {
		t.Fatalf("probe %d %v", code, m)
	}
	id := m["job_id"].(string)
	if code, m := s.getJSON("/v1/jobs/"+id, withKey(viewer)); code != 200 || m["kind"] != "probe" {
		t.Errorf("viewer reads own org's job: %d %v", code, m)
	}
	code, m = s.getJSON("/v1/jobs/"+id, withKey(other))
	assertV1Error(t, code, m, 404, "")
	// The job list and the kind-agnostic cancel: a viewer lists, a
	// developer or admin cancels, another org sees nothing.
	if code, m := s.getJSON("/v1/jobs?kind=probe", withKey(viewer)); code != 200 || m["total"] != float64(1) {
		t.Errorf("viewer lists own org's jobs: %d %v", code, m)
	}
	if code, m := s.getJSON("/v1/jobs", withKey(other)); code != 200 || m["total"] != float64(0) {
		t.Errorf("other org lists jobs: %d %v", code, m)
	}
	code, m = s.postJSON("/v1/jobs/"+id+"/cancel", nil, withKey(viewer))
	assertV1Error(t, code, m, 403, "")
	code, m = s.postJSON("/v1/jobs/"+id+"/cancel", nil, withKey(other))
	assertV1Error(t, code, m, 404, "")
	if code, m := s.postJSON("/v1/jobs/"+id+"/cancel", nil, withKey(org)); code != 200 || m["status"] != "cancelled" {
		t.Errorf("admin cancels: %d %v", code, m)
	}
	code, m = s.postJSON("/v1/jobs/"+id+"/cancel", nil, withKey(org))
	assertV1Error(t, code, m, 409, "status")

	// asynqmon is the operators' (it spans every org): HTTP Basic with the
	// operator token; no org credential opens it, not even an admin's; it
	// is view-only unless WARDEN_MONITORING_WRITE.
	req, _ := http.NewRequest("GET", s.srv.URL+"/monitoring/", nil)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("monitoring anonymous: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, cred := range []struct{ user, pass string }{{org.OrgID, org.APIKey}, {"operator", "wrong-token-0123456789"}} {
		req.SetBasicAuth(cred.user, cred.pass)
		resp, _ = http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("monitoring as %s: %d, want 401", cred.user, resp.StatusCode)
		}
	}
	req.Header.Del("Authorization")
	req.Header.Set("x-api-key", org.APIKey)
	req.Header.Set("Org-Id", org.OrgID)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("monitoring with an org admin key: %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", s.srv.URL+"/monitoring/", nil)
	req.SetBasicAuth("operator", testenv.OperatorToken)
	resp, _ = http.DefaultClient.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("monitoring as operator: %d", resp.StatusCode)
	}
	pause, _ := http.NewRequest("POST", s.srv.URL+"/monitoring/api/queues/cpu:pause", nil)
	pause.SetBasicAuth("operator", testenv.OperatorToken)
	resp, _ = http.DefaultClient.Do(pause)
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		t.Errorf("read-only monitoring paused a queue: %d", resp.StatusCode)
	}
}

func TestDocsAndMetrics(t *testing.T) {
	s := newStack(t, false)
	code, doc := s.getJSON("/openapi.json")
	if code != 200 || doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi %d", code)
	}
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/api/verify", "/api/verify-url", "/api/verify/{job_id}", "/api/metrics", "/health", "/v1/webhooks/deliveries", "/v1/webhooks/deliveries/{delivery_id}/redeliver"} {
		if paths[p] == nil {
			t.Errorf("OpenAPI lacks %s", p)
		}
	}
	if _, ok := paths["/api/verify/{job_id}"].(map[string]any)["delete"]; !ok {
		t.Error("OpenAPI lacks DELETE /api/verify/{job_id}")
	}
	for page, asset := range map[string]string{"/docs": "/docs/assets/swagger-ui/swagger-ui-bundle.js", "/redoc": "/docs/assets/redoc/redoc.standalone.js"} {
		req, _ := http.NewRequest("GET", s.srv.URL+page, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := s.readChecked(req, resp)
		if resp.StatusCode != 200 || !strings.Contains(string(b), asset) || strings.Contains(string(b), "cdn") {
			t.Errorf("%s: %d (run `make assets` before the tests)", page, resp.StatusCode)
			continue
		}
		resp, _ = http.Get(s.srv.URL + asset)
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 100000 {
			t.Errorf("%s: %d, %d bytes", asset, resp.StatusCode, n)
		}
	}
	if code, _ := s.getJSON("/docs/assets/../../go.mod"); code != 404 {
		t.Errorf("asset traversal: %d", code)
	}
	s.getJSON("/health")
	req, _ := http.NewRequest("GET", s.srv.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := s.readChecked(req, resp)
	for _, name := range []string{`warden_http_request_duration_seconds_bucket{method="GET",route="/health"`, "warden_queue_depth", "go_goroutines"} {
		if !strings.Contains(string(b), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
