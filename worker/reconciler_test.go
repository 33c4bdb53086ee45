package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
)

// flushRedis empties the harness's private Redis database index, as a
// Redis restart without persistence would.
func (h *harness) flushRedis() {
	h.t.Helper()
	opt, err := redis.ParseURL(h.redisURL)
	if err != nil {
		h.t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// taskGone reports whether TaskInfo finds no task (not found, or its queue
// unknown); any other error fails the test.
func (h *harness) taskGone(queueName, id string) bool {
	h.t.Helper()
	_, err := h.jobs.TaskInfo(queueName, id)
	if err == nil {
		return false
	}
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return true
	}
	h.t.Fatalf("task info %s/%s: %v", queueName, id, err)
	return false
}

func reconcileEvery(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.ReconcileInterval = d }
}

// TestReconcileRequeuesLostTasks: after Redis lost its data, queued and
// in_progress jobs untouched for an interval get their task back (an
// in_progress one goes back to queued); a recently touched one is left
// alone; the worker then runs the re-enqueued jobs.
func TestReconcileRequeuesLostTasks(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	ctx := context.Background()
	queued := h.submitProbe(jobs.ProbeInput{}, "")
	running := h.submitProbe(jobs.ProbeInput{}, "")
	fresh := h.submitProbe(jobs.ProbeInput{}, "")
	for _, j := range []records.Job{queued, running, fresh} {
		if h.taskGone(jobs.QueueCPU, j.ID) {
			t.Fatalf("submitted job %s has no task", j.ID)
		}
	}
	if err := h.db.Gorm().Model(&records.Job{}).Where("id = ?", running.ID).
		Updates(map[string]any{"status": records.JobInProgress, "attempts": 1}).Error; err != nil {
		t.Fatal(err)
	}
	h.flushRedis()
	h.age("jobs", queued.ID, time.Hour)
	h.age("jobs", running.ID, time.Hour)
	for _, j := range []records.Job{queued, running, fresh} {
		if !h.taskGone(jobs.QueueCPU, j.ID) {
			t.Fatalf("task of %s survived the flush", j.ID)
		}
	}

	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, j := range []records.Job{queued, running} {
		info, err := h.jobs.TaskInfo(jobs.QueueCPU, j.ID)
		if err != nil {
			t.Errorf("job %s not re-enqueued: %v", j.ID, err)
			continue
		}
		if info.State != asynq.TaskStatePending || info.Queue != jobs.QueueCPU || info.MaxRetry != jobs.Probe.MaxRetry {
			t.Errorf("re-enqueued task %s: state %v queue %q max retry %d", j.ID, info.State, info.Queue, info.MaxRetry)
		}
	}
	if got := h.job(running.ID).Status; got != records.JobQueued {
		t.Errorf("in_progress job without a task is %q after reconcile, want queued", got)
	}
	if !h.taskGone(jobs.QueueCPU, fresh.ID) {
		t.Error("a job touched within the reconcile interval was re-enqueued")
	}
	// Idempotent: a second pass changes nothing and does not fail.
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}

	h.run()
	h.waitStatus(queued.ID, records.JobCompleted)
	done := h.waitStatus(running.ID, records.JobCompleted)
	if done.Attempts != 2 {
		t.Errorf("re-run job attempts = %d, want 2 (one lost, one re-run)", done.Attempts)
	}
}

// TestReconcileRequeuesDeletedTask: a queued job whose task alone was
// deleted (queue still known to Redis) is re-enqueued.
func TestReconcileRequeuesDeletedTask(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	job := h.submitProbe(jobs.ProbeInput{}, "")
	insp := asynq.NewInspector(h.redis)
	defer insp.Close()
	if err := insp.DeleteTask(jobs.QueueCPU, job.ID); err != nil {
		t.Fatal(err)
	}
	h.age("jobs", job.ID, time.Hour)
	if !h.taskGone(jobs.QueueCPU, job.ID) {
		t.Fatal("task not deleted")
	}
	if err := h.w.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.taskGone(jobs.QueueCPU, job.ID) {
		t.Error("queued job whose task vanished was not re-enqueued")
	}
}

