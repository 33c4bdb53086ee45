// Command loadgen drives POST /v1/models/{id}/predict for bench/predict.sh.
//
//	loadgen -mode seq  -url U -model M -creds F [-warmup 50 -n 300]
//	loadgen -mode open -url U -model M -creds F -rate 1000 -duration 15s [-conns 32]
//
// seq sends predictions one after another on one keep-alive connection.
// open sends them at a constant rate on a fixed schedule whatever the
// answers (open loop): request i is due at start + i/rate, its latency is
// measured from that due time (so a request that waited for a free
// connection, or for a late scheduler, counts its wait: no coordinated
// omission), and errors and non-200 answers are counted, not retried.
// Inputs are the 200 held-out demo digits (worker/demo), cycled.
//
// Each run prints one "LOADGEN k=v …" line and, when -metrics is set, one
// "STAGES k=v …" line: the per-stage means and bucket-interpolated p50/p99
// of warden_predict_duration_seconds over the run (the difference of two
// scrapes of /metrics).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wardenlab/warden/worker/demo"
)

type options struct {
	mode, url, model, creds string
	warmup, n, conns        int
	rate                    float64
	duration, timeout       time.Duration
	maxInFlight             int
	metrics                 bool
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "seq", "seq (one connection, one request at a time) or open (constant rate)")
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8000", "Warden base URL")
	flag.StringVar(&o.model, "model", "", "model id")
	flag.StringVar(&o.creds, "creds", "", "demo-credentials.json (org_id, api_key)")
	flag.IntVar(&o.warmup, "warmup", 50, "seq: predictions before timing")
	flag.IntVar(&o.n, "n", 300, "seq: timed predictions")
	flag.Float64Var(&o.rate, "rate", 1000, "open: predictions per second")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "open: how long to send")
	flag.IntVar(&o.conns, "conns", 32, "open: keep-alive connections")
	flag.IntVar(&o.maxInFlight, "max-in-flight", 20000, "open: requests outstanding at most; a due request beyond is counted as dropped (an error)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout (counted as an error)")
	flag.BoolVar(&o.metrics, "metrics", true, "scrape /metrics before and after and print the stage histograms")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.model == "" || o.creds == "" {
		return fmt.Errorf("-model and -creds are required")
	}
	var creds struct {
		OrgID  string `json:"org_id"`
		APIKey string `json:"api_key"`
	}
	b, err := os.ReadFile(o.creds)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return fmt.Errorf("%s: %w", o.creds, err)
	}
	bodies, err := digitBodies()
	if err != nil {
		return err
	}
	conns := o.conns
	if o.mode == "seq" {
		conns = 1
	}
	c := &client{
		http: &http.Client{Timeout: o.timeout, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
		}},
		url:    strings.TrimRight(o.url, "/") + "/v1/models/" + o.model + "/predict",
		org:    creds.OrgID,
		key:    creds.APIKey,
		bodies: bodies,
	}
	var before map[string]*hist
	if o.metrics {
		if before, err = scrape(o.url); err != nil {
			return err
		}
	}
	var res result
	switch o.mode {
	case "seq":
		res, err = c.sequential(o.warmup, o.n)
	case "open":
		res, err = c.open(o.rate, o.duration, o.maxInFlight)
	default:
		return fmt.Errorf("-mode %q: want seq or open", o.mode)
	}
	if err != nil {
		return err
	}
	res.print(o, conns)
	if o.metrics {
		after, err := scrape(o.url)
		if err != nil {
			return err
		}
		printStages(before, after)
	}
	return nil
}

// digitBodies are predict bodies for the held-out demo digits.
func digitBodies() ([][]byte, error) {
	_, test, err := demo.Digits()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, test.N())
	for i := range out {
		if out[i], err = json.Marshal(map[string]any{"input_data": test.Sample(i)}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type client struct {
	http     *http.Client
	url      string
	org, key string
	bodies   [][]byte
}

// outcome of one request: ok (200), status (other HTTP status) or err.
type outcome struct {
	latency time.Duration
	status  int
	err     error
}

// do sends prediction i and reads the whole answer.
func (c *client) do(ctx context.Context, i int) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.bodies[i%len(c.bodies)]))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("Org-Id", c.org)
	resp, err := c.http.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return outcome{status: resp.StatusCode, err: err}
}

