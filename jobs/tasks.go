// Package tasks is the contract between the API and the workers: task type
// names, payloads, queue names and enqueue options. Both sides import it;
// neither imports the other.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Queues. `warden worker --queues gpu=6,cpu=2` picks which a pool serves.
const (
	QueueCritical = "critical" // predictions, webhooks
	QueueGPU      = "gpu"      // attacks, analyses
	QueueCPU      = "cpu"      // verification, model validation
)

// Task types.
const (
	TypeJob     = "warden:job"     // every job kind; the handler dispatches on Job.Kind
	TypeWebhook = "warden:webhook" // one webhook delivery
)

// Job kinds (records.Job.Kind).
const (
	KindVerifyMedia = "verify_media"
	KindProbe       = "probe" // canary job: exercises the pipeline with no work
	KindModelLoad   = "model_validate"
	KindPredict     = "predict"
	KindAttack      = "attack"
)

// Kind describes how a job kind is queued.
type Kind struct {
	Name     string
	Queue    string
	MaxRetry int
	Timeout  time.Duration // per attempt
}

// Kinds lists every job kind the workers know.
var Kinds = map[string]Kind{
	KindVerifyMedia: {KindVerifyMedia, QueueCPU, 5, 10 * time.Minute},
	KindProbe:       {KindProbe, QueueCPU, 5, 2 * time.Minute},
	KindModelLoad:   {KindModelLoad, QueueCPU, 3, 15 * time.Minute},
	KindPredict:     {KindPredict, QueueCritical, 1, time.Minute},
	KindAttack:      {KindAttack, QueueGPU, 2, time.Hour},
}

// ModelJobInput is the input of a model validation job.
type ModelJobInput struct {
	ModelID string `json:"model_id"`
}

// PredictInput is the input of a prediction job: one input in the model's
// format (modelspec.Config.Encode).
type PredictInput struct {
	ModelID string          `json:"model_id"`
	Input   json.RawMessage `json:"input"`
}

// AttackInput is the input of an attack job, validated by the API.
type AttackInput struct {
	ModelID        string            `json:"model_id"`
	AttackMethodID string            `json:"attack_method_id"`
	Params         map[string]any    `json:"attack_parameters"` // validated, defaults applied
	Inputs         []json.RawMessage `json:"inputs"`            // one or a batch, in the model's format
	TrueLabels     []int             `json:"true_labels,omitempty"`
	TargetLabel    *int              `json:"target_label,omitempty"` // class index
}

// JobPayload is the payload of TypeJob tasks; everything else is in the
// database, which is the system of record.
type JobPayload struct {
	JobID string `json:"job_id"`
	Kind  string `json:"kind"`
}

// WebhookPayload is the payload of TypeWebhook tasks.
type WebhookPayload struct {
	DeliveryID string `json:"delivery_id"`
}

// Webhook retry policy: exponential from 5 s, capped at one hour, for at
// least 24 hours in all (10 doubling steps ≈ 1.4 h, then 24 hourly tries).
const WebhookMaxRetry = 34

// WebhookRetryDelay is the delay before retry n (n counts from 1).
func WebhookRetryDelay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 10 {
		return time.Hour
	}
	d := 5 * time.Second << (n - 1)
	if d > time.Hour {
		d = time.Hour
	}
	return d
}

// Client enqueues tasks. TaskID is the job (or delivery) id, so enqueueing
// the same job twice is a no-op.
type Client struct{ c *asynq.Client }

// NewClient wraps an asynq client.
func NewClient(opt asynq.RedisConnOpt) *Client { return &Client{c: asynq.NewClient(opt)} }

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// EnqueueJob enqueues a job; an existing task with the same id counts as success.
func (c *Client) EnqueueJob(ctx context.Context, jobID, kind string) error {
	k, ok := Kinds[kind]
	if !ok {
		return fmt.Errorf("enqueue: unknown job kind %q", kind)
	}
	b, _ := json.Marshal(JobPayload{JobID: jobID, Kind: kind})
	t := asynq.NewTask(TypeJob, b)
	_, err := c.c.EnqueueContext(ctx, t, asynq.TaskID(jobID), asynq.Queue(k.Queue),
		asynq.MaxRetry(k.MaxRetry), asynq.Timeout(k.Timeout))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue job %s: %w", jobID, err)
	}
	return nil
}

// EnqueueWebhook enqueues a delivery under the given task id (the delivery
// id, or a fresh id for a manual redelivery).
func (c *Client) EnqueueWebhook(ctx context.Context, deliveryID, taskID string) error {
	b, _ := json.Marshal(WebhookPayload{DeliveryID: deliveryID})
	_, err := c.c.EnqueueContext(ctx, asynq.NewTask(TypeWebhook, b), asynq.TaskID(taskID),
		asynq.Queue(QueueCritical), asynq.MaxRetry(WebhookMaxRetry), asynq.Timeout(30*time.Second))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue webhook %s: %w", deliveryID, err)
	}
	return nil
}

// RedisOpt parses a redis:// URL into asynq's connection option.
func RedisOpt(url string) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return nil, fmt.Errorf("WARDEN_REDIS_URL: %w", err)
	}
	return opt, nil
}
