package predict

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client sends predictions to workers and waits for their replies. One
// per API process: its replies come back on one list that a couple of
// reader goroutines drain, handing each reply to the request waiting for
// it, so a thousand waiting predictions hold no Redis connection each.
type Client struct {
	rdb redis.UniversalClient
	id  string

	mu      sync.Mutex
	pending map[string]chan Reply
	routes  map[string]route // model id → worker, for routeTTL

	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// readers is how many goroutines drain the reply list.
const readers = 2

// routeTTL is how long a model's route is reused before Redis is asked
// again (one heartbeat: a new warm worker or a dead one is noticed that
// much later; a prediction sent to a worker that just died is a 503 as
// always).
const routeTTL = HeartbeatInterval

type route struct {
	worker string
	until  time.Time
}

// NewClient starts the client's reply readers; Close stops them.
func NewClient(rdb redis.UniversalClient) *Client {
	c := &Client{rdb: rdb, id: newID(), pending: map[string]chan Reply{}, routes: map[string]route{}, stop: make(chan struct{})}
	for range readers {
		c.done.Add(1)
		go c.read()
	}
	return c
}

// Close stops the readers (within a second); waiting calls time out.
func (c *Client) Close() {
	c.once.Do(func() { close(c.stop) })
	c.done.Wait()
}

// Do sends req to a worker (one that holds its model warm if any does)
// and waits for the reply until req.Deadline. Errors: ErrNoWorker when no
// worker is alive, ErrWorkerLost when the chosen one stops answering its
// heartbeat, ErrTimeout at the deadline, ctx's error when the caller goes.
func (c *Client) Do(ctx context.Context, req Request) (Reply, error) {
	if req.ID == "" || req.Deadline.IsZero() {
		return Reply{}, errors.New("predict: a request needs an id and a deadline")
	}
	worker, err := c.route(ctx, req.Model.ID)
	if err != nil {
		return Reply{}, err
	}
	req.ReplyTo = replyKey(c.id)
	body, err := json.Marshal(req)
	if err != nil {
		return Reply{}, fmt.Errorf("encode prediction: %w", err)
	}
	ch := make(chan Reply, 1)
	c.mu.Lock()
	c.pending[req.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
	}()
	ttl := time.Until(req.Deadline) + 5*time.Second
	sent := time.Now()
	pipe := c.rdb.Pipeline()
	pipe.RPush(ctx, inboxKey(worker), body)
	pipe.PExpire(ctx, inboxKey(worker), ttl) // a dead worker's inbox goes away
	if _, err := pipe.Exec(ctx); err != nil {
		return Reply{}, fmt.Errorf("send prediction: %w", err)
	}
	slice := time.NewTimer(waitSlice)
	defer slice.Stop()
	for {
		select {
		case r := <-ch:
			r.HandoffMS = max(0, float64(time.Since(sent).Microseconds())/1000-r.WorkerMS)
			return r, nil
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		case <-slice.C:
		}
		left := time.Until(req.Deadline)
		if left <= 0 {
			return Reply{}, ErrTimeout
		}
		alive, err := c.alive(ctx, worker)
		if err != nil {
			return Reply{}, err
		}
		if !alive {
			c.mu.Lock()
			delete(c.routes, req.Model.ID)
			c.mu.Unlock()
			return Reply{}, ErrWorkerLost
		}
		slice.Reset(min(waitSlice, left))
	}
}

// route picks the worker for a model: one that holds it warm, else the
// live worker that rendezvous hashing assigns it to (so that a model's
// predictions keep going to the worker that loaded it while the set of
// workers stays the same).
func (c *Client) route(ctx context.Context, modelID string) (string, error) {
	now := time.Now()
	c.mu.Lock()
	r, ok := c.routes[modelID]
	c.mu.Unlock()
	if ok && now.Before(r.until) {
		return r.worker, nil
	}
	w, err := c.lookup(ctx, modelID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if len(c.routes) >= 4096 {
		c.routes = map[string]route{}
	}
	c.routes[modelID] = route{worker: w, until: now.Add(routeTTL)}
	c.mu.Unlock()
	return w, nil
}

// lookup asks Redis for a model's route.
func (c *Client) lookup(ctx context.Context, modelID string) (string, error) {
	since := strconv.FormatInt(time.Now().Add(-StaleAfter).UnixMilli(), 10)
	pipe := c.rdb.Pipeline()
	warm := pipe.ZRangeByScore(ctx, warmKey(modelID), &redis.ZRangeBy{Min: since, Max: "+inf"})
	live := pipe.ZRangeByScore(ctx, workersKey, &redis.ZRangeBy{Min: since, Max: "+inf"})
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("find a prediction worker: %w", err)
	}
	alive := map[string]bool{}
	for _, w := range live.Val() {
		alive[w] = true
	}
	var candidates []string
	for _, w := range warm.Val() {
		if alive[w] {
			candidates = append(candidates, w)
		}
	}
	if len(candidates) == 0 {
		candidates = live.Val()
	}
	if len(candidates) == 0 {
		return "", ErrNoWorker
	}
	return rendezvous(modelID, candidates), nil
}

// rendezvous returns the candidate with the highest hash of (key, it).
func rendezvous(key string, candidates []string) string {
	best, bestScore := "", uint64(0)
	for _, w := range candidates {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(w))
		if s := h.Sum64(); best == "" || s > bestScore {
			best, bestScore = w, s
		}
	}
	return best
}

// alive reports whether a worker's heartbeat is recent.
func (c *Client) alive(ctx context.Context, worker string) (bool, error) {
	ms, err := c.rdb.ZScore(ctx, workersKey, worker).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check prediction worker: %w", err)
	}
	return time.Since(time.UnixMilli(int64(ms))) <= StaleAfter, nil
}

// read drains the client's reply list until Close.
func (c *Client) read() {
	defer c.done.Done()
	ctx := context.Background()
	key := replyKey(c.id)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		res, err := c.rdb.BLPop(ctx, time.Second, key).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			select {
			case <-c.stop:
				return
			case <-time.After(100 * time.Millisecond): // Redis down: do not spin
			}
			continue
		}
		var r Reply
		if err := json.Unmarshal([]byte(res[1]), &r); err != nil {
			slog.Warn("malformed prediction reply dropped", "err", err)
			continue
		}
		c.mu.Lock()
		ch, ok := c.pending[r.ID]
		c.mu.Unlock()
		if ok {
			select {
			case ch <- r:
			default: // a duplicate reply; the first one stands
			}
		}
	}
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
