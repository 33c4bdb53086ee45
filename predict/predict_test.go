package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/internal/testenv"
)

func newRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func newClient(t *testing.T, rdb redis.UniversalClient) *Client {
	t.Helper()
	c := NewClient(rdb)
	t.Cleanup(c.Close)
	return c
}

// echoServer answers each request with its input as the prediction,
// optionally after a delay, and counts what it served.
type echoServer struct {
	*Server
	delay  time.Duration
	mu     sync.Mutex
	served int
}

func startServer(t *testing.T, rdb redis.UniversalClient, warm []string, delay time.Duration) (*echoServer, context.CancelFunc) {
	t.Helper()
	e := &echoServer{delay: delay}
	e.Server = NewServer(rdb, func(req Request) {
		go func() {
			time.Sleep(e.delay)
			e.mu.Lock()
			e.served++
			e.mu.Unlock()
			var in string
			json.Unmarshal(req.Input, &in)
			e.Reply(context.Background(), req, Reply{Prediction: in, Batch: 1})
		}()
	}, func() []string { return warm })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	waitFor(t, func() bool { return rdb.ZScore(context.Background(), workersKey, e.ID).Err() == nil })
	return e, stop
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not reached in 5s")
}

func request(id, model, input string, timeout time.Duration) Request {
	raw, _ := json.Marshal(input)
	return Request{ID: id, Model: Model{ID: model}, Input: raw, Deadline: time.Now().Add(timeout)}
}

