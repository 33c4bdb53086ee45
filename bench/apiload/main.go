// Command apiload is bench/api.sh's load generator: API read latency under
// a constant request rate (vegeta), and a deep queue of accepted jobs.
//
//	apiload seed -url U -creds F -model M -image FILE
//	apiload read -url U -creds F -ids FILE [-rate 1000 -duration 30s -label L]
//	apiload fill -url U -creds F -redis URL -n 1000000 [-api 20000 -rate 1000]
//
// seed submits one FGSM attack on the demo digits model, one verification
// of a signed JPEG and one probe, waits until all three completed, and
// writes their ids as JSON to standard output.
//
// read sends GET requests at a constant rate (open loop: vegeta's pacer,
// unbounded workers) round-robin over the read routes of those jobs
// (attack status and results, verification, generic job status), checks
// every answer is a 200, and prints one "APILOAD" line with exact
// percentiles over all requests and one "APILOAD_ROUTE" line per route.
//
// fill leaves jobs queued (no worker runs) until n are pending in Redis:
// -api of them through the API (POST /v1/diagnostics/probe at -rate, a
// database row and an asynq task each), half on the empty queue and half
// once the rest is queued, so the submission latency is measured at both
// ends; the rest through queue.Client.EnqueueJob, the call the API makes,
// with the ids and payloads a probe submission gets. It prints one "FILL"
// line: Redis used_memory per queued job for each part and over all,
// MEMORY USAGE of one task and of the pending list, and the submission
// latencies.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/wardenlab/warden/client"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/worker/demo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apiload seed|read|fill [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var o options
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8000", "Warden base URL")
	fs.StringVar(&o.creds, "creds", "", "demo-credentials.json (org_id, api_key)")
	fs.StringVar(&o.model, "model", "", "seed: the demo digits model id")
	fs.StringVar(&o.image, "image", "", "seed: a JPEG to verify")
	fs.StringVar(&o.ids, "ids", "", "read: the seed's output")
	fs.StringVar(&o.label, "label", "", "read: a name for the run")
	fs.StringVar(&o.dump, "dump", "", "read: write each request's start (s from the first) and latency (ms) as CSV to this file")
	fs.Float64Var(&o.rate, "rate", 1000, "read, fill: requests per second")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "read: how long")
	fs.IntVar(&o.conns, "conns", 64, "read, fill: keep-alive connections")
	fs.StringVar(&o.redis, "redis", "", "fill: the Redis URL Warden uses")
	fs.IntVar(&o.n, "n", 1_000_000, "fill: queued jobs in all")
	fs.IntVar(&o.api, "api", 20_000, "fill: of which submitted through the API")
	fs.Parse(os.Args[2:])
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(ctx, o)
	case "read":
		err = read(o)
	case "fill":
		err = fill(ctx, o)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

type options struct {
	url, creds, model, image, ids, label, redis, dump string
	rate                                              float64
	duration                                          time.Duration
	conns, n, api                                     int
}

// seeded is what seed writes and read reads.
type seeded struct {
	Attack string `json:"attack"`
	Verify string `json:"verify"`
	Probe  string `json:"probe"`
}

func newClient(o options) (*client.Client, error) {
	var creds struct {
		OrgID  string `json:"org_id"`
		APIKey string `json:"api_key"`
	}
	b, err := os.ReadFile(o.creds)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(b, &creds); err != nil || creds.APIKey == "" {
		return nil, fmt.Errorf("credentials %s: no api_key", o.creds)
	}
	return &client.Client{BaseURL: strings.TrimRight(o.url, "/"), OrgID: creds.OrgID, APIKey: creds.APIKey, UserAgent: "warden-apiload"}, nil
}

func (o options) headers(c *client.Client) http.Header {
	return http.Header{"X-Api-Key": {c.APIKey}, "Org-Id": {c.OrgID}, "Content-Type": {"application/json"}}
}