// TestReconcileFailsExpiredJobs: an unfinished job past its deadline is
// failed with "deadline exceeded", its task removed and its failure
// delivery committed and enqueued; a second pass adds nothing.
func TestReconcileFailsExpiredJobs(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	ctx := context.Background()
	rcv := newReceiver(t)
	sub, err := jobs.Probe.Submission(jobs.ProbeInput{})
	if err != nil {
		t.Fatal(err)
	}
	sub.OrgID, sub.CallbackURL, sub.Deadline = h.org.OrgID, rcv.URL(), time.Now().UTC().Add(-time.Minute)
	expired, err := h.jobs.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	sub.CallbackURL = "" // an expired job without callback: failed, no delivery
	quiet, err := h.jobs.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	live := h.submitProbe(jobs.ProbeInput{}, rcv.URL()) // default deadline, in the future
	if h.taskGone(jobs.QueueCPU, expired.ID) {
		t.Fatal("expired job has no task before reconcile")
	}

	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, id := range []string{expired.ID, quiet.ID} {
		j := h.job(id)
		if j.Status != records.JobFailed || j.Error != "deadline exceeded" || j.FinishedAt == nil {
			t.Errorf("expired job %s: status %q error %q finished %v", id, j.Status, j.Error, j.FinishedAt)
		}
		if !h.taskGone(jobs.QueueCPU, id) {
			t.Errorf("task of expired job %s still queued", id)
		}
	}
	if j := h.job(live.ID); j.Status != records.JobQueued {
		t.Errorf("job within its deadline is %q", j.Status)
	}
	if ds := h.deliveries(quiet.ID); len(ds) != 0 {
		t.Errorf("expired job without callback has deliveries %+v", ds)
	}
	ds := h.deliveries(expired.ID)
	if len(ds) != 1 {
		t.Fatalf("deliveries of the expired job = %d, want 1", len(ds))
	}
	d := ds[0]
	if d.EventType != "probe_failed" || d.Status != records.DeliveryPending || d.URL != rcv.URL() {
		t.Errorf("delivery = %+v", d)
	}
	ev := decodeEvent(t, []byte(d.Payload))
	if ev["job_id"] != expired.ID || ev["error"] != "deadline exceeded" || ev["event_type"] != "probe_failed" {
		t.Errorf("failure event = %v", ev)
	}
	if h.taskGone(jobs.QueueCritical, d.ID) {
		t.Error("failure delivery was not enqueued")
	}

	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	if ds := h.deliveries(expired.ID); len(ds) != 1 {
		t.Errorf("second reconcile: %d deliveries, want still 1", len(ds))
	}
	if j := h.job(expired.ID); j.Status != records.JobFailed || j.Error != "deadline exceeded" {
		t.Errorf("after second reconcile: %q %q", j.Status, j.Error)
	}
}

// TestReconcileRequeuesLostDelivery: a pending delivery whose task vanished
// is enqueued again once it is older than the interval.
func TestReconcileRequeuesLostDelivery(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	ctx := context.Background()
	job := h.submitProbe(jobs.ProbeInput{}, "http://127.0.0.1:1/hook")
	old := records.WebhookDelivery{ID: "msg_old", OrgID: h.org.OrgID, JobID: job.ID, EventType: "probe_completed",
		URL: job.CallbackURL, Payload: `{}`, Status: records.DeliveryPending}
	recent := old
	recent.ID = "msg_recent"
	done := old
	done.ID, done.Status = "msg_done", records.DeliveryDelivered
	for _, d := range []*records.WebhookDelivery{&old, &recent, &done} {
		if err := h.db.Gorm().Create(d).Error; err != nil {
			t.Fatal(err)
		}
	}
	h.age("webhook_deliveries", old.ID, time.Hour)
	h.age("webhook_deliveries", done.ID, time.Hour)
	h.age("jobs", job.ID, time.Hour) // its task exists: must stay as it is

	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if h.taskGone(jobs.QueueCritical, old.ID) {
		t.Error("stale pending delivery was not re-enqueued")
	}
	if !h.taskGone(jobs.QueueCritical, recent.ID) {
		t.Error("a delivery touched within the interval was enqueued")
	}
	if !h.taskGone(jobs.QueueCritical, done.ID) {
		t.Error("a delivered delivery was enqueued again")
	}
	if h.taskGone(jobs.QueueCPU, job.ID) {
		t.Error("the job's own task disappeared")
	}
	if j := h.job(job.ID); j.Status != records.JobQueued {
		t.Errorf("job with a live task changed to %q", j.Status)
	}
}

