package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/webhook"
)

// TestDispatchProbeEndToEnd runs the real probe handler through asynq: the
// job completes with its typed result and the org's receiver gets a signed
// probe_completed event.
func TestDispatchProbeEndToEnd(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.run()

	job := h.submitProbe(jobs.ProbeInput{HoldMS: 10}, rcv.URL())
	done := h.waitStatus(job.ID, records.JobCompleted)
	if done.Attempts != 1 || done.Progress != 100 || done.Stage != "done" || done.FinishedAt == nil || done.StartedAt == nil {
		t.Errorf("completed job: attempts %d progress %d stage %q finished %v started %v; want 1, 100, done, set, set",
			done.Attempts, done.Progress, done.Stage, done.FinishedAt, done.StartedAt)
	}
	res, err := h.db.GetResult(context.Background(), job.ID)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if res.Label != "ok" {
		t.Errorf("result label = %q, want ok", res.Label)
	}
	pr, err := jobs.Probe.Result(res.Data)
	if err != nil {
		t.Fatalf("decode probe result %q: %v", res.Data, err)
	}
	host, _ := os.Hostname()
	want := jobs.ProbeResult{WorkerHost: host, WorkerPID: os.Getpid(), Attempt: 1, HeldMS: 10}
	if pr != want {
		t.Errorf("probe result = %+v, want %+v", pr, want)
	}

	// The delivery row is committed with the completion and delivered.
	ds := h.deliveries(job.ID)
	if len(ds) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(ds))
	}
	d := ds[0]
	if d.EventType != "probe_completed" || d.OrgID != h.org.OrgID || d.URL != rcv.URL() {
		t.Errorf("delivery = %+v", d)
	}
	testenv.Eventually(t, 60*time.Second, "the webhook to be delivered", func() bool {
		return len(rcv.requests()) > 0 && h.deliveries(job.ID)[0].Status == records.DeliveryDelivered
	})
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if err := webhook.Verify(h.org.WebhookSecret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature does not verify with the org's secret: %v", err)
	}
	other, err := h.db.CreateOrg(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(other.WebhookSecret, r.header, r.body, time.Now(), 5*time.Minute); !errors.Is(err, webhook.ErrVerification) {
		t.Errorf("signature verified with another org's secret: %v", err)
	}
	if got := r.header.Get(webhook.HeaderID); got != d.ID {
		t.Errorf("webhook-id = %q, want the delivery id %q", got, d.ID)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	ev := decodeEvent(t, r.body)
	if ev["event_type"] != "probe_completed" || ev["job_id"] != job.ID || ev["status"] != records.JobCompleted {
		t.Errorf("event = %v", ev)
	}
	if string(r.body) != d.Payload {
		t.Errorf("posted body %q differs from the stored payload %q", r.body, d.Payload)
	}
	as, err := h.db.DeliveryAttempts(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].StatusCode != 200 || as[0].Error != "" {
		t.Errorf("attempts = %+v, want one 200", as)
	}
}

// TestDispatchPermanentFailure: a Permanent error fails the job on its
// first attempt with the handler's message and a probe_failed delivery.
func TestDispatchPermanentFailure(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	var calls atomic.Int32
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		calls.Add(1)
		return jobs.ProbeResult{}, Permanent("bad probe %d", 42)
	})
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	failed := h.waitStatus(job.ID, records.JobFailed)
	if failed.Error != "bad probe 42" {
		t.Errorf("job error = %q, want %q", failed.Error, "bad probe 42")
	}
	if failed.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", failed.Attempts)
	}
	if failed.FinishedAt == nil {
		t.Error("finished_at not set")
	}
	if n := h.resultCount(job.ID); n != 0 {
		t.Errorf("failed job has %d result rows", n)
	}
	ds := h.deliveries(job.ID)
	if len(ds) != 1 || ds[0].EventType != "probe_failed" {
		t.Fatalf("deliveries = %+v, want one probe_failed", ds)
	}
	ev := decodeEvent(t, []byte(ds[0].Payload))
	if ev["event_type"] != "probe_failed" || ev["job_id"] != job.ID || ev["error"] != "bad probe 42" {
		t.Errorf("failure event = %v", ev)
	}
	testenv.Eventually(t, 60*time.Second, "the failure webhook to be posted", func() bool { return len(rcv.requests()) > 0 })
	r := rcv.requests()[0]
	if err := webhook.Verify(h.org.WebhookSecret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("failure webhook signature: %v", err)
	}
	if got := decodeEvent(t, r.body)["event_type"]; got != "probe_failed" {
		t.Errorf("posted event_type = %v", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1 (no retry after Permanent)", n)
	}
}

