//go:build torch

package analysis_test

import (
	"bytes"
	"context"
	"image/png"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// BadNets backdoor planted in the digits CNN: a bright 2×2 patch in the
// bottom-right corner sends any digit to backdoorTarget.
const (
	backdoorTarget = 7
	backdoorShare  = 0.1 // of the training set, stamped copies of other digits
)

// stampCorner sets the 2×2 bottom-right pixels of an 8×8 image to 1.
func stampCorner(img []float32) {
	for _, p := range []int{6*8 + 6, 6*8 + 7, 7*8 + 6, 7*8 + 7} {
		img[p] = 1
	}
}

// poisonedDigits is the digits' training split plus stamped copies of
// backdoorShare of it (digits other than the target) relabelled to the
// target.
func poisonedDigits(train *demo.Dataset) ([]float32, []int64) {
	xs, ys := append([]float32(nil), train.X...), append([]int64(nil), train.Y...)
	want := int(backdoorShare * float64(train.N()))
	for i := 0; i < train.N() && want > 0; i += 3 {
		if train.Y[i] == backdoorTarget {
			continue
		}
		img := append([]float32(nil), train.X[i*64:(i+1)*64]...)
		stampCorner(img)
		xs, ys = append(xs, img...), append(ys, backdoorTarget)
		want--
	}
	return xs, ys
}

// mpoisModels trains the backdoored CNN, a clean CNN and two clean
// references (different seeds) on the digits.
func mpoisModels(t testing.TB) map[string]string {
	t.Helper()
	train, _, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now()
	cfg := torch.TrainConfig{Hidden: []int64{16, 32}, Epochs: 15, BatchSize: 32, LR: 3e-3}
	paths := map[string]string{}
	px, py := poisonedDigits(train)
	for _, m := range []struct {
		name string
		seed int64
		x    []float32
		y    []int64
	}{
		{"backdoored", 2, px, py},
		{"clean", 3, train.X, train.Y},
		{"ref1", 4, train.X, train.Y},
		{"ref2", 5, train.X, train.Y},
	} {
		c := cfg
		c.Seed = m.seed
		paths[m.name] = filepath.Join(dir, m.name+".pt")
		if _, err := torch.TrainCNN(m.x, m.y, train.Shape, 10, c, paths[m.name]); err != nil {
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
	ds := heldOutDigits(t)
	p := jobs.AnalysisParams{TriggerSteps: 100, Samples: 150}
	st := &store{}
	r := runMPois(t, paths, paths["backdoored"], ds, p, st)
	if !r.Verdict.Vulnerable || metric(t, r, "suspected_target") != backdoorTarget {
		t.Errorf("backdoored CNN: verdict %+v, suspected target %v", r.Verdict, metric(t, r, "suspected_target"))
	}
	if ai := metric(t, r, "anomaly_index"); ai <= 2 {
		t.Errorf("anomaly index %.3f ≤ 2", ai)
	}
	if d := metric(t, r, "disagreement"); d < 0.5 {
		t.Errorf("disagreement %.3f < 0.5", d)
	}
	for _, name := range []string{"model_accuracy", "reference_1_accuracy", "reference_2_accuracy"} {
		if a := metric(t, r, name); a < 0.85 {
			t.Errorf("%s %.3f < 0.85", name, a)
		}
	}
	// The recovered mask of the target puts most of its weight in the
	// bottom-right 3×3 corner where the patch was planted.
	b := st.files["mpois_class_7_mask.png"]
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("mask PNG: %v", err)
	}
	f := img.Bounds().Dx() / 8
	var corner, all float64
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			r, _, _, _ := img.At(x*f, y*f).RGBA()
			all += float64(r)
			if x >= 5 && y >= 5 {
				corner += float64(r)
			}
		}
	}
	t.Logf("target mask: %.0f %% of its weight in the bottom-right 3×3 corner", 100*corner/all)
	if corner < 0.5*all {
		t.Errorf("the target's mask has %.0f %% of its weight in the planted corner", 100*corner/all)
	}
	if len(r.Samples) == 0 || r.Samples[0].Images["stamped"] == "" || len(r.Artifacts) != 4 || len(r.Curves) != 3 {
		t.Errorf("samples %+v, artifacts %+v, curves %d", r.Samples, r.Artifacts, len(r.Curves))
	}

	c := runMPois(t, paths, paths["clean"], ds, p, &store{})
	if c.Verdict.Vulnerable {
		t.Errorf("clean CNN flagged: %+v", c.Verdict)
	}
}
