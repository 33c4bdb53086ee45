package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/internal/tenantcache"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// Service is jobs.Service over PostgreSQL (storage, the system of record)
// and asynq (the transport).
type Service struct {
	db        *storage.DB
	blobs     storage.BlobStore
	client    *Client
	inspector *asynq.Inspector
	deadline  time.Duration // default job deadline
	quota     storage.Quota // per-org caps checked at submission; zero: none
	events    jobs.Events   // renders the webhook of a cancelled job; nil: none sent
	results   tenantcache.Cache[records.Result]
}

// Finished jobs' results are kept in memory for a while: status and result
// reads (clients polling, the UI) then cost one query, the job row's, not
// two. A result row never changes once its job completed, and it is deleted
// only with the job row, which every read loads first (and org-scoped), so
// a cached result is never served for a deleted or another org's job.
const (
	resultCacheTTL      = time.Minute
	resultCacheMaxBytes = 16 << 10 // larger results are read each time
	resultCacheEntries  = 1024     // so at most 16 MiB
)

var _ jobs.Service = (*Service)(nil)

// NewService builds the job service; deadline is the default time a job
// may take from submission before the reconciler fails it.
func NewService(db *storage.DB, blobs storage.BlobStore, redis asynq.RedisConnOpt, client *Client, deadline time.Duration) *Service {
	return &Service{db: db, blobs: blobs, client: client, inspector: asynq.NewInspector(redis), deadline: deadline,
		results: tenantcache.Cache[records.Result]{Limit: resultCacheEntries}}
}

// SetQuota sets the per-org caps that Submit and RegisterModel check
// (WARDEN_ORG_MAX_*); call it before the service is used.
func (s *Service) SetQuota(q storage.Quota) { s.quota = q }

// SetEvents sets what renders the webhook a cancelled job sends (the
// surfaces' api.Events, as the worker has); call it before the service is
// used. Without it a cancel sends no webhook.
func (s *Service) SetEvents(e jobs.Events) { s.events = e }

// Close releases the inspector's Redis connection.
func (s *Service) Close() error { return s.inspector.Close() }

// Submit implements jobs.Service.
func (s *Service) Submit(ctx context.Context, sub jobs.Submission) (records.Job, error) {
	job, err := s.row(sub)
	if err != nil {
		return job, err
	}
	ctx = context.WithoutCancel(ctx) // once written, the job is the caller's even if it hangs up
	if err := s.db.CreateJob(ctx, &job, sub.Blobs, s.quota); err != nil {
		return job, fmt.Errorf("create %s job: %w", job.Kind, err)
	}
	s.enqueue(ctx, job)
	return job, nil
}

// row builds a submission's job row.
func (s *Service) row(sub jobs.Submission) (records.Job, error) {
	if _, ok := jobs.Lookup(sub.Kind.Name); !ok {
		return records.Job{}, fmt.Errorf("submit: unknown job kind %q", sub.Kind.Name)
	}
	job := records.Job{ID: sub.ID, Kind: sub.Kind.Name, Queue: sub.Kind.Queue, Status: records.JobQueued,
		Input: sub.Input, CallbackURL: sub.CallbackURL, Subject: sub.Subject, Deadline: sub.Deadline}
	if job.ID == "" {
		job.ID = sub.Kind.NewID()
	}
	if job.Deadline.IsZero() {
		job.Deadline = time.Now().UTC().Add(s.deadline)
	}
	if sub.OrgID != "" {
		org := sub.OrgID
		job.OrgID = &org
	}
	return job, nil
}

// enqueue hands a committed job to asynq. A failure is logged, not
// returned: the row is the system of record and the reconciler enqueues
// queued jobs that have no task.
func (s *Service) enqueue(ctx context.Context, job records.Job) {
	if err := s.client.EnqueueJob(ctx, job.ID, job.Kind); err != nil {
		slog.Warn("enqueue failed; the reconciler will enqueue the job", "job_id", job.ID, "err", err)
	}
}

// RegisterModel implements jobs.Service.
func (s *Service) RegisterModel(ctx context.Context, m *records.Model, blobs []records.Blob) (records.Job, error) {
	sub, err := jobs.ValidateModel.Submission(jobs.ValidateModelInput{ModelID: m.ID})
	if err != nil {
		return records.Job{}, err
	}
	sub.OrgID = m.OrgID
	job, err := s.row(sub)
	if err != nil {
		return job, err
	}
	m.Status = records.ModelProcessing
	ctx = context.WithoutCancel(ctx)
	if err := s.db.CreateModel(ctx, m, &job, blobs, s.quota); err != nil {
		return job, err
	}
	s.enqueue(ctx, job)
	return job, nil
}

