package e2e

// Chaos tests: workers killed mid-job, Redis flushed or restarted under
// load, jobs cancelled while running and jobs past their deadline. Every
// test checks the system of record (PostgreSQL) afterwards: each job ends in
// the expected status with exactly one result row, or none.
//
// Timeouts here are allowances for slow shared machines, never measurements.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// wardenBinary builds cmd/warden once per test binary.
func wardenBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "warden-e2e-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "warden")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/warden")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/warden: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a subprocess's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// workerProc starts `warden worker` against the stack's database and Redis.
// It is stopped (SIGKILL) when the test ends if still running, and its log
// is printed when the test failed.
// Extra arguments (e.g. --concurrency 1) override the defaults.
func (s *stack) workerProc(name string, args ...string) *exec.Cmd {
	t := s.t
	t.Helper()
	cmd := exec.Command(wardenBinary(t), append([]string{"worker", "--concurrency", "2"}, args...)...)
	cmd.Env = append(os.Environ(),
		"WARDEN_DATABASE_URL="+s.dbURL,
		"WARDEN_REDIS_URL="+s.cfg.RedisURL,
		"WARDEN_DATA_DIR="+s.cfg.DataDir,
		"WARDEN_BLOB_DIR="+s.cfg.BlobDir,
		"WARDEN_C2PA_TRUST_ANCHORS="+s.cfg.C2PATrustAnchors,
		"WARDEN_WORKER_METRICS_ADDR="+freeAddr(t),
		"WARDEN_RECONCILE_INTERVAL=1s",
		"WARDEN_VERIFY_URL_ALLOW=127.0.0.0/8", "WARDEN_WEBHOOK_ALLOW=127.0.0.0/8", "WARDEN_MODEL_URL_ALLOW=127.0.0.0/8",
	)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, cmd.Process.Pid, logs.String())
		}
	})
	return cmd
}

// submitProbe posts a probe job and returns its id.
func (s *stack) submitProbe(org reqOpt, holdMS int, callback string) string {
	s.t.Helper()
	body := map[string]any{"hold_ms": holdMS}
	if callback != "" {
		body["callback_url"] = callback
	}
	code, m := s.postJSON("/v1/diagnostics/probe", body, org)
	if code != 202 {
		s.t.Fatalf("probe: %d %v", code, m)
	}
	return m["job_id"].(string)
}

func (s *stack) job(id string) records.Job {
	s.t.Helper()
	j, err := s.db.JobByID(context.Background(), id)
	if err != nil {
		s.t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// resultRows counts the rows in results for a job.
func (s *stack) resultRows(id string) int64 {
	s.t.Helper()
	var n int64
	if err := s.db.Gorm().Model(&records.Result{}).Where("job_id = ?", id).Count(&n).Error; err != nil {
		s.t.Fatal(err)
	}
	return n
}

// waitStatus waits until every job has the status, with one COUNT query
// per poll.
func (s *stack) waitStatus(ids []string, status string, timeout time.Duration) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, fmt.Sprintf("%d jobs %s", len(ids), status), func() bool {
		var n int64
		s.db.Gorm().Model(&records.Job{}).Where("id IN ? AND status = ?", ids, status).Count(&n)
		return n == int64(len(ids))
	})
}

// assertCompletedOnce checks that each job completed with exactly one result.
func (s *stack) assertCompletedOnce(ids []string) {
	s.t.Helper()
	for _, id := range ids {
		if j := s.job(id); j.Status != records.JobCompleted {
			s.t.Errorf("job %s: status %s (%s)", id, j.Status, j.Error)
		}
		if n := s.resultRows(id); n != 1 {
			s.t.Errorf("job %s: %d result rows, want 1", id, n)
		}
	}
}

func withRedis(url string) stackOpt { return func(c *config.Config) { c.RedisURL = url } }

