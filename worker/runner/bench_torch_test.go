//go:build torch

package runner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// TestBenchTorchAttacks (bench/torch.sh; skipped without WARDEN_BENCH_TORCH=1)
// times FGSM and PGD-10 on a batch of 64 held-out digits through the demo
// CNN: Warden's worker path (attacks.FGSM/PGD through torchClassifier)
// against the same steps in python3-torch on the same libtorch, with the
// same intra-op thread count, in one run: rounds of Go runs alternate with
// rounds of Python runs; each side reports the median of all its runs.
func TestBenchTorchAttacks(t *testing.T) {
	if os.Getenv("WARDEN_BENCH_TORCH") != "1" {
		t.Skip("set WARDEN_BENCH_TORCH=1 (bench/torch.sh)")
	}
	reftorch.Need(t)
	threads := reftorch.EnvInt("TORCH_THREADS", 1)
	// As Worker.attack does for a job: one OS thread, one OpenMP pool.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torch.SetThreads(threads)
	reps, rounds, warmup := reftorch.EnvInt("WARDEN_BENCH_REPS", 10), reftorch.EnvInt("WARDEN_BENCH_ROUNDS", 6), 3

	var model *demo.Trained
	if dir := os.Getenv("WARDEN_DEMO_CACHE"); dir != "" {
		model = demoModels(t).Digits
	} else {
		var err error
		if model, err = demo.TrainDigits(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	clf := newTorchClassifier(t, model)
	in := heldOutDigits(t, 64)
	ctx := context.Background()
	const eps, pgdEps, alpha, steps = 0.1, 0.3, 0.03, 10
	fp := attacks.DefaultFGSMParams()
	fp.Epsilon = eps
	pp := attacks.DefaultPGDParams()
	pp.Eps, pp.EpsStep, pp.MaxIter = pgdEps, alpha, steps
	runs := map[string]func() error{
		"fgsm": func() error { _, err := attacks.FGSM(ctx, clf, in, fp, nil); return err },
		"pgd":  func() error { _, err := attacks.PGD(ctx, clf, in, pp, nil); return err },
	}
	goTimes, goCPU := map[string][]float64{}, map[string][]float64{}
	timeGo := func() {
		for _, name := range []string{"fgsm", "pgd"} {
			for i := 0; i < warmup; i++ {
				if err := runs[name](); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < reps; i++ {
				start, cpu := time.Now(), processCPU()
				if err := runs[name](); err != nil {
					t.Fatal(err)
				}
				goTimes[name] = append(goTimes[name], time.Since(start).Seconds())
				goCPU[name] = append(goCPU[name], (processCPU() - cpu).Seconds())
			}
		}
	}
	if p := os.Getenv("WARDEN_BENCH_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Alternate Go and Python passes so that both see the same load on
	// this shared machine.
	pyTimes, pyCPU := map[string][]float64{}, map[string][]float64{}
	var py refOutput
	for r := 0; r < rounds; r++ {
		timeGo()
		py = runReference(t, "bench", model.ModelPath, refInput{
			X: in.X.Data, Shape: in.X.Shape, Labels: in.Labels, Clip: [2]float32{0, 1}, Threads: threads,
			FGSM: map[string]any{"eps": eps}, PGD: map[string]any{"eps": pgdEps, "alpha": alpha, "steps": steps},
			Reps: reps, Warmup: warmup,
		})
		pyTimes["fgsm"] = append(pyTimes["fgsm"], py.FGSMSeconds...)
		pyTimes["pgd"] = append(pyTimes["pgd"], py.PGDSeconds...)
		pyCPU["fgsm"] = append(pyCPU["fgsm"], py.FGSMCPU...)
		pyCPU["pgd"] = append(pyCPU["pgd"], py.PGDCPU...)
		if py.Threads != threads || torch.Threads() != threads {
			t.Fatalf("thread counts differ: go %d, python %d, wanted %d", torch.Threads(), py.Threads, threads)
		}
	}
	line := fmt.Sprintf("BENCH batch=64 threads=%d rounds=%d reps=%d libtorch_go=%s torch_python=%s", threads, rounds, reps, torch.TorchVersion(), py.Version)
	for _, name := range []string{"fgsm", "pgd"} {
		g, p := reftorch.Median(goTimes[name]), reftorch.Median(pyTimes[name])
		gc, pc := reftorch.Median(goCPU[name]), reftorch.Median(pyCPU[name])
		line += fmt.Sprintf(" %s_go_ms=%.3f %s_py_ms=%.3f %s_ratio=%.3f %s_go_cpu_ms=%.3f %s_py_cpu_ms=%.3f %s_cpu_ratio=%.3f",
			name, g*1e3, name, p*1e3, name, g/p, name, gc*1e3, name, pc*1e3, name, gc/pc)
		for r := 0; r < rounds; r++ {
			gr, pr := reftorch.Median(goTimes[name][r*reps:(r+1)*reps]), reftorch.Median(pyTimes[name][r*reps:(r+1)*reps])
			t.Logf("%s round %d: go median %.3f ms, python median %.3f ms, ratio %.3f", name, r+1, gr*1e3, pr*1e3, gr/pr)
		}
		t.Logf("%s: go median %.3f ms, python median %.3f ms (%d runs each), ratio %.3f; process CPU per run: go %.3f ms, python %.3f ms, ratio %.3f",
			name, g*1e3, p*1e3, len(goTimes[name]), g/p, gc*1e3, pc*1e3, gc/pc)
	}
	fmt.Println(line)
}