func seed(ctx context.Context, o options) error {
	if o.model == "" || o.image == "" {
		return errors.New("seed needs -model and -image")
	}
	c, err := newClient(o)
	if err != nil {
		return err
	}
	_, test, err := demo.Digits()
	if err != nil {
		return err
	}
	input, _ := json.Marshal(test.Sample(0))
	atk, _, err := c.LaunchAttack(ctx, client.AttackRequest{ModelID: o.model, AttackMethodID: "attack_fgsm", InputData: input,
		AttackParameters: map[string]any{"epsilon": 0.2}})
	if err != nil {
		return fmt.Errorf("launch attack: %w", err)
	}
	ver, _, err := c.VerifyFile(ctx, o.image, "")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	probe, err := postProbe(ctx, c, o)
	if err != nil {
		return err
	}
	s := seeded{Attack: atk.AttackID, Verify: ver.JobID, Probe: probe}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, id := range []string{s.Attack, s.Verify, s.Probe} {
		j, _, err := client.Wait(wctx, func(ctx context.Context) (client.Job, client.Raw, error) { return c.GetJob(ctx, id) }, client.DefaultBackoff, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", id, err)
		}
		if j.Status != client.StatusCompleted {
			return fmt.Errorf("job %s (%s) ended %s", id, j.Kind, j.Status)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}

func postProbe(ctx context.Context, c *client.Client, o options) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/diagnostics/probe", strings.NewReader(`{"hold_ms":0}`))
	if err != nil {
		return "", err
	}
	req.Header = o.headers(c)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		JobID string `json:"job_id"`
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted || json.Unmarshal(b, &out) != nil || out.JobID == "" {
		return "", fmt.Errorf("probe: %d %s", res.StatusCode, b)
	}
	return out.JobID, nil
}

// route is one read target: its name in the report and its path.
type route struct {
	name string
	path string
}

func readRoutes(s seeded) []route {
	return []route{
		{"GET /v1/attacks/{id}/status", "/v1/attacks/" + s.Attack + "/status"},
		{"GET /v1/attacks/{id}/results", "/v1/attacks/" + s.Attack + "/results"},
		{"GET /api/verify/{id}", "/api/verify/" + s.Verify},
		{"GET /v1/jobs/{id}", "/v1/jobs/" + s.Probe},
	}
}

func read(o options) error {
	c, err := newClient(o)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(o.ids)
	if err != nil {
		return err
	}
	var s seeded
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ids: %w", err)
	}
	routes := readRoutes(s)
	byURL := map[string]int{}
	targets := make([]vegeta.Target, len(routes))
	for i, r := range routes {
		u := c.BaseURL + r.path
		byURL[u] = i
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: u, Header: o.headers(c)}
		// Each route answers before the load starts.
		if err := check(targets[i]); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	res := attack(o, vegeta.NewStaticTargeter(targets...), o.duration, "read")
	all := &tally{}
	per := make([]*tally, len(routes))
	for i := range per {
		per[i] = &tally{}
	}
	for _, r := range res {
		all.add(r)
		if i, ok := byURL[r.URL]; ok {
			per[i].add(r)
		}
	}
	if o.dump != "" {
		if err := dumpCSV(o.dump, res, all.first); err != nil {
			return err
		}
	}
	fmt.Printf("APILOAD label=%s rate=%g duration_s=%g conns=%d %s\n", o.label, o.rate, o.duration.Seconds(), o.conns, all)
	for i, r := range routes {
		fmt.Printf("APILOAD_ROUTE label=%s route=%q %s\n", o.label, r.name, per[i])
	}
	if all.failed > 0 {
		return fmt.Errorf("%d of %d requests failed (first: %s)", all.failed, all.n(), all.firstErr)
	}
	return nil
}

// dumpCSV writes each result's start (seconds from t0, the run's first)
// and latency, for plotting where in a run the slow requests fall.
func dumpCSV(path string, res []*vegeta.Result, t0 time.Time) error {
	var b strings.Builder
	b.WriteString("start_s,latency_ms,code\n")
	for _, r := range res {
		fmt.Fprintf(&b, "%.4f,%.3f,%d\n", r.Timestamp.Sub(t0).Seconds(), float64(r.Latency.Microseconds())/1000, r.Code)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// check sends one request of a target outside the load and wants a 200
// with a JSON body.
func check(t vegeta.Target) error {
	req, err := t.Request()
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !json.Valid(b) {
		return fmt.Errorf("answered %d: %.200s", res.StatusCode, b)
	}
	return nil
}

// attack runs vegeta at o.rate for du and returns every result.
func attack(o options, tr vegeta.Targeter, du time.Duration, name string) []*vegeta.Result {
	a := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Connections(o.conns), vegeta.MaxConnections(o.conns),
		vegeta.Timeout(10*time.Second), vegeta.MaxBody(4<<10))
	var out []*vegeta.Result
	for r := range a.Attack(tr, vegeta.Rate{Freq: int(o.rate), Per: time.Second}, du, name) {
		out = append(out, r)
	}
	return out
}

// tally collects latencies and failures; String gives exact percentiles.
type tally struct {
	lat      []time.Duration
	failed   int
	firstErr string
	bytesIn  uint64
	first    time.Time
	last     time.Time
}

func (t *tally) add(r *vegeta.Result) {
	if t.first.IsZero() || r.Timestamp.Before(t.first) {
		t.first = r.Timestamp
	}
	if e := r.End(); e.After(t.last) {
		t.last = e
	}
	t.lat = append(t.lat, r.Latency)
	t.bytesIn += r.BytesIn
	if r.Code < 200 || r.Code > 299 || r.Error != "" {
		t.failed++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("%d %s %.200s", r.Code, r.Error, r.Body)
		}
	}
}

func (t *tally) n() int { return len(t.lat) }

func (t *tally) String() string {
	if len(t.lat) == 0 {
		return "requests=0"
	}
	s := slices.Clone(t.lat)
	slices.Sort(s)
	q := func(p float64) string {
		i := min(len(s)-1, int(p*float64(len(s))))
		return strconv.FormatFloat(float64(s[i].Microseconds())/1000, 'f', 3, 64)
	}
	achieved := float64(len(s)) / t.last.Sub(t.first).Seconds()
	return fmt.Sprintf("requests=%d failed=%d achieved_per_s=%.1f mean_bytes=%d p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s max_ms=%s",
		len(s), t.failed, achieved, t.bytesIn/uint64(len(s)), q(0.5), q(0.9), q(0.99), q(0.999), q(1))
}

