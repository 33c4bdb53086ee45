package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
)

// TestRejectedBodies checks malformed and oversized bodies on both
// surfaces: 400 or 413 in the surface's shape, and nothing stored (no job
// rows, no blob rows, no blob files).
func TestRejectedBodies(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	bigURL := `{"url":"http://127.0.0.1/` + strings.Repeat("a", 17<<10) + `"}`
	textFile, textCT := multipartFile(t, "notes.png", []byte("hello, this is plain text and not an image at all\n"))
	emptyFile, emptyCT := multipartFile(t, "empty.png", nil)
	png := pngBytes(t)
	pngFile, pngCT := multipartFile(t, "ok.png", png)
	cases := []struct {
		name    string
		method  string
		path    string
		body    func() io.Reader
		opts    []reqOption
		status  int
		sandbox bool
		code    string // sandbox code
		message string // message (sandbox) or error (verify)
		detail  string // substring of details.<field> / detail ("" to skip)
	}{
		{name: "probe malformed JSON", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 400, sandbox: true, code: "invalid", message: "Invalid JSON body"},
		{name: "probe unknown field", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":0,"surprise":1}`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 400, sandbox: true, code: "invalid", message: "Invalid JSON body", detail: "surprise"},
		{name: "probe trailing data", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":0} {"hold_ms":1}`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 400, sandbox: true, code: "invalid", message: "Invalid JSON body", detail: "trailing data"},
		{name: "probe hold_ms out of range", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":-1}`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 400, sandbox: true, code: "invalid", detail: "hold_ms must be between 0 and 60000"},
		{name: "probe body over 4 KiB", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":0,"callback_url":"` + strings.Repeat("x", 5<<10) + `"}`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 413, sandbox: true, code: "too_large", message: "Request body too large"},
		{name: "probe chunked body over 4 KiB", path: "/v1/diagnostics/probe", body: text(`{"hold_ms":0,"callback_url":"` + strings.Repeat("x", 5<<10) + `"}`),
			opts: []reqOption{as(a), withContentType("application/json"), withContentLength(-1)}, status: 413, sandbox: true, code: "too_large", message: "Request body too large"},
		{name: "launch malformed JSON", path: "/v1/attacks/launch", body: text(`[1,2`),
			opts: []reqOption{as(a), withContentType("application/json")}, status: 400, sandbox: true, code: "invalid", message: "Invalid JSON body"},
		{name: "verify-url malformed JSON", path: "/api/verify-url", body: text(`not json`),
			opts: []reqOption{withContentType("application/json")}, status: 400, message: "Invalid JSON body"},
		{name: "verify-url missing url", path: "/api/verify-url", body: text(`{}`),
			opts: []reqOption{withContentType("application/json")}, status: 400, message: "url is required", detail: "url: url is required"},
		{name: "verify-url body over 16 KiB", path: "/api/verify-url", body: text(bigURL),
			opts: []reqOption{withContentType("application/json")}, status: 413, message: "Request body too large"},
		{name: "verify-url chunked body over 16 KiB", path: "/api/verify-url", body: text(bigURL),
			opts: []reqOption{withContentType("application/json"), withContentLength(-1)}, status: 413, message: "Request body too large"},
		{name: "verify declared length over the cap", path: "/api/verify", body: func() io.Reader { return bytes.NewReader(pngFile.Bytes()) },
			opts: []reqOption{withContentType(pngCT), withContentLength(h.cfg.MaxUploadBytes + 64<<10 + 1)}, status: 413,
			message: "File exceeds 100MB limit", detail: "limit_bytes: 104857600"},
		{name: "verify non-image file", path: "/api/verify", body: func() io.Reader { return bytes.NewReader(textFile.Bytes()) },
			opts: []reqOption{withContentType(textCT)}, status: 400, message: "Invalid file type", detail: "only image and video files are accepted"},
		{name: "verify empty file", path: "/api/verify", body: func() io.Reader { return bytes.NewReader(emptyFile.Bytes()) },
			opts: []reqOption{withContentType(emptyCT)}, status: 400, detail: "the file is empty"},
		{name: "verify not multipart", path: "/api/verify", body: func() io.Reader { return bytes.NewReader(png) },
			opts: []reqOption{withContentType("image/png")}, status: 400, detail: "multipart/form-data"},
		{name: "verify multipart without file field", path: "/api/verify", body: text("--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n"),
			opts: []reqOption{withContentType("multipart/form-data; boundary=b")}, status: 400, detail: "the multipart field 'file' is required"},
		{name: "verify truncated multipart", path: "/api/verify", body: text("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"),
			opts: []reqOption{withContentType("multipart/form-data; boundary=b")}, status: 400},
		{name: "verify anonymous callback_url", path: "/api/verify", body: func() io.Reader {
			b, _ := multipartWithCallback(t, png, "http://127.0.0.1:9/hook")
			return b
		}, opts: []reqOption{withContentType(multipartCT)}, status: 400, detail: "callback_url requires credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			r := h.do(method, tc.path, tc.body(), tc.opts...)
			what := method + " " + tc.path
			if tc.sandbox {
				assertSandboxError(t, what, r, tc.status, tc.code)
				if tc.message != "" && r.Body["message"] != tc.message {
					t.Errorf("%s: message %v, want %q", what, r.Body["message"], tc.message)
				}
				if tc.detail != "" {
					var all []string
					for k, v := range r.Body["details"].(map[string]any) {
						all = append(all, k+"="+v.(string))
					}
					if !strings.Contains(strings.Join(all, ";"), tc.detail) {
						t.Errorf("%s: details %v, want one containing %q", what, r.Body["details"], tc.detail)
					}
				}
			} else {
				assertVerifyError(t, what, r, tc.status, "")
				if tc.message != "" && r.Body["error"] != tc.message {
					t.Errorf("%s: error %v, want %q", what, r.Body["error"], tc.message)
				}
				if d, _ := r.Body["detail"].(string); tc.detail != "" && !strings.Contains(d+" "+r.Body["error"].(string), tc.detail) {
					t.Errorf("%s: error %v / detail %q, want %q", what, r.Body["error"], d, tc.detail)
				}
			}
			if n := h.jobCount(); n != 0 {
				t.Errorf("%s: %d job rows after a rejected request, want 0", what, n)
			}
			if n := h.blobRowCount(); n != 0 {
				t.Errorf("%s: %d blob rows after a rejected request, want 0", what, n)
			}
			if files := h.blobFiles(); len(files) != 0 {
				t.Errorf("%s: blob files left after a rejected request: %v", what, files)
			}
		})
	}
}

// TestUploadOverCapWhileStreaming checks that an upload whose length is
// unknown (chunked) is cut at the configured cap while it streams: 413,
// nothing stored, the partial file removed.
func TestUploadOverCapWhileStreaming(t *testing.T) {
	const limit = 4 << 10
	h := newAPIHarness(t, func(c *config.Config) { c.MaxUploadBytes = limit })
	png := pngBytes(t)
	cases := []struct {
		name   string
		size   int // bytes of file content
		status int
	}{
		{"just over the cap", limit + 1, http.StatusRequestEntityTooLarge},
		{"far over the cap", 256 << 10, http.StatusRequestEntityTooLarge},
		{"at the cap", limit, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.jobCount()
			data := append(append([]byte{}, png...), make([]byte, tc.size-len(png))...)
			body, ct := multipartFile(t, "big.png", data)
			r := h.do("POST", "/api/verify", body, withContentType(ct), withContentLength(-1))
			if tc.status != http.StatusOK {
				assertVerifyError(t, "POST /api/verify", r, tc.status, "")
				if d, _ := r.Body["detail"].(string); d != "limit_bytes: 4096" {
					t.Errorf("detail %q, want %q", d, "limit_bytes: 4096")
				}
				if n := h.jobCount(); n != before {
					t.Errorf("job rows %d -> %d after a 413", before, n)
				}
				if files := h.blobFiles(); len(files) != int(before) {
					t.Errorf("blob files after a 413: %v, want %d", files, before)
				}
				return
			}
			if r.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", r.Code, r.Raw)
			}
			id, _ := r.Body["job_id"].(string)
			j, ok := h.job(id)
			if !ok || j.Status != "queued" {
				t.Fatalf("job %q: found %v status %q, want a queued row", id, ok, j.Status)
			}
			if files := h.blobFiles(); len(files) != 1 || files[0] != "jobs/"+id+"/input" {
				t.Errorf("blob files %v, want [jobs/%s/input]", files, id)
			}
		})
	}
}

func text(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

const multipartCT = "multipart/form-data; boundary=warden-test-boundary"

// multipartWithCallback builds a multipart body with a file and a
// callback_url field, with the boundary of multipartCT.
func multipartWithCallback(t *testing.T, data []byte, callback string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("--warden-test-boundary\r\nContent-Disposition: form-data; name=\"callback_url\"\r\n\r\n" + callback + "\r\n")
	b.WriteString("--warden-test-boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
	b.Write(data)
	b.WriteString("\r\n--warden-test-boundary--\r\n")
	return &b, multipartCT
}

// TestVerifyURLDownloads submits URLs served by a local server: a PNG is
// accepted and stored; anything else is refused in spec 003's shape with
// nothing left behind.
func TestVerifyURLDownloads(t *testing.T) {
	const limit = 4 << 10
	h := newAPIHarness(t, func(c *config.Config) { c.MaxUploadBytes = limit })
	png := pngBytes(t)
	big := append(append([]byte{}, png...), make([]byte, 2*limit)...)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(png)
		case "/notes.txt":
			w.Header().Set("Content-Type", "image/png") // lies: the bytes are sniffed
			io.WriteString(w, "just some text, not an image\n")
		case "/big.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(big)
		case "/big-chunked.png":
			w.Header().Set("Content-Type", "image/png")
			for i := 0; i < len(big); i += 512 {
				w.Write(big[i:min(i+512, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/empty.png":
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(origin.Close)
	cases := []struct {
		name   string
		url    string
		status int
		error  string
	}{
		{"png", origin.URL + "/photo.png", 200, ""},
		{"text sniffed", origin.URL + "/notes.txt", 400, "Invalid file type"},
		{"over the cap by Content-Length", origin.URL + "/big.png", 413, "File exceeds 100MB limit"},
		{"over the cap while streaming", origin.URL + "/big-chunked.png", 413, "File exceeds 100MB limit"},
		{"empty body", origin.URL + "/empty.png", 400, ""},
		{"origin 404", origin.URL + "/missing.png", 400, "Download failed"},
		{"link-local address", "http://169.254.169.254/latest/meta-data", 400, "Invalid URL"},
		{"not http", "ftp://127.0.0.1/photo.png", 400, "Invalid URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			beforeJobs, beforeFiles := h.jobCount(), len(h.blobFiles())
			r := h.postJSON("/api/verify-url", `{"url":"`+tc.url+`"}`)
			if tc.status != http.StatusOK {
				assertVerifyError(t, "POST /api/verify-url "+tc.url, r, tc.status, "")
				if tc.error != "" && r.Body["error"] != tc.error {
					t.Errorf("error %v, want %q; body %s", r.Body["error"], tc.error, r.Raw)
				}
				if n := h.jobCount(); n != beforeJobs {
					t.Errorf("job rows %d -> %d after a refusal", beforeJobs, n)
				}
				if files := h.blobFiles(); len(files) != beforeFiles {
					t.Errorf("blob files after a refusal: %v, want %d", files, beforeFiles)
				}
				return
			}
			if r.Code != http.StatusOK || r.Body["status"] != "pending" {
				t.Fatalf("status %d, want 200 pending; body %s", r.Code, r.Raw)
			}
			id, _ := r.Body["job_id"].(string)
			j, ok := h.job(id)
			if !ok || j.Status != records.JobQueued || j.OrgID != nil {
				t.Fatalf("job row %q: found %v %+v, want a queued anonymous job", id, ok, j)
			}
			stored, err := os.ReadFile(filepath.Join(h.blobDir, "jobs", id, "input"))
			if err != nil || !bytes.Equal(stored, png) {
				t.Fatalf("stored file: %d bytes, err %v; want the %d bytes served", len(stored), err, len(png))
			}
		})
	}
}

// TestVerifyURLHidesInternalAddresses: a URL that leads (here through a
// redirect) to an address Warden does not fetch from is refused without
// telling the client which address it resolved to.
func TestVerifyURLHidesInternalAddresses(t *testing.T) {
	h := newAPIHarness(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.1.2.3:8080/internal.png", http.StatusFound)
	}))
	defer origin.Close()
	r := h.postJSON("/api/verify-url", `{"url":"`+origin.URL+`/photo.png"}`)
	assertVerifyError(t, "POST /api/verify-url (redirect to a private address)", r, http.StatusBadRequest, "")
	if r.Body["error"] != "Invalid URL" || strings.Contains(string(r.Raw), "10.1.2.3") {
		t.Errorf("body %s: want Invalid URL without the internal address", r.Raw)
	}
	if n := h.jobCount(); n != 0 {
		t.Errorf("%d jobs after a refusal", n)
	}
}
