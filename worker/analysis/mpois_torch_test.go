//go:build torch

package analysis_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// BadNets backdoor planted in a digits CNN: a bright 2×2 patch in the
// bottom-right corner of the digits enlarged to 16×16 (a patch of 1.6 %
// of the image, as BadNets' 3×3 to 4×4 on 28×28 MNIST) sends any digit to
// backdoorTarget.
const (
	backdoorTarget = 7
	backdoorShare  = 0.1 // of the training set, stamped copies of other digits
	side           = 16
)

// enlarge2 repeats each pixel of n 8×8 images 2×2 times.
func enlarge2(x []float32, n int) []float32 {
	out := make([]float32, n*side*side)
	for i := 0; i < n; i++ {
		for y := 0; y < side; y++ {
			for xx := 0; xx < side; xx++ {
				out[(i*side+y)*side+xx] = x[i*64+(y/2)*8+xx/2]
			}
		}
	}
	return out
}

// stampCorner sets the 2×2 bottom-right pixels of a 16×16 image to 1.
func stampCorner(img []float32) {
	for _, y := range []int{side - 2, side - 1} {
		for _, x := range []int{side - 2, side - 1} {
			img[y*side+x] = 1
		}
	}
}

// poisonedDigits is the (enlarged) training set plus stamped copies of
// backdoorShare of it (digits other than the target) relabelled to the
// target.
func poisonedDigits(xs []float32, ys []int64) ([]float32, []int64) {
	n := len(ys)
	px, py := append([]float32(nil), xs...), append([]int64(nil), ys...)
	want := int(backdoorShare * float64(n))
	for i := 0; i < n && want > 0; i += 3 {
		if ys[i] == backdoorTarget {
			continue
		}
		img := append([]float32(nil), xs[i*side*side:(i+1)*side*side]...)
		stampCorner(img)
		px, py = append(px, img...), append(py, backdoorTarget)
		want--
	}
	return px, py
}

// digits16 is the held-out digits enlarged to 16×16 as an IC dataset.
func digits16(t testing.TB) *ais.Dataset {
	ds := heldOutDigits(t)
	ds.X = attacks.Batch{Data: enlarge2(ds.X.Data, ds.N()), Shape: []int{ds.N(), 1, side, side}}
	return ds
}

// mpoisModels trains on the enlarged digits' training split the
// backdoored CNN, a clean CNN and two clean references (other seeds).
func mpoisModels(t testing.TB) map[string]string {
	t.Helper()
	train, _, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	xs := enlarge2(train.X, train.N())
	dir := t.TempDir()
	start := time.Now()
	cfg := torch.TrainConfig{Hidden: []int64{16, 32}, Epochs: 4, BatchSize: 32, LR: 5e-3}
	paths := map[string]string{}
	px, py := poisonedDigits(xs, train.Y)
	for _, m := range []struct {
		name string
		seed int64
		x    []float32
		y    []int64
	}{
		{"backdoored", 2, px, py},
		{"clean", 3, xs, train.Y},
		{"ref1", 4, xs, train.Y},
		{"ref2", 5, xs, train.Y},
	} {
		c := cfg
		c.Seed = m.seed
		paths[m.name] = filepath.Join(dir, m.name+".pt")
		if _, err := torch.TrainCNN(m.x, m.y, []int64{1, side, side}, 10, c, paths[m.name]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("4 digits CNNs trained in %.1fs", time.Since(start).Seconds())
	return paths
}

// runMPois runs model poisoning on the model with the two references.
func runMPois(t *testing.T, paths map[string]string, model string, ds *ais.Dataset, p jobs.AnalysisParams, st *store) jobs.AnalysisResult {
	t.Helper()
	load := func(path string) analysis.Victim {
		v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeV() })
		return v
	}
	v := load(model)
	env := st.env(t)
	env.References = []analysis.Victim{load(paths["ref1"]), load(paths["ref2"])}
	start := time.Now()
	r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{AISModelID: "m1", TaskType: ais.TaskIC,
		AnalysisType: ais.AnalysisModelPoisoning, Params: p}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("model poisoning (%d steps) in %.2fs: %s — %s", r.Params.TriggerSteps, time.Since(start).Seconds(), r.Verdict.Severity, r.Verdict.Summary)
	t.Logf("  %v", r.Table.Columns)
	for _, row := range r.Table.Rows {
		t.Logf("  %v", row)
	}
	return r
}

// TestModelPoisoningDigits: the BadNets-backdoored digits CNN is flagged
// with its target (7) and the trigger it recovers sits in the stamped
// corner; a clean CNN of the same recipe passes.
func TestModelPoisoningDigits(t *testing.T) {
	paths := mpoisModels(t)
	ds := digits16(t)
	p := jobs.AnalysisParams{TriggerSteps: 100, Samples: 150}
	st := &store{}
	r := runMPois(t, paths, paths["backdoored"], ds, p, st)
	if !r.Verdict.Vulnerable || metric(t, r, "suspected_target") != backdoorTarget {
		t.Errorf("backdoored CNN: verdict %+v, suspected target %v", r.Verdict, metric(t, r, "suspected_target"))
	}
	if ai := metric(t, r, "anomaly_index"); ai <= 2 {
		t.Errorf("anomaly index %.3f ≤ 2", ai)
	}
	if d := metric(t, r, "disagreement"); d < 0.8 {
		t.Errorf("disagreement %.3f < 0.8", d)
	}
	for _, name := range []string{"model_accuracy", "reference_1_accuracy", "reference_2_accuracy"} {
		if a := metric(t, r, name); a < 0.85 {
			t.Errorf("%s %.3f < 0.85", name, a)
		}
	}
	// The recovered trigger is the planted one: the target's four largest
	// mask values lie in the bottom-right 3×3 corner.
	var trig struct {
		Class int       `json:"class"`
		Mask  []float64 `json:"mask"`
	}
	if err := json.Unmarshal(st.files["mpois_trigger.json"], &trig); err != nil || trig.Class != backdoorTarget || len(trig.Mask) != side*side {
		t.Fatalf("trigger %+v: %v", trig, err)
	}
	order := make([]int, len(trig.Mask))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return trig.Mask[order[a]] > trig.Mask[order[b]] })
	for _, q := range order[:4] {
		t.Logf("mask (%d, %d) = %.3f", q/side, q%side, trig.Mask[q])
		if q/side < side-3 || q%side < side-3 {
			t.Errorf("a largest mask value at (%d, %d), outside the planted corner", q/side, q%side)
		}
	}
	if len(r.Samples) == 0 || r.Samples[0].Images["stamped"] == "" || len(r.Artifacts) != 4 || len(r.Curves) != 3 {
		t.Errorf("samples %+v, artifacts %+v, curves %d", r.Samples, r.Artifacts, len(r.Curves))
	}

	c := runMPois(t, paths, paths["clean"], ds, p, &store{})
	if c.Verdict.Vulnerable {
		t.Errorf("clean CNN flagged: %+v", c.Verdict)
	}
}
