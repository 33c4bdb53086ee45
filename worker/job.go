package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// permanentError marks a failure that retrying cannot fix (bad input).
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// Permanent returns an error that fails the job at once with msg, which is
// shown to the job's owner.
func Permanent(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}

// Run is the running job handed to a JobFunc.
type Run struct {
	Job records.Job
	w   *Worker

	mu        sync.Mutex
	lastWrite time.Time
	lastStage string
}

// Progress records progress (0-100) and the current stage. Writes are
// throttled to one every 500 ms unless the stage changes.
func (r *Run) Progress(ctx context.Context, pct int, stage string) {
	r.mu.Lock()
	if stage == r.lastStage && time.Since(r.lastWrite) < 500*time.Millisecond {
		r.mu.Unlock()
		return
	}
	r.lastWrite, r.lastStage = time.Now(), stage
	r.mu.Unlock()
	if err := r.w.DB.SetProgress(ctx, r.Job.ID, pct, stage); err != nil && ctx.Err() == nil {
		slog.Warn("progress write failed", "job_id", r.Job.ID, "err", err)
	}
}

func (w *Worker) handleJob(ctx context.Context, t *asynq.Task) error {
	var p jobs.JobPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("bad job payload: %v: %w", err, asynq.SkipRetry)
	}
	fn, ok := w.handlers[p.Kind]
	if !ok {
		return fmt.Errorf("no handler for job kind %q: %w", p.Kind, asynq.SkipRetry)
	}
	job, ok, err := w.DB.StartJob(ctx, p.JobID)
	if err != nil {
		return err // database trouble: retry
	}
	if !ok {
		slog.Info("job already finished, cancelled or deleted; skipping", "job_id", p.JobID)
		return nil
	}
	log := slog.With("job_id", job.ID, "kind", job.Kind, "attempt", job.Attempts)
	log.Info("job started")
	run := &Run{Job: job, w: w}
	start := time.Now()
	out, err := fn(ctx, run)
	elapsed := time.Since(start)

	var perm *permanentError
	switch {
	case err == nil:
		data, merr := json.Marshal(out.Data)
		if merr != nil {
			return w.failJob(ctx, log, job, "internal error: result not serialisable", elapsed)
		}
		d := w.delivery(job, records.JobCompleted, out.Event)
		done, cerr := w.DB.CompleteJob(ctx, job.ID, records.Result{Label: out.Label, Data: string(data), DurationMS: elapsed.Milliseconds()}, d)
		if cerr != nil {
			return cerr
		}
		if done {
			w.Metrics.JobFinished(job.Kind, records.JobCompleted, elapsed)
			w.enqueueDelivery(ctx, d)
			log.Info("job completed", "duration_ms", elapsed.Milliseconds(), "label", out.Label)
		}
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// Cancelled through the API (CancelProcessing), or the worker is
		// shutting down. A cancelled job is already marked in the
		// database; a shutdown leaves it in_progress for asynq to retry.
		// asynq 0.26 ignores the returned error of a cancelled handler and
		// schedules a retry anyway; that retry finds the job cancelled in
		// StartJob and does nothing, so the database is what stops it.
		j, gerr := w.DB.GetJob(context.WithoutCancel(ctx), job.ID)
		if gerr != nil || j.Status == records.JobCancelled {
			log.Info("job cancelled")
			return fmt.Errorf("cancelled: %w", asynq.SkipRetry)
		}
		return err
	case errors.As(err, &perm):
		return w.failJob(ctx, log, job, perm.msg, elapsed)
	default:
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if retried >= maxRetry {
			return w.failJob(ctx, log, job, "failed after retries: "+err.Error(), elapsed)
		}
		log.Warn("job attempt failed; will retry", "err", err)
		return err
	}
}

func (w *Worker) failJob(ctx context.Context, log *slog.Logger, job records.Job, msg string, elapsed time.Duration) error {
	d := w.delivery(job, records.JobFailed, map[string]any{"error": msg})
	done, err := w.DB.FailJob(context.WithoutCancel(ctx), job.ID, msg, d)
	if err != nil {
		return err
	}
	if done {
		w.Metrics.JobFinished(job.Kind, records.JobFailed, elapsed)
		w.enqueueDelivery(ctx, d)
		log.Warn("job failed", "reason", msg)
	}
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}
