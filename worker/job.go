package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// permanentError marks a failure that retrying cannot fix (bad input).
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// Permanent returns an error that fails the job at once with msg, which is
// shown to the job's owner.
func Permanent(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}

// Handler does the work of one job kind: a plain function from the kind's
// typed input to its typed result. It reports progress and stores the
// blobs it produces through r; an error wrapped with Permanent fails the
// job without retrying, any other error is retried.
type Handler[I, R any] func(ctx context.Context, r *Run, in I) (R, error)

// handler is a registered kind with its types erased.
type handler struct {
	// run decodes the input, calls the Handler and encodes its result.
	run func(ctx context.Context, r *Run) (result any, data, summary string, err error)
	// failed is what else a failed job of the kind changes (a model's
	// status); nil for most kinds.
	failed func(job records.Job, reason string) *storage.ModelUpdate
}

// Handle registers the handler of a job kind; analysis kinds of later
// issues are added this way.
func Handle[I, R any](w *Worker, k jobs.Kind[I, R], fn Handler[I, R]) {
	w.handlers[k.Name] = &handler{run: func(ctx context.Context, r *Run) (any, string, string, error) {
		in, err := k.Input(r.Job.Input)
		if err != nil {
			return nil, "", "", Permanent("invalid %s input: %v", k.Name, err)
		}
		res, err := fn(ctx, r, in)
		if err != nil {
			return nil, "", "", err
		}
		data, err := k.EncodeResult(res)
		if err != nil {
			return nil, "", "", Permanent("internal error: result not serialisable")
		}
		var summary string
		if s, ok := any(res).(jobs.Summarizer); ok {
			summary = s.Summary()
		}
		return res, data, summary, nil
	}}
}

// onFailure sets what a failed job of kind k changes besides the job.
func (w *Worker) onFailure(kind string, fn func(job records.Job, reason string) *storage.ModelUpdate) {
	w.handlers[kind].failed = fn
}

// Run is the running job handed to a Handler.
type Run struct {
	Job records.Job
	w   *Worker

	mu        sync.Mutex
	lastWrite time.Time
	lastStage string
	blobs     []records.Blob       // stored by this attempt; recorded with the completion
	model     *storage.ModelUpdate // committed with the completion
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

// Artifact stores a file the job produced under the job's artifacts and
// returns its file name. Its blob row commits with the job's result; if
// the job does not complete, the file is deleted.
func (r *Run) Artifact(ctx context.Context, name, contentType string, data []byte) (string, error) {
	key := storage.ArtifactKey(r.Job.ID, r.Job.Attempts, name)
	n, err := r.w.Blobs.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("store artifact %s: %w", name, err)
	}
	r.mu.Lock()
	r.blobs = append(r.blobs, records.Blob{Key: key, ContentType: contentType, Size: n})
	r.mu.Unlock()
	return name, nil
}

// UpdateModel sets a model change that commits with the job's result.
func (r *Run) UpdateModel(u storage.ModelUpdate) { r.model = &u }

// discard deletes the blobs of an attempt whose completion was not stored.
func (r *Run) discard(ctx context.Context) {
	keys := make([]string, len(r.blobs))
	for i, b := range r.blobs {
		keys[i] = b.Key
	}
	r.w.DB.DiscardBlobs(context.WithoutCancel(ctx), r.w.Blobs, fmt.Sprintf("discarded attempt %d of job %s", r.Job.Attempts, r.Job.ID), keys...)
	r.blobs = nil
}

func (w *Worker) handleJob(ctx context.Context, t *asynq.Task) error {
	var p queue.JobPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("bad job payload: %v: %w", err, asynq.SkipRetry)
	}
	h, ok := w.handlers[p.Kind]
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
	result, data, summary, err := h.run(ctx, run)
	elapsed := time.Since(start)

	var perm *permanentError
	switch {
	case err == nil:
		d := w.delivery(job, records.JobCompleted, result, "")
		done, cerr := w.DB.CompleteJob(ctx, job.ID, storage.Completion{
			Result: records.Result{Label: summary, Data: data, DurationMS: elapsed.Milliseconds()},
			Blobs:  run.blobs, Model: run.model, Delivery: d,
		})
		if cerr != nil {
			run.discard(ctx)
			return cerr
		}
		if !done { // cancelled, deleted or completed meanwhile
			run.discard(ctx)
			return nil
		}
		w.Metrics.JobFinished(job.Kind, records.JobCompleted, elapsed)
		w.enqueueDelivery(ctx, d)
		log.Info("job completed", "duration_ms", elapsed.Milliseconds(), "label", summary)
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		run.discard(ctx)
		// Cancelled through the API (CancelProcessing), or the worker is
		// shutting down. A cancelled job is already marked in the
		// database; a shutdown leaves it in_progress for asynq to retry.
		// asynq 0.26 ignores the returned error of a cancelled handler and
		// schedules a retry anyway; that retry finds the job cancelled in
		// StartJob and does nothing, so the database is what stops it.
		j, gerr := w.DB.JobByID(context.WithoutCancel(ctx), job.ID)
		if gerr != nil || j.Status == records.JobCancelled {
			log.Info("job cancelled")
			return fmt.Errorf("cancelled: %w", asynq.SkipRetry)
		}
		return err
	case errors.As(err, &perm):
		run.discard(ctx)
		return w.failAttempt(ctx, job, perm.msg, elapsed)
	default:
		run.discard(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if retried >= maxRetry {
			// The cause is internal (a database, a download, a runner that
			// would not start): the owner learns that it failed, the log
			// keeps why.
			log.Error("job failed after retries", "err", err, "attempts", job.Attempts)
			return w.failAttempt(ctx, job, fmt.Sprintf("failed after retries: internal error after %d attempts (logged by the worker for job %s)", job.Attempts, job.ID), elapsed)
		}
		log.Warn("job attempt failed; will retry", "err", err)
		return err
	}
}

// failAttempt fails the job a handler could not run and tells asynq not
// to retry it.
func (w *Worker) failAttempt(ctx context.Context, job records.Job, msg string, elapsed time.Duration) error {
	if _, err := w.fail(ctx, job, msg, elapsed); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}

// fail marks a job failed with what its kind changes on failure and its
// webhook, in one transaction, and stops its task. Every way a job fails
// (handler, exhausted retries, deadline) comes here.
func (w *Worker) fail(ctx context.Context, job records.Job, msg string, elapsed time.Duration) (bool, error) {
	var model *storage.ModelUpdate
	if h := w.handlers[job.Kind]; h != nil && h.failed != nil {
		model = h.failed(job, msg)
	}
	d := w.delivery(job, records.JobFailed, nil, msg)
	done, err := w.DB.FailJob(context.WithoutCancel(ctx), job.ID, msg, storage.Failure{Model: model, Delivery: d})
	if err != nil || !done {
		return done, err
	}
	w.Metrics.JobFinished(job.Kind, records.JobFailed, elapsed)
	w.enqueueDelivery(ctx, d)
	slog.Warn("job failed", "job_id", job.ID, "kind", job.Kind, "reason", msg)
	return true, nil
}
