package worker

import (
	"context"
	"encoding/json"
	"os"
	"time"
)

// ProbeInput is the input of a probe (canary) job.
type ProbeInput struct {
	HoldMS int `json:"hold_ms"` // how long to hold the worker slot, ≤ 60000
}

// probe exercises the whole pipeline (database, queue, progress, result,
// webhook) without doing work: operators use it as a canary and the
// benchmark uses it as the trivial handler.
func (w *Worker) probe(ctx context.Context, r *Run) (Output, error) {
	var in ProbeInput
	if err := json.Unmarshal([]byte(r.Job.Input), &in); err != nil {
		return Output{}, Permanent("invalid probe input: %v", err)
	}
	host, _ := os.Hostname()
	if in.HoldMS > 0 {
		r.Progress(ctx, 50, "holding")
		select {
		case <-ctx.Done():
			return Output{}, ctx.Err()
		case <-time.After(time.Duration(in.HoldMS) * time.Millisecond):
		}
	}
	return Output{Label: "ok", Data: map[string]any{"worker_host": host, "worker_pid": os.Getpid(), "attempt": r.Job.Attempts, "held_ms": in.HoldMS}}, nil
}