// TestDispatchInvalidInputFailsPermanently: an input the kind cannot decode
// fails the job without calling the handler.
func TestDispatchInvalidInputFailsPermanently(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		calls.Add(1)
		return jobs.ProbeResult{}, nil
	})
	h.run()
	job, err := h.jobs.Submit(context.Background(), jobs.Submission{Kind: jobs.Probe.Spec, Input: `{"hold_ms":"soon"}`, OrgID: h.org.OrgID})
	if err != nil {
		t.Fatal(err)
	}
	failed := h.waitStatus(job.ID, records.JobFailed)
	if !strings.HasPrefix(failed.Error, "invalid probe input") || failed.Attempts != 1 {
		t.Errorf("job error %q attempts %d; want invalid probe input, 1", failed.Error, failed.Attempts)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("handler ran %d times on an undecodable input", n)
	}
	if ds := h.deliveries(job.ID); len(ds) != 0 {
		t.Errorf("job without callback has deliveries: %+v", ds)
	}
}

// TestDispatchRetryThenSuccess: a plain error is retried; the artifact of
// the failed attempt is deleted and only the successful attempt's is kept.
func TestDispatchRetryThenSuccess(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		name := "attempt" + string(rune('0'+r.Job.Attempts)) + ".txt"
		if _, err := r.Artifact(ctx, name, "text/plain", []byte(name)); err != nil {
			return jobs.ProbeResult{}, err
		}
		if r.Job.Attempts == 1 {
			return jobs.ProbeResult{}, errors.New("transient trouble")
		}
		return jobs.ProbeResult{Attempt: r.Job.Attempts}, nil
	})
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	done := h.waitStatus(job.ID, records.JobCompleted)
	if done.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", done.Attempts)
	}
	res, err := h.db.GetResult(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := jobs.Probe.Result(res.Data)
	if err != nil || pr.Attempt != 2 {
		t.Errorf("result %+v (%v), want attempt 2", pr, err)
	}
	first, second := storage.ArtifactKey(job.ID, 1, "attempt1.txt"), storage.ArtifactKey(job.ID, 2, "attempt2.txt")
	if h.blobExists(first) {
		t.Errorf("artifact of the failed attempt %s still stored", first)
	}
	if !h.blobExists(second) {
		t.Errorf("artifact of the completed attempt %s missing", second)
	}
	bs := h.blobRows(job.ID)
	if len(bs) != 1 || bs[0].Key != second {
		t.Errorf("blob rows = %+v, want only %s", bs, second)
	}
	if ds := h.deliveries(job.ID); len(ds) != 1 || ds[0].EventType != "probe_completed" {
		t.Errorf("deliveries = %+v, want one probe_completed", ds)
	}
}

// TestDispatchArtifactCommitsWithResult: an artifact of a completed job has
// its blob row (job, content type, size) and its file.
func TestDispatchArtifactCommitsWithResult(t *testing.T) {
	h := newHarness(t)
	data := []byte("\x89PNG fake image bytes")
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		name, err := r.Artifact(ctx, "adv.png", "image/png", data)
		if err != nil {
			return jobs.ProbeResult{}, err
		}
		if name != "adv.png" {
			return jobs.ProbeResult{}, Permanent("artifact name %q", name)
		}
		return jobs.ProbeResult{WorkerHost: "artifact"}, nil
	})
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, "")
	h.waitStatus(job.ID, records.JobCompleted)
	key := storage.ArtifactKey(job.ID, 1, "adv.png")
	bs := h.blobRows(job.ID)
	if len(bs) != 1 {
		t.Fatalf("blob rows = %+v, want 1", bs)
	}
	if bs[0].Key != key || bs[0].JobID != job.ID || bs[0].ContentType != "image/png" || bs[0].Size != int64(len(data)) {
		t.Errorf("blob row = %+v, want key %s, type image/png, size %d", bs[0], key, len(data))
	}
	got, err := os.ReadFile(filepath.Join(h.cfg.BlobDir, filepath.FromSlash(key)))
	if err != nil || string(got) != string(data) {
		t.Errorf("artifact file = %q (%v), want %q", got, err, data)
	}
	if n := h.resultCount(job.ID); n != 1 {
		t.Errorf("result rows = %d, want 1", n)
	}
	// Deleting the job through the service removes the artifact as well.
	if err := h.jobs.Delete(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, job.ID); err != nil {
		t.Fatal(err)
	}
	if h.blobExists(key) {
		t.Error("artifact file survives its job's deletion")
	}
}

