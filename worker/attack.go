package worker

import (
	"context"
	"fmt"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// activeModel loads a job's model, which must be active.
func (w *Worker) activeModel(ctx context.Context, id string) (records.Model, error) {
	m, err := w.DB.ModelByID(ctx, id)
	if err != nil {
		return m, Permanent("model %s no longer exists", id)
	}
	if m.Status != records.ModelActive {
		return m, Permanent("model %s is %s, not active", id, m.Status)
	}
	return m, nil
}

// attack runs an adversarial attack against a registered model: the whole
// loop runs in a runner (or, for a remote endpoint, here), which reports
// progress and sends the PNG artifacts the job stores.
func (w *Worker) attack(ctx context.Context, r *Run, in jobs.AttackInput) (jobs.AttackResult, error) {
	r.Progress(ctx, 2, "loading_model")
	m, err := w.activeModel(ctx, in.ModelID)
	if err != nil {
		return jobs.AttackResult{}, err
	}
	d, err := w.execute(ctx, r, m, runner.Request{Op: runner.OpAttack, Attack: &in}, false)
	if err != nil {
		return jobs.AttackResult{}, err
	}
	if d.Attack == nil {
		return jobs.AttackResult{}, fmt.Errorf("runner answered attack without a result")
	}
	return *d.Attack, nil
}
