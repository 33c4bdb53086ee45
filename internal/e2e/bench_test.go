package e2e

// Throughput benchmark behind `make bench` (bench/run.sh): jobs per second
// from HTTP request to completed job with the trivial probe handler, against
// raw asynq (enqueue + no-op handler) in the same run on the same Redis
// server. Skipped unless WARDEN_BENCH=1, so `make test` stays fast; speed is
// measured and printed here, never asserted.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/records"
)

func envInt(t testing.TB, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// benchParams are shared by both paths so the comparison is like for like.
type benchParams struct {
	n, clients, concurrency int
	queues                  map[string]int
	profileDir              string // WARDEN_BENCH_PROFILE: write CPU profiles of each timed phase here
}

// fanOut runs submit(i) for i in [0, n) from p.clients goroutines.
func (p benchParams) fanOut(t testing.TB, n int, submit func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for c := 0; c < p.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := submit(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// profile starts a CPU profile of the phase when asked to.
func (p benchParams) profile(t testing.TB, name string) func() {
	if p.profileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(p.profileDir, name+".cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

type benchResult struct {
	elapsed, submit time.Duration
	xactsPerJob     float64 // PostgreSQL transactions per job (Warden only)
	cpu             cpuTimes
}

// cpuTimes is CPU time (user + system) by process over a timed phase: this
// test process (load generator, API and worker together), the PostgreSQL
// server processes and redis-server, read from /proc (Linux; empty
// elsewhere). Processes that start or end inside the phase are missed; the
// pools keep their connections, so the servers' backends live throughout.
type cpuTimes map[string]time.Duration

const clockTick = 10 * time.Millisecond // USER_HZ = 100 on Linux

func readCPU() cpuTimes {
	out := cpuTimes{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15)
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		comm, f := string(b[open+1:end]), strings.Fields(string(b[end+1:]))
		if len(f) < 13 {
			continue
		}
		name := ""
		switch {
		case filepath.Base(d) == self:
			name = "test"
		case comm == "postgres" || strings.HasPrefix(comm, "postgres:"):
			name = "postgres"
		case comm == "redis-server":
			name = "redis"
		default:
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(u+st) * clockTick
	}
	return out
}

func (a cpuTimes) since(b cpuTimes) cpuTimes {
	d := cpuTimes{}
	for k, v := range a {
		d[k] = v - b[k]
	}
	return d
}

// perJob formats µs of CPU per job for each process group.
func (c cpuTimes) perJob(n int) string {
	us := func(k string) float64 { return float64(c[k].Microseconds()) / float64(n) }
	return fmt.Sprintf("test=%.0f,postgres=%.0f,redis=%.0f", us("test"), us("postgres"), us("redis"))
}

func (r benchResult) rate(n int) float64 { return float64(n) / r.elapsed.Seconds() }

// TestBenchThroughput prints a BENCH line with both rates and their ratio.
// Knobs: WARDEN_BENCH_N (jobs, default 2000), WARDEN_BENCH_CLIENTS (HTTP
// client goroutines, default 16), WARDEN_BENCH_CONCURRENCY (worker
// concurrency for both, default 8).
func TestBenchThroughput(t *testing.T) {
	if os.Getenv("WARDEN_BENCH") == "" {
		t.Skip("set WARDEN_BENCH=1 (or run bash bench/run.sh)")
	}
	p := benchParams{
		n:           envInt(t, "WARDEN_BENCH_N", 2000),
		clients:     envInt(t, "WARDEN_BENCH_CLIENTS", 16),
		concurrency: envInt(t, "WARDEN_BENCH_CONCURRENCY", 8),
		queues:      map[string]int{jobs.QueueCritical: 6, jobs.QueueGPU: 3, jobs.QueueCPU: 2},
		profileDir:  os.Getenv("WARDEN_BENCH_PROFILE"),
	}
	// Production logs JSON at info; keep that cost but off the terminal.
	logf, err := os.Create(filepath.Join(t.TempDir(), "bench.log"))
	if err != nil {
		t.Fatal(err)
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer slog.SetDefault(prev)

	base := benchAsynq(t, p)
	ward := benchWarden(t, p)
	wr, ar := ward.rate(p.n), base.rate(p.n)
	ratio := wr / ar
	fmt.Printf("BENCH n=%d clients=%d concurrency=%d warden_jobs_per_s=%.1f asynq_jobs_per_s=%.1f ratio=%.3f warden_submit_per_s=%.1f asynq_enqueue_per_s=%.1f pg_xacts_per_job=%.2f warden_cpu_us_per_job=%s asynq_cpu_us_per_job=%s\n",
		p.n, p.clients, p.concurrency, wr, ar, ratio, float64(p.n)/ward.submit.Seconds(), float64(p.n)/base.submit.Seconds(), ward.xactsPerJob, ward.cpu.perJob(p.n), base.cpu.perJob(p.n))
}

// benchAsynq: raw asynq client enqueue (same task options as Warden's
// queue.Client) and an asynq server with a no-op handler, on its own Redis
// database index of the same server.
func benchAsynq(t *testing.T, p benchParams) benchResult {
	opt, err := asynq.ParseRedisURI(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	// Same polling interval as Warden's worker, so the two differ only in
	// what Warden adds (HTTP, auth, the database as system of record).
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: p.concurrency, Queues: p.queues, LogLevel: asynq.WarnLevel, TaskCheckInterval: cfg.TaskCheckInterval})
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TypeJob, func(context.Context, *asynq.Task) error { done.Add(1); return nil })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	client := asynq.NewClient(opt)
	defer client.Close()
	k := jobs.Probe.Spec
	enqueue := func(int) error {
		id := uuid.NewString()
		b, _ := json.Marshal(queue.JobPayload{JobID: id, Kind: jobs.Probe.Name})
		_, err := client.Enqueue(asynq.NewTask(queue.TypeJob, b), asynq.TaskID(id), asynq.Queue(k.Queue), asynq.MaxRetry(k.MaxRetry), asynq.Timeout(k.Timeout))
		return err
	}
	// Warm up connections and let the server pass its first idle poll.
	warm := p.clients
	p.fanOut(t, warm, enqueue)
	testenv.Eventually(t, 30*time.Second, "asynq warm-up", func() bool { return done.Load() == int64(warm) })

	stop := p.profile(t, "asynq")
	defer stop()
	cpu0 := readCPU()
	start := time.Now()
	p.fanOut(t, p.n, enqueue)
	submit := time.Since(start)
	want := int64(warm + p.n)
	for done.Load() < want {
		time.Sleep(time.Millisecond)
	}
	return benchResult{elapsed: time.Since(start), submit: submit, cpu: readCPU().since(cpu0)}
}

// benchWarden: POST /v1/diagnostics/probe {hold_ms: 0} over real HTTP to
// the API, the in-process worker, PostgreSQL as the system of record; done
// when every job row is completed (one COUNT per poll, not per-job GETs).
func benchWarden(t *testing.T, p benchParams) benchResult {
	s := newStack(t, true, func(c *config.Config) {
		c.WorkerConcurrency = p.concurrency
		c.WorkerQueues = p.queues
		c.ReconcileInterval = 30 * time.Second // production default; 1 s in tests
		c.OrgMaxActiveJobs = math.MaxInt64     // checked on every submission (as in production), never reached
	})
	org := s.org("bench")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: p.clients}}
	body := []byte(`{"hold_ms":0}`)
	submit := func(int) error {
		req, _ := http.NewRequest("POST", s.srv.URL+"/v1/diagnostics/probe", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		withKey(org)(req)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("probe: HTTP %d", resp.StatusCode)
		}
		return nil
	}
	completed := func() int64 {
		var n int64
		s.db.Gorm().Model(&records.Job{}).Where("status = ?", records.JobCompleted).Count(&n)
		return n
	}
	xacts := func() int64 {
		var n int64
		s.db.Gorm().Raw("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
		return n
	}
	warm := p.clients
	p.fanOut(t, warm, submit)
	testenv.Eventually(t, 30*time.Second, "warden warm-up", func() bool { return completed() == int64(warm) })
	time.Sleep(1100 * time.Millisecond) // PostgreSQL flushes transaction counters at most once a second
	x0 := xacts()

	stop := p.profile(t, "warden")
	cpu0 := readCPU()
	start := time.Now()
	p.fanOut(t, p.n, submit)
	sub := time.Since(start)
	want := int64(warm + p.n)
	// Every job is in the table once fanOut returns; poll the few
	// unfinished ones (a partial index) rather than count the history.
	unfinished := func() int64 {
		var n int64
		s.db.Gorm().Model(&records.Job{}).Where("finished_at IS NULL").Count(&n)
		return n
	}
	polls := 0
	for unfinished() > 0 {
		polls++
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := readCPU().since(cpu0)
	stop()
	if n := completed(); n != want {
		t.Fatalf("%d of %d jobs completed", n, want)
	}
	time.Sleep(1100 * time.Millisecond)
	// The counters include the completion polls above (at most one COUNT
	// each); subtract them.
	perJob := (float64(xacts()-x0) - float64(polls) - 1) / float64(p.n)
	return benchResult{elapsed: elapsed, submit: sub, xactsPerJob: perJob, cpu: cpu}
}

// BenchmarkSubmitProbe measures the API's submission path alone (auth,
// job row, enqueue) over real HTTP, with no worker running.
func BenchmarkSubmitProbe(b *testing.B) {
	// No worker runs, so every job stays queued: an active-job cap would
	// refuse them once b.N passes it.
	s := newStack(b, false, func(c *config.Config) { c.OrgMaxActiveJobs = 0 })
	org := s.org("bench")
	body := []byte(`{"hold_ms":0}`)
	benchRequests(b, http.StatusAccepted, func() *http.Request {
		req, _ := http.NewRequest("POST", s.srv.URL+"/v1/diagnostics/probe", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		withKey(org)(req)
		return req
	})
}

// benchRequests sends the requests made by next from parallel goroutines
// on keep-alive connections until b.N are done, each answered with want.
func benchRequests(b *testing.B, want int, next func() *http.Request) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Do(next())
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Fatalf("HTTP %d, want %d", resp.StatusCode, want)
			}
		}
	})
}

// BenchmarkReadJob measures the API's read path alone (auth, rate limit,
// job row, JSON) over real HTTP: GET /v1/jobs/{id} of a queued probe.
func BenchmarkReadJob(b *testing.B) {
	s := newStack(b, false, func(c *config.Config) { c.RateGeneral, c.RateCredential = 1e9, 1e9 })
	org := s.org("bench-read")
	req, _ := http.NewRequest("POST", s.srv.URL+"/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`))
	req.Header.Set("Content-Type", "application/json")
	withKey(org)(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var accepted struct {
		JobID string `json:"job_id"`
	}
	json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if accepted.JobID == "" {
		b.Fatalf("probe: HTTP %d", resp.StatusCode)
	}
	benchRequests(b, http.StatusOK, func() *http.Request {
		req, _ := http.NewRequest("GET", s.srv.URL+"/v1/jobs/"+accepted.JobID, nil)
		withKey(org)(req)
		return req
	})
}