// Get implements jobs.Service: the tenancy is in the query.
func (s *Service) Get(ctx context.Context, scope jobs.Scope, id string) (records.Job, error) {
	var (
		j   records.Job
		err error = warden.Errorf(warden.ENOTFOUND, "job not found")
	)
	switch {
	case scope.Anonymous:
		j, err = s.db.OrgOrAnonymousJob(ctx, scope.OrgID, id)
	case scope.OrgID != "":
		j, err = s.db.OrgJob(ctx, scope.OrgID, id)
	}
	if err != nil {
		return j, err
	}
	if !scope.Visible(j) {
		return records.Job{}, warden.Errorf(warden.ENOTFOUND, "job not found")
	}
	return j, nil
}

// Result implements jobs.Service; a completed job's result comes from
// memory when it was read in the last resultCacheTTL.
func (s *Service) Result(ctx context.Context, job records.Job) (records.Result, error) {
	if job.Status != records.JobCompleted {
		return s.db.GetResult(ctx, job.ID)
	}
	org, now := job.Org(), time.Now()
	if r, ok := s.results.Get(org, job.ID, now); ok {
		return r, nil
	}
	r, err := s.db.GetResult(ctx, job.ID)
	if err == nil && len(r.Data) <= resultCacheMaxBytes {
		s.results.Put(org, job.ID, r, now, now.Add(resultCacheTTL), nil)
	}
	return r, err
}

// Cancel implements jobs.Service. The database is marked first: a worker
// that starts the task afterwards finds the job cancelled and does
// nothing; then a queued task is deleted and a running one is signalled.
func (s *Service) Cancel(ctx context.Context, scope jobs.Scope, id string) (records.Job, bool, error) {
	j, err := s.Get(ctx, scope, id)
	if err != nil {
		return j, false, err
	}
	d := Delivery(s.events, j, records.JobCancelled, nil, "cancelled by its owner")
	done, err := s.cancel(context.WithoutCancel(ctx), j, d)
	return j, done, err
}

// cancel marks a job cancelled with its webhook delivery d (nil: none) in
// one transaction, stops its task, then queues d.
func (s *Service) cancel(ctx context.Context, j records.Job, d *records.WebhookDelivery) (bool, error) {
	if j.Status != records.JobQueued && j.Status != records.JobInProgress {
		return false, nil
	}
	done, err := s.db.CancelJob(ctx, j.ID, d)
	if err != nil || !done {
		return done, err
	}
	s.Stop(j)
	s.client.EnqueueDelivery(ctx, d)
	return true, nil
}

// Stop removes a job's task from its queue and signals a worker running it
// to stop. Both are best effort: the job's row already says it ended, and
// a worker checks the row before and after running.
func (s *Service) Stop(j records.Job) {
	if err := s.inspector.CancelProcessing(j.ID); err != nil {
		slog.Debug("cancel signal not sent", "job_id", j.ID, "err", err)
	}
	if err := s.inspector.DeleteTask(j.Queue, j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		slog.Debug("task not deleted from queue", "job_id", j.ID, "err", err)
	}
}

// Delete implements jobs.Service.
func (s *Service) Delete(ctx context.Context, scope jobs.Scope, id string) error {
	j, err := s.Get(ctx, scope, id)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := s.cancel(ctx, j, nil); err != nil { // deleted: no one to tell
		return err
	}
	keys, err := s.db.DeleteJob(ctx, j.ID)
	if err != nil {
		return err
	}
	// A file that cannot be deleted now stays queued for the reconciler:
	// the job is gone either way.
	s.db.PurgeBlobs(ctx, s.blobs, keys)
	return nil
}

// Servers lists the worker processes asynq knows, for /health.
func (s *Service) Servers() ([]*asynq.ServerInfo, error) { return s.inspector.Servers() }

// TaskInfo reports a task's state in Redis, for the reconciler.
func (s *Service) TaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	return s.inspector.GetTaskInfo(queue, id)
}

// Redeliver queues a webhook delivery again under its own id, so a
// delivery has exactly one task: a leftover task (waiting for its next
// retry) is deleted first. A task running right now keeps running and the
// enqueue is a no-op; the delivery row, already reset to pending by the
// caller, decides what it records.
func (s *Service) Redeliver(ctx context.Context, deliveryID string) error {
	if err := s.inspector.DeleteTask(jobs.QueueCritical, deliveryID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		slog.Debug("leftover delivery task not deleted", "delivery_id", deliveryID, "err", err)
	}
	return s.client.EnqueueWebhook(ctx, deliveryID, deliveryID)
}
