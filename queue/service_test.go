package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

type env struct {
	db        *storage.DB
	blobs     *storage.LocalBlobs
	blobRoot  string
	client    *queue.Client
	svc       *queue.Service
	inspector *asynq.Inspector
}

// newEnv builds the job service over a private PostgreSQL database and
// the given Redis URL (a private index of the shared server when "").
func newEnv(t *testing.T, redisURL string) *env {
	t.Helper()
	db, _ := testenv.Postgres(t)
	if redisURL == "" {
		redisURL = testenv.Redis(t)
	}
	opt, err := queue.RedisOpt(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	blobs, err := storage.NewLocalBlobs(root)
	if err != nil {
		t.Fatal(err)
	}
	client := queue.NewClient(opt)
	svc := queue.NewService(db, blobs, opt, client, time.Hour)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() {
		insp.Close()
		svc.Close()
		client.Close()
	})
	return &env{db: db, blobs: blobs, blobRoot: root, client: client, svc: svc, inspector: insp}
}

func (e *env) org(t *testing.T, name string) string {
	t.Helper()
	o, err := e.db.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return o.OrgID
}

func (e *env) submit(t *testing.T, org string, hold int) records.Job {
	t.Helper()
	sub, err := jobs.Probe.Submission(jobs.ProbeInput{HoldMS: hold})
	if err != nil {
		t.Fatal(err)
	}
	sub.OrgID = org
	j, err := e.svc.Submit(context.Background(), sub)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j
}

// task returns the asynq task of a job, or nil when there is none.
func (e *env) task(t *testing.T, queueName, id string) *asynq.TaskInfo {
	t.Helper()
	info, err := e.inspector.GetTaskInfo(queueName, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("GetTaskInfo(%s, %s): %v", queueName, id, err)
	}
	return info
}

func (e *env) pending(t *testing.T, queueName string) []*asynq.TaskInfo {
	t.Helper()
	tasks, err := e.inspector.ListPendingTasks(queueName)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func checkTask(t *testing.T, info *asynq.TaskInfo, job records.Job) {
	t.Helper()
	if info == nil {
		t.Fatalf("no asynq task for job %s", job.ID)
	}
	spec, _ := jobs.Lookup(job.Kind)
	if info.ID != job.ID || info.Queue != spec.Queue || info.Type != queue.TypeJob || info.State != asynq.TaskStatePending {
		t.Errorf("task = id %s queue %s type %s state %v; want %s %s %s pending", info.ID, info.Queue, info.Type, info.State, job.ID, spec.Queue, queue.TypeJob)
	}
	if info.MaxRetry != spec.MaxRetry || info.Timeout != spec.Timeout {
		t.Errorf("task max retry %d timeout %v, want %d %v", info.MaxRetry, info.Timeout, spec.MaxRetry, spec.Timeout)
	}
	var p queue.JobPayload
	if err := json.Unmarshal(info.Payload, &p); err != nil || p.JobID != job.ID || p.Kind != job.Kind {
		t.Errorf("payload %s (%v), want job %s kind %s", info.Payload, err, job.ID, job.Kind)
	}
}

func TestSubmitWritesRowAndEnqueues(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "acme")
	before := time.Now()
	j := e.submit(t, org, 5)
	after := time.Now()

	if !regexpUUID(j.ID) {
		t.Errorf("probe id %q is not a UUID", j.ID)
	}
	row, err := e.db.JobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Kind != "probe" || row.Queue != jobs.QueueCPU || row.Status != records.JobQueued || row.OrgID == nil || *row.OrgID != org {
		t.Errorf("row = %+v", row)
	}
	if in, err := jobs.Probe.Input(row.Input); err != nil || in.HoldMS != 5 {
		t.Errorf("stored input %q: %+v, %v", row.Input, in, err)
	}
	// Default deadline: the service's (one hour) from submission.
	lo, hi := before.Add(time.Hour-time.Second), after.Add(time.Hour+time.Second)
	if row.Deadline.Before(lo) || row.Deadline.After(hi) {
		t.Errorf("deadline %v, want about an hour after %v", row.Deadline, before)
	}
	checkTask(t, e.task(t, jobs.QueueCPU, j.ID), row)

	// Each kind goes to its own queue; a given id and deadline are kept.
	deadline := time.Now().Add(5 * time.Minute).UTC().Truncate(time.Second)
	sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: "mdl_x", AttackMethodID: "fgsm"})
	if err != nil {
		t.Fatal(err)
	}
	sub.ID, sub.OrgID, sub.Deadline, sub.CallbackURL = jobs.Attack.NewID(), org, deadline, "https://hooks.example.com/x"
	a, err := e.svc.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != sub.ID || a.Queue != jobs.QueueGPU {
		t.Errorf("attack job = %+v", a)
	}
	arow, err := e.db.JobByID(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !arow.Deadline.Equal(deadline) || arow.CallbackURL != sub.CallbackURL || arow.Queue != jobs.QueueGPU {
		t.Errorf("attack row deadline %v callback %q queue %s", arow.Deadline, arow.CallbackURL, arow.Queue)
	}
	checkTask(t, e.task(t, jobs.QueueGPU, a.ID), arow)
	if e.task(t, jobs.QueueCPU, a.ID) != nil {
		t.Error("attack task also on the cpu queue")
	}

	// An anonymous submission has no org.
	anon := e.submit(t, "", 0)
	if row, _ := e.db.JobByID(ctx, anon.ID); row.OrgID != nil {
		t.Errorf("anonymous job has org %q", *row.OrgID)
	}
}

func regexpUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
	}
	return true
}

func TestSubmitUnknownKind(t *testing.T) {
	e := newEnv(t, "")
	sub := jobs.Submission{Kind: jobs.Spec{Name: "mine_bitcoin", Queue: jobs.QueueGPU}, Input: "{}", ID: "x1"}
	if _, err := e.svc.Submit(context.Background(), sub); err == nil {
		t.Fatal("Submit of an unknown kind: no error")
	}
	if _, err := e.db.JobByID(context.Background(), "x1"); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("row written for an unknown kind: %v", err)
	}
	if err := e.client.EnqueueJob(context.Background(), "x2", "mine_bitcoin"); err == nil {
		t.Error("EnqueueJob of an unknown kind: no error")
	}
}

func TestSubmitSameIDTwice(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "acme")
	sub, _ := jobs.Probe.Submission(jobs.ProbeInput{HoldMS: 1})
	sub.ID, sub.OrgID = jobs.Probe.NewID(), org
	first, err := e.svc.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	second := sub
	second.Input = `{"hold_ms":2}`
	if _, err := e.svc.Submit(ctx, second); err == nil {
		t.Error("second Submit with the same id: no error")
	}
	row, err := e.db.JobByID(ctx, first.ID)
	if err != nil || row.Input != `{"hold_ms":1}` {
		t.Errorf("first row changed: %+v %v", row, err)
	}
	// Enqueueing the same job again is a no-op, not an error.
	for range 2 {
		if err := e.client.EnqueueJob(ctx, first.ID, "probe"); err != nil {
			t.Errorf("EnqueueJob again: %v", err)
		}
	}
	tasks := e.pending(t, jobs.QueueCPU)
	if len(tasks) != 1 || tasks[0].ID != first.ID {
		t.Errorf("pending tasks = %d, want exactly the one job", len(tasks))
	}
}

func TestSubmitWhileRedisDown(t *testing.T) {
	rs := testenv.StartRedisServer(t)
	e := newEnv(t, rs.URL())
	ctx := context.Background()
	org := e.org(t, "acme")
	rs.Stop(t)

	j := e.submit(t, org, 0) // fails the test if Submit returns an error
	row, err := e.db.JobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != records.JobQueued || row.Kind != "probe" {
		t.Errorf("row = %+v, want a queued probe", row)
	}
	// Redis back: what the reconciler does (enqueue a queued job) works.
	rs.Start(t)
	testenv.Eventually(t, 30*time.Second, "enqueue after Redis restarts", func() bool {
		return e.client.EnqueueJob(ctx, j.ID, j.Kind) == nil
	})
	checkTask(t, e.task(t, jobs.QueueCPU, j.ID), row)
}

