package api

import (
	"context"
	"time"

	"github.com/wardenlab/warden/internal/tenantcache"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
)

// activeModels remembers, for a moment, the active models predictions
// were made with, so that a stream of predictions costs no database query
// each (it was the largest single cost of a prediction in the API,
// bench/RESULTS.md). Only active models are kept, keyed by org and id, so a
// cached entry never crosses tenants; a model deleted or changed on another
// replica is seen within modelCacheTTL, on this one at once.
type activeModels = tenantcache.Cache[cachedModel]

type cachedModel struct {
	model records.Model
	cfg   modelspec.Config
}

const modelCacheTTL = time.Second

// activeModelCached is activeModel through the cache.
func (s *Server) activeModelCached(ctx context.Context, org, id string) (records.Model, modelspec.Config, error) {
	now := time.Now()
	if e, ok := s.models.Get(org, id, now); ok {
		return e.model, e.cfg, nil
	}
	m, cfg, err := s.activeModel(ctx, org, id)
	if err != nil {
		s.models.Forget(org, id)
		return m, cfg, err
	}
	s.models.Put(org, id, cachedModel{model: m, cfg: cfg}, now, now.Add(modelCacheTTL), nil)
	return m, cfg, nil
}
