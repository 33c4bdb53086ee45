//go:build torch

package analysis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/internal/reftorch"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// TestBenchMPois (bench/analysis.sh; skipped without WARDEN_BENCH_MPOIS=1)
// times model poisoning on the BadNets digits CNN (internal/badnets: 360
// held-out digits at 16×16, 150 optimisation and 150 held-out samples,
// 10 classes × 100 trigger steps): Warden's analysis.Run through the
// runner's victim and references against the same steps in python3-torch
// (bench/analysis/mpois_digits.py: same samples, batches, parameterisation,
// Adam, cost schedule, held-out comparison, with autograd through the mask
// and pattern) on the same libtorch and intra-op thread count, alternating
// rounds in one run; each side reports its median. Both must name the
// planted target.
func TestBenchMPois(t *testing.T) {
	b := startBench(t, "WARDEN_BENCH_MPOIS", 2)
	paths := mpoisModels(t)
	ds := digits16(t)
	p := jobs.AnalysisParams{TriggerSteps: 100, Samples: 150, Seed: 1}
	load := func(path string) analysis.Victim {
		v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeV() })
		return v
	}
	v := load(paths["backdoored"])
	env := analysis.Env{Scratch: t.TempDir(), References: []analysis.Victim{load(paths["ref1"]), load(paths["ref2"])}}
	in := jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisModelPoisoning, Params: p}
	var goNorms []float64
	var goTarget float64
	runGo := func() float64 {
		start := time.Now()
		r, err := analysis.Run(context.Background(), v, ds, in, env)
		if err != nil {
			t.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		goNorms, goTarget = curve(t, r, "mask_l1_norm").Y, metric(t, r, "suspected_target")
		return secs
	}
	opt, held := analysis.SplitSamples(ds.N(), p.Samples, p.Seed)
	refIn, _ := json.Marshal(map[string]any{"models": []string{paths["backdoored"], paths["ref1"], paths["ref2"]},
		"x": ds.X.Data, "shape": ds.X.Shape, "labels": ds.Labels, "opt": opt, "held": held, "classes": 10,
		"steps": p.TriggerSteps, "threads": b.threads, "reps": b.reps})
	inPath := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(inPath, refIn, 0o644); err != nil {
		t.Fatal(err)
	}
	runGo() // warm-up
	var py struct {
		Seconds []float64 `json:"seconds"`
		Norms   []float64 `json:"norms"`
		Target  int       `json:"target"`
		Version string    `json:"torch_version"`
	}
	goTimes, pyTimes := b.alternate(runGo, func() []float64 {
		b.python(t, &py, "mpois_digits.py", inPath)
		return py.Seconds
	})
	g, pys := reftorch.Median(goTimes), reftorch.Median(pyTimes)
	fmt.Printf("BENCH_MPOIS threads=%d runs=%d/%d steps=%d go_s=%.3f py_s=%.3f ratio=%.3f go_target=%g py_target=%d libtorch=%s python3-torch=%s\n",
		b.threads, len(goTimes), len(pyTimes), p.TriggerSteps, g, pys, g/pys, goTarget, py.Target, torch.TorchVersion(), py.Version)
	fmt.Printf("  mask L1 norms: warden %v\n                 python %v\n", rounded(goNorms), rounded(py.Norms))
	if int(goTarget) != py.Target || py.Target != 7 {
		t.Errorf("suspected targets: warden %g, python %d, planted 7", goTarget, py.Target)
	}
}

func rounded(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x*100) / 100
	}
	return out
}
