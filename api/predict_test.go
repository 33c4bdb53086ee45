package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/predict"
	"github.com/wardenlab/warden/records"
)

// fakePredictWorker serves predictions through the real Redis protocol
// with a scripted answer per first input value: 0.1 → a prediction, 0.2
// → invalid input, 0.3 → model failure, 0.4 → no answer (timeout), 0.5
// → held until released. It records the requests it got.
type fakePredictWorker struct {
	srv     *predict.Server
	mu      sync.Mutex
	got     []predict.Request
	release chan struct{}
}

func startFakePredictWorker(t *testing.T, h *apiHarness) *fakePredictWorker {
	t.Helper()
	rdb := h.redis.MakeRedisClient().(redis.UniversalClient)
	f := &fakePredictWorker{release: make(chan struct{})}
	f.srv = predict.NewServer(rdb, func(req predict.Request) {
		f.mu.Lock()
		f.got = append(f.got, req)
		f.mu.Unlock()
		var in []float64
		json.Unmarshal(req.Input, &in)
		rep := predict.Reply{Batch: 1, WorkerMS: 0.2, RunnerMS: 0.1, ForwardMS: 0.05}
		switch in[0] {
		case 0.1:
			rep.Prediction, rep.Confidence, rep.InputHash, rep.Probabilities = "cat", 0.9, "abc", map[string]float32{"cat": 0.9, "dog": 0.1}
		case 0.2:
			rep.Code, rep.Error = predict.CodeInvalidInput, "NLP models take a string"
		case 0.3:
			rep.Code, rep.Error = predict.CodeFailed, "runner exited: resource limit"
		case 0.4:
			return
		case 0.5:
			go func() { <-f.release; f.srv.Reply(context.Background(), req, rep) }()
			return
		}
		f.srv.Reply(context.Background(), req, rep)
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.srv.Run(ctx) }()
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
		cancel()
		<-done
		rdb.Close()
	})
	testenv.Eventually(t, 5*time.Second, "the fake worker to announce itself", func() bool {
		return rdb.ZScore(context.Background(), "warden:predict:workers", f.srv.ID).Err() == nil
	})
	return f
}

func predictModel(t *testing.T, h *apiHarness, org string) string {
	t.Helper()
	m := records.Model{ID: "mdl_" + strings.ToLower(org[len(org)-8:]), OrgID: org, Name: "m", Type: "CV", Status: records.ModelActive,
		BlobKey: "models/x.pt", Metadata: `{"input_shape":[4]}`, Metrics: `{"num_classes":2}`}
	if err := h.db.Gorm().Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// TestPredictAnswers: each worker answer becomes the spec's response or
// error shape, the worker gets the model as the API read it, and every
// prediction leaves an audit record.
func TestPredictAnswers(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.PredictTimeout = 800 * time.Millisecond })
	a := h.org("acme")
	id := predictModel(t, h, a.OrgID)
	f := startFakePredictWorker(t, h)
	post := func(first float64) apiResponse {
		b, _ := json.Marshal(map[string]any{"input_data": []float64{first, 0, 0, 0}})
		return h.postJSON("/v1/models/"+id+"/predict", string(b), as(a))
	}
	r := post(0.1)
	if r.Code != 200 || r.Body["prediction"] != "cat" || r.Body["model_id"] != id || r.Body["input_hash"] != "abc" {
		t.Fatalf("prediction: %d %s", r.Code, r.Raw)
	}
	assertSandboxError(t, "invalid input", post(0.2), http.StatusBadRequest, "invalid")
	failed := post(0.3)
	assertSandboxError(t, "model failure", failed, http.StatusInternalServerError, "internal")
	if !strings.Contains(string(failed.Raw), "resource limit") {
		t.Errorf("failure reason lost: %s", failed.Raw)
	}
	start := time.Now()
	assertSandboxError(t, "no answer", post(0.4), http.StatusGatewayTimeout, "timeout")
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("504 after %v, before the timeout", d)
	}
	f.mu.Lock()
	got := f.got[0]
	f.mu.Unlock()
	if got.Model.ID != id || got.Model.OrgID != a.OrgID || got.Model.BlobKey != "models/x.pt" || !strings.HasPrefix(got.ID, "prd_") {
		t.Errorf("the worker got %+v", got.Model)
	}
	var rows []records.Prediction
	testenv.Eventually(t, 5*time.Second, "four audit records", func() bool {
		rows, _ = h.db.OrgPredictions(context.Background(), a.OrgID, 10)
		return len(rows) == 4
	})
	status := map[string]int{}
	for _, row := range rows {
		status[row.Status]++
		if row.ModelID != id || row.CredentialID == "" || row.InputHash == "" {
			t.Errorf("audit record %+v", row)
		}
	}
	if status["ok"] != 1 || status["invalid"] != 1 || status["internal"] != 1 || status["timeout"] != 1 {
		t.Errorf("audit statuses %v", status)
	}
	// The stage histogram is exported.
	m := h.do("GET", "/metrics", nil)
	if !strings.Contains(string(m.Raw), `warden_predict_duration_seconds_count{outcome="ok",stage="forward"} 1`) {
		t.Errorf("/metrics lacks the predict stages")
	}
}