// TestChaosWorkerKilledMidJob: a worker process is SIGKILLed while it holds
// a probe; a second worker process picks the job up, and the job completes
// exactly once with the second worker's result.
//
// Timing allowance: nothing tells Redis that the dead worker is gone, so the
// task stays active until asynq's recoverer sees its lease expired. The
// lease is 30 s, the recoverer only takes leases expired 30 s ago (clock
// skew allowance) and runs at start and then every minute, and the
// forwarder moves retries to pending every 5 s: about 65 s in the usual
// case and up to ~125 s in the worst, hence the 150 s wait.
func TestChaosWorkerKilledMidJob(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	first := s.workerProc("worker 1")
	id := s.submitProbe(withKey(org), 5000, "")
	testenv.Eventually(t, 30*time.Second, "job in_progress on worker 1", func() bool {
		return s.job(id).Status == records.JobInProgress
	})
	if err := first.Process.Kill(); err != nil { // SIGKILL: no graceful shutdown
		t.Fatal(err)
	}
	if j := s.job(id); j.Status != records.JobInProgress || j.Attempts != 1 {
		t.Fatalf("after kill: status %s attempts %d; want in_progress, 1 (raise hold_ms if the probe finished first)", j.Status, j.Attempts)
	}
	second := s.workerProc("worker 2")
	s.waitStatus([]string{id}, records.JobCompleted, 150*time.Second)

	j := s.job(id)
	if j.Attempts < 2 {
		t.Errorf("attempts %d, want ≥ 2", j.Attempts)
	}
	if n := s.resultRows(id); n != 1 {
		t.Fatalf("%d result rows, want 1", n)
	}
	r, err := s.db.GetResult(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		WorkerPID int `json:"worker_pid"`
	}
	if err := json.Unmarshal([]byte(r.Data), &data); err != nil {
		t.Fatal(err)
	}
	if data.WorkerPID != second.Process.Pid {
		t.Errorf("result from pid %d, want worker 2 (pid %d); worker 1 was pid %d", data.WorkerPID, second.Process.Pid, first.Process.Pid)
	}
}

// TestChaosFlushAllLosesNothing: jobs accepted while no worker runs survive
// a FLUSHALL of Redis; the reconciler re-enqueues them from PostgreSQL.
func TestChaosFlushAllLosesNothing(t *testing.T) {
	rs := testenv.StartRedisServer(t) // private: FLUSHALL on the shared server would hit other tests
	s := newStack(t, false, withRedis(rs.URL()))
	org := s.org("acme")
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, s.submitProbe(withKey(org), 0, ""))
	}
	img := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	for i := 0; i < 2; i++ {
		code, m := s.upload("no_manifest.jpg", img, nil)
		if code != 200 {
			t.Fatalf("upload: %d %v", code, m)
		}
		ids = append(ids, m["job_id"].(string))
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rs.Port)})
	defer rdb.Close()
	if n, _ := rdb.DBSize(context.Background()).Result(); n == 0 {
		t.Fatal("nothing in Redis before the flush; the test would prove nothing")
	}
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// One job runs longer than the reconcile interval: after the flush the
	// reconciler must see its task as running, not lost, or it restarts it
	// over and over (asynq does not re-publish flushed queue names).
	long := s.submitProbe(withKey(org), 3000, "")
	ids = append(ids, long)
	s.startWorker() // reconcile interval 1 s (newStack)
	s.waitStatus(ids, records.JobCompleted, 60*time.Second)
	s.assertCompletedOnce(ids)
	var j records.Job
	s.db.Gorm().First(&j, "id = ?", long)
	if j.Attempts != 1 {
		t.Errorf("the long job ran %d times; the reconciler re-enqueued it while it ran", j.Attempts)
	}
}

// TestChaosRedisRestart: Redis goes away while a probe is held; the API
// reports it in /health but still accepts work (rows are stored, the
// reconciler enqueues them later); Redis comes back empty on the same port
// and everything completes.
func TestChaosRedisRestart(t *testing.T) {
	rs := testenv.StartRedisServer(t)
	s := newStack(t, true, withRedis(rs.URL()))
	org := s.org("acme")
	if code, m := s.getJSON("/health"); code != 200 || m["redis"] != "connected" {
		t.Fatalf("health before: %d %v", code, m)
	}
	held := s.submitProbe(withKey(org), 2000, "")
	testenv.Eventually(t, 30*time.Second, "held probe in_progress", func() bool {
		return s.job(held).Status == records.JobInProgress
	})
	ids := []string{held}

	rs.Stop(t)
	code, m := s.getJSON("/health")
	if code != 503 || m["redis"] != "disconnected" || m["database"] != "connected" {
		t.Errorf("health with Redis down: %d %v", code, m)
	}
	img := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	for i := 0; i < 2; i++ {
		code, m := s.upload("no_manifest.jpg", img, nil)
		if code != 200 {
			t.Fatalf("upload with Redis down: %d %v", code, m)
		}
		ids = append(ids, m["job_id"].(string))
	}
	ids = append(ids, s.submitProbe(withKey(org), 0, ""))

	rs.Start(t) // same port, empty (no persistence)
	testenv.Eventually(t, 30*time.Second, "health 200 after restart", func() bool {
		code, m := s.getJSON("/health")
		return code == 200 && m["redis"] == "connected"
	})
	s.waitStatus(ids, records.JobCompleted, 90*time.Second)
	s.assertCompletedOnce(ids)
}

