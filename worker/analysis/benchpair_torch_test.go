//go:build torch

package analysis_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wardenlab/warden/internal/reftorch"
	"github.com/wardenlab/warden/worker/torch"
)

// benchPair is one of bench/analysis.sh's timings of Warden's
// analysis.Run against the same steps in python3-torch, on the same
// libtorch and intra-op thread count (TORCH_THREADS, default 1), in
// alternating rounds (WARDEN_BENCH_ROUNDS, each of WARDEN_BENCH_REPS Go
// runs and then one run of the Python script, which times its own runs).
type benchPair struct {
	threads, rounds, reps int
}

// startBench skips the test unless env is 1, makes sure python3-torch is
// there, and pins the test to one OS thread (as a runner's job: one OS
// thread, one OpenMP pool) with the bench's thread count.
func startBench(t *testing.T, env string, defRounds int) benchPair {
	t.Helper()
	if os.Getenv(env) != "1" {
		t.Skip("set " + env + "=1 (bench/analysis.sh)")
	}
	reftorch.Need(t)
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread) // cleanups run on the test's goroutine
	b := benchPair{threads: reftorch.EnvInt("TORCH_THREADS", 1), rounds: reftorch.EnvInt("WARDEN_BENCH_ROUNDS", defRounds), reps: reftorch.EnvInt("WARDEN_BENCH_REPS", 3)}
	torch.SetThreads(b.threads)
	return b
}

// alternate runs b.rounds rounds of b.reps runGo calls (each the seconds
// of one Go run) followed by one runPy call (the seconds of the Python
// script's runs) and returns both sides' times.
func (b benchPair) alternate(runGo func() float64, runPy func() []float64) (goS, pyS []float64) {
	for round := 0; round < b.rounds; round++ {
		for i := 0; i < b.reps; i++ {
			goS = append(goS, runGo())
		}
		pyS = append(pyS, runPy()...)
	}
	return goS, pyS
}

// python runs bench/analysis/script with args, decodes the JSON it prints
// into out, and fails the test unless it ran with the bench's thread count.
func (b benchPair) python(t *testing.T, out any, script string, args ...string) {
	t.Helper()
	raw, err := exec.Command(refPython, append([]string{filepath.Join("..", "..", "bench", "analysis", script)}, args...)...).Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	var ran struct {
		Threads int `json:"threads"`
	}
	if err = json.Unmarshal(raw, out); err == nil {
		err = json.Unmarshal(raw, &ran)
	}
	if err != nil {
		t.Fatalf("%s output %q: %v", script, raw, err)
	}
	if ran.Threads != b.threads {
		t.Fatalf("python ran with %d threads, Go with %d", ran.Threads, b.threads)
	}
}