// TestDispatchArtifactDiscardedOnPermanentFailure: the artifact of an
// attempt that fails is deleted and never recorded.
func TestDispatchArtifactDiscardedOnPermanentFailure(t *testing.T) {
	h := newHarness(t)
	stored := make(chan string, 1)
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		if _, err := r.Artifact(ctx, "partial.bin", "application/octet-stream", []byte("half")); err != nil {
			return jobs.ProbeResult{}, err
		}
		key := storage.ArtifactKey(r.Job.ID, r.Job.Attempts, "partial.bin")
		if ok, _ := r.w.Blobs.Exists(ctx, key); ok {
			stored <- key
		}
		return jobs.ProbeResult{}, Permanent("gave up halfway")
	})
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, "")
	failed := h.waitStatus(job.ID, records.JobFailed)
	if failed.Error != "gave up halfway" {
		t.Errorf("job error = %q", failed.Error)
	}
	select {
	case <-stored:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's artifact was never stored")
	}
	key := storage.ArtifactKey(job.ID, 1, "partial.bin")
	testenv.Eventually(t, 30*time.Second, "the failed attempt's artifact to be deleted", func() bool { return !h.blobExists(key) })
	if fileExists(filepath.Join(h.cfg.BlobDir, filepath.FromSlash(key))) {
		t.Error("artifact file still on disk")
	}
	if bs := h.blobRows(job.ID); len(bs) != 0 {
		t.Errorf("blob rows of a failed job = %+v", bs)
	}
}

// TestDispatchCancelRunningJob: a job cancelled through the service while
// its handler runs stops; it has no result and no artifact, and its one
// webhook says it was cancelled.
func TestDispatchCancelRunningJob(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	g := newGate()
	var calls atomic.Int32
	returned := make(chan error, 4)
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		calls.Add(1)
		if _, err := r.Artifact(ctx, "wip.txt", "text/plain", []byte("work in progress")); err != nil {
			return jobs.ProbeResult{}, err
		}
		r.Progress(ctx, 30, "blocking")
		g.signal()
		select {
		case <-ctx.Done():
			returned <- ctx.Err()
			return jobs.ProbeResult{}, ctx.Err()
		case <-time.After(2 * time.Minute):
			returned <- nil
			return jobs.ProbeResult{}, nil
		}
	})
	h.run()

	job := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	g.wait(t, "the handler to start")
	running := h.job(job.ID)
	if running.Status != records.JobInProgress || running.Stage != "blocking" || running.Progress != 30 {
		t.Errorf("running job: status %q stage %q progress %d", running.Status, running.Stage, running.Progress)
	}
	got, cancelled, err := h.jobs.Cancel(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, job.ID)
	if err != nil || !cancelled {
		t.Fatalf("cancel: cancelled %v, err %v", cancelled, err)
	}
	if got.ID != job.ID {
		t.Errorf("cancel returned job %q", got.ID)
	}
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ended with %v, want its context cancelled", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	key := storage.ArtifactKey(job.ID, 1, "wip.txt")
	testenv.Eventually(t, 30*time.Second, "the cancelled attempt's artifact to be deleted", func() bool { return !h.blobExists(key) })
	// Wait until asynq has dealt with the cancelled task (archived or
	// scheduled for a retry that will find the job cancelled).
	testenv.Eventually(t, 30*time.Second, "the task to leave the active state", func() bool {
		info, err := h.jobs.TaskInfo(jobs.QueueCPU, job.ID)
		return err != nil || info.State != asynq.TaskStateActive
	})
	j := h.job(job.ID)
	if j.Status != records.JobCancelled || j.FinishedAt == nil {
		t.Errorf("job status %q finished %v, want cancelled", j.Status, j.FinishedAt)
	}
	if n := h.resultCount(job.ID); n != 0 {
		t.Errorf("cancelled job has %d result rows", n)
	}
	if bs := h.blobRows(job.ID); len(bs) != 0 {
		t.Errorf("cancelled job has blob rows %+v", bs)
	}
	if ds := h.deliveries(job.ID); len(ds) != 1 || ds[0].EventType != "probe_cancelled" {
		t.Errorf("cancelled job has deliveries %+v, want one probe_cancelled", ds)
	}
	testenv.Eventually(t, 30*time.Second, "the cancel webhook", func() bool { return len(rcv.requests()) > 0 })
	if got := rcv.requests(); len(got) != 1 {
		t.Errorf("receiver got %d webhooks for a cancelled job, want 1", len(got))
	} else if ev := decodeEvent(t, got[0].body); ev["event_type"] != "probe_cancelled" || ev["status"] != records.JobCancelled || ev["job_id"] != job.ID {
		t.Errorf("cancel webhook %v", ev)
	}
	// A second cancel reports that the job had already ended.
	if _, again, err := h.jobs.Cancel(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, job.ID); err != nil || again {
		t.Errorf("second cancel: cancelled %v err %v, want false, nil", again, err)
	}
}