// TestReconcileRecordsArchivedTask: a stale job whose task asynq archived
// (retries exhausted, job row never updated) is failed by the reconciler.
func TestReconcileRecordsArchivedTask(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	job := h.submitProbe(jobs.ProbeInput{}, "")
	insp := asynq.NewInspector(h.redis)
	defer insp.Close()
	if err := insp.ArchiveTask(jobs.QueueCPU, job.ID); err != nil {
		t.Fatal(err)
	}
	h.age("jobs", job.ID, time.Hour)
	if err := h.w.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := h.job(job.ID)
	if j.Status != records.JobFailed || len(j.Error) < len("failed after retries") || j.Error[:len("failed after retries")] != "failed after retries" {
		t.Errorf("job with an archived task: status %q error %q, want failed after retries", j.Status, j.Error)
	}
}

// TestReconcileLeavesManualRedeliveryAlone: a manual redelivery
// (queue.Service.Redeliver) replaces a task left in the retry set and
// queues the delivery under its own id. While that task waits or retries,
// the reconciler must not enqueue a second task for
// the same delivery, or the receiver gets every attempt twice.
func TestReconcileLeavesManualRedeliveryAlone(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute))
	ctx := context.Background()
	job := h.submitProbe(jobs.ProbeInput{}, "http://127.0.0.1:1/hook")
	d := records.WebhookDelivery{ID: "msg_redelivered", OrgID: h.org.OrgID, JobID: job.ID, EventType: "probe_completed",
		URL: job.CallbackURL, Payload: `{}`, Status: records.DeliveryPending}
	if err := h.db.Gorm().Create(&d).Error; err != nil {
		t.Fatal(err)
	}
	// A task of an earlier round still waits in the retry set.
	if err := h.client.EnqueueWebhook(ctx, d.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.jobs.Redeliver(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	h.age("webhook_deliveries", d.ID, time.Hour)
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(h.redis)
	defer insp.Close()
	pending, err := insp.ListPendingTasks(jobs.QueueCritical)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range pending {
		var p queue.WebhookPayload
		if json.Unmarshal(task.Payload, &p) == nil && p.DeliveryID == d.ID {
			n++
			if task.ID != d.ID {
				t.Errorf("delivery task under id %q, want the delivery id", task.ID)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d tasks for one delivery, want 1", n)
	}
}

// TestReconcileSweepsAnonymousJobs: anonymous verification jobs finished
// longer than WARDEN_ANONYMOUS_RETENTION ago are deleted with their files;
// recent ones and org jobs stay.
func TestReconcileSweepsAnonymousJobs(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute), func(c *config.Config) { c.AnonymousRetention = 24 * time.Hour })
	ctx := context.Background()
	submit := func(org string, finishedAgo time.Duration) records.Job {
		t.Helper()
		key := "jobs/" + uuid.NewString() + "/input"
		n, err := h.blobs.Put(ctx, key, strings.NewReader("image bytes"))
		if err != nil {
			t.Fatal(err)
		}
		sub, err := jobs.VerifyMedia.Submission(jobs.VerifyInput{Source: "upload", ContentType: "image/png", Size: n, BlobKey: key})
		if err != nil {
			t.Fatal(err)
		}
		sub.OrgID, sub.Blobs = org, []records.Blob{{Key: key, ContentType: "image/png", Size: n}}
		j, err := h.jobs.Submit(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		finished := time.Now().UTC().Add(-finishedAgo)
		if err := h.db.Gorm().Model(&records.Job{}).Where("id = ?", j.ID).
			Updates(map[string]any{"status": records.JobCompleted, "finished_at": finished}).Error; err != nil {
			t.Fatal(err)
		}
		return j
	}
	old := submit("", 48*time.Hour)
	recent := submit("", time.Hour)
	owned := submit(h.org.OrgID, 48*time.Hour)
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.JobByID(ctx, old.ID); err == nil {
		t.Error("the old anonymous job is still there")
	}
	for _, j := range []records.Job{recent, owned} {
		if _, err := h.db.JobByID(ctx, j.ID); err != nil {
			t.Errorf("job %s (org %v) was swept: %v", j.ID, j.OrgID, err)
		}
	}
	in, _ := jobs.VerifyMedia.Input(old.Input)
	if h.blobExists(in.BlobKey) {
		t.Error("the old anonymous job's file is still stored")
	}
	in, _ = jobs.VerifyMedia.Input(recent.Input)
	if !h.blobExists(in.BlobKey) {
		t.Error("the recent anonymous job's file was deleted")
	}
}
