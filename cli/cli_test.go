package cli_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenlab/warden/cli"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

// TestSubmitVerifyWait submits a C2PA-signed JPEG with --wait against the
// real API and an in-process worker: the progress lines (not a TTY) end
// at completed 100 %, the table shows the verdict, the exit code is 0,
// `jobs get --json` parses to the same completed job, and the webhook
// delivery of the callback is listed by `webhooks deliveries` (table with
// headers, and --json).
func TestSubmitVerifyWait(t *testing.T) {
	s := newServer(t, true)
	org := s.org("acme")
	var hooks atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hooks.Add(1)
	}))
	defer hook.Close()
	ctx := context.Background()
	vars := s.creds(org)

	r := run(t, ctx, vars, false, "submit", "verify", repoFile(t, "media/c2pa/testdata/C.jpg"), "--wait", "--callback", hook.URL+"/hook")
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s", r.code, r.stderr)
	}
	id := field(r.stdout, "job_id")
	if rows := tableRows(r.stdout); len(rows) == 0 || strings.Join(rows[0], " ") != "FIELD VALUE" {
		t.Fatalf("table header %v, want FIELD VALUE", rows)
	}
	if field(r.stdout, "status") != "completed" || field(r.stdout, "kind") != "verify_media" || field(r.stdout, "result.label") != "authentic_c2pa" {
		t.Fatalf("table %q: want a completed verify_media job labelled authentic_c2pa", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 3 || lines[0] != "submitted "+id || lines[1] != id+" 0% queued" || !strings.HasPrefix(lines[len(lines)-1], id+" 100% completed") {
		t.Fatalf("progress lines %q: want submitted %s, %s 0%% queued … %s 100%% completed", lines, id, id, id)
	}
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("progress on a non-TTY has carriage returns: %q", r.stderr)
	}

	r = run(t, ctx, vars, false, "jobs", "get", id, "--json")
	var job struct {
		JobID  string `json:"job_id"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
		Result struct {
			Label string `json:"label"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || r.code != 0 {
		t.Fatalf("jobs get --json: exit %d, %v: %q", r.code, err, r.stdout)
	}
	if job.JobID != id || job.Status != "completed" || job.Result.Label != "authentic_c2pa" {
		t.Fatalf("jobs get --json: %+v", job)
	}

	r = run(t, ctx, vars, false, "webhooks", "deliveries", "--job", id)
	rows := tableRows(r.stdout)
	if r.code != 0 || len(rows) != 2 || strings.Join(rows[0], " ") != "ID JOB_ID EVENT STATUS ATTEMPTS URL CREATED DELIVERED" {
		t.Fatalf("webhooks deliveries: exit %d, rows %v", r.code, rows)
	}
	if rows[1][1] != id || rows[1][2] != "verification_completed" || rows[1][5] != hook.URL+"/hook" {
		t.Fatalf("delivery row %v: want job %s, verification_completed, %s/hook", rows[1], id, hook.URL)
	}
	r = run(t, ctx, vars, false, "webhooks", "deliveries", "--json")
	var dl struct {
		Total int
		Data  []struct {
			JobID string `json:"job_id"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &dl); err != nil || dl.Total != 1 || dl.Data[0].JobID != id {
		t.Fatalf("webhooks deliveries --json: %v %+v", err, dl)
	}
}

// TestJobsListGetCancel runs without a worker, so submissions stay
// queued: `jobs list` shows them newest first under its headers, --json
// parses, filters work, `jobs cancel` cancels once and then fails with the
// API's 409 on one line, and `jobs get --wait` of a cancelled job exits 3.
func TestJobsListGetCancel(t *testing.T) {
	s := newServer(t, false)
	org := s.org("acme")
	ctx := context.Background()
	vars := s.creds(org)
	img := repoFile(t, "media/c2pa/testdata/C.jpg")
	var ids []string
	for range 2 {
		r := run(t, ctx, vars, false, "submit", "verify", img, "--json")
		var a struct {
			JobID  string `json:"job_id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || r.code != 0 || a.Status != "pending" {
			t.Fatalf("submit verify --json: exit %d, %v, %q", r.code, err, r.stdout)
		}
		ids = append(ids, a.JobID)
	}
	r := run(t, ctx, vars, false, "jobs", "list")
	rows := tableRows(r.stdout)
	if r.code != 0 || len(rows) != 3 || strings.Join(rows[0], " ") != "JOB_ID KIND STATUS PROGRESS STAGE CREATED" {
		t.Fatalf("jobs list: exit %d, rows %v", r.code, rows)
	}
	if rows[1][0] != ids[1] || rows[2][0] != ids[0] || rows[1][1] != "verify_media" || rows[1][2] != "queued" {
		t.Fatalf("jobs list rows %v: want %s then %s, queued verify_media", rows, ids[1], ids[0])
	}

	r = run(t, ctx, vars, false, "jobs", "cancel", ids[0])
	rows = tableRows(r.stdout)
	if r.code != 0 || len(rows) != 2 || strings.Join(rows[0], " ") != "JOB_ID STATUS" || strings.Join(rows[1], " ") != ids[0]+" cancelled" {
		t.Fatalf("jobs cancel: exit %d, rows %v", r.code, rows)
	}
	r = run(t, ctx, vars, false, "jobs", "cancel", ids[0])
	if r.code != cli.ExitError {
		t.Fatalf("second cancel: exit %d, want %d", r.code, cli.ExitError)
	}
	oneErrorLine(t, r, "HTTP 409 conflict: job already cancelled")

	r = run(t, ctx, vars, false, "jobs", "list", "--json", "--status", "queued")
	var l struct {
		Total int
		Data  []struct {
			JobID  string `json:"job_id"`
			Status string `json:"status"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("jobs list --json: %v: %q", err, r.stdout)
	}
	if l.Total != 1 || len(l.Data) != 1 || l.Data[0].JobID != ids[1] {
		t.Fatalf("jobs list --json --status queued: %+v, want only %s", l, ids[1])
	}

	r = run(t, ctx, vars, false, "jobs", "get", ids[0], "--wait")
	if r.code != cli.ExitJobFailed || field(r.stdout, "status") != "cancelled" || !strings.Contains(r.stderr, "error: job "+ids[0]+" cancelled") {
		t.Fatalf("jobs get --wait of a cancelled job: exit %d, want %d, stdout %q, stderr %q", r.code, cli.ExitJobFailed, r.stdout, r.stderr)
	}
	r = run(t, ctx, vars, false, "jobs", "list", "--status", "done")
	if r.code != cli.ExitError {
		t.Fatalf("jobs list --status done: exit %d", r.code)
	}
	oneErrorLine(t, r, "HTTP 400 invalid", "status: one of queued")
}

// TestWaitInterrupted stops `jobs get --wait` of a queued job (no worker)
// as Ctrl-C does, by cancelling the context: exit 130, a message that the
// job goes on, and the job is still queued. On a TTY the bar is drawn in
// place.
func TestWaitInterrupted(t *testing.T) {
	s := newServer(t, false)
	org := s.org("acme")
	vars := s.creds(org)
	r := run(t, context.Background(), vars, false, "submit", "verify", repoFile(t, "media/c2pa/testdata/C.jpg"), "--json")
	var a struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	r = run(t, ctx, vars, true, "jobs", "get", a.JobID, "--wait")
	if r.code != cli.ExitInterrupted || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %v, want %d soon after the interrupt", r.code, time.Since(start), cli.ExitInterrupted)
	}
	if !strings.HasPrefix(r.stderr, "\r[------------------------------]   0% queued\x1b[K\n") || !strings.Contains(r.stderr, "stopped waiting; job "+a.JobID+" goes on") {
		t.Fatalf("stderr %q: want the bar at 0%% and the stop message", r.stderr)
	}
	r = run(t, context.Background(), vars, false, "jobs", "get", a.JobID)
	if r.code != 0 || field(r.stdout, "status") != "queued" {
		t.Fatalf("after the interrupt: exit %d, status %q, want queued", r.code, field(r.stdout, "status"))
	}
}

// TestCredentialsAndErrors: bad credentials exit 4 with the API's 401 on
// one line; an API key without its org, or no credentials at all, fail
// before any request; a missing file fails before any request (no job is
// created); each surface's error shape becomes one line (spec 003's
// {error, detail}, spec 002's {code, message, details}, AISpectra's, and
// RFC 6749's {error, error_description}); usage mistakes exit 2.
func TestCredentialsAndErrors(t *testing.T) {
	s := newServer(t, false)
	org := s.org("acme")
	ctx := context.Background()
	vars := s.creds(org)

	bad := s.creds(org)
	bad[cli.EnvAPIKey] = "wk_wrong"
	r := run(t, ctx, bad, false, "jobs", "list")
	if r.code != cli.ExitAuth {
		t.Fatalf("bad key: exit %d, want %d", r.code, cli.ExitAuth)
	}
	oneErrorLine(t, r, "HTTP 401 unauthorized: invalid API key", "check the credentials")

	_, viewerKey, err := s.db.CreateCredential(ctx, org.OrgID, records.CredentialAPIKey, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	viewer := s.creds(org)
	viewer[cli.EnvAPIKey] = viewerKey
	r = run(t, ctx, viewer, false, "jobs", "cancel", "550e8400-e29b-41d4-a716-446655440000")
	if r.code != cli.ExitAuth {
		t.Fatalf("viewer cancels: exit %d, want %d", r.code, cli.ExitAuth)
	}
	oneErrorLine(t, r, "HTTP 403 forbidden")

	r = run(t, ctx, map[string]string{cli.EnvURL: s.url, cli.EnvAPIKey: org.APIKey}, false, "jobs", "list")
	if r.code != cli.ExitError {
		t.Fatalf("key without org: exit %d", r.code)
	}
	oneErrorLine(t, r, "an API key needs its org id", cli.EnvOrgID)
	r = run(t, ctx, map[string]string{cli.EnvURL: s.url}, false, "jobs", "list")
	oneErrorLine(t, r, "no credentials")

	r = run(t, ctx, vars, false, "submit", "verify", filepath.Join(t.TempDir(), "missing.jpg"))
	if r.code != cli.ExitError {
		t.Fatalf("missing file: exit %d", r.code)
	}
	oneErrorLine(t, r, "missing.jpg", "no such file or directory")
	if r := run(t, ctx, vars, false, "jobs", "list", "--json"); !strings.Contains(r.stdout, `"total":0`) {
		t.Fatalf("a job exists after the missing file: %q", r.stdout)
	}

	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("plain text, not an image\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, ctx, vars, false, "submit", "verify", text)
	oneErrorLine(t, r, "HTTP 400: Invalid file type (file: detected text/plain")

	r = run(t, ctx, vars, false, "submit", "attack", "--model", "mdl_nope", "--method", "attack_fgsm", "--input", "[0.1,0.2]")
	oneErrorLine(t, r, "HTTP 404 not_found")
	r = run(t, ctx, vars, false, "submit", "attack", "--model", "mdl_nope", "--method", "attack_nope", "--input", "[0.1]")
	oneErrorLine(t, r, "HTTP 400 invalid: Invalid attack launch (attack_method_id: unknown attack method")

	r = run(t, ctx, vars, false, "submit", "analysis", "--model", "ais_nope", "--type", "MEA")
	oneErrorLine(t, r, "HTTP 404 not_found: model registration not found")
	r = run(t, ctx, vars, false, "submit", "analysis", "--task", "IC", "--type", "MEA", "--param", "query_budget=5",
		"--model-zip", text, "--data-zip", text, "--label-zip", text)
	oneErrorLine(t, r, "HTTP 400 invalid: Invalid analysis parameters (query_budget: must be between 10")
	r = run(t, ctx, vars, false, "submit", "analysis", "--task", "XX", "--type", "MEA", "--model-zip", text, "--data-zip", text, "--label-zip", text)
	oneErrorLine(t, r, "HTTP 400 invalid", "task_type")

	oauth := map[string]string{cli.EnvURL: s.url, cli.EnvOAuthID: org.ClientID, cli.EnvOAuthSecret: "wrong"}
	r = run(t, ctx, oauth, false, "jobs", "list")
	if r.code != cli.ExitAuth {
		t.Fatalf("bad OAuth2 secret: exit %d, want %d", r.code, cli.ExitAuth)
	}
	oneErrorLine(t, r, "HTTP 401 invalid_client")
	oauth[cli.EnvOAuthSecret] = org.ClientSecret
	if r := run(t, ctx, oauth, false, "jobs", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, "JOB_ID") {
		t.Fatalf("OAuth2 client: exit %d, %q", r.code, r.stdout)
	}

	for _, args := range [][]string{{"jobs"}, {"jobs", "get"}, {"jobs", "frob"}, {"submit", "attack", "--model", "m"}, {"jobs", "list", "--limit", "x"}} {
		if r := run(t, ctx, vars, false, args...); r.code != cli.ExitUsage || !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "client commands") {
			t.Errorf("warden %v: exit %d, want %d with one error line and the usage", args, r.code, cli.ExitUsage)
		}
	}
	if r := run(t, ctx, vars, false, "jobs", "list", "-h"); r.code != cli.ExitOK || !strings.Contains(r.stderr, "-status string") {
		t.Errorf("jobs list -h: exit %d, stderr %q: want the flags", r.code, r.stderr)
	}
}

// TestConfigFile reads credentials from a config file (0600), refuses one
// that others may read, and lets the environment and flags override it.
func TestConfigFile(t *testing.T) {
	s := newServer(t, false)
	org := s.org("acme")
	ctx := context.Background()
	home := t.TempDir()
	dir := filepath.Join(home, "warden")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	doc, _ := json.Marshal(map[string]string{"url": s.url, "org_id": org.OrgID, "api_key": org.APIKey})
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"XDG_CONFIG_HOME": home}
	r := run(t, ctx, vars, false, "jobs", "list")
	if r.code != cli.ExitError {
		t.Fatalf("0644 config: exit %d", r.code)
	}
	oneErrorLine(t, r, path, "0644", "chmod 600")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, ctx, vars, false, "jobs", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, "JOB_ID") {
		t.Fatalf("0600 config: exit %d", r.code)
	}
	vars[cli.EnvAPIKey] = "wk_wrong" // the environment overrides the file
	if r := run(t, ctx, vars, false, "jobs", "list"); r.code != cli.ExitAuth {
		t.Fatalf("env over file: exit %d, want %d", r.code, cli.ExitAuth)
	}
	if r := run(t, ctx, vars, false, "jobs", "list", "--api-key", org.APIKey); r.code != 0 { // flags override both
		t.Fatalf("flag over env: exit %d", r.code)
	}
	r = run(t, ctx, map[string]string{cli.EnvConfig: filepath.Join(home, "absent.json")}, false, "jobs", "list")
	oneErrorLine(t, r, "absent.json", "no such file")
}

// TestSubmitAttackWait registers someone else's model behind HTTP (a
// brightness classifier over 16 features: CGO-free workers attack such
// endpoints with black-box methods) and runs `submit attack --wait` with a
// TTY: the bar is redrawn in place up to 100 %, the job completes, and its
// result says the attack fooled the model.
func TestSubmitAttackWait(t *testing.T) {
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs [][]float64 `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := make([][]float64, len(req.Inputs))
		for i, x := range req.Inputs {
			var m float64
			for _, v := range x {
				m += v
			}
			p := 1 / (1 + math.Exp(-20*(m/float64(len(x))-0.5)))
			out[i] = []float64{1 - p, p}
		}
		json.NewEncoder(w).Encode(map[string]any{"probabilities": out})
	}))
	defer ep.Close()
	s := newServer(t, true)
	org := s.org("acme")
	vars := s.creds(org)
	body, _ := json.Marshal(map[string]any{"name": "remote", "type": "CV", "model_endpoint_url": ep.URL,
		"metadata": map[string]any{"input_shape": []int{16}, "labels": []string{"dark", "bright"}}})
	req, _ := http.NewRequest("POST", s.url+"/v1/models", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", org.APIKey)
	req.Header.Set("Org-Id", org.OrgID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || m.ID == "" {
		t.Fatalf("register the endpoint model: %d", resp.StatusCode)
	}
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, "the endpoint model to be validated", func() bool {
		r := run(t, ctx, vars, false, "jobs", "list", "--kind", "model_validate", "--status", "completed", "--json")
		return strings.Contains(r.stdout, `"total":1`)
	})
	input := "[" + strings.TrimSuffix(strings.Repeat("0.6,", 16), ",") + "]"
	r := run(t, ctx, vars, true, "submit", "attack", "--model", m.ID, "--method", "attack_square", "--input", input,
		"--param", "eps=0.2", "--param", "max_queries=1000", "--wait")
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	if field(r.stdout, "status") != "completed" || field(r.stdout, "kind") != "attack" || field(r.stdout, "result.attack_success") != "true" {
		t.Fatalf("table %q: want a completed attack that succeeded", r.stdout)
	}
	if !strings.Contains(r.stderr, "\r[##############################] 100% completed") || !strings.HasSuffix(r.stderr, "\x1b[K\n") {
		t.Fatalf("stderr %q: want the bar redrawn up to 100%% and its line ended", r.stderr)
	}
}

// zipOf writes a zip of name → content pairs and returns its path.
func zipOf(t *testing.T, name string, files ...string) string {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		f, err := w.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(files[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSubmitAnalysis registers an IC model with `submit analysis --task`
// (registration, then the three zips PUT to their signed URLs), which
// queues its MEA analysis; `submit analysis --model` queues an EVA on the
// same files. No worker runs (analyses need libtorch): both stay queued,
// `jobs list --kind analysis` shows them and `jobs cancel` cancels one.
func TestSubmitAnalysis(t *testing.T) {
	s := newServer(t, false)
	org := s.org("acme")
	ctx := context.Background()
	vars := s.creds(org)
	img, err := os.ReadFile(repoFile(t, "media/c2pa/testdata/C.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	torchscript := string(func() []byte {
		b, _ := os.ReadFile(zipOf(t, "m.pt", "m/data.pkl", "x", "m/code/m.py", "def forward"))
		return b
	}())
	model := zipOf(t, "model.zip", "model.pt", torchscript)
	data := zipOf(t, "data.zip", "images/a.jpg", string(img), "images/b.jpg", string(img))
	label := zipOf(t, "label.zip", "label.csv", "image,label\na.jpg,3\nb.jpg,7\n")

	r := run(t, ctx, vars, false, "submit", "analysis", "--task", "IC", "--type", "MEA", "--param", "query_budget=100",
		"--model-zip", model, "--data-zip", data, "--label-zip", label)
	rows := tableRows(r.stdout)
	if r.code != 0 || len(rows) != 2 || strings.Join(rows[0], " ") != "JOB_ID STATUS" || !strings.HasPrefix(rows[1][0], "ana_") {
		t.Fatalf("submit analysis --task: exit %d, rows %v", r.code, rows)
	}
	if r.stderr != "uploaded data\nuploaded label\nuploaded model\n" {
		t.Fatalf("stderr %q: want the three uploads", r.stderr)
	}
	mea := rows[1][0]
	r = run(t, ctx, vars, false, "jobs", "get", mea)
	if field(r.stdout, "kind") != "analysis" || field(r.stdout, "status") != "queued" {
		t.Fatalf("jobs get %s: %q, want a queued analysis", mea, r.stdout)
	}

	var reg struct {
		ModelID string `json:"model_id"`
	}
	req, _ := http.NewRequest("GET", s.url+"/api/ais/v1.5/analyses/"+mea, nil)
	req.Header.Set("x-api-key", org.APIKey)
	req.Header.Set("Org-Id", org.OrgID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	r = run(t, ctx, vars, false, "submit", "analysis", "--model", reg.ModelID, "--type", "EVA", "--params", `{"epsilons":[0.1,0.3]}`, "--json")
	var a struct {
		AnalysisID   string `json:"analysis_id"`
		AnalysisType string `json:"analysis_type"`
		Status       string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || r.code != 0 || a.AnalysisType != "EVA" || a.Status != "queued" {
		t.Fatalf("submit analysis --model: exit %d, %v, %+v", r.code, err, a)
	}
	r = run(t, ctx, vars, false, "jobs", "list", "--kind", "analysis")
	if rows := tableRows(r.stdout); len(rows) != 3 || rows[1][0] != a.AnalysisID || rows[2][0] != mea {
		t.Fatalf("jobs list --kind analysis: %v, want %s then %s", rows, a.AnalysisID, mea)
	}
	if r := run(t, ctx, vars, false, "jobs", "cancel", a.AnalysisID); r.code != 0 || !strings.Contains(r.stdout, "cancelled") {
		t.Fatalf("jobs cancel %s: exit %d", a.AnalysisID, r.code)
	}
}

// TestSubmitVerifyURLAndAnonymous: `submit verify URL --wait` has Warden
// fetch the file (a loopback file server, which the test configuration
// allows), and without any credentials the same command verifies
// anonymously, following the spec 003 status route instead of /v1/jobs.
func TestSubmitVerifyURLAndAnonymous(t *testing.T) {
	s := newServer(t, true)
	org := s.org("acme")
	ctx := context.Background()
	files := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(repoFile(t, "media/c2pa/testdata/C.jpg")))))
	defer files.Close()

	r := run(t, ctx, s.creds(org), false, "submit", "verify", files.URL+"/C.jpg", "--wait")
	if r.code != 0 || field(r.stdout, "status") != "completed" || field(r.stdout, "result.label") != "authentic_c2pa" {
		t.Fatalf("verify URL: exit %d, stdout %q", r.code, r.stdout)
	}
	r = run(t, ctx, s.creds(org), false, "submit", "verify", files.URL+"/absent.jpg")
	oneErrorLine(t, r, "HTTP 400: Download failed (url: the server answered 404)")

	anon := map[string]string{cli.EnvURL: s.url}
	r = run(t, ctx, anon, false, "submit", "verify", repoFile(t, "media/c2pa/testdata/C.jpg"), "--wait", "--json")
	var v struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
		Label  string `json:"label"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || v.Status != "completed" || v.Label != "authentic_c2pa" {
		t.Fatalf("anonymous verify --wait --json: exit %d, %v, %+v", r.code, err, v)
	}
	if !strings.HasSuffix(r.stderr, v.JobID+" 100% completed done\n") {
		t.Fatalf("anonymous progress %q", r.stderr)
	}
	if r := run(t, ctx, s.creds(org), false, "jobs", "get", v.JobID); r.code != cli.ExitError || !strings.Contains(r.stderr, "HTTP 404") {
		t.Fatalf("an anonymous job is not the org's: exit %d, %q", r.code, r.stderr)
	}
}
