package api

import (
	"context"
	"sync"
	"time"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
)

// activeModels remembers, for a moment, the active models predictions
// were made with, so that a stream of predictions costs no database query
// each (it was the largest single cost of a prediction in the API,
// bench/RESULTS.md). Only active models are kept, keyed by org and id, so a
// cached entry never crosses tenants; a model deleted or changed on another
// replica is seen within modelCacheTTL, on this one at once.
type activeModels struct {
	mu sync.Mutex
	m  map[[2]string]cachedModel
}

type cachedModel struct {
	model records.Model
	cfg   modelspec.Config
	until time.Time
}

const (
	modelCacheTTL = time.Second
	modelCacheMax = 4096 // entries; the map is emptied rather than grown past it
)

// activeModelCached is activeModel through the cache.
func (s *Server) activeModelCached(ctx context.Context, org, id string) (records.Model, modelspec.Config, error) {
	key := [2]string{org, id}
	now := time.Now()
	s.models.mu.Lock()
	e, ok := s.models.m[key]
	s.models.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.model, e.cfg, nil
	}
	m, cfg, err := s.activeModel(ctx, org, id)
	if err != nil {
		s.models.forget(org, id)
		return m, cfg, err
	}
	s.models.mu.Lock()
	defer s.models.mu.Unlock()
	if s.models.m == nil || len(s.models.m) >= modelCacheMax {
		s.models.m = map[[2]string]cachedModel{}
	}
	s.models.m[key] = cachedModel{model: m, cfg: cfg, until: now.Add(modelCacheTTL)}
	return m, cfg, nil
}

// forget drops a model (deleted on this replica).
func (c *activeModels) forget(org, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, [2]string{org, id})
}