func TestGetScope(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	orgA, orgB := e.org(t, "a"), e.org(t, "b")
	orgJob := e.submit(t, orgA, 0)
	anonJob := e.submit(t, "", 0)

	cases := []struct {
		name  string
		scope jobs.Scope
		id    string
		ok    bool
	}{
		{"own org", jobs.Scope{OrgID: orgA}, orgJob.ID, true},
		{"own org, kind matches", jobs.Scope{OrgID: orgA, Kind: "probe"}, orgJob.ID, true},
		{"own org, other kind", jobs.Scope{OrgID: orgA, Kind: "predict"}, orgJob.ID, false},
		{"own org, anonymous too", jobs.Scope{OrgID: orgA, Anonymous: true}, orgJob.ID, true},
		{"other org", jobs.Scope{OrgID: orgB}, orgJob.ID, false},
		{"other org, anonymous too", jobs.Scope{OrgID: orgB, Anonymous: true}, orgJob.ID, false},
		{"empty org", jobs.Scope{}, orgJob.ID, false},
		{"anonymous caller", jobs.Scope{Anonymous: true}, orgJob.ID, false},
		{"anonymous job, Anonymous true", jobs.Scope{Anonymous: true}, anonJob.ID, true},
		{"anonymous job, org caller with Anonymous", jobs.Scope{OrgID: orgA, Anonymous: true}, anonJob.ID, true},
		{"anonymous job, Anonymous true, kind matches", jobs.Scope{Anonymous: true, Kind: "probe"}, anonJob.ID, true},
		{"anonymous job, Anonymous true, other kind", jobs.Scope{Anonymous: true, Kind: "verify_media"}, anonJob.ID, false},
		{"anonymous job, Anonymous false", jobs.Scope{}, anonJob.ID, false},
		{"anonymous job, org caller", jobs.Scope{OrgID: orgA}, anonJob.ID, false},
		{"missing job", jobs.Scope{OrgID: orgA, Anonymous: true}, "no-such-job", false},
		{"org id as job id", jobs.Scope{OrgID: orgA}, orgA, false},
	}
	for _, c := range cases {
		j, err := e.svc.Get(ctx, c.scope, c.id)
		if c.ok {
			if err != nil || j.ID != c.id {
				t.Errorf("%s: Get = %+v, %v; want the job", c.name, j, err)
			}
			continue
		}
		if code := warden.ErrorCode(err); code != warden.ENOTFOUND {
			t.Errorf("%s: Get error %v (code %q), want %s", c.name, err, code, warden.ENOTFOUND)
		}
		if j.ID != "" || j.OrgID != nil || j.Input != "" {
			t.Errorf("%s: Get returned a job with its error: %+v", c.name, j)
		}
	}
}

func TestCancelQueuedJob(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	orgA, orgB := e.org(t, "a"), e.org(t, "b")
	j := e.submit(t, orgA, 0)
	if e.task(t, jobs.QueueCPU, j.ID) == nil {
		t.Fatal("no task after Submit")
	}

	// Another org cannot cancel it: nothing changes.
	if _, done, err := e.svc.Cancel(ctx, jobs.Scope{OrgID: orgB}, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND || done {
		t.Errorf("Cancel by another org = %v, %v; want ENOTFOUND", done, err)
	}
	if row, _ := e.db.JobByID(ctx, j.ID); row.Status != records.JobQueued {
		t.Errorf("status after a refused cancel: %s", row.Status)
	}
	if e.task(t, jobs.QueueCPU, j.ID) == nil {
		t.Error("task gone after a refused cancel")
	}

	got, done, err := e.svc.Cancel(ctx, jobs.Scope{OrgID: orgA}, j.ID)
	if err != nil || !done {
		t.Fatalf("Cancel = %v, %v; want cancelled", done, err)
	}
	if got.ID != j.ID || got.Status != records.JobQueued {
		t.Errorf("Cancel returned %+v, want the job as it was found (queued)", got)
	}
	row, err := e.db.JobByID(ctx, j.ID)
	if err != nil || row.Status != records.JobCancelled || row.FinishedAt == nil {
		t.Errorf("row after Cancel: %+v, %v", row, err)
	}
	if info := e.task(t, jobs.QueueCPU, j.ID); info != nil {
		t.Errorf("task still in Redis after Cancel: %+v", info)
	}

	got, done, err = e.svc.Cancel(ctx, jobs.Scope{OrgID: orgA}, j.ID)
	if err != nil || done {
		t.Errorf("second Cancel = %v, %v; want not cancelled, no error", done, err)
	}
	if got.Status != records.JobCancelled {
		t.Errorf("second Cancel returned status %s", got.Status)
	}
	if _, _, err := e.svc.Cancel(ctx, jobs.Scope{OrgID: orgA}, "no-such-job"); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("Cancel of a missing job: %v", err)
	}
}

