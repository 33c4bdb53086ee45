package worker

import (
	"context"
	"os"
	"time"

	"github.com/wardenlab/warden/jobs"
)

// probe exercises the whole pipeline (database, queue, progress, result,
// webhook) without doing work: operators use it as a canary and the
// benchmark uses it as the trivial handler.
func (w *Worker) probe(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
	if in.HoldMS < 0 || in.HoldMS > jobs.MaxProbeHoldMS {
		return jobs.ProbeResult{}, Permanent("hold_ms must be between 0 and %d", jobs.MaxProbeHoldMS)
	}
	host, _ := os.Hostname()
	if in.HoldMS > 0 {
		r.Progress(ctx, 50, "holding")
		select {
		case <-ctx.Done():
			return jobs.ProbeResult{}, ctx.Err()
		case <-time.After(time.Duration(in.HoldMS) * time.Millisecond):
		}
	}
	return jobs.ProbeResult{WorkerHost: host, WorkerPID: os.Getpid(), Attempt: r.Job.Attempts, HeldMS: in.HoldMS}, nil
}
