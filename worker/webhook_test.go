package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/webhook"
)

func webhookTask(t *testing.T, deliveryID string) *asynq.Task {
	t.Helper()
	b, err := json.Marshal(queue.WebhookPayload{DeliveryID: deliveryID})
	if err != nil {
		t.Fatal(err)
	}
	return asynq.NewTask(queue.TypeWebhook, b)
}

// TestWebhookRetriesUntilDelivered: a receiver that answers 500 gets the
// same delivery again (same webhook-id, freshly signed) until it answers
// 2xx; every attempt is recorded.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t, 500)
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	h.waitStatus(job.ID, records.JobCompleted)
	var d records.WebhookDelivery
	testenv.Eventually(t, 90*time.Second, "the delivery to succeed on a retry", func() bool {
		ds := h.deliveries(job.ID)
		if len(ds) != 1 {
			return false
		}
		d = ds[0]
		return d.Status == records.DeliveryDelivered
	})
	if d.Attempts != 2 || d.DeliveredAt == nil {
		t.Errorf("delivery attempts %d delivered_at %v, want 2, set", d.Attempts, d.DeliveredAt)
	}
	as, err := h.db.DeliveryAttempts(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 {
		t.Fatalf("attempts = %+v, want 2", as)
	}
	if as[0].Attempt != 1 || as[0].StatusCode != 500 || as[0].Error != "receiver answered 500" {
		t.Errorf("first attempt = %+v", as[0])
	}
	if as[1].Attempt != 2 || as[1].StatusCode != 200 || as[1].Error != "" {
		t.Errorf("second attempt = %+v", as[1])
	}
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if got := r.header.Get(webhook.HeaderID); got != d.ID {
			t.Errorf("request %d webhook-id = %q, want %q", i, got, d.ID)
		}
		if string(r.body) != d.Payload {
			t.Errorf("request %d body differs from the stored payload", i)
		}
		if err := webhook.Verify(h.org.WebhookSecret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("request %d signature: %v", i, err)
		}
	}
}