func TestCancelAnonymousJob(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	j := e.submit(t, "", 0)
	if _, _, err := e.svc.Cancel(ctx, jobs.Scope{}, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("Cancel without Anonymous: %v, want ENOTFOUND", err)
	}
	if _, done, err := e.svc.Cancel(ctx, jobs.Scope{Anonymous: true}, j.ID); err != nil || !done {
		t.Errorf("Cancel with Anonymous = %v, %v", done, err)
	}
	if e.task(t, jobs.QueueCPU, j.ID) != nil {
		t.Error("task still queued")
	}
}

func TestDeleteRemovesRowAndBlobs(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	orgA, orgB := e.org(t, "a"), e.org(t, "b")
	id := jobs.VerifyMedia.NewID()
	key := "jobs/" + id + "/input"
	n, err := e.blobs.Put(ctx, key, strings.NewReader("file contents"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := jobs.VerifyMedia.Submission(jobs.VerifyInput{Source: "upload", ContentType: "image/png", Size: n, BlobKey: key})
	if err != nil {
		t.Fatal(err)
	}
	sub.ID, sub.OrgID = id, orgA
	sub.Blobs = []records.Blob{{Key: key, ContentType: "image/png", Size: n}}
	j, err := e.svc.Submit(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if bs, err := e.db.JobBlobs(ctx, j.ID); err != nil || len(bs) != 1 || bs[0].Key != key {
		t.Fatalf("JobBlobs = %+v, %v", bs, err)
	}

	// Another org's Delete changes nothing.
	if err := e.svc.Delete(ctx, jobs.Scope{OrgID: orgB}, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("Delete by another org: %v, want ENOTFOUND", err)
	}
	if ok, _ := e.blobs.Exists(ctx, key); !ok {
		t.Fatal("blob gone after a refused Delete")
	}

	if err := e.svc.Delete(ctx, jobs.Scope{OrgID: orgA}, j.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := e.db.JobByID(ctx, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("row after Delete: %v", err)
	}
	if bs, err := e.db.JobBlobs(ctx, j.ID); err != nil || len(bs) != 0 {
		t.Errorf("blob rows after Delete: %+v, %v", bs, err)
	}
	if ok, err := e.blobs.Exists(ctx, key); ok || err != nil {
		t.Errorf("blob after Delete: exists %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(e.blobRoot, "jobs", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("blob directory left behind: %v", err)
	}
	if info := e.task(t, jobs.QueueCPU, j.ID); info != nil {
		t.Errorf("task after Delete: %+v", info)
	}
	if err := e.svc.Delete(ctx, jobs.Scope{OrgID: orgA}, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("second Delete: %v, want ENOTFOUND", err)
	}
}

func TestDeleteFinishedJob(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "a")
	j := e.submit(t, org, 0)
	if _, done, err := e.svc.Cancel(ctx, jobs.Scope{OrgID: org}, j.ID); err != nil || !done {
		t.Fatal(done, err)
	}
	if err := e.svc.Delete(ctx, jobs.Scope{OrgID: org}, j.ID); err != nil {
		t.Fatalf("Delete of a cancelled job: %v", err)
	}
	if _, err := e.svc.Get(ctx, jobs.Scope{OrgID: org}, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("Get after Delete: %v", err)
	}
}

func TestRegisterModel(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "acme")
	m := &records.Model{ID: storage.NewModelID(), OrgID: org, Name: "resnet", Type: "CV", Metadata: `{"input_shape":[3,32,32]}`}
	key := storage.ModelBlobKey(m.ID)
	m.BlobKey = key
	n, err := e.blobs.Put(ctx, key, strings.NewReader("torchscript"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.svc.RegisterModel(ctx, m, []records.Blob{{Key: key, Size: n}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != records.ModelProcessing {
		t.Errorf("model status %q, want %q", m.Status, records.ModelProcessing)
	}
	stored, err := e.db.ModelByID(ctx, m.ID)
	if err != nil || stored.Status != records.ModelProcessing || stored.OrgID != org {
		t.Errorf("model row %+v, %v", stored, err)
	}
	if !strings.HasPrefix(j.ID, "mjob_") || j.Kind != jobs.ValidateModel.Name || j.Queue != jobs.ValidateModel.Queue {
		t.Errorf("validation job = %+v", j)
	}
	row, err := e.db.JobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != records.JobQueued || row.OrgID == nil || *row.OrgID != org {
		t.Errorf("job row %+v", row)
	}
	in, err := jobs.ValidateModel.Input(row.Input)
	if err != nil || in.ModelID != m.ID {
		t.Errorf("job input %q: %+v, %v", row.Input, in, err)
	}
	if bs, err := e.db.JobBlobs(ctx, j.ID); err != nil || len(bs) != 1 || bs[0].Key != key {
		t.Errorf("model blob rows %+v, %v", bs, err)
	}
	checkTask(t, e.task(t, jobs.QueueCPU, j.ID), row)
	if _, err := e.svc.Get(ctx, jobs.Scope{OrgID: org, Kind: "model_validate"}, j.ID); err != nil {
		t.Errorf("Get of the validation job: %v", err)
	}

	// Registering the same model id again fails as a whole: no second job.
	again := *m
	again.Status = ""
	j2, err := e.svc.RegisterModel(ctx, &again, nil)
	if err == nil {
		t.Fatal("second RegisterModel with the same id: no error")
	}
	if j2.ID != "" {
		if _, err := e.db.JobByID(ctx, j2.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Errorf("job %s of a failed registration exists: %v", j2.ID, err)
		}
		if info := e.task(t, jobs.QueueCPU, j2.ID); info != nil {
			t.Errorf("job %s of a failed registration was enqueued", j2.ID)
		}
	}
	if tasks := e.pending(t, jobs.QueueCPU); len(tasks) != 1 {
		t.Errorf("pending tasks = %d, want 1", len(tasks))
	}
}

func TestRegisterModelWithoutFile(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "acme")
	m := &records.Model{ID: storage.NewModelID(), OrgID: org, Name: "remote", Type: "NLP", EndpointURL: "https://model.example.com/predict"}
	j, err := e.svc.RegisterModel(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bs, err := e.db.JobBlobs(ctx, j.ID); err != nil || len(bs) != 0 {
		t.Errorf("blob rows %+v, %v", bs, err)
	}
	if in, err := jobs.ValidateModel.Input(j.Input); err != nil || in.ModelID != m.ID {
		t.Errorf("input %q: %+v %v", j.Input, in, err)
	}
}

func TestEnqueueWebhook(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	for range 2 { // the same task id twice is a no-op
		if err := e.client.EnqueueWebhook(ctx, "whd_1", "whd_1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.client.EnqueueWebhook(ctx, "whd_1", "whd_1-redeliver-1"); err != nil {
		t.Fatal(err)
	}
	tasks := e.pending(t, jobs.QueueCritical)
	if len(tasks) != 2 {
		t.Fatalf("pending webhook tasks = %d, want 2", len(tasks))
	}
	for _, info := range tasks {
		var p queue.WebhookPayload
		if err := json.Unmarshal(info.Payload, &p); err != nil || p.DeliveryID != "whd_1" || info.Type != queue.TypeWebhook || info.MaxRetry != queue.WebhookMaxRetry {
			t.Errorf("task %+v payload %s", info, info.Payload)
		}
	}
}

func TestWebhookRetryDelay(t *testing.T) {
	want := map[int]time.Duration{
		-3: 5 * time.Second, 0: 5 * time.Second, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second,
		10: 2560 * time.Second, 11: time.Hour, 34: time.Hour, 1000: time.Hour,
	}
	for n, d := range want {
		if got := queue.WebhookRetryDelay(n); got != d {
			t.Errorf("WebhookRetryDelay(%d) = %v, want %v", n, got, d)
		}
	}
	var total time.Duration
	prev := time.Duration(0)
	for n := 1; n <= queue.WebhookMaxRetry; n++ {
		d := queue.WebhookRetryDelay(n)
		if d < prev {
			t.Errorf("delay %d (%v) shorter than delay %d (%v)", n, d, n-1, prev)
		}
		if d <= 0 || d > time.Hour {
			t.Errorf("delay %d = %v, want in (0, 1h]", n, d)
		}
		prev = d
		total += d
	}
	if total < 24*time.Hour {
		t.Errorf("retries span %v, want at least 24h", total)
	}
}

func TestRedisOpt(t *testing.T) {
	if _, err := queue.RedisOpt("redis://127.0.0.1:6379/3"); err != nil {
		t.Errorf("valid URL: %v", err)
	}
	opt, err := queue.RedisOpt("redis-sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/4?master=warden&sentinel_password=spw")
	if err != nil {
		t.Fatalf("sentinel URL: %v", err)
	}
	want := asynq.RedisFailoverClientOpt{MasterName: "warden", SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"},
		DB: 4, Password: "pw", SentinelPassword: "spw"}
	if got, ok := opt.(asynq.RedisFailoverClientOpt); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("sentinel URL parsed as %#v, want %#v", opt, want)
	}
	for _, bad := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:6379/notanumber", "::",
		"redis-sentinel://10.0.0.1:26379/0", "redis-sentinel://10.0.0.1/0?master=m", "redis-sentinel://10.0.0.1:26379/x?master=m",
		"redis-sentinel://10.0.0.1:26379/0?master=m&bogus=1"} {
		if _, err := queue.RedisOpt(bad); err == nil || !strings.Contains(err.Error(), "WARDEN_REDIS_URL") {
			t.Errorf("RedisOpt(%q) error %v, want one naming WARDEN_REDIS_URL", bad, err)
		}
	}
}

// TestResultCache: a completed job's result is read from the database once
// and then from memory; a deleted job is not found (its row is read first),
// and a job that is not completed is always read afresh.
func TestResultCache(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	org := e.org(t, "results")
	scope := jobs.Scope{OrgID: org}
	j := e.submit(t, org, 0)
	if _, ok, err := e.db.StartJob(ctx, j.ID); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := e.db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{JobID: j.ID, Label: "done", Data: `{"held_ms":0}`}}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	j, err := e.svc.Get(ctx, scope, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.svc.Result(ctx, j)
	if err != nil || first.Data != `{"held_ms":0}` {
		t.Fatalf("first read: %+v %v", first, err)
	}
	// The row changes behind the cache's back (it never does in Warden):
	// the second read must not see it, proving it came from memory.
	if err := e.db.Gorm().Model(&records.Result{}).Where("job_id = ?", j.ID).Update("data", `{"changed":1}`).Error; err != nil {
		t.Fatal(err)
	}
	if again, err := e.svc.Result(ctx, j); err != nil || again.Data != first.Data {
		t.Fatalf("second read did not come from memory: %+v %v", again, err)
	}
	// Not completed: read afresh every time.
	queued := e.submit(t, org, 0)
	if _, err := e.svc.Result(ctx, queued); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Fatalf("result of a queued job: %v", err)
	}
	// Deleted: the job row goes with the result, and reads start there.
	if err := e.svc.Delete(ctx, scope, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, scope, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Fatalf("Get after Delete: %v", err)
	}
}