type result struct {
	sent, ok, non200, errs, dropped int
	lat                             []time.Duration // of the 200s
	elapsed                         time.Duration   // first due time to last answer
	maxSchedLag                     time.Duration   // worst lateness of a send behind its due time
	firstErr                        string
	statuses                        map[int]int
}

func (r *result) add(o outcome) {
	r.sent++
	switch {
	case o.err != nil:
		r.errs++
		if r.firstErr == "" {
			r.firstErr = o.err.Error()
		}
	case o.status != http.StatusOK:
		r.non200++
		if r.statuses == nil {
			r.statuses = map[int]int{}
		}
		r.statuses[o.status]++
	default:
		r.ok++
		r.lat = append(r.lat, o.latency)
	}
}

// sequential sends warmup+n predictions one at a time on one connection and
// times the last n.
func (c *client) sequential(warmup, n int) (result, error) {
	ctx := context.Background()
	for i := 0; i < warmup; i++ {
		if o := c.do(ctx, i); o.err != nil || o.status != http.StatusOK {
			return result{}, fmt.Errorf("warm-up prediction %d: status %d, %v", i, o.status, o.err)
		}
	}
	var r result
	start := time.Now()
	for i := 0; i < n; i++ {
		s := time.Now()
		o := c.do(ctx, warmup+i)
		o.latency = time.Since(s)
		r.add(o)
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// open sends at rate per second for d, each request on its own goroutine at
// its due time, and waits for every answer.
func (c *client) open(rate float64, d time.Duration, maxInFlight int) (result, error) {
	if rate <= 0 || d <= 0 {
		return result{}, fmt.Errorf("-rate and -duration must be positive")
	}
	total := int(math.Round(rate * d.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu       sync.Mutex
		r        result
		wg       sync.WaitGroup
		inFlight atomic.Int64
		maxLag   time.Duration
	)
	ctx := context.Background()
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total; {
		now := time.Now()
		due := start.Add(time.Duration(i) * interval)
		if wait := due.Sub(now); wait > 0 {
			time.Sleep(wait)
			continue
		}
		// Send every request already due (the scheduler may wake late).
		for ; i < total; i++ {
			due = start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			maxLag = max(maxLag, now.Sub(due))
			if inFlight.Load() >= int64(maxInFlight) {
				mu.Lock()
				r.sent++
				r.dropped++
				r.errs++
				mu.Unlock()
				continue
			}
			inFlight.Add(1)
			wg.Add(1)
			go func(i int, due time.Time) {
				defer wg.Done()
				defer inFlight.Add(-1)
				o := c.do(ctx, i)
				o.latency = time.Since(due)
				mu.Lock()
				r.add(o)
				mu.Unlock()
			}(i, due)
		}
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.maxSchedLag = maxLag
	return r, nil
}

func (r *result) print(o options, conns int) {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	var sum time.Duration
	for _, l := range r.lat {
		sum += l
	}
	mean := 0.0
	if len(r.lat) > 0 {
		mean = msOf(sum) / float64(len(r.lat))
	}
	fmt.Printf("LOADGEN mode=%s conns=%d", o.mode, conns)
	if o.mode == "open" {
		fmt.Printf(" rate=%g duration_s=%g", o.rate, o.duration.Seconds())
	} else {
		fmt.Printf(" warmup=%d", o.warmup)
	}
	fmt.Printf(" sent=%d ok=%d non200=%d errors=%d dropped=%d achieved_per_s=%.0f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f sched_lag_max_ms=%.3f",
		r.sent, r.ok, r.non200, r.errs, r.dropped, float64(r.ok)/r.elapsed.Seconds(), mean,
		pct(r.lat, 0.50), pct(r.lat, 0.90), pct(r.lat, 0.99), pct(r.lat, 0.999), pct(r.lat, 1), msOf(r.maxSchedLag))
	if len(r.statuses) > 0 {
		var s []string
		for code, n := range r.statuses {
			s = append(s, fmt.Sprintf("%d:%d", code, n))
		}
		sort.Strings(s)
		fmt.Printf(" statuses=%s", strings.Join(s, ","))
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Printf(" loadgen_cpu_s=%.2f", time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
	}
	if r.firstErr != "" {
		fmt.Printf(" first_error=%q", r.firstErr)
	}
	fmt.Println()
}

// pct is the q-quantile (nearest rank) in milliseconds; NaN when empty.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return msOf(sorted[max(0, min(i, len(sorted)-1))])
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
