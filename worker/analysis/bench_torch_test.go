//go:build torch

package analysis_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/internal/reftorch"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// benchRef is what testdata/eva_reference.py writes.
type benchRef struct {
	Curve      []float64 `json:"curve"`
	Samples    int       `json:"samples"`
	Seconds    []float64 `json:"seconds"`
	CPUSeconds []float64 `json:"cpu_seconds"`
	Version    string    `json:"torch_version"`
	Threads    int       `json:"threads"`
}

// TestBenchEVA (skipped without WARDEN_BENCH_EVA=1) times EVA's PGD curve
// on the digits CNN (the 200 held-out digits, every correctly classified
// one attacked, 8 budgets × 10 steps) through analysis.Run against the
// same steps in python3-torch (testdata/eva_reference.py) on the same
// model file, libtorch and intra-op thread count (TORCH_THREADS, default
// 1), in one run: rounds of Go runs alternate with rounds of Python runs
// (WARDEN_BENCH_ROUNDS × WARDEN_BENCH_REPS each); each side reports its
// median. The two curves must agree.
func TestBenchEVA(t *testing.T) {
	b := startBench(t, "WARDEN_BENCH_EVA", 3)
	model := digitsModel(t)
	ds := heldOutDigits(t)
	eps := []float64{0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3}
	p := jobs.AnalysisParams{Epsilons: eps, Attack: "pgd", Steps: 10, Samples: ds.N(), Seed: 1}
	v, closeModel, err := runner.LoadVictim(model, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeModel()
	in := jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisEVA, Params: p}
	st := &store{}
	var goCurve []float64
	var used float64
	runGo := func() float64 {
		start := time.Now()
		r, err := analysis.Run(context.Background(), v, ds, in, st.env(t))
		if err != nil {
			t.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		goCurve, used = curve(t, r, "attack_success").Y, metric(t, r, "samples_attacked")
		return secs
	}
	refIn, _ := json.Marshal(map[string]any{"x": ds.X.Data, "shape": ds.X.Shape, "labels": ds.Labels, "epsilons": eps,
		"steps": p.Steps, "threads": b.threads, "reps": b.reps, "warmup": 1})
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(inPath, refIn, 0o644); err != nil {
		t.Fatal(err)
	}
	runGo() // warm-up
	var ref benchRef
	goTimes, pyTimes := b.alternate(runGo, func() []float64 {
		out, err := exec.Command(refPython, filepath.Join("testdata", "eva_reference.py"), model, inPath, outPath).CombinedOutput()
		if err != nil {
			t.Fatalf("eva_reference.py: %v\n%s", err, out)
		}
		raw, err := os.ReadFile(outPath)
		if err == nil {
			err = json.Unmarshal(raw, &ref)
		}
		if err != nil {
			t.Fatal(err)
		}
		return ref.Seconds
	})
	g, py := reftorch.Median(goTimes), reftorch.Median(pyTimes)
	fmt.Printf("EVA PGD curve, digits CNN, %g samples × %d ε × %d steps, %d thread(s), libtorch %s / python3-torch %s (%d threads)\n",
		used, len(eps), p.Steps, b.threads, torch.TorchVersion(), ref.Version, ref.Threads)
	fmt.Printf("  warden (analysis.Run): median %.4fs over %d runs\n", g, len(goTimes))
	fmt.Printf("  python3-torch:         median %.4fs over %d runs\n", py, len(pyTimes))
	fmt.Printf("  ratio warden/python:   %.3f\n", g/py)
	fmt.Printf("  curves: warden %v\n          python %v\n", goCurve, ref.Curve)
	if int(used) != ref.Samples || len(ref.Curve) != len(goCurve) {
		t.Fatalf("warden attacked %g samples (%d points), python %d (%d points)", used, len(goCurve), ref.Samples, len(ref.Curve))
	}
	for k := range goCurve {
		// One sample on the edge may flip with float32 summation order.
		if math.Abs(goCurve[k]-ref.Curve[k]) > 1.5/used {
			t.Errorf("ε=%g: warden %.4f, python %.4f", eps[k], goCurve[k], ref.Curve[k])
		}
	}
}

// TestBenchMEA (bench/analysis.sh; skipped without WARDEN_BENCH_MEA=1)
// times MEA on the digits CNN with a budget of 2,000 queries: Warden's
// analysis.Run through the runner's victim against the same steps in
// python3-torch (bench/analysis/mea_digits.py: same split sizes, queries,
// batches, surrogate architecture, optimiser, epochs and curve points) on
// the same libtorch with the same intra-op thread count, alternating
// rounds in one run; each side reports its median wall time.
func TestBenchMEA(t *testing.T) {
	b := startBench(t, "WARDEN_BENCH_MEA", 2)
	b.reps = 1 // mea_digits.py times one run
	ds, train := digitsData(t)
	victimPath := digitsVictim(t, train)
	dir := t.TempDir()
	xPath := filepath.Join(dir, "x.f32")
	raw := make([]byte, 4*len(ds.X.Data))
	for i, v := range ds.X.Data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(xPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	v, closeV, err := runner.LoadVictim(victimPath, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	const budget = 2000
	var goFid, pyFid, goSecs float64
	round := 0
	goS, pyS := b.alternate(func() float64 {
		start := time.Now()
		r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisMEA,
			Params: jobs.AnalysisParams{QueryBudget: budget}}, analysis.Env{Scratch: dir})
		if err != nil {
			t.Fatal(err)
		}
		goSecs = time.Since(start).Seconds()
		goFid = r.Curves[0].Y[len(r.Curves[0].Y)-1]
		return goSecs
	}, func() []float64 {
		var py struct {
			Seconds  float64   `json:"seconds"`
			Fidelity []float64 `json:"fidelity"`
		}
		b.python(t, &py, "mea_digits.py", victimPath, xPath, strconv.Itoa(b.threads), strconv.Itoa(budget), dir)
		pyFid = py.Fidelity[len(py.Fidelity)-1]
		t.Logf("round %d: go %.2fs (fidelity %.4f), python %.2fs (fidelity %v)", round, goSecs, goFid, py.Seconds, py.Fidelity)
		round++
		return []float64{py.Seconds}
	})
	g, p := reftorch.Median(goS), reftorch.Median(pyS)
	fmt.Printf("BENCH_MEA threads=%d rounds=%d budget=%d go_s=%.2f py_s=%.2f ratio=%.2f go_fidelity=%.4f py_fidelity=%.4f\n",
		b.threads, b.rounds, budget, g, p, g/p, goFid, pyFid)
}

// TestBenchDPois (bench/analysis.sh; skipped without WARDEN_BENCH_DPOIS=1)
// times data poisoning on the BadNets digits CNN (dpois_torch_test.go's
// poisoned digits, 1,797 rows): Warden's analysis.Run through the
// runner's victim against the same steps in python3-torch
// (bench/analysis/dpois_digits.py), same model file, libtorch and
// intra-op thread count, alternating rounds (WARDEN_BENCH_ROUNDS ×
// WARDEN_BENCH_REPS each, after a warm-up); each side reports its median.
// Both must flag the same class.
func TestBenchDPois(t *testing.T) {
	b := startBench(t, "WARDEN_BENCH_DPOIS", 2)
	ds, _ := poisonDigits(t)
	path := fitClassifier(t, ds, digitsSpec)
	dir := t.TempDir()
	xb, yb := make([]byte, 4*len(ds.X.Data)), make([]byte, 4*len(ds.Labels))
	for i, v := range ds.X.Data {
		binary.LittleEndian.PutUint32(xb[4*i:], math.Float32bits(v))
	}
	for i, y := range ds.Labels {
		binary.LittleEndian.PutUint32(yb[4*i:], uint32(y))
	}
	xPath, yPath := filepath.Join(dir, "x.f32"), filepath.Join(dir, "y.i32")
	if err := os.WriteFile(xPath, xb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yPath, yb, 0o600); err != nil {
		t.Fatal(err)
	}
	v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	in := jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisDataPoisoning, Params: jobs.AnalysisParams{Seed: 1}}
	var goFlagged string
	var goSuspected float64
	runGo := func() float64 {
		start := time.Now()
		r, err := analysis.Run(context.Background(), v, ds, in, analysis.Env{Scratch: dir})
		if err != nil {
			t.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		goFlagged = ""
		for _, row := range r.Table.Rows {
			if row[len(row)-1] == "true" {
				goFlagged += row[0]
			}
		}
		goSuspected = metric(t, r, "suspected_rows")
		return secs
	}
	runGo() // warm-up
	var py struct {
		Seconds   []float64 `json:"seconds"`
		Flagged   []int     `json:"flagged"`
		Suspected int       `json:"suspected"`
		Version   string    `json:"torch_version"`
	}
	goS, pyS := b.alternate(runGo, func() []float64 {
		b.python(t, &py, "dpois_digits.py", path, xPath, yPath, strconv.Itoa(ds.N()), strconv.Itoa(b.threads), strconv.Itoa(b.reps))
		return py.Seconds
	})
	pyFlagged := ""
	for _, c := range py.Flagged {
		pyFlagged += strconv.Itoa(c)
	}
	g, p := reftorch.Median(goS), reftorch.Median(pyS)
	fmt.Printf("BENCH_DPOIS threads=%d runs=%d/%d go_s=%.4f py_s=%.4f ratio=%.2f go_flagged=%s py_flagged=%s go_suspected=%g py_suspected=%d torch=%s/%s\n",
		b.threads, len(goS), len(pyS), g, p, g/p, goFlagged, pyFlagged, goSuspected, py.Suspected, torch.TorchVersion(), py.Version)
	if goFlagged != pyFlagged {
		t.Fatalf("Warden flags classes %q, python %q", goFlagged, pyFlagged)
	}
}
