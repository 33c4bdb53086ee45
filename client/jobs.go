package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Job statuses.
const (
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// Job is GET /v1/jobs/{job_id}: any job of the caller's org.
type Job struct {
	JobID       string          `json:"job_id"`
	Kind        string          `json:"kind"`
	Status      string          `json:"status"`
	Progress    int             `json:"progress_percentage"`
	Stage       string          `json:"current_stage"`
	Attempts    int             `json:"attempts"`
	Error       *string         `json:"error"`
	Result      json.RawMessage `json:"result,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	CompletedAt *time.Time      `json:"completed_at"`
}

// Finished reports a job that will not change any more.
func (j Job) Finished() bool {
	return j.Status == StatusCompleted || j.Status == StatusFailed || j.Status == StatusCancelled
}

// JobList is a page of GET /v1/jobs.
type JobList struct {
	Total  int64 `json:"total"`
	Limit  int   `json:"limit"`
	Offset int   `json:"offset"`
	Data   []Job `json:"data"`
}

// JobFilter narrows ListJobs; zero values mean any and the API's defaults.
type JobFilter struct {
	Kind, Status  string
	Limit, Offset int
}

// ListJobs lists the org's jobs, newest first (GET /v1/jobs).
func (c *Client) ListJobs(ctx context.Context, f JobFilter) (JobList, Raw, error) {
	q := pageQuery(f.Limit, f.Offset)
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	var l JobList
	raw, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/jobs", query: q}, &l)
	return l, raw, err
}

// GetJob reads a job with its result once completed (GET /v1/jobs/{id}).
func (c *Client) GetJob(ctx context.Context, id string) (Job, Raw, error) {
	var j Job
	raw, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/jobs/" + url.PathEscape(id)}, &j)
	return j, raw, err
}

// Cancelled is the answer of a cancel.
type Cancelled struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
}

// CancelJob cancels a queued or running job of any kind
// (POST /v1/jobs/{id}/cancel); a finished job is a 409 *Error.
func (c *Client) CancelJob(ctx context.Context, id string) (Cancelled, Raw, error) {
	var out Cancelled
	raw, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/jobs/" + url.PathEscape(id) + "/cancel"}, &out)
	return out, raw, err
}

// Delivery is a webhook delivery (GET /v1/webhooks/deliveries).
type Delivery struct {
	ID          string          `json:"id"`
	JobID       string          `json:"job_id"`
	EventType   string          `json:"event_type"`
	URL         string          `json:"url"`
	Status      string          `json:"status"`
	Attempts    int             `json:"attempts"`
	Payload     json.RawMessage `json:"payload"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	DeliveredAt *time.Time      `json:"delivered_at"`
}

// DeliveryList is a page of deliveries.
type DeliveryList struct {
	Total  int64      `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Data   []Delivery `json:"data"`
}

// Deliveries lists the org's webhook deliveries, newest first, of one job
// when jobID is not "".
func (c *Client) Deliveries(ctx context.Context, jobID string, limit, offset int) (DeliveryList, Raw, error) {
	q := pageQuery(limit, offset)
	if jobID != "" {
		q.Set("job_id", jobID)
	}
	var l DeliveryList
	raw, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/webhooks/deliveries", query: q}, &l)
	return l, raw, err
}

// Poll is how Wait reads a job: GetJob, or GetVerification for an
// anonymous caller.
type Poll func(ctx context.Context) (Job, Raw, error)

// Backoff paces Wait's polls: the first interval, growing by half each
// poll that saw no change, up to Max; a change starts over at Min.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff polls after 250 ms, then up to every 3 s while nothing moves.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 3 * time.Second}

// Wait polls until the job finishes, calling progress with each read that
// differs from the one before (status, percentage or stage). It returns
// the finished job and its raw document; ctx's end stops waiting (not the
// job) with ctx's error. Transient failures (network, 5xx, 429) are retried
// with the same backoff; other API errors end the wait.
func Wait(ctx context.Context, poll Poll, b Backoff, progress func(Job)) (Job, Raw, error) {
	if b.Min <= 0 {
		b = DefaultBackoff
	}
	interval := b.Min
	var last *Job
	failures := 0
	for {
		j, raw, err := poll(ctx)
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		switch {
		case err == nil:
			if last == nil || j.Status != last.Status || j.Progress != last.Progress || j.Stage != last.Stage {
				if progress != nil {
					progress(j)
				}
				last, interval = &j, b.Min
			}
			if j.Finished() {
				return j, raw, nil
			}
		case ctx.Err() != nil:
			return Job{}, nil, ctx.Err()
		case !transient(err) || failures >= maxPollFailures:
			return Job{}, nil, err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return Job{}, nil, ctx.Err()
		case <-t.C:
		}
		interval = min(interval+interval/2, b.Max)
	}
}

// maxPollFailures ends a wait after this many failed polls in a row.
const maxPollFailures = 10

// transient reports an error worth polling again after.
func transient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return true // the network
}