func TestNoWorker(t *testing.T) {
	c := newClient(t, newRedis(t))
	start := time.Now()
	_, err := c.Do(context.Background(), request("p1", "m1", "x", 5*time.Second))
	if !errors.Is(err, ErrNoWorker) {
		t.Fatalf("err = %v, want ErrNoWorker", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to say no worker", d)
	}
}

// TestRepliesReachTheirCallers: 200 concurrent predictions from one client
// each get their own reply.
func TestRepliesReachTheirCallers(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	startServer(t, rdb, nil, time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("p%d", i)
			r, err := c.Do(context.Background(), request(id, "m1", "input-"+id, 5*time.Second))
			if err != nil {
				errs <- err
				return
			}
			if r.ID != id || r.Prediction != "input-"+id {
				errs <- fmt.Errorf("request %s got reply %s for %q", id, r.ID, r.Prediction)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRoutesToWarmWorker: a model's predictions go to the worker that
// holds it warm; without one, rendezvous hashing keeps a model on one
// worker.
func TestRoutesToWarmWorker(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	a, _ := startServer(t, rdb, []string{"m-warm"}, 0)
	b, _ := startServer(t, rdb, nil, 0)
	waitFor(t, func() bool { n, _ := rdb.ZCard(context.Background(), workersKey).Result(); return n == 2 })
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		r, err := c.Do(context.Background(), request(fmt.Sprintf("w%d", i), "m-warm", "x", 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Worker]++
	}
	if seen[a.ID] != 20 {
		t.Errorf("warm model served by %v, want all by %s", seen, a.ID)
	}
	cold := map[string]int{}
	for i := 0; i < 20; i++ {
		r, err := c.Do(context.Background(), request(fmt.Sprintf("c%d", i), "m-cold", "x", 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		cold[r.Worker]++
	}
	if len(cold) != 1 {
		t.Errorf("cold model spread over %v, want one worker", cold)
	}
	if cold[a.ID]+cold[b.ID] != 20 {
		t.Errorf("cold model served by %v", cold)
	}
}

// TestWorkerLost: a worker that stops heartbeating (killed: no withdrawal)
// while a prediction waits on it gives ErrWorkerLost within 2 s, and the
// next prediction goes to a live worker.
func TestWorkerLost(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	dead := NewServer(rdb, func(Request) {}, nil)
	if err := dead.heartbeat(context.Background()); err != nil { // announced once, then "killed"
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Do(context.Background(), request("lost", "m1", "x", 30*time.Second))
	if !errors.Is(err, ErrWorkerLost) {
		t.Fatalf("err = %v, want ErrWorkerLost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("worker loss noticed after %v, want within 2s", d)
	}
	live, _ := startServer(t, rdb, nil, 0)
	r, err := c.Do(context.Background(), request("next", "m1", "x", 5*time.Second))
	if err != nil || r.Worker != live.ID {
		t.Fatalf("next prediction: %+v, %v (live worker %s)", r, err, live.ID)
	}
}

// TestTimeout: a worker that is alive but does not answer in time.
func TestTimeout(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	startServer(t, rdb, nil, 3*time.Second)
	start := time.Now()
	_, err := c.Do(context.Background(), request("slow", "m1", "x", 700*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("timed out after %v, want about 700ms", d)
	}
}

// TestShutdownAnswersQueued: requests still in a leaving worker's inbox are
// answered "unavailable" instead of left to time out; a request already
// past its deadline when taken is answered "timeout".
func TestShutdownAnswersQueued(t *testing.T) {
	rdb := newRedis(t)
	s := NewServer(rdb, func(Request) {}, nil)
	ctx := context.Background()
	client := newID()
	push := func(r Request) {
		r.ReplyTo = replyKey(client)
		b, _ := json.Marshal(r)
		rdb.RPush(ctx, inboxKey(s.ID), b)
	}
	push(request("queued", "m1", "x", time.Minute))
	s.withdraw()
	late := request("late", "m1", "x", -time.Second)
	late.ReplyTo = replyKey(client)
	b, _ := json.Marshal(late)
	s.take(string(b))
	want := map[string]string{"queued": CodeUnavailable, "late": CodeTimeout}
	for range want {
		res, err := rdb.BLPop(ctx, time.Second, replyKey(client)).Result()
		if err != nil {
			t.Fatal(err)
		}
		var r Reply
		json.Unmarshal([]byte(res[1]), &r)
		if r.Code != want[r.ID] {
			t.Errorf("reply %s: code %q, want %q", r.ID, r.Code, want[r.ID])
		}
	}
	if n, _ := rdb.ZCard(ctx, workersKey).Result(); n != 0 {
		t.Errorf("withdrawn worker still listed")
	}
}

// TestMalformedRequestsDropped: garbage in an inbox does not stop the
// server.
func TestMalformedRequestsDropped(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	e, _ := startServer(t, rdb, nil, 0)
	ctx := context.Background()
	rdb.RPush(ctx, inboxKey(e.ID), "not json", `{"id":""}`, `{"id":"x"}`)
	r, err := c.Do(ctx, request("after", "m1", "ok", 5*time.Second))
	if err != nil || r.Prediction != "ok" {
		t.Fatalf("prediction after garbage: %+v, %v", r, err)
	}
}

// TestHandoffExcludesWorkerTime: the handoff the client reports is its own
// wait less the worker's reported handling, so a slow worker does not show
// up as transport.
func TestHandoffExcludesWorkerTime(t *testing.T) {
	rdb := newRedis(t)
	c := newClient(t, rdb)
	const hold = 150 * time.Millisecond
	s := NewServer(rdb, nil, func() []string { return nil })
	s.Handle = func(req Request) {
		go func() {
			got := time.Now()
			time.Sleep(hold)
			s.Reply(context.Background(), req, Reply{Prediction: "x", WorkerMS: float64(time.Since(got).Microseconds()) / 1000})
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, func() bool { return rdb.ZScore(context.Background(), workersKey, s.ID).Err() == nil })

	start := time.Now()
	r, err := c.Do(context.Background(), request("handoff", "m-handoff", "x", 5*time.Second))
	elapsed := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		t.Fatal(err)
	}
	if r.WorkerMS < float64(hold.Milliseconds()) {
		t.Fatalf("worker_ms %.3f below the worker's hold", r.WorkerMS)
	}
	if r.HandoffMS <= 0 || r.HandoffMS+r.WorkerMS > elapsed {
		t.Fatalf("handoff %.3f ms + worker %.3f ms against %.3f ms waited: want a positive handoff within the wait", r.HandoffMS, r.WorkerMS, elapsed)
	}
}
