// Package e2e tests Warden across its processes: the API over real HTTP,
// workers on real Redis, PostgreSQL as the system of record.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker"
)

// stack is one API server plus (optionally) one in-process worker.
type stack struct {
	t       testing.TB
	cfg     config.Config
	db      *storage.DB
	dbURL   string
	blobs   storage.BlobStore
	redis   asynq.RedisConnOpt
	client  *queue.Client
	jobs    *queue.Service
	out     outbound.Uses
	deps    api.Deps
	api     *api.Server
	srv     *httptest.Server
	worker  *worker.Worker
	stopW   context.CancelFunc
	workerD chan struct{}
}

type stackOpt = func(*config.Config)

func newStack(t testing.TB, withWorker bool, opts ...stackOpt) *stack {
	t.Helper()
	sv := testenv.NewServices(t, append([]func(*config.Config){func(c *config.Config) {
		c.WorkerConcurrency = 4
		c.WorkerQueues = map[string]int{jobs.QueueCritical: 6, jobs.QueueGPU: 3, jobs.QueueCPU: 2}
	}}, opts...)...)
	s := &stack{t: t, cfg: sv.Config, db: sv.DB, dbURL: sv.DBURL, blobs: sv.Blobs, redis: sv.Redis, client: sv.Client, jobs: sv.Jobs, out: sv.Outbound}
	s.jobs.SetEvents(api.Events{PublicURL: s.cfg.PublicURL}) // as cmd/warden wires it
	metrics := dashboards.NewMetrics()
	insp := asynq.NewInspector(s.redis)
	t.Cleanup(func() { insp.Close() })
	metrics.WatchQueues(insp, s.db, jobs.Queues)
	s.deps = api.Deps{Config: s.cfg, DB: s.db, Blobs: s.blobs, Redis: s.redis, Jobs: s.jobs, Workers: s.jobs, Webhooks: s.jobs, Outbound: s.out, Metrics: metrics}
	s.startAPI()
	if withWorker {
		s.startWorker()
	}
	return s
}

// buildWorker creates the in-process worker without running it (tests may
// call its Reconcile directly first).
func (s *stack) buildWorker() *worker.Worker {
	s.t.Helper()
	if s.worker == nil {
		trust, err := worker.LoadTrustStores(s.cfg.C2PATrustAnchors, "")
		if err != nil {
			s.t.Fatal(err)
		}
		s.worker = worker.New(worker.Deps{Config: s.cfg, DB: s.db, Blobs: s.blobs, Redis: s.redis, Client: s.client, Jobs: s.jobs,
			Events: api.Events{PublicURL: s.cfg.PublicURL}, Outbound: s.out, Metrics: dashboards.NewMetrics(), Trust: trust})
	}
	return s.worker
}

// startWorker runs the in-process worker until the test ends.
func (s *stack) startWorker() {
	s.t.Helper()
	w := s.buildWorker()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopW, s.workerD = cancel, make(chan struct{})
	go func() { defer close(s.workerD); w.Run(ctx) }()
	s.t.Cleanup(s.stopWorker)
}

func (s *stack) startAPI() {
	var err error
	if s.api, err = api.New(s.deps); err != nil {
		s.t.Fatal(err)
	}
	srv, a := httptest.NewServer(s.api.Handler()), s.api
	s.srv = srv
	s.t.Cleanup(func() { srv.Close(); a.Close() })
}

// replica is a second API server on the same database and Redis, with its
// own configuration (opts apply to a copy of s's), like another replica
// behind a load balancer. It has no worker.
func (s *stack) replica(opts ...stackOpt) *stack {
	r := &stack{t: s.t, cfg: s.cfg, db: s.db, dbURL: s.dbURL, blobs: s.blobs, redis: s.redis, client: s.client, out: s.out, deps: s.deps}
	for _, o := range opts {
		o(&r.cfg)
	}
	r.deps.Config = r.cfg
	r.startAPI()
	return r
}

func (s *stack) stopWorker() {
	if s.stopW != nil {
		s.stopW()
		<-s.workerD
		s.stopW = nil
	}
}

// org creates an org and returns its credentials.
func (s *stack) org(name string) storage.NewOrgCredentials { return testenv.Org(s.t, s.db, name) }

type reqOpt func(*http.Request)

func withKey(c storage.NewOrgCredentials) reqOpt {
	return func(r *http.Request) { r.Header.Set("x-api-key", c.APIKey); r.Header.Set("Org-Id", c.OrgID) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request and decodes a JSON answer into a map.
func (s *stack) do(method, path string, body io.Reader, contentType string, opts ...reqOpt) (int, map[string]any, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s.checkContract(req, resp.StatusCode, resp.Header, b)
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func (s *stack) getJSON(path string, opts ...reqOpt) (int, map[string]any) {
	s.t.Helper()
	code, m, _ := s.do("GET", path, nil, "", opts...)
	return code, m
}

func (s *stack) postJSON(path string, v any, opts ...reqOpt) (int, map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(v)
	code, m, _ := s.do("POST", path, bytes.NewReader(b), "application/json", opts...)
	return code, m
}

// multipartBody builds a multipart body with a file field and extra fields.
func multipartBody(t testing.TB, filename string, data []byte, fields map[string]string) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if data != nil {
		fw, err := w.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// upload posts a file to /api/verify.
func (s *stack) upload(filename string, data []byte, fields map[string]string, opts ...reqOpt) (int, map[string]any) {
	s.t.Helper()
	body, ct := multipartBody(s.t, filename, data, fields)
	code, m, _ := s.do("POST", "/api/verify", body, ct, opts...)
	return code, m
}

// waitVerify polls a verification until it ends.
func (s *stack) waitVerify(id string, opts ...reqOpt) map[string]any {
	s.t.Helper()
	var m map[string]any
	testenv.Eventually(s.t, 60*time.Second, "verification "+id+" to end", func() bool {
		_, m = s.getJSON("/api/verify/"+id, opts...)
		return m["status"] == "completed" || m["status"] == "failed"
	})
	return m
}

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
