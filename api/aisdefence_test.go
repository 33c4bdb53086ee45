package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/predict"
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
		{`{"target_fpr":0.7}`, 400, "target_fpr: must be above 0 and below 0.5"},
		{`{"target_fpr":0.5}`, 400, "target_fpr: must be above 0 and below 0.5"},
		{`{"target_fpr":-0.01}`, 400, "target_fpr: must be above 0 and below 0.5"},
		{`{"mode":"both","target_fpr":1}`, 400, "mode: one of flag, block"},
		{`{"epsilons":[2]}`, 400, "epsilons"},
		{`{"unknown":1}`, 400, "unknown field"},
	} {
		wantAISError(t, h.postJSON(base, c.body, as(org)), c.status, c.reason)
	}
	// Another org: not found.
	wantAISError(t, h.postJSON(base, `{}`, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", base, nil, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", base+"/profile.json", nil, as(other)), 404, "not found")

	start := h.postJSON(base, `{"mode":"Block","target_fpr":0.04}`, as(org))
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

// startModelWorker serves predictions through the real Redis protocol
// with a small logistic model of a [1, 2, 2] input: p(class 1) =
// σ(4·(x2 + x3 − x0 − x1)). It records the requests it got.
func startModelWorker(t *testing.T, h *apiHarness) *[]predict.Request {
	t.Helper()
	rdb := h.redis.MakeRedisClient().(redis.UniversalClient)
	var (
		mu  sync.Mutex
		got []predict.Request
	)
	var srv *predict.Server
	srv = predict.NewServer(rdb, func(req predict.Request) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		var x []float64
		rep := predict.Reply{Batch: 1}
		if err := json.Unmarshal(req.Input, &x); err != nil || len(x) != 4 {
			rep.Code, rep.Error = predict.CodeInvalidInput, "want 4 numbers"
		} else {
			p1 := float32(1 / (1 + math.Exp(-4*(x[2]+x[3]-x[0]-x[1]))))
			rep.Probabilities = map[string]float32{"0": 1 - p1, "1": p1}
			rep.Prediction, rep.Confidence = "1", p1
			if p1 < 0.5 {
				rep.Prediction, rep.Confidence = "0", 1-p1
			}
		}
		srv.Reply(context.Background(), req, rep)
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; rdb.Close() })
	testenv.Eventually(t, 5*time.Second, "the model worker to announce itself", func() bool {
		return rdb.ZScore(context.Background(), "warden:predict:workers", srv.ID).Err() == nil
	})
	return &got
}

