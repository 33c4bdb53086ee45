// Package queue carries jobs over asynq on Redis: task types and payloads,
// the enqueue client with each kind's options, the webhook retry policy,
// and Service, the jobs.Service over storage and asynq.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/jobs"
)

// SandboxKeyPrefix prefixes the Redis keys in which each worker publishes
// the confinement of its model runners (JSON, expiring unless refreshed);
// /health lists them.
const SandboxKeyPrefix = "warden:sandbox:"

// Task types.
const (
	TypeJob     = "warden:job"     // every job kind; the worker dispatches on Job.Kind
	TypeWebhook = "warden:webhook" // one webhook delivery
)

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
	return 5 * time.Second << (n - 1)
}

// Client enqueues tasks. TaskID is the job (or delivery) id, so enqueueing
// the same job twice is a no-op.
type Client struct{ c *asynq.Client }

// NewClient wraps an asynq client.
func NewClient(opt asynq.RedisConnOpt) *Client { return &Client{c: asynq.NewClient(opt)} }

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// EnqueueJob enqueues a job with its kind's queue, retries and timeout;
// an existing task with the same id counts as success.
func (c *Client) EnqueueJob(ctx context.Context, jobID, kind string) error {
	k, ok := jobs.Lookup(kind)
	if !ok {
		return fmt.Errorf("enqueue: unknown job kind %q", kind)
	}
	b, _ := json.Marshal(JobPayload{JobID: jobID, Kind: kind})
	_, err := c.c.EnqueueContext(ctx, asynq.NewTask(TypeJob, b), asynq.TaskID(jobID), asynq.Queue(k.Queue),
		asynq.MaxRetry(k.MaxRetry), asynq.Timeout(k.Timeout))
	if err != nil && !isDuplicate(err) {
		return fmt.Errorf("enqueue job %s: %w", jobID, err)
	}
	return nil
}

// EnqueueWebhook enqueues a delivery under the given task id (the delivery
// id, or a fresh id for a manual redelivery).
func (c *Client) EnqueueWebhook(ctx context.Context, deliveryID, taskID string) error {
	b, _ := json.Marshal(WebhookPayload{DeliveryID: deliveryID})
	_, err := c.c.EnqueueContext(ctx, asynq.NewTask(TypeWebhook, b), asynq.TaskID(taskID),
		asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(WebhookMaxRetry), asynq.Timeout(30*time.Second))
	if err != nil && !isDuplicate(err) {
		return fmt.Errorf("enqueue webhook %s: %w", deliveryID, err)
	}
	return nil
}

func isDuplicate(err error) bool {
	return errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask)
}
