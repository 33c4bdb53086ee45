package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// zipFiles builds a zip archive of name → content (a name ending in "/"
// is a directory).
func zipFiles(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		f, err := w.CreateHeader(&zip.FileHeader{Name: files[i], Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// icFiles are valid model, data and label zips of an IC registration
// (two images).
func icFiles(t *testing.T) map[string][]byte {
	torchscript := string(zipFiles(t, "m/data.pkl", "x", "m/code/m.py", "def forward"))
	img := string(pngBytes(t))
	return map[string][]byte{
		"model": zipFiles(t, "model.pt", torchscript),
		"data":  zipFiles(t, "images/", "", "images/a.png", img, "images/b.png", img),
		"label": zipFiles(t, "label.csv", "image,label\na.png,3\nb.png,7\n"),
	}
}

// aisRegister registers a model and returns the response.
func (h *apiHarness) aisRegister(task, analysis string, opts ...reqOption) apiResponse {
	h.t.Helper()
	return h.postJSON("/api/ais/v1.5/model_registration/upload", fmt.Sprintf(`{"task_type":%q,"analysis_type":%q}`, task, analysis), opts...)
}

// uploadPath is the path and query of a signed upload URL.
func uploadPath(t *testing.T, raw any) string {
	t.Helper()
	s, _ := raw.(string)
	u, err := url.Parse(s)
	if err != nil || s == "" {
		t.Fatalf("upload URL %v: %v", raw, err)
	}
	return u.RequestURI()
}

func urlsOf(t *testing.T, res apiResponse) map[string]any {
	t.Helper()
	urls, ok := res.Body["upload_urls"].(map[string]any)
	if res.Code != 200 || !ok {
		t.Fatalf("registration: %d %s", res.Code, res.Raw)
	}
	return urls
}

// aisPut uploads a zip as the raw body of a PUT.
func (h *apiHarness) aisPut(path string, z []byte) apiResponse {
	h.t.Helper()
	return h.do("PUT", path, bytes.NewReader(z), withContentType("application/zip"))
}

// wantAISError checks the surface's one error shape and that errors
// mentions substr.
func wantAISError(t *testing.T, res apiResponse, status int, substr string) {
	t.Helper()
	errs, ok := res.Body["errors"].([]any)
	if res.Code != status || !ok || res.Body["code"] == nil || res.Body["message"] == nil || res.Body["details"] == nil {
		t.Fatalf("want %d in the AIS error shape, got %d %s", status, res.Code, res.Raw)
	}
	for _, e := range errs {
		if s, _ := e.(string); strings.Contains(s, substr) {
			return
		}
	}
	t.Fatalf("no error mentions %q: %s", substr, res.Raw)
}

// TestAISRegisterAndUpload: IC-MEA registered, the three files uploaded
// (PUT raw, POST multipart, POST raw), the registration ready; every URL
// refuses a second use; another org sees nothing.
func TestAISRegisterAndUpload(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais"), h.org("ais-other")
	res := h.aisRegister("IC", "MEA", as(org))
	urls := urlsOf(t, res)
	id, _ := res.Body["model_id"].(string)
	if len(urls) != 3 || !strings.HasPrefix(id, "ais_") || res.Body["expires_at"] == nil {
		t.Fatalf("registration: %s", res.Raw)
	}
	exp, err := time.Parse(time.RFC3339, res.Body["expires_at"].(string))
	if err != nil || exp.Sub(time.Now()) > 10*time.Minute || exp.Sub(time.Now()) < 9*time.Minute {
		t.Fatalf("expires_at %v %v", exp, err)
	}
	files := icFiles(t)
	if r := h.aisPut(uploadPath(t, urls["model"]), files["model"]); r.Code != 200 || r.Body["status"] != "valid" {
		t.Fatalf("model upload: %d %s", r.Code, r.Raw)
	}
	body, ct := multipartFile(t, "data.zip", files["data"])
	if r := h.do("POST", uploadPath(t, urls["data"]), body, withContentType(ct)); r.Code != 200 || r.Body["registration_status"] != "awaiting_uploads" {
		t.Fatalf("data upload: %d %s", r.Code, r.Raw)
	}
	r := h.do("POST", uploadPath(t, urls["label"]), bytes.NewReader(files["label"]), withContentType("application/octet-stream"))
	if r.Code != 200 || r.Body["registration_status"] != records.AISReady {
		t.Fatalf("label upload: %d %s", r.Code, r.Raw)
	}
	if sum, _ := r.Body["summary"].(map[string]any); sum["samples"] != float64(2) {
		t.Fatalf("label summary: %s", r.Raw)
	}
	for _, name := range []string{"model", "data", "label"} {
		wantAISError(t, h.aisPut(uploadPath(t, urls[name]), files[name]), 409, "already been used")
		if ok, _ := h.blobs.Exists(context.Background(), storage.AISBlobKey(id, name)); !ok {
			t.Errorf("%s not stored", name)
		}
	}
	for _, prefix := range []string{"/api/ais", "/ais"} {
		st := h.do("GET", prefix+"/v1.5/model_registration/"+id, nil, as(org))
		fs, _ := st.Body["files"].(map[string]any)
		if st.Code != 200 || st.Body["status"] != records.AISReady || len(fs) != 3 {
			t.Fatalf("status: %d %s", st.Code, st.Raw)
		}
	}
	wantAISError(t, h.do("GET", "/api/ais/v1.5/model_registration/"+id, nil, as(other)), 404, "not found")
}

// TestAISRegisterRefusals: every 400, 401 and 412 of the registration,
// in the surface's one error shape; JSON, form and the /ais path work.
func TestAISRegisterRefusals(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais"), h.org("ais-other")
	const path = "/api/ais/v1.5/model_registration/upload"
	ok := `{"task_type":"IC","analysis_type":"MEA"}`
	wantAISError(t, h.postJSON(path, ok), 401, "authentication required")
	wantAISError(t, h.postJSON(path, ok, withHeader("x-api-key", org.APIKey)), 401, "Org-Id")
	wantAISError(t, h.postJSON(path, ok, withHeader("x-api-key", org.APIKey+"x"), withHeader("Org-Id", org.OrgID)), 401, "invalid")
	wantAISError(t, h.postJSON(path, ok, withHeader("x-api-key", other.APIKey), withHeader("Org-Id", org.OrgID)), 401, "invalid")
	wantAISError(t, h.postJSON(path, `{"task_type":"IC",`, as(org)), 400, "body")
	wantAISError(t, h.postJSON(path, `{"task_type":"IC","analysis_type":"MEA","x":1}`, as(org)), 400, "unknown field")
	wantAISError(t, h.postJSON(path, `{}`, as(org)), 400, "task_type: required")
	wantAISError(t, h.postJSON(path, `{"task_type":"IC","analysis_type":"MEA","target_fpr":0.1}`, as(org)), 400, "target_fpr: only for the defence analysis")
	wantAISError(t, h.postJSON(path, `{"task_type":"IC","analysis_type":"EVA","parameters":{"mode":"flag"}}`, as(org)), 400, "mode: only for the defence analysis")
	wantAISError(t, h.aisRegister("IX", "MEA", as(org)), 400, "unknown task type")
	wantAISError(t, h.aisRegister("IC", "poison", as(org)), 400, "unknown analysis type")
	wantAISError(t, h.aisRegister("OD", "MEA", as(org)), 412, "not offered")
	wantAISError(t, h.aisRegister("Text", "EVA", as(org)), 412, "not offered")
	wantAISError(t, h.aisRegister("TC", "model-poisoning", as(org)), 412, "not offered")

	form := h.do("POST", "/ais/v1.5/model_registration/upload", strings.NewReader("task_type=Text&analysis_type=MEA"), withContentType("application/x-www-form-urlencoded"), as(org))
	if urls := urlsOf(t, form); len(urls) != 3 || form.Body["task_type"] != "NLP" {
		t.Fatalf("form registration: %s", form.Raw)
	}
	mp := h.aisRegister("IC", "model-poisoning", as(org))
	if urls := urlsOf(t, mp); len(urls) != 5 || urls["clean_model_1"] == nil || urls["clean_model_2"] == nil {
		t.Fatalf("IC model-poisoning: %s", mp.Raw)
	}
	if r := h.aisRegister("TS", "MEA", as(org)); r.Code != 200 {
		t.Fatalf("TS-MEA: %d %s", r.Code, r.Raw)
	}
	paths, _ := h.do("GET", "/openapi.json", nil).Body["paths"].(map[string]any)
	for _, p := range []string{path, "/ais/v1.5/model_registration/upload", "/api/ais/v1.5/model_registration/{model_id}", "/api/ais/v1.5/uploads/{upload_id}"} {
		if paths[p] == nil {
			t.Errorf("OpenAPI lacks %s", p)
		}
	}
}

// signedToken signs an upload token as Warden does, with the database's
// signing key: to forge an expired but authentic URL.
func signedToken(t *testing.T, db *storage.DB, uploadID string, exp int64) string {
	t.Helper()
	keys, err := db.SigningKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatal(err)
	}
	secret, err := base64.StdEncoding.DecodeString(keys[0].Secret)
	if err != nil {
		t.Fatal(err)
	}
	k := hmac.New(sha256.New, secret)
	k.Write([]byte("warden ais upload url v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	fmt.Fprintf(m, "%s\x00%d", uploadID, exp)
	return keys[0].KID + "." + strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestAISUploadTokens: a tampered, foreign, missing or expired token is
// refused without spending the URL; an expired registration too.
func TestAISUploadTokens(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ais")
	urls := urlsOf(t, h.aisRegister("IC", "EVA", as(org)))
	model := icFiles(t)["model"]
	p := uploadPath(t, urls["model"])
	u, _ := url.Parse(p)
	uploadID := u.Path[strings.LastIndex(u.Path, "/")+1:]
	token := u.Query().Get("token")
	parts := strings.Split(token, ".")
	exp, _ := strconv.ParseInt(parts[1], 10, 64)

	tampered := []string{
		"",
		"garbage",
		parts[0] + "." + strconv.FormatInt(exp+3600, 10) + "." + parts[2], // a later expiry
		parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"sk_unknown." + parts[1] + "." + parts[2],
	}
	for _, tok := range tampered {
		wantAISError(t, h.aisPut(u.Path+"?token="+url.QueryEscape(tok), model), 401, "invalid upload URL token")
	}
	// Another file's token does not open this one.
	other := uploadPath(t, urls["data"])
	otherTok := other[strings.Index(other, "?"):]
	wantAISError(t, h.aisPut(u.Path+otherTok, model), 401, "invalid upload URL token")
	// Authentic but expired.
	wantAISError(t, h.aisPut(u.Path+"?token="+signedToken(t, h.db, uploadID, time.Now().Add(-time.Second).Unix()), model), 403, "expired")
	// None of that spent it.
	if r := h.aisPut(p, model); r.Code != 200 {
		t.Fatalf("the genuine URL after refusals: %d %s", r.Code, r.Raw)
	}
	// The registration's own expiry, as the database holds it.
	if err := h.db.Gorm().Model(&records.AISFile{}).Where("name = ?", "data").Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	wantAISError(t, h.aisPut(uploadPath(t, urls["data"]), icFiles(t)["data"]), 403, "expired")
}

// TestAISUploadValidation: hostile and wrong zips are refused with every
// reason, recorded in the status, and the URL may be used again until a
// valid file arrives; data and label must hold as many samples.
func TestAISUploadValidation(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.MaxModelBytes = 4 << 20 })
	org := h.org("ais")
	res := h.aisRegister("IC", "MEA", as(org))
	urls := urlsOf(t, res)
	id := res.Body["model_id"].(string)
	data, label := uploadPath(t, urls["data"]), uploadPath(t, urls["label"])

	manyEntries := make([]string, 0, 2*10001)
	for i := range 10001 {
		manyEntries = append(manyEntries, fmt.Sprintf("images/%d.png", i), "")
	}
	for name, c := range map[string]struct {
		zip  []byte
		want []string
	}{
		"zip-slip":    {zipFiles(t, "../../../etc/cron.d/evil.png", "x", "ok/../../b.png", "y"), []string{"leaves the archive"}},
		"zip bomb":    {zipFiles(t, "images/a.png", strings.Repeat("\x00", 30<<20)), []string{"zip bomb"}},
		"too many":    {zipFiles(t, manyEntries...), []string{"too many entries"}},
		"wrong types": {zipFiles(t, "images/a.png", "GIF89a", "evil.exe", "MZ"), []string{`"evil.exe": unexpected file`}},
		"not a zip":   {[]byte("%PDF-1.4"), []string{"not a zip archive"}},
		"not images":  {zipFiles(t, "images/a.png", "GIF89a", "images/b.png", "GIF89a"), []string{`"images/a.png": not a png`, `"images/b.png": not a png`}},
	} {
		t.Run(name, func(t *testing.T) {
			r := h.aisPut(data, c.zip)
			for _, w := range c.want {
				wantAISError(t, r, 400, w)
			}
			st := h.do("GET", "/api/ais/v1.5/model_registration/"+id, nil, as(org))
			f, _ := st.Body["files"].(map[string]any)["data"].(map[string]any)
			if f["status"] != records.AISFileInvalid || len(f["errors"].([]any)) == 0 {
				t.Fatalf("status after a refused upload: %s", st.Raw)
			}
		})
	}
	wantAISError(t, h.aisPut(data, bytes.Repeat([]byte("x"), 5<<20)), 413, "exceeds")
	streamed := h.do("PUT", data, bytes.NewReader(bytes.Repeat([]byte("x"), 5<<20)), withContentType("application/zip"), withContentLength(-1))
	wantAISError(t, streamed, 413, "exceeds")
	wantAISError(t, h.do("PUT", data, strings.NewReader("a=b"), withContentType("application/x-www-form-urlencoded")), 415, "")

	// Three labels for two images: the second file is refused.
	if r := h.aisPut(data, icFiles(t)["data"]); r.Code != 200 {
		t.Fatalf("valid data after refusals: %d %s", r.Code, r.Raw)
	}
	wantAISError(t, h.aisPut(label, zipFiles(t, "label.csv", "label\n1\n2\n3\n")), 400, "2 samples but the label file 3")
	if r := h.aisPut(label, icFiles(t)["label"]); r.Code != 200 {
		t.Fatalf("valid label: %d %s", r.Code, r.Raw)
	}
	wrong := h.aisPut(uploadPath(t, urls["model"]), zipFiles(t, "model.pkl", "x", "model.pt", "not a zip"))
	wantAISError(t, wrong, 400, `"model.pkl": unexpected file`)
}
