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
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

const refPython = "/usr/bin/python3"

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBenchMEA (bench/analysis.sh; skipped without WARDEN_BENCH_MEA=1)
// times MEA on the digits CNN with a budget of 2,000 queries: Warden's
// analysis.Run through the runner's victim against the same steps in
// python3-torch (bench/analysis/mea_digits.py: same split sizes, queries,
// batches, surrogate architecture, optimiser, epochs and curve points) on
// the same libtorch with the same intra-op thread count, alternating
// rounds in one run; each side reports its median wall time.
func TestBenchMEA(t *testing.T) {
	if os.Getenv("WARDEN_BENCH_MEA") != "1" {
		t.Skip("set WARDEN_BENCH_MEA=1 (bench/analysis.sh)")
	}
	if err := exec.Command(refPython, "-c", "import torch").Run(); err != nil {
		t.Fatalf("%s cannot import torch: %v", refPython, err)
	}
	threads, rounds := envInt("TORCH_THREADS", 1), envInt("WARDEN_BENCH_ROUNDS", 2)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torch.SetThreads(threads)
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
	var goS, pyS []float64
	var goFid, pyFid float64
	for round := 0; round < rounds; round++ {
		start := time.Now()
		r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisMEA,
			Params: jobs.AnalysisParams{QueryBudget: budget}}, analysis.Env{Scratch: dir})
		if err != nil {
			t.Fatal(err)
		}
		goS = append(goS, time.Since(start).Seconds())
		goFid = r.Curves[0].Y[len(r.Curves[0].Y)-1]
		out, err := exec.Command(refPython, "../../bench/analysis/mea_digits.py", victimPath, xPath,
			strconv.Itoa(threads), strconv.Itoa(budget), dir).Output()
		if err != nil {
			t.Fatalf("python: %v", err)
		}
		var py struct {
			Seconds  float64   `json:"seconds"`
			Fidelity []float64 `json:"fidelity"`
			Threads  int       `json:"threads"`
		}
		if err := json.Unmarshal(out, &py); err != nil {
			t.Fatalf("python output %q: %v", out, err)
		}
		if py.Threads != threads {
			t.Fatalf("python ran with %d threads, Go with %d", py.Threads, threads)
		}
		pyS = append(pyS, py.Seconds)
		pyFid = py.Fidelity[len(py.Fidelity)-1]
		t.Logf("round %d: go %.2fs (fidelity %.4f), python %.2fs (fidelity %v)", round, goS[round], goFid, py.Seconds, py.Fidelity)
	}
	g, p := median(goS), median(pyS)
	fmt.Printf("BENCH_MEA threads=%d rounds=%d budget=%d go_s=%.2f py_s=%.2f ratio=%.2f go_fidelity=%.4f py_fidelity=%.4f\n",
		threads, rounds, budget, g, p, g/p, goFid, pyFid)
}
