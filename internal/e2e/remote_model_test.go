package e2e

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
)

// brightnessEndpoint is someone else's model behind HTTP: 16 features in
// [0,1], P(bright) = σ(20·(mean − 0.5)). It counts the inputs it scores.
func brightnessEndpoint(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var queries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs [][]float64 `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		out := make([][]float64, len(req.Inputs))
		for i, x := range req.Inputs {
			var m float64
			for _, v := range x {
				m += v
			}
			m /= float64(len(x))
			p := 1 / (1 + math.Exp(-20*(m-0.5)))
			out[i] = []float64{1 - p, p}
		}
		queries.Add(int64(len(req.Inputs)))
		json.NewEncoder(w).Encode(map[string]any{"probabilities": out})
	}))
	t.Cleanup(srv.Close)
	return srv, &queries
}

// TestRemoteModelBlackBox: a model registered by endpoint URL is validated
// by probing it, predicts through it, and is attacked by the black-box
// methods over HTTP; white-box methods are refused.
func TestRemoteModelBlackBox(t *testing.T) {
	ep, queries := brightnessEndpoint(t)
	s := newStack(t, true)
	org := s.org("acme")
	meta := json.RawMessage(`{"input_shape":[16],"labels":["dark","bright"]}`)
	code, m := s.postJSON("/v1/models", map[string]any{"name": "remote", "type": "CV", "model_endpoint_url": ep.URL, "metadata": meta}, withKey(org))
	if code != 201 {
		t.Fatalf("register: %d %v", code, m)
	}
	id := m["id"].(string)
	var d map[string]any
	testenv.Eventually(t, 30*time.Second, "endpoint model to be validated", func() bool {
		_, d = s.getJSON("/v1/models/"+id, withKey(org))
		return d["status"] != "processing"
	})
	if d["status"] != "active" || d["model_endpoint_url"] != ep.URL || d["metrics"].(map[string]any)["num_classes"].(float64) != 2 {
		t.Fatalf("endpoint model: %v", d)
	}
	row := func(v float32) []float32 {
		x := make([]float32, 16)
		for i := range x {
			x[i] = v
		}
		return x
	}
	code, m = s.postJSON("/v1/models/"+id+"/predict", map[string]any{"input_data": row(0.8)}, withKey(org))
	if code != 200 || m["prediction"] != "bright" {
		t.Fatalf("predict: %d %v", code, m)
	}
	code, m = s.postJSON("/v1/attacks/launch", map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": row(0.6)}, withKey(org))
	assertV1Error(t, code, m, 400, "attack_method_id")

	for _, method := range []map[string]any{
		{"attack_method_id": "attack_hopskipjump", "attack_parameters": map[string]any{"max_queries": 2000}},
		{"attack_method_id": "attack_square", "attack_parameters": map[string]any{"eps": 0.2, "max_queries": 1000}},
	} {
		before := queries.Load()
		method["model_id"] = id
		method["inputs"] = [][]float32{row(0.6), row(0.4)}
		code, m := s.postJSON("/v1/attacks/launch", method, withKey(org))
		if code != 202 {
			t.Fatalf("launch %v: %d %v", method["attack_method_id"], code, m)
		}
		aid := m["attack_id"].(string)
		var st map[string]any
		testenv.Eventually(t, 60*time.Second, "remote attack", func() bool {
			_, st = s.getJSON("/v1/attacks/"+aid+"/status", withKey(org))
			return st["status"] == "completed" || st["status"] == "failed"
		})
		_, r := s.getJSON("/v1/attacks/"+aid+"/results", withKey(org))
		if st["status"] != "completed" || r["batch_success_rate"].(float64) < 1 {
			t.Fatalf("%v: %v %v", method["attack_method_id"], st, r)
		}
		if used := queries.Load() - before; used < 10 {
			t.Errorf("%v fooled the endpoint with only %d queries over HTTP", method["attack_method_id"], used)
		}
	}
	// An endpoint Warden may not reach is refused at registration.
	code, m = s.postJSON("/v1/models", map[string]any{"name": "meta", "type": "CV", "model_endpoint_url": "http://169.254.169.254/", "metadata": meta}, withKey(org))
	assertV1Error(t, code, m, 400, "model_endpoint_url")
	if !strings.Contains(m["details"].(map[string]any)["model_endpoint_url"].(string), "refusing") {
		t.Errorf("SSRF refusal: %v", m)
	}
}
