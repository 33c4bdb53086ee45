package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/media/c2pa"
	"github.com/wardenlab/warden/media/forensics"
	"github.com/wardenlab/warden/media/sensor"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// uiClient is a browser-like client of the UI over a real listener: a
// cookie jar, redirects not followed (the tests look at them).
type uiClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newUIClient(t *testing.T, h *apiHarness) *uiClient {
	t.Helper()
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, base: srv.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches a path and returns the response with its body read.
func (u *uiClient) get(path string) (*http.Response, string) {
	u.t.Helper()
	res, err := u.c.Get(u.base + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (u *uiClient) post(path string, form url.Values) (*http.Response, string) {
	u.t.Helper()
	res, err := u.c.PostForm(u.base+path, form)
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the CSRF token of the page's form.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in %q", page)
	}
	return m[1]
}

// login signs in through the form and fails the test unless it worked.
func (u *uiClient) login(org storage.NewOrgCredentials) {
	u.t.Helper()
	_, page := u.get("/ui/login")
	res, body := u.post("/ui/login", url.Values{"csrf": {csrfOf(u.t, page)}, "org_id": {org.OrgID}, "api_key": {org.APIKey}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui" {
		u.t.Fatalf("login: %d %s %q", res.StatusCode, res.Header.Get("Location"), body)
	}
}

func cookieOf(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestUILogin: the form's CSRF cookie and the session cookie are HttpOnly
// and SameSite=Strict (Secure under an https public URL); a wrong key gets
// 401 and no session; the session cookie holds neither the key nor the
// Redis key of the session; signed in, the jobs list answers.
func TestUILogin(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) {
			h := newAPIHarness(t, func(c *config.Config) {
				if https {
					c.PublicURL = "https://warden.example"
				}
			})
			org := h.org("ui-login")
			u := newUIClient(t, h)
			if res, _ := u.get("/ui"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login" {
				t.Fatalf("signed out /ui: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			res, page := u.get("/ui/login")
			lc := cookieOf(res, "warden_ui_login")
			if res.StatusCode != 200 || lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteStrictMode || lc.Secure != https {
				t.Fatalf("login form: %d cookie %+v", res.StatusCode, lc)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q", csp)
			}
			csrf := csrfOf(t, page)
			if csrf != lc.Value {
				t.Fatalf("form token %q is not the cookie's %q", csrf, lc.Value)
			}
			res, body := u.post("/ui/login", url.Values{"csrf": {csrf}, "org_id": {org.OrgID}, "api_key": {org.APIKey + "x"}})
			if res.StatusCode != http.StatusUnauthorized || cookieOf(res, "warden_ui") != nil || !strings.Contains(body, "do not match") {
				t.Fatalf("wrong key: %d %q", res.StatusCode, body)
			}
			csrf = csrfOf(t, body) // a new form
			res, _ = u.post("/ui/login", url.Values{"csrf": {csrf}, "org_id": {org.OrgID}, "api_key": {org.APIKey}})
			sc := cookieOf(res, "warden_ui")
			if res.StatusCode != http.StatusSeeOther || sc == nil {
				t.Fatalf("login: %d cookie %v", res.StatusCode, sc)
			}
			if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure != https || sc.Path != "/ui" || len(sc.Value) < 40 {
				t.Errorf("session cookie %+v", sc)
			}
			if strings.Contains(sc.Value, org.APIKey) || strings.Contains(org.APIKey, sc.Value) {
				t.Errorf("session cookie carries the API key")
			}
			rdb := h.redis.MakeRedisClient().(redis.UniversalClient)
			defer rdb.Close()
			keys, err := rdb.Keys(context.Background(), "warden:ui:session:*").Result()
			if err != nil || len(keys) != 1 || strings.Contains(keys[0], sc.Value) {
				t.Fatalf("redis session keys %v %v", keys, err)
			}
			if https { // the jar holds Secure cookies back from http://
				return
			}
			res, body = u.get("/ui")
			if res.StatusCode != 200 || !strings.Contains(body, org.OrgID) || !strings.Contains(body, `id="jobs"`) {
				t.Fatalf("jobs list: %d %q", res.StatusCode, body)
			}
			if res, _ := u.get("/ui/login"); res.StatusCode != http.StatusSeeOther {
				t.Errorf("login form while signed in: %d", res.StatusCode)
			}
		})
	}
}

// TestUICSRF: a login without the form's token, or with another, is
// refused 403 and opens no session; logout needs the session's token, and
// then the session is gone.
func TestUICSRF(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ui-csrf")
	u := newUIClient(t, h)
	_, page := u.get("/ui/login")
	for _, token := range []string{"", "forged-" + csrfOf(t, page)} {
		res, _ := u.post("/ui/login", url.Values{"csrf": {token}, "org_id": {org.OrgID}, "api_key": {org.APIKey}})
		if res.StatusCode != http.StatusForbidden || cookieOf(res, "warden_ui") != nil {
			t.Fatalf("login with csrf %q: %d", token, res.StatusCode)
		}
	}
	other := newUIClient(t, h) // the token of another browser's form
	_, otherPage := other.get("/ui/login")
	if res, _ := u.post("/ui/login", url.Values{"csrf": {csrfOf(t, otherPage)}, "org_id": {org.OrgID}, "api_key": {org.APIKey}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("another form's token: %d", res.StatusCode)
	}
	u.login(org)
	_, list := u.get("/ui")
	token := csrfOf(t, list)
	if res, _ := u.post("/ui/logout", url.Values{"csrf": {"x" + token}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("logout with a wrong token: %d", res.StatusCode)
	}
	if res, _ := u.get("/ui"); res.StatusCode != 200 {
		t.Fatalf("still signed in after a refused logout: %d", res.StatusCode)
	}
	if res, _ := u.post("/ui/logout", url.Values{"csrf": {token}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := u.get("/ui"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login" {
		t.Fatalf("after logout: %d", res.StatusCode)
	}
}

// TestUIRevokedKey: revoking the key that signed in ends its session.
func TestUIRevokedKey(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ui-revoke")
	u := newUIClient(t, h)
	u.login(org)
	if res, _ := u.get("/ui"); res.StatusCode != 200 {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	p, err := h.db.AuthenticateAPIKey(context.Background(), org.OrgID, org.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	if res := h.do("DELETE", "/v1/credentials/"+p.CredentialID, nil, as(org)); res.Code != 200 && res.Code != 204 {
		t.Fatalf("revoke: %d %s", res.Code, res.Raw)
	}
	if res, _ := u.get("/ui"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoked key's session: %d", res.StatusCode)
	}
}

// seedJob writes a job of org straight through storage: queued, or, with
// a result, started and completed with its artifact files stored.
func seedJob(t *testing.T, h *apiHarness, orgID, kind string, result any, files map[string][]byte) records.Job {
	t.Helper()
	ctx := context.Background()
	j := records.Job{ID: kind + "_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], OrgID: &orgID, Kind: kind, Queue: "cpu", Input: "{}",
		Deadline: time.Now().Add(time.Hour)}
	if err := h.db.CreateJob(ctx, &j, nil, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	if result == nil {
		return j
	}
	started, ok, err := h.db.StartJob(ctx, j.ID)
	if err != nil || !ok {
		t.Fatalf("start: %v %v", ok, err)
	}
	var blobs []records.Blob
	for name, b := range files {
		key := storage.ArtifactKey(j.ID, started.Attempts, name)
		n, err := h.blobs.Put(ctx, key, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, records.Blob{Key: key, ContentType: "image/png", Size: n})
	}
	data, err := json.Marshal(result)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := h.db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{Label: "seeded", Data: string(data)}, Blobs: blobs}); !done || err != nil {
		t.Fatalf("complete: %v %v", done, err)
	}
	return j
}

// greyPNG encodes a w×h grey image whose pixel (x, y) is at(x, y).
func greyPNG(t testing.TB, w, h int, at func(x, y int) uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: at(x, y)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func f32(v float32) *float32 { return &v }

// seedAttack stores a completed two-sample image attack: sample 0 has its
// original and adversarial PNGs only (the UI computes the perturbation),
// sample 1 the worker's stored perturbation too. It returns the job and
// sample 1's stored perturbation PNG.
func seedAttack(t *testing.T, h *apiHarness, orgID string) (records.Job, []byte) {
	orig := greyPNG(t, 8, 8, func(x, y int) uint8 { return uint8(100 + 10*y) })
	adv := greyPNG(t, 8, 8, func(x, y int) uint8 {
		switch {
		case x == 0 && y == 0:
			return 110 // +10: the largest change up
		case x == 1 && y == 0:
			return 95 // −5
		case x == 2 && y == 0:
			return 90 // −10: the largest change down
		}
		return uint8(100 + 10*y)
	})
	stored := greyPNG(t, 8, 8, func(x, y int) uint8 { return uint8(16 * x) })
	arts := func(i int, withPert bool) map[string]string {
		m := map[string]string{"original": fmt.Sprintf("%d_original.png", i), "adversarial": fmt.Sprintf("%d_adversarial.png", i)}
		if withPert {
			m["perturbation"] = fmt.Sprintf("%d_perturbation.png", i)
		}
		return m
	}
	s0 := jobs.AttackSample{OriginalPrediction: "cat", OriginalConfidence: 0.91, AdversarialPrediction: "dog", AdversarialConfidence: 0.77, AttackSuccess: true,
		Perturbation: jobs.Perturbation{LinfNorm: f32(0.0392), L2Norm: f32(0.0438), Artifacts: arts(0, false)}}
	s1 := jobs.AttackSample{OriginalPrediction: "cat", OriginalConfidence: 0.88, AdversarialPrediction: "cat", AdversarialConfidence: 0.61,
		Perturbation: jobs.Perturbation{LinfNorm: f32(0.03), L2Norm: f32(0.05), Artifacts: arts(1, true)}}
	res := jobs.AttackResult{AttackSample: s0, BatchSize: 2, BatchSuccessRate: 0.5, BatchResults: []jobs.AttackSample{s0, s1}, Queries: 42,
		ModelID: "mdl_test", AttackMethodID: "fgsm", Metrics: jobs.AttackMetrics{AttackTimeSeconds: 1.5, Device: "cpu"}}
	j := seedJob(t, h, orgID, jobs.Attack.Name, res, map[string][]byte{
		"0_original.png": orig, "0_adversarial.png": adv, "1_original.png": orig, "1_adversarial.png": adv, "1_perturbation.png": stored})
	return j, stored
}

var imgSrc = regexp.MustCompile(`<img class="art" src="([^"]+)" alt="([^"]+)"`)

// TestUIAttackPage: an attack's page shows each sample's original,
// adversarial and amplified perturbation as PNGs: sample 1's is the one
// the worker stored, sample 0's is computed from its two PNGs (no change
// mid-grey, the largest change up white, down black, half of it half
// way); the table has a row per sample.
func TestUIAttackPage(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ui-attack")
	j, stored := seedAttack(t, h, org.OrgID)
	u := newUIClient(t, h)
	u.login(org)
	res, body := u.get("/ui/jobs/" + j.ID)
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	imgs := imgSrc.FindAllStringSubmatch(body, -1)
	if len(imgs) != 6 {
		t.Fatalf("%d images, want 6: %s", len(imgs), body)
	}
	decode := func(src string) image.Image {
		t.Helper()
		b64, ok := strings.CutPrefix(html.UnescapeString(src), "data:image/png;base64,")
		if !ok {
			t.Fatalf("image source %.40q is not a PNG data URI", src)
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	for _, m := range imgs {
		decode(m[1])
	}
	if imgs[2][2] != "sample 0 amplified perturbation" || imgs[5][2] != "sample 1 amplified perturbation" {
		t.Fatalf("image order: %q %q", imgs[2][2], imgs[5][2])
	}
	if got := html.UnescapeString(imgs[5][1]); got != "data:image/png;base64,"+base64.StdEncoding.EncodeToString(stored) {
		t.Errorf("sample 1 does not show the stored perturbation")
	}
	pert := decode(imgs[2][1])
	grey := func(x, y int) uint8 { return color.GrayModel.Convert(pert.At(x, y)).(color.Gray).Y }
	if g := [4]uint8{grey(0, 0), grey(1, 0), grey(2, 0), grey(5, 5)}; g != [4]uint8{255, 65, 1, 128} {
		t.Errorf("computed perturbation pixels %v, want [255 65 1 128]", g)
	}
	if !strings.Contains(body, "perturbation, amplified (from the PNGs)") {
		t.Errorf("computed perturbation not marked")
	}
	table := body[strings.Index(body, `id="samples"`):]
	if n := strings.Count(table, "<tr>"); n != 3 { // header and two samples
		t.Errorf("per-sample table has %d rows", n)
	}
	for _, want := range []string{"cat", "dog", "0.910", "0.770", "0.0392", ">yes<", ">no<", "50.0 %"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestUICrossTenant: another org's job, its report and its artifacts are
// 404, as if it did not exist.
func TestUICrossTenant(t *testing.T) {
	h := newAPIHarness(t)
	a, b := h.org("ui-tenant-a"), h.org("ui-tenant-b")
	j, _ := seedAttack(t, h, b.OrgID)
	an := seedJob(t, h, b.OrgID, jobs.Analysis.Name, jobs.AnalysisResult{Verdict: jobs.Verdict{Summary: "b's secret"}}, nil)
	u := newUIClient(t, h)
	u.login(a)
	for _, p := range []string{"/ui/jobs/" + j.ID, "/ui/jobs/" + j.ID + "/artifacts/0_original.png", "/ui/jobs/" + an.ID + "/report", "/ui/jobs/nope"} {
		res, body := u.get(p)
		if res.StatusCode != http.StatusNotFound || strings.Contains(body, "secret") || strings.Contains(body, "data:image") {
			t.Errorf("%s as another org: %d", p, res.StatusCode)
		}
	}
	owner := newUIClient(t, h)
	owner.login(b)
	if res, _ := owner.get("/ui/jobs/" + j.ID + "/artifacts/0_original.png"); res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" {
		t.Errorf("owner's artifact: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if _, list := u.get("/ui"); strings.Contains(list, j.ID) {
		t.Errorf("org a's list shows org b's job")
	}
}

// verifyResultWithChain is a verification with a C2PA chain of two
// manifests (the active one untrusted), no sensor signature and the pixel
// forensics without the CNN.
func verifyResultWithChain() jobs.VerifyResult {
	return jobs.VerifyResult{Label: "authentic_c2pa", Confidence: 0.93, Reasons: []string{"C2PA manifest intact"},
		File: jobs.VerifiedFile{ContentType: "image/jpeg", Size: 1234, SHA256: "ab12"},
		Details: jobs.VerifyDetails{
			C2PA: c2pa.Result{Found: true, Intact: true, Signer: "CN=Example Signer", Issuer: "CN=Example CA", SignatureValid: true, DataHashValid: true,
				ClaimGenerator: "warden-test/1.0", Algorithm: "ES256", Title: "photo.jpg", Format: "image/jpeg", Actions: []string{"c2pa.created"},
				Failures:            []string{"signingCredential.untrusted: signer does not chain to a trust anchor"},
				IngredientManifests: []c2pa.IngredientStatus{{Title: "parent.jpg", Manifest: "urn:uuid:parent-1", Valid: true, SignatureValid: true, TrustChainValid: true, Signer: "CN=Parent"}}},
			SensorPKI:   sensor.Result{Error: sensor.ErrMsgNoSignature},
			MLDetection: &forensics.Result{AIProbability: 0.125, PRNUScore: 0.4, CNNUnavailableReason: forensics.CNNUnavailable, Width: 64, Height: 48}}}
}

// TestUIVerificationPage: a verification's page shows the verdict, the
// C2PA chain (active manifest, signer, each validation status, the
// ingredient manifests) and the sensor and pixel evidence.
func TestUIVerificationPage(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ui-verify")
	res := verifyResultWithChain()
	j := seedJob(t, h, org.OrgID, jobs.VerifyMedia.Name, res, nil)
	u := newUIClient(t, h)
	u.login(org)
	r, body := u.get("/ui/jobs/" + j.ID)
	if r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, body)
	}
	body = html.UnescapeString(body)
	for _, want := range []string{`id="verdict">authentic_c2pa`, "93.0 %", "CN=Example Signer", "CN=Example CA", "warden-test/1.0", "ES256",
		"signature yes", "trust chain no", "data hash yes", "valid no", "signingCredential.untrusted", "urn:uuid:parent-1", "CN=Parent",
		sensor.ErrMsgNoSignature, "12.5 %", forensics.CNNUnavailable, "64 × 48", "c2pa.created"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestUIAnalysisReport: an analysis's page frames its report, which
// draws the curves as SVG and inlines the sample PNGs (rendered, not
// #ZgotmplZ), under a CSP that lets only the UI frame it.
func TestUIAnalysisReport(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ui-analysis")
	res := jobs.AnalysisResult{AISModelID: "m1", TaskType: "image_classification", AnalysisType: "EVA",
		Verdict: jobs.Verdict{Vulnerable: true, Severity: "high", Summary: "accuracy falls to 0.1 at ε = 0.03"},
		Curves:  []jobs.Curve{{Name: "Accuracy under attack", XLabel: "ε", YLabel: "accuracy", X: []float64{0, 0.01, 0.03}, Y: []float64{0.9, 0.5, 0.1}}},
		Samples: []jobs.Sample{{Caption: "sample 0", Images: map[string]string{"original": "0_original.png"}}}}
	j := seedJob(t, h, org.OrgID, jobs.Analysis.Name, res, map[string][]byte{"0_original.png": greyPNG(t, 4, 4, func(x, y int) uint8 { return 50 })})
	u := newUIClient(t, h)
	u.login(org)
	r, body := u.get("/ui/jobs/" + j.ID)
	if r.StatusCode != 200 || !strings.Contains(body, `<iframe id="report"`) || !strings.Contains(body, "/ui/jobs/"+j.ID+"/report") {
		t.Fatalf("job page: %d %s", r.StatusCode, body)
	}
	r, body = u.get("/ui/jobs/" + j.ID + "/report")
	if r.StatusCode != 200 || !strings.Contains(body, "<svg") || !strings.Contains(body, "<polyline") || !strings.Contains(body, "accuracy falls to 0.1") {
		t.Fatalf("report: %d %s", r.StatusCode, body)
	}
	if !strings.Contains(body, `src="data:image/png;base64,`) || strings.Contains(body, "ZgotmplZ") {
		t.Errorf("report image not inlined")
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self'") || strings.Contains(csp, "script") {
		t.Errorf("report CSP %q", csp)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ Name, Data string }

// readEvents sends the stream's events to a channel until it ends.
func readEvents(t *testing.T, body io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// waitEvent waits for an event for which match is true.
func waitEvent(t *testing.T, ch <-chan sseEvent, what string, match func(name string, row map[string]any) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before %s", what)
			}
			var row map[string]any
			if err := json.Unmarshal([]byte(ev.Data), &row); err != nil {
				t.Fatalf("event %s data %q: %v", ev.Name, ev.Data, err)
			}
			if match(ev.Name, row) {
				return
			}
		case <-deadline:
			t.Fatalf("no event: %s", what)
		}
	}
}

// TestUIEvents: /ui/events is text/event-stream; it sends the listed jobs
// on connect, a job inserted afterwards, and each change of a job's row
// (started, progress), a deleted job's removal, and never another org's
// job; signed out it is 401, and a logout ends an open stream.
func TestUIEvents(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ui-events"), h.org("ui-events-other")
	first := seedJob(t, h, org.OrgID, jobs.Probe.Name, nil, nil)
	u := newUIClient(t, h)
	if res, _ := u.get("/ui/events"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed out: %d", res.StatusCode)
	}
	u.login(org)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.base+"/ui/events", nil)
	res, err := u.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := readEvents(t, res.Body)
	waitEvent(t, ch, "the listed job", func(name string, r map[string]any) bool { return name == "job" && r["id"] == first.ID })
	seedJob(t, h, other.OrgID, jobs.Probe.Name, nil, nil)
	second := seedJob(t, h, org.OrgID, jobs.Probe.Name, nil, nil)
	waitEvent(t, ch, "the new job", func(name string, r map[string]any) bool {
		if r["id"] != first.ID && r["id"] != second.ID {
			t.Fatalf("event of a job not of the org: %v", r)
		}
		return name == "job" && r["id"] == second.ID && r["status"] == records.JobQueued && r["url"] == "/ui/jobs/"+second.ID
	})
	if _, ok, err := h.db.StartJob(context.Background(), second.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	waitEvent(t, ch, "the start", func(name string, r map[string]any) bool {
		return r["id"] == second.ID && r["status"] == records.JobInProgress
	})
	if err := h.db.SetProgress(context.Background(), second.ID, 40, "attacking"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "the progress", func(name string, r map[string]any) bool {
		return r["id"] == second.ID && r["progress"] == float64(40) && r["stage"] == "attacking"
	})
	if _, err := h.db.DeleteJob(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "the deleted job's removal", func(name string, r map[string]any) bool { return name == "remove" && r["id"] == first.ID })
	_, list := u.get("/ui")
	if res, _ := u.post("/ui/logout", url.Values{"csrf": {csrfOf(t, list)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	waitEvent(t, ch, "the end of the session", func(name string, _ map[string]any) bool { return name == "signed-out" })
	select {
	case _, open := <-ch:
		if open {
			t.Fatal("an event after signed-out")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream went on after signed-out")
	}
}