// TestPredictTenancyAndQuota: another org's model is 404 and reaches no
// worker; an org may have at most WARDEN_ORG_MAX_ACTIVE_JOBS predictions in
// flight (429 job_quota_exceeded), other orgs are unaffected, and the slot
// frees when a prediction ends.
func TestPredictTenancyAndQuota(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.OrgMaxActiveJobs = 1 })
	a, b := h.org("acme"), h.org("globex")
	idA, idB := predictModel(t, h, a.OrgID), predictModel(t, h, b.OrgID)
	f := startFakePredictWorker(t, h)
	body := func(first float64) string {
		raw, _ := json.Marshal(map[string]any{"input_data": []float64{first, 0, 0, 0}})
		return string(raw)
	}
	assertSandboxError(t, "cross-tenant", h.postJSON("/v1/models/"+idA+"/predict", body(0.1), as(b)), http.StatusNotFound, "not_found")
	held := make(chan apiResponse, 1)
	go func() { held <- h.postJSON("/v1/models/"+idA+"/predict", body(0.5), as(a)) }()
	testenv.Eventually(t, 5*time.Second, "the held prediction to reach the worker", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got) == 1
	})
	r := h.postJSON("/v1/models/"+idA+"/predict", body(0.1), as(a))
	assertSandboxError(t, "second in flight", r, http.StatusTooManyRequests, "job_quota_exceeded")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if r := h.postJSON("/v1/models/"+idB+"/predict", body(0.1), as(b)); r.Code != 200 {
		t.Errorf("other org: %d %s", r.Code, r.Raw)
	}
	close(f.release)
	if r := <-held; r.Code != 200 {
		t.Fatalf("held prediction: %d %s", r.Code, r.Raw)
	}
	if r := h.postJSON("/v1/models/"+idA+"/predict", body(0.1), as(a)); r.Code != 200 {
		t.Errorf("after the slot freed: %d %s", r.Code, r.Raw)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, req := range f.got {
		if req.Model.OrgID != a.OrgID && req.Model.ID == idA {
			t.Errorf("request for %s under org %s", req.Model.ID, req.Model.OrgID)
		}
	}
	if len(f.got) != 3 {
		t.Errorf("the worker got %d predictions, want 3 (the refused ones never reach it)", len(f.got))
	}
	f.mu.Unlock()
	// A deleted model is gone for predictions at once (the API's model
	// cache forgets it).
	if r := h.do("DELETE", "/v1/models/"+idA, nil, as(a)); r.Code != 200 {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	assertSandboxError(t, "deleted model", h.postJSON("/v1/models/"+idA+"/predict", body(0.1), as(a)), http.StatusNotFound, "not_found")
	f.mu.Lock()
}