// TestWebhookSkipsFinishedDelivery: a task for a delivery that is no longer
// pending posts nothing; a task whose delivery was deleted (with its job)
// ends without a retry.
func TestWebhookSkipsFinishedDelivery(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	d := records.WebhookDelivery{ID: "msg_done", OrgID: h.org.OrgID, JobID: job.ID, EventType: "probe_completed",
		URL: rcv.URL(), Payload: `{}`, Status: records.DeliveryDelivered}
	if err := h.db.Gorm().Create(&d).Error; err != nil {
		t.Fatal(err)
	}
	if err := h.w.handleWebhook(context.Background(), webhookTask(t, d.ID)); err != nil {
		t.Errorf("delivered delivery: %v, want nil", err)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("receiver got %d requests for a delivered delivery", n)
	}
	if err := h.w.handleWebhook(context.Background(), webhookTask(t, "msg_missing")); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("deleted delivery: %v, want SkipRetry (no 34 retries of nothing)", err)
	}
	if err := h.w.handleWebhook(context.Background(), asynq.NewTask(queue.TypeWebhook, []byte("nope"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("bad payload: %v, want SkipRetry", err)
	}
}

// TestWebhookRefusesDisallowedAddress: without 127.0.0.0/8 on the outbound
// allow list the SSRF guard refuses the loopback receiver; the attempt is
// recorded with its error and nothing reaches the receiver.
func TestWebhookRefusesDisallowedAddress(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.WebhookAllow = "" })
	rcv := newReceiver(t)
	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	d := records.WebhookDelivery{ID: "msg_ssrf", OrgID: h.org.OrgID, JobID: job.ID, EventType: "probe_completed",
		URL: rcv.URL(), Payload: `{"event_type":"probe_completed"}`, Status: records.DeliveryPending}
	if err := h.db.Gorm().Create(&d).Error; err != nil {
		t.Fatal(err)
	}
	if err := h.w.handleWebhook(context.Background(), webhookTask(t, d.ID)); err == nil {
		t.Error("refused delivery reported success")
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("loopback receiver got %d requests despite the allow list", n)
	}
	as, err := h.db.DeliveryAttempts(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Error == "" || as[0].StatusCode != 0 {
		t.Errorf("attempts = %+v, want one with an error and no status", as)
	}
	got, err := h.db.DeliveryByID(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == records.DeliveryDelivered || got.Attempts != 1 {
		t.Errorf("refused delivery: status %q attempts %d", got.Status, got.Attempts)
	}
}

// TestDeliveryNeedsCallbackAndOrg: only a job with a callback_url and an
// org gets a delivery; its fields come from the job and Deps.Events.
func TestDeliveryNeedsCallbackAndOrg(t *testing.T) {
	h := newHarness(t)
	org := h.org.OrgID
	base := records.Job{ID: "00000000-0000-0000-0000-000000000001", Kind: jobs.Probe.Name, OrgID: &org, CallbackURL: "http://127.0.0.1/hook"}
	d := h.w.delivery(base, records.JobCompleted, jobs.ProbeResult{}, "")
	if d == nil {
		t.Fatal("no delivery for a job with an org and a callback")
	}
	if !strings.HasPrefix(d.ID, "msg_") || d.OrgID != org || d.URL != base.CallbackURL || d.EventType != "probe_completed" {
		t.Errorf("delivery = %+v", d)
	}
	if ev := decodeEvent(t, []byte(d.Payload)); ev["job_id"] != base.ID || ev["event_type"] != "probe_completed" {
		t.Errorf("payload = %v", ev)
	}
	if d2 := h.w.delivery(base, records.JobCompleted, jobs.ProbeResult{}, ""); d2 == nil || d2.ID == d.ID {
		t.Error("two deliveries share an id")
	}
	noCallback := base
	noCallback.CallbackURL = ""
	if d := h.w.delivery(noCallback, records.JobCompleted, jobs.ProbeResult{}, ""); d != nil {
		t.Errorf("job without callback: delivery %+v", d)
	}
	anonymous := base
	anonymous.OrgID = nil
	if d := h.w.delivery(anonymous, records.JobCompleted, jobs.ProbeResult{}, ""); d != nil {
		t.Errorf("anonymous job: delivery %+v", d)
	}
	// An event the surface cannot render gives no delivery (and no panic).
	if d := h.w.delivery(base, records.JobCompleted, struct{ X int }{1}, ""); d != nil {
		t.Errorf("unrenderable result: delivery %+v", d)
	}
}

// TestWebhookDoesNotFollowRedirects: a receiver answering 302 gets one
// failed attempt recorded as such; the signed body is never sent to the
// redirect target.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	h := newHarness(t)
	target := newReceiver(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL(), http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	job := h.submitProbe(jobs.ProbeInput{}, redirect.URL+"/hook")
	h.run()
	h.waitStatus(job.ID, records.JobCompleted)
	testenv.Eventually(t, 30*time.Second, "a recorded attempt", func() bool {
		var n int64
		h.db.Gorm().Model(&records.WebhookAttempt{}).Count(&n)
		return n > 0
	})
	var a records.WebhookAttempt
	if err := h.db.Gorm().First(&a).Error; err != nil {
		t.Fatal(err)
	}
	if a.StatusCode != http.StatusTemporaryRedirect || a.Error == "" {
		t.Errorf("attempt %+v, want a failed 307", a)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect target received %d signed POSTs", n)
	}
}

// TestWebhookSignedWithSealedSecret: with WARDEN_SECRET_KEY the org's
// webhook secret is stored sealed, and the worker signs with the secret
// in clear (the receiver verifies with the one the org was given). A worker
// without the key fails the attempt with an error naming the setting and
// sends nothing.
func TestWebhookSignedWithSealedSecret(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.SecretKey = bytes.Repeat([]byte{3}, 32) })
	var stored string
	h.db.Gorm().Raw("SELECT webhook_secret FROM orgs WHERE id = ?", h.org.OrgID).Scan(&stored)
	if !strings.HasPrefix(stored, "enc:v1:") || strings.Contains(stored, h.org.WebhookSecret) {
		t.Fatalf("webhook secret stored as %q", stored)
	}
	rcv := newReceiver(t)
	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	d := records.WebhookDelivery{ID: "msg_sealed", OrgID: h.org.OrgID, JobID: job.ID, EventType: "probe_completed",
		URL: rcv.URL(), Payload: `{"event_type":"probe_completed"}`, Status: records.DeliveryPending}
	if err := h.db.Gorm().Create(&d).Error; err != nil {
		t.Fatal(err)
	}

	plain, err := storage.Open(context.Background(), h.cfg.DatabaseURL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	deps := h.w.Deps
	deps.DB = plain
	err = New(deps).handleWebhook(context.Background(), webhookTask(t, d.ID))
	if err == nil || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
		t.Errorf("keyless worker: %v; want an error naming WARDEN_SECRET_KEY", err)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("keyless worker sent %d requests", n)
	}

	if err := h.w.handleWebhook(context.Background(), webhookTask(t, d.ID)); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	if err := webhook.Verify(h.org.WebhookSecret, reqs[0].header, reqs[0].body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
}