// TestAISGuardedPredict: the guarded endpoint runs the model on the input
// and its squeezed copies, applies the profile as package defence does,
// counts the caller's stream in Redis, flags or (block mode) refuses,
// and refuses without a profile or for another org.
func TestAISGuardedPredict(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais-guard"), h.org("ais-guard-other")
	reg := h.aisRegister("IC", "EVA", as(org))
	id, _ := reg.Body["model_id"].(string)
	last := h.uploadAll(urlsOf(t, reg), icFiles(t))
	h.completeJob(last.Body["analysis_id"].(string), "{}", nil)
	path := "/api/ais/v1.5/model_registration/" + id + "/predict"

	wantAISError(t, h.postJSON(path, `{"input_data":[0,0,1,1]}`, as(org)), 412, "no completed defence analysis")
	got := startModelWorker(t, h)

	start := h.postJSON("/api/ais/v1.5/model_registration/"+id+"/defence", `{}`, as(org))
	flagID, _ := start.Body["analysis_id"].(string)
	prof := testProfile(t, id, "flag")
	h.completeJob(flagID, "{}", map[string][]byte{"profile.json": prof})
	var p defence.Profile
	if err := json.Unmarshal(prof, &p); err != nil {
		t.Fatal(err)
	}

	for i, c := range []struct {
		x    []float32
		flag bool
	}{
		{[]float32{0, 0, 1, 1}, false},        // a clean class-1 input
		{[]float32{0.9, 1, 0.1, 0}, false},    // a clean class-0 input
		{[]float32{0.5, 0.5, 0.5, 0.5}, true}, // far from both classes, answer moves under squeezing
		{[]float32{0, 1, 1, 0}, true},         // far from both classes
	} {
		in, _ := json.Marshal(map[string]any{"input_data": c.x})
		res := h.postJSON(path, string(in), as(org))
		if res.Code != 200 {
			t.Fatalf("input %v: %d %s", c.x, res.Code, res.Raw)
		}
		var doc struct {
			Prediction    string             `json:"prediction"`
			Probabilities map[string]float32 `json:"probabilities"`
			Defence       aisDefence         `json:"defence"`
		}
		if err := json.Unmarshal(res.Raw, &doc); err != nil {
			t.Fatal(err)
		}
		// What package defence says of the same input and answers.
		x := attacks.Batch{Data: c.x, Shape: []int{1, 1, 2, 2}}
		sq, _ := p.Squeezer.Squeeze(x)
		outs := [][]float32{probs(x.Data)}
		for _, b := range sq {
			outs = append(outs, probs(b.Data))
		}
		want, err := p.Check(defence.Sample{Shape: []int{1, 2, 2}, X: c.x, Outs: outs})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("input %v: %s %v fired %v", c.x, doc.Prediction, doc.Probabilities, want.Fired())
		if doc.Defence.Flagged != c.flag || want.Flagged != c.flag || doc.Defence.Mode != "flag" {
			t.Errorf("input %v: flagged %v (defence package %v), want %v: %s", c.x, doc.Defence.Flagged, want.Flagged, c.flag, res.Raw)
		}
		if len(doc.Defence.Checks) != len(want.Checks)+2 {
			t.Fatalf("checks: %s", res.Raw)
		}
		for k, w := range want.Checks {
			g := doc.Defence.Checks[k]
			if g.Name != w.Name || g.Fired != w.Fired || math.Abs(g.Score-w.Score) > 1e-4*(1+math.Abs(w.Score)) {
				t.Errorf("input %v: check %+v, defence package %+v", c.x, g, w)
			}
		}
		if doc.Defence.Stream.Queries != i+1 || doc.Defence.Checks[len(want.Checks)].Name != defence.CheckPRADA {
			t.Errorf("stream: %+v", doc.Defence)
		}
	}
	// Each prediction ran the model on the input and its two squeezed
	// copies, the registration's model zip served as a CV model.
	if n := len(*got); n != 12 {
		t.Errorf("the worker got %d requests, want 12", n)
	}
	if r := (*got)[0]; !r.Model.Zip || r.Model.ID != id || r.Model.BlobKey == "" || !strings.Contains(string(r.Model.Metadata), `"input_shape":[1,2,2]`) {
		t.Errorf("model sent: %+v", r.Model)
	}
	rdb := h.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "warden:defence:monitor:"+org.OrgID+":*:"+id+":"+flagID).Result()
	if err != nil || len(keys) != 1 {
		t.Errorf("monitor keys %v %v", keys, err)
	} else if ttl := rdb.TTL(context.Background(), keys[0]).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("monitor TTL %v", ttl)
	}

	// Refusals: inputs the model cannot take, another org, block mode.
	wantAISError(t, h.postJSON(path, `{"input_data":[0,1]}`, as(org)), 400, "input_data")
	wantAISError(t, h.postJSON(path, `{"input_data":[0,0,1,2]}`, as(org)), 400, "values must lie in")
	wantAISError(t, h.postJSON(path, `{"input_data":[0,0,1,1]}`, as(other)), 404, "not found")
	// A new profile: the client that waited for it predicts with it at
	// once, and its stream starts afresh under the new thresholds.
	blk := h.postJSON("/api/ais/v1.5/model_registration/"+id+"/defence", `{"mode":"block"}`, as(org))
	blkID, _ := blk.Body["analysis_id"].(string)
	h.completeJob(blkID, "{}", map[string][]byte{"profile.json": testProfile(t, id, "block")})
	if st := h.do("GET", "/api/ais/v1.5/analyses/"+blkID, nil, as(org)); st.Body["status"] != records.JobCompleted {
		t.Fatalf("block profile analysis: %d %s", st.Code, st.Raw)
	}
	if res := h.postJSON(path, `{"input_data":[0,0,1,1]}`, as(org)); res.Code != 200 {
		t.Errorf("clean input in block mode: %d %s", res.Code, res.Raw)
	} else if d := guardAnswer(t, res.Raw); d.Mode != "block" || d.Stream.Queries != 1 {
		t.Errorf("first prediction under the block profile: %s", res.Raw)
	}
	wantAISError(t, h.postJSON(path, `{"input_data":[0,1,1,0]}`, as(org)), 403, "blocked by the endpoint defence: ood")
	// Out-of-distribution queries raise the stream's OOD rate until the
	// monitor flags the stream; then even a clean input is refused.
	for i := 0; ; i++ {
		res := h.postJSON(path, `{"input_data":[0.5,0.5,0.5,0.5]}`, as(org))
		if res.Code != 403 {
			t.Fatalf("OOD input in block mode: %d %s", res.Code, res.Raw)
		}
		if strings.Contains(string(res.Raw), "ood_rate") {
			break
		}
		if i == 5 {
			t.Fatalf("the stream is not flagged after %d more OOD queries: %s", i+1, res.Raw)
		}
	}
	wantAISError(t, h.postJSON(path, `{"input_data":[0,0,1,1]}`, as(org)), 403, "blocked by the endpoint defence: ood_rate fired")

	// A profile completed out of this replica's sight (a worker) serves
	// within guardCacheTTL, with a fresh stream again.
	third := h.postJSON("/api/ais/v1.5/model_registration/"+id+"/defence", `{"mode":"flag"}`, as(org))
	thirdID, _ := third.Body["analysis_id"].(string)
	h.completeJob(thirdID, "{}", map[string][]byte{"profile.json": testProfile(t, id, "flag")})
	var served []byte
	testenv.Eventually(t, 10*time.Second, "the newest profile to serve", func() bool {
		res := h.postJSON(path, `{"input_data":[0,0,1,1]}`, as(org))
		served = res.Raw
		return res.Code == 200
	})
	if d := guardAnswer(t, served); d.Mode != "flag" || d.Flagged || d.Stream.Queries != 1 {
		t.Errorf("first prediction under the third profile: %s", served)
	}
	for _, p := range []string{flagID, blkID, thirdID} {
		if keys, err := rdb.Keys(context.Background(), "warden:defence:monitor:"+org.OrgID+":*:"+id+":"+p).Result(); err != nil || len(keys) != 1 {
			t.Errorf("monitor keys of profile %s: %v %v", p, keys, err)
		}
	}

	// Guarded predictions are in the prediction histogram by outcome.
	m := string(h.do("GET", "/metrics", nil).Raw)
	for _, want := range []string{`warden_predict_duration_seconds_count{outcome="guarded",stage="total"} 4`,
		`warden_predict_duration_seconds_count{outcome="flagged",stage="total"} 2`,
		`warden_predict_duration_seconds_count{outcome="blocked",stage="total"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// And each left an audit record, like plain predictions.
	var rows []records.Prediction
	status := map[string]int{}
	testenv.Eventually(t, 5*time.Second, "the guarded predictions' audit records", func() bool {
		rows, _ = h.db.OrgPredictions(context.Background(), org.OrgID, 100)
		clear(status)
		for _, r := range rows {
			status[r.Status]++
		}
		return status["guarded"] == 4 && status["flagged"] == 2 && status["blocked"] > 0
	})
	for _, r := range rows {
		if r.ModelID != id || r.CredentialID == "" || r.InputHash == "" || !strings.HasPrefix(r.ID, "prd_") {
			t.Errorf("audit record %+v", r)
		}
		if (r.Status == "blocked") != strings.Contains(r.Error, "blocked by the endpoint defence") {
			t.Errorf("audit record's error %+v", r)
		}
		if (r.Status == "guarded" || r.Status == "flagged") && r.Prediction == "" {
			t.Errorf("answered prediction without its answer %+v", r)
		}
	}
}

// guardAnswer is a guarded prediction's defence member.
func guardAnswer(t *testing.T, raw []byte) aisDefence {
	t.Helper()
	var doc struct {
		Defence aisDefence `json:"defence"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Defence
}

// aisDefence is the guarded endpoint's defence member.
type aisDefence struct {
	Flagged bool                  `json:"flagged"`
	Mode    string                `json:"mode"`
	Checks  []defence.CheckResult `json:"checks"`
	Stream  struct {
		Queries   int `json:"queries"`
		FlaggedAt int `json:"flagged_at"`
	} `json:"stream"`
}

// probs is startModelWorker's model.
func probs(x []float32) []float32 {
	p1 := float32(1 / (1 + math.Exp(-4*float64(x[2]+x[3]-x[0]-x[1]))))
	return []float32{1 - p1, p1}
}
