//go:build torch

package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/storage"
)

// registerHostile uploads one of hostile_models.py's models and waits for
// it to be active.
func registerHostile(t *testing.T, s *stack, org storage.NewOrgCredentials, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	code, m := uploadModel(t, s, org, file, b, `{"input_shape":[4]}`)
	if code != 201 {
		t.Fatalf("%s: register: %d %v", file, code, m)
	}
	id := m["id"].(string)
	if d := waitModel(t, s, org, id); d["status"] != "active" {
		t.Fatalf("%s: %v", file, d)
	}
	return id
}

// TestPredictNeverReturns: a model whose forward pass never ends answers
// 504 at WARDEN_PREDICT_TIMEOUT, its runner is killed (it leaves the
// worker's warm models), and the same worker keeps serving other models.
func TestPredictNeverReturns(t *testing.T) {
	dir := hostileModels(t, filepath.Join(t.TempDir(), "unused"))
	s := newStack(t, true, func(c *config.Config) { c.PredictTimeout = 3 * time.Second })
	org := s.org("acme")
	loops := registerHostile(t, s, org, dir, "loops.pt")
	honest := registerHostile(t, s, org, dir, "honest.pt")
	positive := map[string]any{"input_data": []float32{1, 1, 1, 1}}
	if code, p := s.postJSON("/v1/models/"+honest+"/predict", positive, withKey(org)); code != 200 {
		t.Fatalf("honest model: %d %v", code, p)
	}
	// Zeros pass (the loop only runs on a positive sum): the runner is warm.
	if code, p := s.postJSON("/v1/models/"+loops+"/predict", map[string]any{"input_data": []float32{0, 0, 0, 0}}, withKey(org)); code != 200 {
		t.Fatalf("loops model on zeros: %d %v", code, p)
	}
	ropt, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	warm := func(id string) bool {
		n, _ := rdb.ZCard(context.Background(), "warden:predict:warm:"+id).Result()
		return n > 0
	}
	testenv.Eventually(t, 5*time.Second, "the loops model to be warm", func() bool { return warm(loops) })

	start := time.Now()
	code, p := s.postJSON("/v1/models/"+loops+"/predict", positive, withKey(org))
	assertV1Error(t, code, p, 504, "")
	if d := time.Since(start); d < 2500*time.Millisecond || d > 6*time.Second {
		t.Errorf("504 after %v, want about the 3s timeout", d)
	}
	testenv.Eventually(t, 5*time.Second, "the looping runner to be killed", func() bool { return !warm(loops) })
	if code, p := s.postJSON("/v1/models/"+honest+"/predict", positive, withKey(org)); code != 200 {
		t.Fatalf("honest model after the timeout: %d %v", code, p)
	}
}

// TestBatchedPredictionsStayApart: concurrent predictions from two orgs on
// two models share forward passes per model, and every caller gets the row
// of its own input: the same answer it gets alone.
func TestBatchedPredictionsStayApart(t *testing.T) {
	dir := hostileModels(t, filepath.Join(t.TempDir(), "unused"))
	s := newStack(t, true, func(c *config.Config) {
		c.PredictBatchWindow = 5 * time.Millisecond
		c.RateCredential, c.RateGeneral = 1e6, 1e6
	})
	orgs := []storage.NewOrgCredentials{s.org("acme"), s.org("globex")}
	models := []string{registerHostile(t, s, orgs[0], dir, "honest.pt"), registerHostile(t, s, orgs[1], dir, "honest.pt")}
	const n = 48
	input := func(o, i int) []float32 { // distinct, within the model's [0, 1]
		return []float32{float32(i) / n, float32(o) / 2, float32(i%7) / 7, 1 - float32(i)/n}
	}
	type answer struct {
		hash  string
		probs map[string]any
	}
	// Alone, one at a time: no batching.
	alone := map[[2]int]answer{}
	for o := range orgs {
		for i := 0; i < n; i++ {
			code, p := s.postJSON("/v1/models/"+models[o]+"/predict", map[string]any{"input_data": input(o, i)}, withKey(orgs[o]))
			if code != 200 {
				t.Fatalf("alone %d/%d: %d %v", o, i, code, p)
			}
			alone[[2]int{o, i}] = answer{p["input_hash"].(string), p["probabilities"].(map[string]any)}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for o := range orgs {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, p := s.postJSON("/v1/models/"+models[o]+"/predict", map[string]any{"input_data": input(o, i)}, withKey(orgs[o]))
				if code != 200 {
					errs <- fmt.Errorf("together %d/%d: %d %v", o, i, code, p)
					return
				}
				want := alone[[2]int{o, i}]
				if p["model_id"] != models[o] || p["input_hash"] != want.hash {
					errs <- fmt.Errorf("together %d/%d: model %v hash %v, want %s %s", o, i, p["model_id"], p["input_hash"], models[o], want.hash)
					return
				}
				for k, v := range want.probs {
					if math.Abs(p["probabilities"].(map[string]any)[k].(float64)-v.(float64)) > 1e-5 {
						errs <- fmt.Errorf("together %d/%d: probabilities %v, alone %v", o, i, p["probabilities"], want.probs)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The audit trail shows the batching happened, per org.
	for o := range orgs {
		var rows []struct{ Batch int }
		testenv.Eventually(t, 5*time.Second, "the audit records", func() bool {
			s.db.Gorm().Table("predictions").Where("org_id = ?", orgs[o].OrgID).Select("batch").Find(&rows)
			return len(rows) == 2*n
		})
		biggest := 0
		for _, r := range rows {
			biggest = max(biggest, r.Batch)
		}
		if biggest < 2 {
			t.Errorf("org %d: no prediction shared a forward pass (largest batch %d)", o, biggest)
		}
	}
}
