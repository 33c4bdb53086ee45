package queue

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// Delivery builds the webhook delivery of a job that reached status
// (completed, failed or cancelled), to be written with the status change;
// nil when the job has no callback_url, no org whose secret signs it, or
// events is nil. The body is the surface's (events): nothing here spells
// an event.
func Delivery(events jobs.Events, job records.Job, status string, result any, reason string) *records.WebhookDelivery {
	if job.CallbackURL == "" || job.OrgID == nil || events == nil {
		return nil
	}
	typ, body, err := events.Event(job, status, result, reason)
	if err != nil {
		slog.Error("webhook event not rendered; no delivery", "job_id", job.ID, "err", err)
		return nil
	}
	return &records.WebhookDelivery{ID: "msg_" + uuid.NewString(), OrgID: *job.OrgID, EventType: typ, URL: job.CallbackURL, Payload: string(body)}
}

// EnqueueDelivery queues a freshly committed delivery (nil: nothing); if
// Redis is down the reconciler enqueues it later, since the row is
// already pending.
func (c *Client) EnqueueDelivery(ctx context.Context, d *records.WebhookDelivery) {
	if d == nil {
		return
	}
	if err := c.EnqueueWebhook(context.WithoutCancel(ctx), d.ID, d.ID); err != nil {
		slog.Warn("webhook enqueue failed; reconciler will retry", "delivery_id", d.ID, "err", err)
	}
}
