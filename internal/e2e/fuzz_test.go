package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzUpload throws arbitrary multipart bodies at POST /api/verify. Whatever
// the bytes, the answer is 200, 400 or 413 in spec 003's error shape, never
// a 500 or a panic, and a rejected body stores nothing.
func FuzzUpload(f *testing.F) {
	jpeg := fixture(f, "media/c2pa/testdata/no_manifest.jpg")[:2048]
	good, ct := multipartBody(f, "a.jpg", jpeg, map[string]string{"note": "x"})
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	f.Add(good.Bytes(), boundary)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n\xff\xd8\xff\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nGIF89a\r\n--b"), "b")
	f.Add([]byte("--b\r\n\r\n\r\n--b--"), "b")
	f.Add([]byte{}, "")
	s := newStack(f, false)
	h := s.api.Handler()
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		req := httptest.NewRequest("POST", "/api/verify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var m map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["status"] != "pending" || m["job_id"] == "" {
				t.Fatalf("200 with body %q", rec.Body.String())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["error"] == nil {
				t.Fatalf("%d with body %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}
