// Package tenantcache keeps values for a moment, keyed by org and id, so
// an entry never crosses tenants: the API's active models, guarded
// registrations and completed jobs' documents, the job service's completed
// results.
package tenantcache

import (
	"sync"
	"time"
)

// Max is a Cache's Limit when it sets none.
const Max = 4096

// Cache keeps values for a moment, keyed by org and id, so an entry
// never crosses tenants. The zero value is ready to use.
type Cache[V any] struct {
	// Limit is the most entries kept (0: Max); past it the map is emptied
	// rather than grown.
	Limit int

	mu sync.Mutex
	m  map[[2]string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v     V
	until time.Time
}

// Get returns the entry of (org, id) if it is still live at now.
func (c *Cache[V]) Get(org, id string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[[2]string{org, id}]
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v for (org, id) until then. keep, when not nil, picks the
// value to store given a live entry already there (a concurrent lookup's).
func (c *Cache[V]) Put(org, id string, v V, now, until time.Time, keep func(old, v V) V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.Limit
	if limit <= 0 {
		limit = Max
	}
	if c.m == nil || len(c.m) >= limit {
		c.m = map[[2]string]cacheEntry[V]{}
	}
	key := [2]string{org, id}
	if old, ok := c.m[key]; ok && keep != nil && now.Before(old.until) {
		v = keep(old.v, v)
	}
	c.m[key] = cacheEntry[V]{v: v, until: until}
}

// Alter changes the entry of (org, id), if there is one, in place: f
// returns its new value, or false to drop it.
func (c *Cache[V]) Alter(org, id string, f func(V) (V, bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := [2]string{org, id}
	e, ok := c.m[key]
	if !ok {
		return
	}
	if v, keep := f(e.v); keep {
		e.v = v
		c.m[key] = e
	} else {
		delete(c.m, key)
	}
}

// Forget drops the entry of (org, id).
func (c *Cache[V]) Forget(org, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, [2]string{org, id})
}