// TestHandleJobEdgeCases calls the asynq handler directly with payloads
// that must not run anything.
func TestHandleJobEdgeCases(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		calls.Add(1)
		return jobs.ProbeResult{}, nil
	})
	ctx := context.Background()
	task := func(p any) *asynq.Task {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return asynq.NewTask(queue.TypeJob, b)
	}
	if err := h.w.handleJob(ctx, asynq.NewTask(queue.TypeJob, []byte("{not json"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("bad payload: %v, want SkipRetry", err)
	}
	if err := h.w.handleJob(ctx, task(queue.JobPayload{JobID: "x", Kind: "no_such_kind"})); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("unknown kind: %v, want SkipRetry", err)
	}
	if err := h.w.handleJob(ctx, task(queue.JobPayload{JobID: "00000000-0000-0000-0000-000000000000", Kind: jobs.Probe.Name})); err != nil {
		t.Errorf("missing job: %v, want nil (skipped)", err)
	}
	// A job that already completed is not run again.
	job := h.submitProbe(jobs.ProbeInput{}, "")
	if err := h.w.handleJob(ctx, task(queue.JobPayload{JobID: job.ID, Kind: jobs.Probe.Name})); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if j := h.job(job.ID); j.Status != records.JobCompleted || j.Attempts != 1 {
		t.Fatalf("after first run: status %q attempts %d", j.Status, j.Attempts)
	}
	if err := h.w.handleJob(ctx, task(queue.JobPayload{JobID: job.ID, Kind: jobs.Probe.Name})); err != nil {
		t.Errorf("second run of a completed job: %v, want nil", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if j := h.job(job.ID); j.Attempts != 1 {
		t.Errorf("attempts after redelivery of a completed job = %d, want 1", j.Attempts)
	}
}

// TestCancelledJobCompletingLateStoresNothing: a handler that ignores its
// context and succeeds after its job was cancelled stores no result, no
// blob row, no artifact and no completion delivery (its one delivery is the
// cancel's; both completion paths: with artifacts, a transaction; without,
// the batched statement).
func TestCancelledJobCompletingLateStoresNothing(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	type hold struct {
		entered, release chan struct{}
		artifact         bool
	}
	holds := map[string]*hold{}
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		hd := holds[r.Job.ID]
		if hd.artifact {
			if _, err := r.Artifact(context.WithoutCancel(ctx), "late.txt", "text/plain", []byte("late")); err != nil {
				return jobs.ProbeResult{}, err
			}
		}
		close(hd.entered)
		<-hd.release // ignores ctx on purpose
		return jobs.ProbeResult{WorkerHost: "late"}, nil
	})
	withArt := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	plain := h.submitProbe(jobs.ProbeInput{}, rcv.URL())
	holds[withArt.ID] = &hold{make(chan struct{}), make(chan struct{}), true}
	holds[plain.ID] = &hold{make(chan struct{}), make(chan struct{}), false}
	h.run()

	for _, j := range []records.Job{withArt, plain} {
		hd := holds[j.ID]
		select {
		case <-hd.entered:
		case <-time.After(60 * time.Second):
			t.Fatalf("handler of %s did not start", j.ID)
		}
		if _, ok, err := h.jobs.Cancel(context.Background(), jobs.Scope{OrgID: h.org.OrgID}, j.ID); err != nil || !ok {
			t.Fatalf("cancel %s: %v %v", j.ID, ok, err)
		}
		close(hd.release)
	}
	key := storage.ArtifactKey(withArt.ID, 1, "late.txt")
	testenv.Eventually(t, 30*time.Second, "the late attempt's artifact to be deleted", func() bool { return !h.blobExists(key) })
	testenv.Eventually(t, 30*time.Second, "both tasks to leave the active state", func() bool {
		for _, j := range []records.Job{withArt, plain} {
			if info, err := h.jobs.TaskInfo(jobs.QueueCPU, j.ID); err == nil && info.State == asynq.TaskStateActive {
				return false
			}
		}
		return true
	})
	for _, j := range []records.Job{withArt, plain} {
		got := h.job(j.ID)
		if got.Status != records.JobCancelled {
			t.Errorf("job %s status %q, want cancelled", j.ID, got.Status)
		}
		if n := h.resultCount(j.ID); n != 0 {
			t.Errorf("job %s has %d results", j.ID, n)
		}
		if bs := h.blobRows(j.ID); len(bs) != 0 {
			t.Errorf("job %s has blob rows %+v", j.ID, bs)
		}
		// The cancel's webhook only: the late completion sends none.
		if ds := h.deliveries(j.ID); len(ds) != 1 || ds[0].EventType != "probe_cancelled" {
			t.Errorf("job %s has deliveries %+v, want its probe_cancelled only", j.ID, ds)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the cancel webhooks", func() bool { return len(rcv.requests()) >= 2 })
	for _, r := range rcv.requests() {
		if ev := decodeEvent(t, r.body); ev["event_type"] != "probe_cancelled" {
			t.Errorf("a cancelled job sent %v", ev)
		}
	}
}

// TestDuplicateAttemptKeepsCompletedArtifact: two attempts of one job run
// at once (asynq recovering a task whose lease expired, or the reconciler
// re-enqueueing a running job after Redis lost it). The first completes;
// the second, whose completion is then a no-op, must not destroy the
// artifact the first committed.
func TestDuplicateAttemptKeepsCompletedArtifact(t *testing.T) {
	h := newHarness(t)
	entered := map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{})}
	release := map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{})}
	Handle(h.w, jobs.Probe, func(ctx context.Context, r *Run, in jobs.ProbeInput) (jobs.ProbeResult, error) {
		a := r.Job.Attempts
		if _, err := r.Artifact(ctx, "out.txt", "text/plain", []byte(fmt.Sprintf("attempt %d", a))); err != nil {
			return jobs.ProbeResult{}, err
		}
		close(entered[a])
		<-release[a]
		return jobs.ProbeResult{Attempt: a}, nil
	})
	job := h.submitProbe(jobs.ProbeInput{}, "")
	b, _ := json.Marshal(queue.JobPayload{JobID: job.ID, Kind: jobs.Probe.Name})
	task := asynq.NewTask(queue.TypeJob, b)
	ctx := context.Background()
	errs := map[int]chan error{1: make(chan error, 1), 2: make(chan error, 1)}
	go func() { errs[1] <- h.w.handleJob(ctx, task) }()
	<-entered[1]
	go func() { errs[2] <- h.w.handleJob(ctx, task) }()
	<-entered[2]
	close(release[1])
	if err := <-errs[1]; err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	close(release[2])
	if err := <-errs[2]; err != nil {
		t.Fatalf("duplicate attempt: %v", err)
	}
	j := h.job(job.ID)
	if j.Status != records.JobCompleted || j.Attempts != 2 {
		t.Fatalf("job status %q attempts %d", j.Status, j.Attempts)
	}
	res, err := h.db.GetResult(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pr, _ := jobs.Probe.Result(res.Data); pr.Attempt != 1 {
		t.Fatalf("result of attempt %d, want 1", pr.Attempt)
	}
	key := storage.ArtifactKey(job.ID, 1, "out.txt")
	if bs := h.blobRows(job.ID); len(bs) != 1 || bs[0].Key != key {
		t.Fatalf("blob rows %+v", bs)
	}
	got, err := os.ReadFile(filepath.Join(h.cfg.BlobDir, filepath.FromSlash(key)))
	if err != nil {
		t.Fatalf("the completed job's artifact is gone: %v", err)
	}
	if string(got) != "attempt 1" {
		t.Errorf("the completed job's artifact holds %q, want the completed attempt's %q", got, "attempt 1")
	}
}
