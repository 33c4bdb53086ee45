package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/webhook"
)

// delivery builds the webhook delivery of a job that reached status, or
// nil when the job has none (queue.Delivery).
func (w *Worker) delivery(job records.Job, status string, result any, reason string) *records.WebhookDelivery {
	return queue.Delivery(w.Events, job, status, result, reason)
}

// enqueueDelivery queues a freshly committed delivery (queue.Client.EnqueueDelivery).
func (w *Worker) enqueueDelivery(ctx context.Context, d *records.WebhookDelivery) {
	w.Client.EnqueueDelivery(ctx, d)
}

func (w *Worker) handleWebhook(ctx context.Context, t *asynq.Task) error {
	var p queue.WebhookPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("bad webhook payload: %v: %w", err, asynq.SkipRetry)
	}
	d, err := w.DB.DeliveryByID(ctx, p.DeliveryID)
	if warden.ErrorCode(err) == warden.ENOTFOUND {
		// Deleted with its job: nothing to send, and never will be.
		slog.Info("webhook delivery no longer exists; dropping its task", "delivery_id", p.DeliveryID)
		return fmt.Errorf("delivery %s deleted: %w", p.DeliveryID, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("load delivery: %w", err)
	}
	if d.Status != records.DeliveryPending {
		return nil // delivered already, or given up and not redelivered
	}
	org, err := w.DB.GetOrg(ctx, d.OrgID)
	if err != nil {
		return fmt.Errorf("load org: %w", err)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attempt := records.WebhookAttempt{DeliveryID: d.ID, Attempt: d.Attempts + 1}
	start := time.Now()
	code, body, postErr := w.post(ctx, org.WebhookSecret, d)
	attempt.DurationMS = time.Since(start).Milliseconds()
	attempt.StatusCode, attempt.ResponseBody = code, body
	delivered := postErr == nil && code >= 200 && code < 300
	if postErr != nil {
		attempt.Error = postErr.Error()
	} else if !delivered {
		attempt.Error = fmt.Sprintf("receiver answered %d", code)
	}
	giveUp := !delivered && retried >= maxRetry
	if err := w.DB.RecordAttempt(context.WithoutCancel(ctx), attempt, delivered, giveUp); err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	log := slog.With("delivery_id", d.ID, "job_id", d.JobID, "attempt", attempt.Attempt)
	if delivered {
		log.Info("webhook delivered", "status", code)
		return nil
	}
	log.Warn("webhook attempt failed", "status", code, "err", attempt.Error, "gave_up", giveUp)
	if giveUp {
		return fmt.Errorf("webhook gave up: %s: %w", attempt.Error, asynq.SkipRetry)
	}
	return fmt.Errorf("webhook attempt %d: %s", attempt.Attempt, attempt.Error)
}

// post sends one signed POST. The body is signed fresh each attempt, with a
// current timestamp, so receivers' replay windows accept retries.
func (w *Worker) post(ctx context.Context, secret string, d records.WebhookDelivery) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader([]byte(d.Payload)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Warden-Webhooks/1")
	if err := webhook.SetHeaders(req.Header, secret, d.ID, time.Now(), []byte(d.Payload)); err != nil {
		return 0, "", err
	}
	hc := w.Outbound.Webhook.HTTP()
	// A redirect is the receiver's answer, recorded as such: the signed
	// body is never re-sent to wherever it points.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
