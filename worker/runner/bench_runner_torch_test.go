//go:build torch

package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/internal/reftorch"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// TestBenchRunnerHop (bench/torch.sh; skipped without WARDEN_BENCH_TORCH=1)
// measures what the confined runner costs over running the same model in
// process, in one run on the demo digits CNN:
//   - predict: p50/p99 of one-digit predictions through a warm confined
//     runner (JSON over pipes, seccomp on every system call) against
//     torchClassifier.Predict in process, 300 each after 50 warm-up;
//   - attacks: FGSM and PGD-10 on 64 digits as a runner operation (the
//     whole job's work: attack, clean and adversarial predictions, norms,
//     48 PNG artifacts sent back) against the same operation run by
//     Execute in process, medians of alternating rounds;
//   - cold start: starting a confined runner and loading the model.
func TestBenchRunnerHop(t *testing.T) {
	if os.Getenv("WARDEN_BENCH_TORCH") != "1" {
		t.Skip("set WARDEN_BENCH_TORCH=1 (bench/torch.sh)")
	}
	threads := reftorch.EnvInt("TORCH_THREADS", 1)
	torch.SetThreads(threads)
	model, err := demo.TrainDigits(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clf := newTorchClassifier(t, model)
	in := heldOutDigits(t, 64)
	ctx := context.Background()
	limits := DefaultLimits()
	// WARDEN_BENCH_RUNNER_SANDBOX=0 measures an unconfined runner, to tell
	// the confinement's cost from the process hop's.
	opts := Options{Sandbox: os.Getenv("WARDEN_BENCH_RUNNER_SANDBOX") != "0", Inspect: true, Threads: threads, Limits: limits, Scratch: t.TempDir()}
	mf := ModelFile{ID: "mdl_bench", Type: model.Type, Metadata: model.Metadata, Path: model.ModelPath}

	coldStart := time.Now()
	p, err := Start(ctx, opts, mf)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Run(ctx, Request{Op: OpValidate}, Sink{}); err != nil {
		t.Fatal(err)
	}
	cold := time.Since(coldStart)

	// Predictions.
	one := attacks.Batch{Data: in.X.Sample(0), Shape: append([]int{1}, in.X.Shape[1:]...)}
	raw, _ := json.Marshal(in.X.Sample(0))
	req := Request{Op: OpBatch, Batch: &PredictBatch{ModelID: mf.ID, Inputs: []json.RawMessage{raw}}} // as a lone prediction reaches a runner
	inproc := func() error { _, err := clf.Predict(ctx, one); return err }
	hop := func() error { _, err := p.Run(ctx, req, Sink{}); return err }
	lat := func(f func() error) (p50, p99 float64) {
		for i := 0; i < 50; i++ {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		var ds []float64
		for i := 0; i < 300; i++ {
			s := time.Now()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, float64(time.Since(s).Microseconds())/1000)
		}
		sort.Float64s(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	ip50, ip99 := lat(inproc)
	hp50, hp99 := lat(hop)

	// Attacks.
	inputs := make([]json.RawMessage, in.X.N())
	for i := range inputs {
		inputs[i], _ = json.Marshal(in.X.Sample(i))
	}
	fgsmParams, _, err := attacks.ValidateParams(attacks.IDFGSM, json.RawMessage(`{"epsilon":0.1}`))
	if err != nil {
		t.Fatal(err)
	}
	pgdParams, _, err := attacks.ValidateParams(attacks.IDPGD, json.RawMessage(`{"eps":0.3,"eps_step":0.03,"max_iter":10}`))
	if err != nil {
		t.Fatal(err)
	}
	discard := Sink{Artifact: func(_ context.Context, name, _ string, _ []byte) (string, error) { return name, nil }}
	op := func(id string, params map[string]any) Request {
		return Request{Op: OpAttack, Attack: &jobs.AttackInput{ModelID: mf.ID, AttackMethodID: id, Params: params, Inputs: inputs}}
	}
	env := Env{Threads: threads}
	type pair struct{ inproc, runner func() error }
	var inside map[string][]float64 = map[string][]float64{}
	pairOf := func(req Request) pair {
		return pair{
			func() error { _, err := Execute(ctx, clf, req, env, discard); return err },
			func() error {
				d, err := p.Run(ctx, req, discard)
				if err == nil {
					inside[req.Attack.AttackMethodID] = append(inside[req.Attack.AttackMethodID], d.Attack.Metrics.AttackTimeSeconds)
				}
				return err
			},
		}
	}
	runs := map[string]pair{"fgsm": pairOf(op(attacks.IDFGSM, fgsmParams)), "pgd": pairOf(op(attacks.IDPGD, pgdParams))}
	rounds, reps := reftorch.EnvInt("WARDEN_BENCH_ROUNDS", 6), reftorch.EnvInt("WARDEN_BENCH_REPS", 5)
	for _, name := range []string{"fgsm", "pgd"} {
		var a, b []float64
		for r := 0; r < rounds; r++ {
			for _, side := range []struct {
				f   func() error
				out *[]float64
			}{{runs[name].inproc, &a}, {runs[name].runner, &b}} {
				side.f() // warm-up
				for i := 0; i < reps; i++ {
					s := time.Now()
					if err := side.f(); err != nil {
						t.Fatal(err)
					}
					*side.out = append(*side.out, time.Since(s).Seconds())
				}
			}
		}
		ma, mb := reftorch.Median(a), reftorch.Median(b)
		id := map[string]string{"fgsm": attacks.IDFGSM, "pgd": attacks.IDPGD}[name]
		fmt.Printf("BENCH_RUNNER attack=%s batch=64 threads=%d inprocess_ms=%.2f runner_ms=%.2f ratio=%.3f runner_inside_ms=%.2f\n",
			name, threads, ma*1000, mb*1000, mb/ma, reftorch.Median(inside[id])*1000)
	}
	fmt.Printf("BENCH_RUNNER predict threads=%d inprocess_p50_ms=%.3f inprocess_p99_ms=%.3f runner_p50_ms=%.3f runner_p99_ms=%.3f hop_p50_ms=%.3f cold_start_ms=%.0f layers=%q\n",
		threads, ip50, ip99, hp50, hp99, hp50-ip50, float64(cold.Milliseconds()), p.Layers)
}
