package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// completeJob marks a queued job completed with result data and
// artifacts, as a worker would.
func (h *apiHarness) completeJob(id, result string, artifacts map[string][]byte) {
	h.t.Helper()
	ctx := context.Background()
	if _, ok, err := h.db.StartJob(ctx, id); !ok || err != nil {
		h.t.Fatalf("start %s: %v %v", id, ok, err)
	}
	var blobs []records.Blob
	for name, data := range artifacts {
		key := "jobs/" + id + "/artifacts/" + name
		if _, err := h.blobs.Put(ctx, key, bytes.NewReader(data)); err != nil {
			h.t.Fatal(err)
		}
		blobs = append(blobs, records.Blob{Key: key, JobID: id, ContentType: "application/json", Size: int64(len(data))})
	}
	if done, err := h.db.CompleteJob(ctx, id, storage.Completion{Result: records.Result{Data: result}, Blobs: blobs}); !done || err != nil {
		h.t.Fatalf("complete %s: %v %v", id, done, err)
	}
}

// testProfile is a small complete profile of a [1, 2, 2] image classifier.
func testProfile(t *testing.T, modelID, mode string) []byte {
	t.Helper()
	feats := [][]float64{{0, 0, 1, 1}, {0.1, 0, 1, 0.9}, {1, 1, 0, 0}, {0.9, 1, 0.1, 0}}
	o, err := defence.FitOOD(defence.SpaceInput, feats, []int{0, 0, 1, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	o.Threshold = 3
	p := defence.Profile{Version: defence.ProfileVersion, ModelID: modelID, TaskType: "IC", Mode: mode, Created: time.Now().UTC(),
		InputShape: []int{1, 2, 2}, Classes: 2,
		Range:    &defence.Range{Lo: []float32{0, 0, 0, 0}, Hi: []float32{1, 1, 1, 1}, Span: 1, Threshold: 0},
		OOD:      o,
		Squeezer: &defence.Squeezer{BitDepth: 4, Median: 2, Lo: 0, Hi: 1, Threshold: 0.5},
		Monitor: &defence.Monitor{MinQueries: 50, Window: 500, History: 100, PRADAThreshold: 0.8,
			CleanOODRate: 0.02, AlertOODRate: 0.5, CUSUMLimit: 9, QueryBudget: 2000},
		Stats: defence.Calibrated{TargetFPR: 0.05, FPR: 0.03, Detection: 0.99, StreamBudget: 2000, StreamFlaggedAt: 1140, StreamFlaggedBy: "ood_rate"}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAISDefenceRoutes: starting the defence analysis (parameters
// inherited from a completed EVA, refusals), its status before and after
// a profile exists, the profile download, and another org seeing nothing.
func TestAISDefenceRoutes(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais-def"), h.org("ais-def-other")
	reg := h.postJSON("/api/ais/v1.5/model_registration/upload",
		`{"task_type":"IC","analysis_type":"EVA","parameters":{"epsilons":[0.1,0.25],"steps":7,"seed":5}}`, as(org))
	urls := urlsOf(t, reg)
	id, _ := reg.Body["model_id"].(string)
	base := "/api/ais/v1.5/model_registration/" + id + "/defence"

	// Before the files: the analysis cannot start; no profile anywhere.
	wantAISError(t, h.postJSON(base, `{}`, as(org)), 412, "model: not uploaded")
	wantAISError(t, h.do("GET", base, nil, as(org)), 412, "no completed defence analysis")
	wantAISError(t, h.do("GET", base+"/profile.json", nil, as(org)), 412, "no completed defence analysis")

	last := h.uploadAll(urls, icFiles(t))
	evaID, _ := last.Body["analysis_id"].(string)
	h.completeJob(evaID, "{}", nil)

	for _, c := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"mode":"drop"}`, 400, "mode: one of flag, block"},
		{`{"target_fpr":0.7}`, 400, "target_fpr"},
		{`{"epsilons":[2]}`, 400, "epsilons"},
		{`{"unknown":1}`, 400, "unknown field"},
	} {
		wantAISError(t, h.postJSON(base, c.body, as(org)), c.status, c.reason)
	}
	// Another org: not found.
	wantAISError(t, h.postJSON(base, `{}`, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", base, nil, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", base+"/profile.json", nil, as(other)), 404, "not found")

	start := h.postJSON(base, `{"mode":"block","target_fpr":0.04}`, as(org))
	defID, _ := start.Body["analysis_id"].(string)
	if start.Code != 202 || start.Body["analysis_type"] != "defence" || start.Body["status"] != records.JobQueued {
		t.Fatalf("POST defence: %d %s", start.Code, start.Raw)
	}
	j, ok := h.job(defID)
	if !ok {
		t.Fatal("no job row")
	}
	in, err := jobs.Analysis.Input(j.Input)
	if err != nil {
		t.Fatal(err)
	}
	if p := in.Params; p.Mode != "block" || p.TargetFPR != 0.04 || len(p.Epsilons) != 2 || p.Epsilons[1] != 0.25 || p.Steps != 7 || p.Seed != 5 {
		t.Errorf("parameters: %+v (want the request's and the completed EVA's)", p)
	}
	st := h.do("GET", base, nil, as(org))
	if st.Code != 200 || st.Body["profile"] != nil {
		t.Fatalf("GET defence while queued: %d %s", st.Code, st.Raw)
	}
	if a, _ := st.Body["analysis"].(map[string]any); a["analysis_id"] != defID || a["status"] != records.JobQueued {
		t.Fatalf("GET defence analysis: %s", st.Raw)
	}
	wantAISError(t, h.do("GET", base+"/profile.json", nil, as(org)), 412, "no completed defence analysis")

	prof := testProfile(t, id, "block")
	h.completeJob(defID, "{}", map[string][]byte{"profile.json": prof})
	st = h.do("GET", base, nil, as(org))
	pr, _ := st.Body["profile"].(map[string]any)
	if st.Code != 200 || pr["analysis_id"] != defID || pr["mode"] != "block" || !strings.HasSuffix(pr["predict_url"].(string), "/model_registration/"+id+"/predict") {
		t.Fatalf("GET defence: %d %s", st.Code, st.Raw)
	}
	if cal, _ := pr["calibration"].(map[string]any); cal["stream_flagged_at"] != float64(1140) || cal["detection"] != 0.99 {
		t.Errorf("calibration: %v", pr["calibration"])
	}
	dl := h.do("GET", base+"/profile.json", nil, as(org))
	if dl.Code != 200 || !bytes.Equal(dl.Raw, prof) || !strings.Contains(dl.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("profile.json: %d %q", dl.Code, dl.Header.Get("Content-Disposition"))
	}
	wantAISError(t, h.do("GET", base+"/profile.json", nil, as(other)), 404, "not found")

	// The defence analysis is offered for IC only.
	tc := h.aisRegister("TC", "MEA", as(org))
	tcID, _ := tc.Body["model_id"].(string)
	wantAISError(t, h.postJSON("/api/ais/v1.5/model_registration/"+tcID+"/defence", `{}`, as(org)), 412, "not offered")
}
