package worker

import (
	"context"
	"fmt"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/runner"
)

// predict runs one input through a model (queue critical; the API waits)
// on a warm runner.
func (w *Worker) predict(ctx context.Context, r *Run, in jobs.PredictInput) (jobs.PredictResult, error) {
	m, err := w.activeModel(ctx, in.ModelID)
	if err != nil {
		return jobs.PredictResult{}, err
	}
	d, err := w.execute(ctx, r, m, runner.Request{Op: runner.OpPredict, Predict: &in}, true)
	if err != nil {
		return jobs.PredictResult{}, err
	}
	if d.Predict == nil {
		return jobs.PredictResult{}, fmt.Errorf("runner answered predict without a prediction")
	}
	return *d.Predict, nil
}
