package jobs

import (
	"context"
	"time"

	"github.com/wardenlab/warden/records"
)

// Service submits, reads and cancels jobs. Implemented by queue.Service
// over storage (the system of record) and asynq (the transport).
type Service interface {
	// Submit writes the job row (queued) with the blobs it owns in one
	// transaction, then enqueues it. An enqueue failure (Redis down) does
	// not fail the submission: the reconciler enqueues queued jobs that
	// have no task. A submission that would pass its org's quota
	// writes nothing and fails with EQUOTAJOBS or EQUOTABYTES; the caller
	// deletes any file it stored for it.
	Submit(ctx context.Context, s Submission) (records.Job, error)
	// Get loads a job the scope may see; any other job, including
	// another org's, is ENOTFOUND.
	Get(ctx context.Context, scope Scope, id string) (records.Job, error)
	// Result loads a completed job's result (the job comes from Get).
	Result(ctx context.Context, job records.Job) (records.Result, error)
	// Cancel stops a job the scope may see wherever it is (database,
	// queue, a worker running it). cancelled is false when the job had
	// already ended; the job is returned as it was found.
	Cancel(ctx context.Context, scope Scope, id string) (job records.Job, cancelled bool, err error)
	// Delete cancels a job the scope may see and removes it with its
	// result, webhook records and every stored blob.
	Delete(ctx context.Context, scope Scope, id string) error
	// RegisterModel creates a model row (status processing) and its
	// validation job in one transaction, with the model file's blob when
	// one was stored, and enqueues the validation. The org's quota
	// applies as for Submit.
	RegisterModel(ctx context.Context, m *records.Model, blobs []records.Blob) (records.Job, error)
}

// Submission is a job to submit; build it with Kind.Submission.
type Submission struct {
	Kind        Spec
	Input       string         // encoded input
	ID          string         // "" for a fresh Kind.NewID()
	OrgID       string         // "" for an anonymous job (spec 003 verification)
	CallbackURL string         // webhook target, already validated
	Subject     string         // what the job is about (records.Job.Subject), "" for none
	Deadline    time.Time      // zero for the service's default deadline
	Blobs       []records.Blob // stored objects the job owns (its uploaded file)
}

// Scope says which jobs a caller may see.
type Scope struct {
	OrgID     string // the caller's org; "" for an anonymous caller
	Anonymous bool   // anonymous jobs are visible too (spec 003: their ids are unguessable)
	Kind      string // only jobs of this kind; "" for any
}

// Visible reports whether a job is in scope.
func (s Scope) Visible(j records.Job) bool {
	if s.Kind != "" && j.Kind != s.Kind {
		return false
	}
	if j.OrgID == nil {
		return s.Anonymous
	}
	return s.OrgID != "" && *j.OrgID == s.OrgID
}

// Events renders webhook events. Each surface owns the events of the kinds
// it shows (their type names, result URLs and bodies); the worker asks
// when a job ends, and the Service when it cancels one, and each stores
// what it gets with the job's status change.
type Events interface {
	// Event renders the event of a job that reached status (completed,
	// failed or cancelled). result is the job's typed result when
	// completed, else nil; reason says why it failed or was cancelled.
	Event(job records.Job, status string, result any, reason string) (eventType string, body []byte, err error)
}
