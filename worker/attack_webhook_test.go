package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// withGPUQueue makes the harness's worker serve the queue attacks run on.
func withGPUQueue(c *config.Config) { c.WorkerQueues[jobs.QueueGPU] = 2 }

// submitAttackJob submits an attack job of the harness's org with a
// callback; deadline zero is the default.
func (h *harness) submitAttackJob(callback string, deadline time.Time) records.Job {
	h.t.Helper()
	sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: "mdl_webhook", AttackMethodID: "attack_pgd",
		Params: map[string]any{"epsilon": 0.1}, Inputs: []json.RawMessage{json.RawMessage(`[0.1,0.2]`)}})
	if err != nil {
		h.t.Fatal(err)
	}
	sub.OrgID, sub.CallbackURL, sub.Deadline = h.org.OrgID, callback, deadline
	j, err := h.jobs.Submit(context.Background(), sub)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// attackEvent checks the one delivery of an attack job and returns its event.
func (h *harness) attackEvent(job records.Job, eventType, status string) map[string]any {
	h.t.Helper()
	ds := h.deliveries(job.ID)
	if len(ds) != 1 || ds[0].EventType != eventType {
		h.t.Fatalf("deliveries of %s: %+v, want one %s", job.ID, ds, eventType)
	}
	ev := decodeEvent(h.t, []byte(ds[0].Payload))
	want := map[string]any{"event_type": eventType, "status": status, "attack_id": job.ID, "job_id": job.ID,
		"model_id": "mdl_webhook", "attack_method_id": "attack_pgd", "result_url": "http://warden.test/v1/attacks/" + job.ID + "/results"}
	for k, v := range want {
		if ev[k] != v {
			h.t.Errorf("%s event: %s = %v, want %v (event %v)", eventType, k, ev[k], v, ev)
		}
	}
	if e, _ := ev["error"].(string); e == "" {
		h.t.Errorf("%s event without error: %v", eventType, ev)
	}
	return ev
}

// TestAttackFailureWebhookCarriesIDs: a failed attack's webhook (a
// handler's permanent failure) names the attack, model and method as a
// completed one does, and reaches the receiver.
func TestAttackFailureWebhookCarriesIDs(t *testing.T) {
	h := newHarness(t, withGPUQueue)
	rcv := newReceiver(t)
	Handle(h.w, jobs.Attack, func(ctx context.Context, r *Run, in jobs.AttackInput) (jobs.AttackResult, error) {
		return jobs.AttackResult{}, Permanent("model %s exploded", in.ModelID)
	})
	h.run()
	job := h.submitAttackJob(rcv.URL(), time.Time{})
	h.waitStatus(job.ID, records.JobFailed)
	ev := h.attackEvent(job, "attack_failed", records.JobFailed)
	if ev["error"] != "model mdl_webhook exploded" {
		t.Errorf("error %v", ev["error"])
	}
	testenv.Eventually(t, 30*time.Second, "the failure webhook", func() bool { return len(rcv.requests()) == 1 })
	if got := decodeEvent(t, rcv.requests()[0].body); got["attack_id"] != job.ID || got["model_id"] != "mdl_webhook" {
		t.Errorf("received %v", got)
	}
}

// TestAttackDeadlineAndRetriesWebhooksCarryIDs: the reconciler's failures
// (past the deadline; retries exhausted, the task archived) name the
// attack, model and method too.
func TestAttackDeadlineAndRetriesWebhooksCarryIDs(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	ctx := context.Background()
	expired := h.submitAttackJob("http://hooks.test/expired", time.Now().UTC().Add(-time.Minute))
	archived := h.submitAttackJob("http://hooks.test/archived", time.Time{})
	insp := asynq.NewInspector(h.redis)
	defer insp.Close()
	if err := insp.ArchiveTask(jobs.QueueGPU, archived.ID); err != nil {
		t.Fatal(err)
	}
	h.age("jobs", archived.ID, time.Hour)
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := h.attackEvent(expired, "attack_failed", records.JobFailed); ev["error"] != "deadline exceeded" {
		t.Errorf("deadline event error %v", ev["error"])
	}
	h.attackEvent(archived, "attack_failed", records.JobFailed)
}

// TestAttackCancelWebhook: cancelling a queued attack writes its
// attack_cancelled delivery with the status change and sends it, signed,
// with the attack's, model's and method's ids; a second cancel sends
// nothing more.
func TestAttackCancelWebhook(t *testing.T) {
	h := newHarness(t, withGPUQueue)
	rcv := newReceiver(t)
	ran := make(chan struct{}, 1)
	Handle(h.w, jobs.Attack, func(ctx context.Context, r *Run, in jobs.AttackInput) (jobs.AttackResult, error) {
		ran <- struct{}{}
		return jobs.AttackResult{}, nil
	})
	job := h.submitAttackJob(rcv.URL(), time.Time{})
	if _, ok, err := h.jobs.Cancel(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, job.ID); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if j := h.job(job.ID); j.Status != records.JobCancelled {
		t.Fatalf("status %q", j.Status)
	}
	ev := h.attackEvent(job, "attack_cancelled", records.JobCancelled)
	if _, ok := ev["attack_success"]; ok {
		t.Errorf("a cancelled attack claims an outcome: %v", ev)
	}
	if _, again, err := h.jobs.Cancel(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, job.ID); err != nil || again {
		t.Errorf("second cancel: %v %v", again, err)
	}
	h.run()
	testenv.Eventually(t, 30*time.Second, "the cancel webhook", func() bool { return len(rcv.requests()) > 0 })
	time.Sleep(200 * time.Millisecond)
	got := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d webhooks, want 1", len(got))
	}
	if got[0].header.Get("webhook-signature") == "" || got[0].header.Get("webhook-id") == "" {
		t.Errorf("cancel webhook not signed: %v", got[0].header)
	}
	if ev := decodeEvent(t, got[0].body); ev["event_type"] != "attack_cancelled" || ev["attack_id"] != job.ID || ev["attack_method_id"] != "attack_pgd" {
		t.Errorf("received %v", ev)
	}
	select {
	case <-ran:
		t.Error("the cancelled attack ran")
	default:
	}
}
