package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

const (
	reconcileLockKey = "warden:reconciler:lock"
	asynqQueuesKey   = "asynq:queues"
	// blobRetryBatch bounds the queued blob deletions one round retries.
	blobRetryBatch = 200
)

func queueNames() []any {
	out := make([]any, len(jobs.Queues))
	for i, q := range jobs.Queues {
		out[i] = q
	}
	return out
}

func (w *Worker) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(w.Config.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.publishSandbox(ctx)
		w.sweepModelCache(ctx)
		if !w.lock(ctx) {
			continue // another worker reconciles this round
		}
		if err := w.Reconcile(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("reconcile failed", "err", err)
		}
	}
}

// lock takes the cluster-wide reconciler lock for one interval.
func (w *Worker) lock(ctx context.Context) bool {
	if w.rdb == nil {
		return true
	}
	ok, err := w.rdb.SetNX(ctx, reconcileLockKey, "1", w.Config.ReconcileInterval*9/10).Result()
	return err == nil && ok
}

// Reconcile makes Redis agree with PostgreSQL, the system of record: it
// fails unfinished jobs past their deadline, re-enqueues queued and
// in_progress jobs that have no task in Redis (Redis flushed or lost, or the
// API could not enqueue), re-enqueues pending webhook deliveries whose
// task vanished, sweeps expired anonymous jobs and retries the due blob
// deletions (tombstones). Every step is idempotent, so running it twice is
// harmless.
func (w *Worker) Reconcile(ctx context.Context) error {
	// asynq's client remembers which queue names it has added to the
	// "asynq:queues" set and never adds them again, so after Redis is
	// flushed the set lacks them and Inspector.GetTaskInfo answers "queue
	// not found" even for a task that is running. Treating that as a lost
	// task re-enqueued running jobs and, with jobs longer than the grace
	// period, restarted them forever. Re-publish the queues first (an
	// idempotent SADD; the key is asynq's base.AllQueues, pinned by go.mod).
	if w.rdb != nil {
		if err := w.rdb.SAdd(ctx, asynqQueuesKey, queueNames()...).Err(); err != nil {
			return fmt.Errorf("publish queues: %w", err)
		}
	}
	now := time.Now().UTC()
	expired, err := w.DB.ExpiredJobs(ctx, now, 500)
	if err != nil {
		return err
	}
	for _, j := range expired {
		if done, err := w.fail(ctx, j, "deadline exceeded", now.Sub(j.CreatedAt)); err == nil && done {
			w.Jobs.Stop(j)
		}
	}
	grace := now.Add(-w.Config.ReconcileInterval)
	stale, err := w.DB.UnfinishedJobs(ctx, grace, 1000)
	if err != nil {
		return err
	}
	requeued := 0
	for _, j := range stale {
		k, ok := jobs.Lookup(j.Kind)
		if !ok {
			continue
		}
		info, err := w.Jobs.TaskInfo(k.Queue, j.ID)
		switch {
		case err == nil && info.State == asynq.TaskStateArchived:
			// Retries exhausted without the job row being updated
			// (crash between the two): record the failure now.
			slog.Error("job failed after retries", "job_id", j.ID, "err", info.LastErr)
			if _, err := w.fail(ctx, j, "failed after retries: internal error (logged by the worker for job "+j.ID+")", now.Sub(j.CreatedAt)); err != nil {
				return err
			}
		case err == nil:
			continue // the task exists; asynq owns it
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			if j.Status == records.JobInProgress {
				if err := w.DB.RequeueJob(ctx, j.ID); err != nil {
					return err
				}
			}
			if err := w.Client.EnqueueJob(ctx, j.ID, j.Kind); err != nil {
				return err
			}
			requeued++
		default:
			return err
		}
	}
	deliveries, err := w.DB.PendingDeliveries(ctx, grace, 1000)
	if err != nil {
		return err
	}
	for _, d := range deliveries {
		_, err := w.Jobs.TaskInfo(jobs.QueueCritical, d.ID)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			if err := w.Client.EnqueueWebhook(ctx, d.ID, d.ID); err != nil {
				return err
			}
			requeued++
		}
	}
	swept, err := w.sweepAnonymous(ctx, now)
	if err != nil {
		return err
	}
	purged, failed, err := w.DB.RetryBlobDeletions(ctx, w.Blobs, now, blobRetryBatch)
	if err != nil {
		return err
	}
	if requeued > 0 || len(expired) > 0 || swept > 0 || purged > 0 || failed > 0 {
		slog.Info("reconciled", "requeued", requeued, "expired", len(expired), "anonymous_deleted", swept,
			"blobs_deleted", purged, "blob_deletes_failed", failed)
	}
	return nil
}

// sweepAnonymous deletes anonymous verification jobs (and their uploaded
// files) finished longer than WARDEN_ANONYMOUS_RETENTION ago: nobody owns
// them, so nobody else would ever delete them.
func (w *Worker) sweepAnonymous(ctx context.Context, now time.Time) (int, error) {
	if w.Config.AnonymousRetention <= 0 {
		return 0, nil
	}
	stale, err := w.DB.StaleAnonymousJobs(ctx, now.Add(-w.Config.AnonymousRetention), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range stale {
		keys, err := w.DB.DeleteJob(ctx, j.ID)
		if err != nil {
			if warden.ErrorCode(err) == warden.ENOTFOUND {
				continue
			}
			return n, err
		}
		w.DB.PurgeBlobs(ctx, w.Blobs, keys)
		n++
	}
	return n, nil
}
