package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

// TestPredictWithoutWorker: with no worker serving predictions, a
// prediction answers 503 with Retry-After at once (not after the predict
// timeout), is recorded for audit, and bad input is refused before any
// worker is asked.
func TestPredictWithoutWorker(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	m := records.Model{ID: "mdl_noworker", OrgID: org.OrgID, Name: "m", Type: "CV", Status: records.ModelActive,
		Metadata: `{"input_shape":[4]}`, Metrics: `{"num_classes":2}`}
	if err := s.db.Gorm().Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body, hdr := s.do("POST", "/v1/models/mdl_noworker/predict", strings.NewReader(`{"input_data":[0,0.5,1,0]}`), "application/json", withKey(org))
	assertV1Error(t, code, body, 503, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("503 after %v", d)
	}
	if hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	code, body = s.postJSON("/v1/models/mdl_noworker/predict", map[string]any{"input_data": []float32{0, 2}}, withKey(org))
	assertV1Error(t, code, body, 400, "input_data")
	var audit []records.Prediction
	testenv.Eventually(t, 5*time.Second, "the audit record", func() bool {
		audit, _ = s.db.OrgPredictions(context.Background(), org.OrgID, 10)
		return len(audit) == 1
	})
	if a := audit[0]; a.Status != "unavailable" || a.ModelID != m.ID || a.InputHash == "" || a.CredentialID == "" {
		t.Errorf("audit record %+v", a)
	}
}

// TestPredictWorkerKilled: a worker process killed while it holds a
// prediction gives the client 503 within 2 s; the next prediction is
// served by another worker. The model is served by an endpoint (so the
// worker processes need no libtorch) that hangs while told to.
func TestPredictWorkerKilled(t *testing.T) {
	var hang atomic.Bool
	hung := make(chan struct{}, 1)
	release := make(chan struct{})
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs [][]float64 `json:"inputs"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if hang.Load() {
			select {
			case hung <- struct{}{}:
			default:
			}
			<-release
			return
		}
		out := make([][]float64, len(req.Inputs))
		for i := range out {
			out[i] = []float64{0.25, 0.75}
		}
		json.NewEncoder(w).Encode(map[string]any{"probabilities": out})
	}))
	t.Cleanup(ep.Close)
	t.Cleanup(func() { close(release) }) // runs before ep.Close: hung handlers return

	s := newStack(t, false)
	org := s.org("acme")
	first := s.workerProc("worker-1")
	code, m := s.postJSON("/v1/models", map[string]any{"name": "remote", "type": "CV", "model_endpoint_url": ep.URL,
		"metadata": json.RawMessage(`{"input_shape":[4]}`)}, withKey(org))
	if code != 201 {
		t.Fatalf("register: %d %v", code, m)
	}
	id := m["id"].(string)
	testenv.Eventually(t, 60*time.Second, "the endpoint model to be validated", func() bool {
		_, d := s.getJSON("/v1/models/"+id, withKey(org))
		return d["status"] == "active"
	})
	body := map[string]any{"input_data": []float32{0.1, 0.2, 0.3, 0.4}}
	if code, p := s.postJSON("/v1/models/"+id+"/predict", body, withKey(org)); code != 200 || p["prediction"] != "1" {
		t.Fatalf("predict on worker-1: %d %v", code, p)
	}

	hang.Store(true)
	type answer struct {
		code int
		body map[string]any
		at   time.Time
	}
	got := make(chan answer, 1)
	go func() {
		code, p := s.postJSON("/v1/models/"+id+"/predict", body, withKey(org))
		got <- answer{code, p, time.Now()}
	}()
	select {
	case <-hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the prediction never reached the endpoint")
	}
	s.workerProc("worker-2")
	ropt, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	testenv.Eventually(t, 60*time.Second, "worker-2 to serve predictions", func() bool {
		n, _ := rdb.ZCard(context.Background(), "warden:predict:workers").Result()
		return n == 2
	})
	killed := time.Now()
	first.Process.Kill()
	a := <-got
	assertV1Error(t, a.code, a.body, 503, "")
	if d := a.at.Sub(killed); d > 2*time.Second {
		t.Errorf("503 came %v after the kill, want within 2s", d)
	}
	hang.Store(false)
	if code, p := s.postJSON("/v1/models/"+id+"/predict", body, withKey(org)); code != 200 || p["prediction"] != "1" {
		t.Fatalf("predict after the kill: %d %v", code, p)
	}
}
