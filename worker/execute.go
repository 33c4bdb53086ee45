package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// execute runs an operation on a registered model. A model served by its
// own endpoint is queried from this process (no tenant code runs here);
// a TorchScript file is deserialised, inspected and run only by a runner
// process: a warm one from the pool for predictions, a fresh one for
// validations and attacks.
func (w *Worker) execute(ctx context.Context, r *Run, m records.Model, req runner.Request, warm bool) (*runner.Done, error) {
	sink := runner.Sink{Progress: func(pct int, stage string) { r.Progress(ctx, pct, stage) }, Artifact: r.Artifact}
	var (
		d   *runner.Done
		err error
	)
	if m.EndpointURL != "" {
		clf, err := w.remoteModel(ctx, m)
		if err != nil {
			return nil, err
		}
		d, err = runner.Execute(ctx, clf, req, runner.Env{WordNetDir: w.Config.WordNetDir, Threads: w.threads}, sink)
		return d, runnerError(ctx, err)
	}
	if err := w.sandbox().err; err != nil {
		return nil, Permanent("%v", err)
	}
	mf, key, err := w.modelFile(ctx, m)
	if err != nil {
		return nil, err
	}
	if warm {
		d, err = w.runners.Do(ctx, key, mf, req, sink)
		return d, runnerError(ctx, err)
	}
	opts := w.runners.Options
	if k, ok := jobs.Lookup(r.Job.Kind); ok { // CPU time: the kind's timeout on every thread
		opts.Limits.CPUSeconds = int64(k.Timeout.Seconds()) * int64(max(w.threads, 1))
	}
	p, err := runner.Start(ctx, opts, mf)
	if err != nil {
		return nil, runnerError(ctx, err)
	}
	defer p.Close()
	d, err = p.Run(ctx, req, sink)
	return d, runnerError(ctx, err)
}

// runnerError maps a runner's failure to the worker's: permanent ones
// fail the job with their message, cancellations stay cancellations.
func runnerError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if msg, ok := runner.IsPermanent(err); ok {
		return Permanent("%s", msg)
	}
	return err
}

// sandboxState is what confinement runners get on this host.
type sandboxState struct {
	layers []string
	err    error // non-nil: tenant models are refused
}

// probeSandbox starts a runner that serves no model and reads the layers
// it runs under. With WARDEN_SANDBOX=off the runner is still a separate
// process (a crash or a hostile model cannot take the worker down), but
// unconfined; the worker says so loudly.
func (w *Worker) probeSandbox(ctx context.Context) sandboxState {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := runner.Start(ctx, w.runners.Options, runner.ModelFile{})
	if err != nil {
		return sandboxState{err: fmt.Errorf("tenant models are refused: the model runner does not start: %v", err)}
	}
	defer p.Close()
	st := sandboxState{layers: p.Layers}
	if !w.Config.SandboxOn() {
		slog.Warn("WARDEN_SANDBOX=off: tenant models run in an unconfined runner process; a hostile model can read what the worker's user can read",
			"layers", st.layers)
		return st
	}
	if missing := runner.MissingLayers(st.layers); len(missing) > 0 {
		st.err = fmt.Errorf("tenant models are refused: this host gives the model runner no %s (set WARDEN_SANDBOX=off to run them unconfined)",
			strings.Join(missing, ", "))
	}
	return st
}

// runnerPool builds the pool (and the options of every runner) from the
// configuration.
func runnerPool(w *Worker) *runner.Pool {
	limits := runner.DefaultLimits()
	if w.Config.RunnerMemory > 0 {
		limits.AddressSpace = w.Config.RunnerMemory
	}
	if strings.HasPrefix(w.device.String(), "cuda") {
		limits.AddressSpace = 0 // CUDA reserves far more address space than it uses
	}
	return &runner.Pool{
		Options: runner.Options{Sandbox: w.Config.SandboxOn(), Inspect: !w.Config.RunnerSkipInspection, Device: w.device.String(),
			Threads: w.threads, WordNetDir: w.Config.WordNetDir, Limits: limits,
			Scratch: filepath.Join(w.Config.DataDir, "runners", fmt.Sprint(os.Getpid()))},
		IdleTimeout: w.Config.RunnerIdleTimeout,
		Max:         w.Config.PredictPoolSize,
		MaxMemory:   w.Config.PredictPoolMemory,
	}
}
