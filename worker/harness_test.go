package worker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// harness is one worker on a private PostgreSQL database and a private
// Redis database index, with the job service the API would use.
type harness struct {
	t        *testing.T
	cfg      config.Config
	db       *storage.DB
	blobs    storage.BlobStore
	redisURL string
	redis    asynq.RedisConnOpt
	client   *queue.Client
	jobs     *queue.Service
	w        *Worker
	org      storage.NewOrgCredentials
}

func newHarness(t *testing.T, opts ...func(*config.Config)) *harness {
	t.Helper()
	sv := testenv.NewServices(t, append([]func(*config.Config){func(cfg *config.Config) {
		cfg.WorkerConcurrency = 4
		cfg.WorkerQueues = map[string]int{jobs.QueueCritical: 6, jobs.QueueCPU: 2}
		cfg.TaskCheckInterval = 20 * time.Millisecond
		cfg.JobDeadline = 30 * time.Minute
	}}, opts...)...)
	h := &harness{t: t, cfg: sv.Config, db: sv.DB, blobs: sv.Blobs, redisURL: sv.Config.RedisURL, redis: sv.Redis, client: sv.Client, jobs: sv.Jobs}
	h.jobs.SetEvents(api.Events{PublicURL: "http://warden.test"})
	h.w = New(Deps{Config: sv.Config, DB: sv.DB, Blobs: sv.Blobs, Redis: sv.Redis, Client: sv.Client, Jobs: sv.Jobs,
		Events: api.Events{PublicURL: "http://warden.test"}, Outbound: sv.Outbound, Metrics: dashboards.NewMetrics()})
	h.org = testenv.Org(t, sv.DB, "worker-test")
	return h
}

// run serves the worker until the test ends.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("worker.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Error("worker did not shut down")
		}
	})
}

// submitProbe submits a probe job of the harness's org.
func (h *harness) submitProbe(in jobs.ProbeInput, callback string) records.Job {
	h.t.Helper()
	sub, err := jobs.Probe.Submission(in)
	if err != nil {
		h.t.Fatal(err)
	}
	sub.OrgID, sub.CallbackURL = h.org.OrgID, callback
	job, err := h.jobs.Submit(context.Background(), sub)
	if err != nil {
		h.t.Fatal(err)
	}
	if job.Status != records.JobQueued {
		h.t.Fatalf("submitted job status = %q, want queued", job.Status)
	}
	return job
}

func (h *harness) job(id string) records.Job {
	h.t.Helper()
	j, err := h.db.JobByID(context.Background(), id)
	if err != nil {
		h.t.Fatalf("load job %s: %v", id, err)
	}
	return j
}

// waitStatus waits until the job reaches status and returns it.
func (h *harness) waitStatus(id, status string) records.Job {
	h.t.Helper()
	var j records.Job
	testenv.Eventually(h.t, 60*time.Second, "job "+id+" to be "+status, func() bool {
		j = h.job(id)
		return j.Status == status
	})
	return j
}

func (h *harness) deliveries(jobID string) []records.WebhookDelivery {
	h.t.Helper()
	var ds []records.WebhookDelivery
	if err := h.db.Gorm().Where("job_id = ?", jobID).Order("created_at").Find(&ds).Error; err != nil {
		h.t.Fatal(err)
	}
	return ds
}

func (h *harness) blobRows(jobID string) []records.Blob {
	h.t.Helper()
	bs, err := h.db.JobBlobs(context.Background(), jobID)
	if err != nil {
		h.t.Fatal(err)
	}
	return bs
}

func (h *harness) resultCount(jobID string) int64 {
	h.t.Helper()
	var n int64
	if err := h.db.Gorm().Model(&records.Result{}).Where("job_id = ?", jobID).Count(&n).Error; err != nil {
		h.t.Fatal(err)
	}
	return n
}

// blobExists reports whether the blob store holds key.
func (h *harness) blobExists(key string) bool {
	h.t.Helper()
	ok, err := h.blobs.Exists(context.Background(), key)
	if err != nil {
		h.t.Fatalf("blob exists %s: %v", key, err)
	}
	return ok
}

// age moves a row's updated_at back, so the reconciler treats it as stale.
func (h *harness) age(table, id string, by time.Duration) {
	h.t.Helper()
	res := h.db.Gorm().Exec("UPDATE "+table+" SET updated_at = ? WHERE id = ?", time.Now().UTC().Add(-by), id)
	if res.Error != nil || res.RowsAffected != 1 {
		h.t.Fatalf("age %s %s: rows %d, err %v", table, id, res.RowsAffected, res.Error)
	}
}

// received is one POST a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest webhook endpoint that answers with the codes in
// turn (200 once they run out) and records every request.
type receiver struct {
	mu    sync.Mutex
	codes []int
	got   []received
	srv   *httptest.Server
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	r := &receiver{codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: b})
		code := http.StatusOK
		if len(r.codes) > 0 {
			code, r.codes = r.codes[0], r.codes[1:]
		}
		r.mu.Unlock()
		if req.Method != http.MethodPost {
			code = http.StatusMethodNotAllowed
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/hook" }

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// decodeEvent parses a webhook body.
func decodeEvent(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("webhook body %q: %v", b, err)
	}
	return m
}

// gate lets a test handler report that it started and block until released.
type gate struct {
	started chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{started: make(chan struct{})} }

func (g *gate) signal() { g.once.Do(func() { close(g.started) }) }

func (g *gate) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