// TestChaosCancelInProgress: a probe cancelled while it holds the worker's
// only slot stops at once (the next probe runs, long before the first
// would have finished), ends cancelled, is not retried and has no result.
// There is no public cancel route for probes, so the test does what the
// API's cancelAndDelete does: mark the row cancelled, then CancelProcessing.
func TestChaosCancelInProgress(t *testing.T) {
	s := newStack(t, true, func(c *config.Config) { c.WorkerConcurrency = 1 })
	org := s.org("acme")
	id := s.submitProbe(withKey(org), 60000, "")
	testenv.Eventually(t, 30*time.Second, "probe in_progress", func() bool {
		return s.job(id).Status == records.JobInProgress
	})
	ctx := context.Background()
	if ok, err := s.db.CancelJob(ctx, id, nil); err != nil || !ok {
		t.Fatalf("CancelJob: %v %v", ok, err)
	}
	insp := asynq.NewInspector(s.redis)
	defer insp.Close()
	if err := insp.CancelProcessing(id); err != nil {
		t.Fatal(err)
	}
	// With concurrency 1 the next probe can only run once the cancelled
	// handler has returned; 30 s is well under the 60 s hold.
	next := s.submitProbe(withKey(org), 0, "")
	s.waitStatus([]string{next}, records.JobCompleted, 30*time.Second)

	// asynq ignores what a cancelled handler returns (SkipRetry here) and
	// schedules a retry with ctx.Err(); that retry finds the row cancelled
	// (StartJob) and ends the task without counting an attempt. Wait until
	// the task has left Redis (or is archived): no attempt can come later.
	testenv.Eventually(t, 30*time.Second, "cancelled task to leave the queue", func() bool {
		info, err := insp.GetTaskInfo(s.job(id).Queue, id)
		return errors.Is(err, asynq.ErrTaskNotFound) || (err == nil && info.State == asynq.TaskStateArchived)
	})
	j := s.job(id)
	if j.Status != records.JobCancelled || j.Attempts != 1 {
		t.Errorf("cancelled job: status %s attempts %d, want cancelled, 1", j.Status, j.Attempts)
	}
	if n := s.resultRows(id); n != 0 {
		t.Errorf("cancelled job has %d result rows", n)
	}
}

// TestChaosDeadlineExceeded: Reconcile fails a job past its deadline with
// "deadline exceeded" and the org's callback receives probe_failed.
func TestChaosDeadlineExceeded(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	rcv := newReceiver(t, org.WebhookSecret)
	id := s.submitProbe(withKey(org), 0, rcv.srv.URL+"/hook")
	if err := s.db.Gorm().Model(&records.Job{}).Where("id = ?", id).Update("deadline", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.buildWorker().Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := s.job(id)
	if j.Status != records.JobFailed || j.Error != "deadline exceeded" {
		t.Fatalf("after Reconcile: status %s error %q", j.Status, j.Error)
	}
	s.startWorker() // delivers the webhook; the queued probe task finds its job failed and does nothing
	testenv.Eventually(t, 30*time.Second, "probe_failed webhook", func() bool { return len(rcv.received()) == 1 })
	ev := rcv.received()[0]
	if ev["event_type"] != "probe_failed" || ev["job_id"] != id || ev["status"] != "failed" || ev["error"] != "deadline exceeded" {
		t.Errorf("event %v", ev)
	}
	if len(rcv.bad) != 0 {
		t.Errorf("signature failures: %v", rcv.bad)
	}
	if j := s.job(id); j.Status != records.JobFailed || j.Attempts != 0 {
		t.Errorf("after the worker ran: status %s attempts %d, want failed, 0", j.Status, j.Attempts)
	}
	if n := s.resultRows(id); n != 0 {
		t.Errorf("%d result rows for a failed job", n)
	}
}