// fill queues jobs until o.n are pending; see the package comment.
func fill(ctx context.Context, o options) error {
	if o.redis == "" {
		return errors.New("fill needs -redis")
	}
	c, err := newClient(o)
	if err != nil {
		return err
	}
	ropt, err := redis.ParseURL(o.redis)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	pendingKey := "asynq:{" + jobs.Probe.Queue + "}:pending"
	// at reads the pending count and Redis's used memory.
	type point struct{ pending, memory int64 }
	at := func() (point, error) {
		n, err := rdb.LLen(ctx, pendingKey).Result()
		if err != nil {
			return point{}, fmt.Errorf("pending: %w", err)
		}
		m, err := usedMemory(ctx, rdb)
		return point{n, m}, err
	}
	// viaAPI submits k probes through the API at o.rate.
	viaAPI := func(k int) (*tally, error) {
		t := &tally{}
		if k <= 0 {
			return t, nil
		}
		tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: c.BaseURL + "/v1/diagnostics/probe",
			Body: []byte(`{"hold_ms":0}`), Header: o.headers(c)})
		for _, r := range attack(o, tr, time.Duration(float64(k)/o.rate*float64(time.Second)), "fill") {
			t.add(r)
		}
		if t.failed > 0 {
			return t, fmt.Errorf("%d of %d submissions failed (first: %s)", t.failed, t.n(), t.firstErr)
		}
		return t, nil
	}
	qc := queue.NewClient(asynq.RedisClientOpt{Addr: ropt.Addr, Password: ropt.Password, DB: ropt.DB})
	defer qc.Close()

	apiN := min(o.api, o.n)
	p0, err := at()
	if err != nil {
		return err
	}
	// 1. Half the API part on an empty queue.
	early, err := viaAPI(apiN / 2)
	if err != nil {
		return err
	}
	p1, err := at()
	if err != nil {
		return err
	}
	// 2. Straight into asynq, as the API would, up to n less the API's
	// second half.
	start := time.Now()
	if err := enqueue(ctx, qc, int64(o.n-(apiN-apiN/2))-p1.pending); err != nil {
		return err
	}
	direct := time.Since(start)
	p2, err := at()
	if err != nil {
		return err
	}
	// 3. The other half through the API, on the full queue.
	late, err := viaAPI(apiN - apiN/2)
	if err != nil {
		return err
	}
	p3, err := at()
	if err != nil {
		return err
	}
	sample, err := rdb.LIndex(ctx, pendingKey, -1).Result()
	if err != nil {
		return fmt.Errorf("a pending task: %w", err)
	}
	taskBytes, err := rdb.MemoryUsage(ctx, "asynq:{"+jobs.Probe.Queue+"}:t:"+sample).Result()
	if err != nil {
		return fmt.Errorf("memory usage of a task: %w", err)
	}
	listBytes, err := rdb.MemoryUsage(ctx, pendingKey, 0).Result()
	if err != nil {
		return fmt.Errorf("memory usage of the pending list: %w", err)
	}
	per := func(dm, dn int64) string {
		if dn <= 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(dm)/float64(dn), 'f', 1, 64)
	}
	apiJobs := p1.pending - p0.pending + p3.pending - p2.pending
	fmt.Printf("FILL pending=%d api_jobs=%d direct_jobs=%d direct_s=%.1f bytes_per_job_api=%s bytes_per_job_direct=%s bytes_per_job=%s task_hash_bytes=%d pending_list_bytes_per_job=%s used_memory_mb=%.1f %s %s\n",
		p3.pending, apiJobs, p2.pending-p1.pending, direct.Seconds(),
		per(p1.memory-p0.memory+p3.memory-p2.memory, apiJobs), per(p2.memory-p1.memory, p2.pending-p1.pending), per(p3.memory-p0.memory, p3.pending-p0.pending),
		taskBytes, per(listBytes, p3.pending), float64(p3.memory)/(1<<20), prefixed("submit_empty_", early), prefixed("submit_full_", late))
	if p3.pending < int64(o.n) {
		return fmt.Errorf("only %d of %d jobs pending", p3.pending, o.n)
	}
	return nil
}

// prefixed is a tally's k=v pairs with each key prefixed.
func prefixed(prefix string, t *tally) string {
	return prefix + strings.ReplaceAll(t.String(), " ", " "+prefix)
}

// enqueue puts n probe jobs on the queue from 32 goroutines, each through
// queue.Client.EnqueueJob with a fresh probe id.
func enqueue(ctx context.Context, qc *queue.Client, n int64) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				if err := qc.EnqueueJob(ctx, jobs.Probe.NewID(), jobs.Probe.Name); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info: %w", err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis info: no used_memory")
}
