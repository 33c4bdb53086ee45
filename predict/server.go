package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// replyTTL bounds how long an unread reply list lives (its API process
// went away).
const replyTTL = time.Minute

// Server is a worker's end: it announces the worker, takes the requests
// the API pushes onto its inbox and sends the replies.
type Server struct {
	rdb redis.UniversalClient
	// ID names the worker in Redis; unique per process.
	ID string
	// Handle takes one request; it must not block for long (it hands the
	// request to a batcher) and must answer through Reply exactly once.
	Handle func(Request)
	// Warm lists the models this worker holds warm, for routing.
	Warm func() []string

	mu      sync.Mutex
	warmNow map[string]bool
}

// NewServer returns a server with a fresh worker id.
func NewServer(rdb redis.UniversalClient, handle func(Request), warm func() []string) *Server {
	host, _ := os.Hostname()
	return &Server{rdb: rdb, ID: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6]), Handle: handle, Warm: warm}
}

// Run announces the worker and serves its inbox until ctx ends; then it
// withdraws the worker and answers what is left in its inbox with
// CodeUnavailable, so that no caller waits for a worker that is leaving.
func (s *Server) Run(ctx context.Context) error {
	if err := s.heartbeat(ctx); err != nil {
		slog.Warn("prediction worker not announced yet; retrying", "err", err)
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.heartbeat(ctx); err != nil && ctx.Err() == nil {
					slog.Warn("prediction heartbeat failed", "worker", s.ID, "err", err)
				}
			}
		}
	}()
	for ctx.Err() == nil {
		res, err := s.rdb.BLPop(ctx, time.Second, inboxKey(s.ID)).Result()
		if errors.Is(err, redis.Nil) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			slog.Warn("prediction inbox unreachable", "worker", s.ID, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		s.take(res[1])
		// Under load more are waiting: take them in one round trip.
		if more, err := s.rdb.LPopCount(ctx, inboxKey(s.ID), 63).Result(); err == nil {
			for _, raw := range more {
				s.take(raw)
			}
		}
	}
	<-hbDone
	s.withdraw()
	return nil
}

// take decodes one request and hands it on, or answers it at once when it
// is malformed or already past its deadline.
func (s *Server) take(raw string) {
	var req Request
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.ID == "" || req.ReplyTo == "" {
		slog.Warn("malformed prediction request dropped", "worker", s.ID, "err", err)
		return
	}
	if time.Now().After(req.Deadline) {
		s.Reply(context.Background(), req, Reply{Code: CodeTimeout, Error: "the prediction's deadline passed before a worker took it"})
		return
	}
	s.Handle(req)
}

// Reply sends r as the answer to req.
func (s *Server) Reply(ctx context.Context, req Request, r Reply) {
	s.ReplyAll(ctx, []Request{req}, []Reply{r})
}

// ReplyAll sends the answers of a batch in one round trip: rs[i] answers
// reqs[i].
func (s *Server) ReplyAll(ctx context.Context, reqs []Request, rs []Reply) {
	pipe := s.rdb.Pipeline()
	lists := map[string]bool{}
	for i, req := range reqs {
		r := rs[i]
		r.ID, r.Worker = req.ID, s.ID
		body, err := json.Marshal(r)
		if err != nil {
			slog.Error("prediction reply not encoded", "id", req.ID, "err", err)
			continue
		}
		pipe.RPush(ctx, req.ReplyTo, body)
		lists[req.ReplyTo] = true
	}
	for l := range lists {
		pipe.PExpire(ctx, l, replyTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		slog.Warn("prediction replies not sent", "n", len(reqs), "err", err)
	}
}

// heartbeat renews the worker's entry and its warm models', and withdraws
// the models it no longer holds.
func (s *Server) heartbeat(ctx context.Context) error {
	now := float64(time.Now().UnixMilli())
	warm := map[string]bool{}
	if s.Warm != nil {
		for _, id := range s.Warm() {
			warm[id] = true
		}
	}
	s.mu.Lock()
	gone := []string{}
	for id := range s.warmNow {
		if !warm[id] {
			gone = append(gone, id)
		}
	}
	s.warmNow = warm
	s.mu.Unlock()
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, workersKey, redis.Z{Score: now, Member: s.ID})
	for id := range warm {
		pipe.ZAdd(ctx, warmKey(id), redis.Z{Score: now, Member: s.ID})
		pipe.PExpire(ctx, warmKey(id), 10*StaleAfter)
	}
	for _, id := range gone {
		pipe.ZRem(ctx, warmKey(id), s.ID)
	}
	// Entries of workers that died without withdrawing.
	pipe.ZRemRangeByScore(ctx, workersKey, "-inf", fmt.Sprint(now-float64(10*StaleAfter/time.Millisecond)))
	_, err := pipe.Exec(ctx)
	return err
}

// withdraw removes the worker from routing and answers the requests still
// in its inbox.
func (s *Server) withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, workersKey, s.ID)
	s.mu.Lock()
	for id := range s.warmNow {
		pipe.ZRem(ctx, warmKey(id), s.ID)
	}
	s.mu.Unlock()
	if _, err := pipe.Exec(ctx); err != nil {
		slog.Warn("prediction worker not withdrawn", "worker", s.ID, "err", err)
	}
	for {
		raw, err := s.rdb.LPop(ctx, inboxKey(s.ID)).Result()
		if err != nil {
			return
		}
		var req Request
		if json.Unmarshal([]byte(raw), &req) == nil && req.ReplyTo != "" {
			s.Reply(ctx, req, Reply{Code: CodeUnavailable, Error: "the worker is shutting down"})
		}
	}
}
