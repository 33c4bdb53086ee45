package runner

import (
	"context"
	"sync"
	"time"
)

// Pool keeps warm runners for predictions: one per model version, closed
// after IdleTimeout unused, at most Max at a time and, with MaxMemory set,
// at most that much resident memory together (the least recently used
// idle one makes room).
type Pool struct {
	Options     Options
	IdleTimeout time.Duration
	Max         int
	MaxMemory   int64 // bytes of resident memory of all runners; 0 = no cap

	mu      sync.Mutex
	entries map[string]*poolEntry
	stop    chan struct{}
	once    sync.Once
}

type poolEntry struct {
	p        *Process
	modelID  string
	users    int
	lastUsed time.Time
}

// Warm lists the models that have a live runner in the pool.
func (pl *Pool) Warm() []string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var ids []string
	seen := map[string]bool{}
	for _, e := range pl.entries {
		if !e.p.Exited() && !seen[e.modelID] {
			seen[e.modelID] = true
			ids = append(ids, e.modelID)
		}
	}
	return ids
}

// Do runs req on the warm runner of model (keyed by key, which changes
// when the model's file does), starting one when there is none.
func (pl *Pool) Do(ctx context.Context, key string, model ModelFile, req Request, sink Sink) (*Done, error) {
	e, err := pl.acquire(ctx, key, model)
	if err != nil {
		return nil, err
	}
	d, err := e.p.Run(ctx, req, sink)
	pl.release(key, e)
	return d, err
}

func (pl *Pool) acquire(ctx context.Context, key string, model ModelFile) (*poolEntry, error) {
	pl.once.Do(func() {
		pl.entries = map[string]*poolEntry{}
		pl.stop = make(chan struct{})
		go pl.janitor()
	})
	pl.mu.Lock()
	if e, ok := pl.entries[key]; ok && !e.p.Exited() {
		e.users++
		pl.mu.Unlock()
		return e, nil
	}
	pl.mu.Unlock()
	p, err := Start(ctx, pl.Options, model)
	if err != nil {
		return nil, err
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if e, ok := pl.entries[key]; ok && !e.p.Exited() { // another caller started one meanwhile
		go p.Close()
		e.users++
		return e, nil
	}
	pl.makeRoom(p.RSS())
	e := &poolEntry{p: p, modelID: model.ID, users: 1, lastUsed: time.Now()}
	pl.entries[key] = e
	return e, nil
}

func (pl *Pool) release(key string, e *poolEntry) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	e.users--
	e.lastUsed = time.Now()
	if e.p.Exited() && pl.entries[key] == e {
		delete(pl.entries, key)
		go e.p.Close()
	}
}

// makeRoom closes the least recently used idle runners while the pool is
// full, by count or by memory with a newcomer of rss bytes. Called with mu
// held.
func (pl *Pool) makeRoom(rss int64) {
	max := pl.Max
	if max <= 0 {
		max = 8
	}
	full := func() bool {
		if len(pl.entries) >= max {
			return true
		}
		if pl.MaxMemory <= 0 {
			return false
		}
		total := rss
		for _, e := range pl.entries {
			total += e.p.RSS()
		}
		return total > pl.MaxMemory
	}
	for len(pl.entries) > 0 && full() {
		var oldest string
		for k, e := range pl.entries {
			if e.users == 0 && (oldest == "" || e.lastUsed.Before(pl.entries[oldest].lastUsed)) {
				oldest = k
			}
		}
		if oldest == "" {
			return // all busy: run over the cap rather than fail a caller
		}
		go pl.entries[oldest].p.Close()
		delete(pl.entries, oldest)
	}
}

func (pl *Pool) janitor() {
	idle := pl.IdleTimeout
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	t := time.NewTicker(idle / 2)
	defer t.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case <-t.C:
		}
		pl.mu.Lock()
		for k, e := range pl.entries {
			if e.users == 0 && (time.Since(e.lastUsed) > idle || e.p.Exited()) {
				go e.p.Close()
				delete(pl.entries, k)
			}
		}
		pl.mu.Unlock()
	}
}

// Close stops every runner of the pool.
func (pl *Pool) Close() {
	pl.once.Do(func() { pl.entries = map[string]*poolEntry{}; pl.stop = make(chan struct{}) })
	pl.mu.Lock()
	defer pl.mu.Unlock()
	select {
	case <-pl.stop:
	default:
		close(pl.stop)
	}
	for k, e := range pl.entries {
		e.p.Close()
		delete(pl.entries, k)
	}
}
