package api

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden"
)

// gcra is the generic cell rate algorithm over several buckets in one
// atomic script, so limits hold across every API replica sharing the Redis
// and a request costs one round trip however many budgets it spends (its
// client IP's, an upload budget, its credential's). All or nothing: a
// request refused by one bucket spends none. Time comes from Redis, not
// the replicas' clocks. KEYS are the buckets, ARGV interval and burst for
// each. Returns {allowed, retry_after_ms, index of the refusing bucket}.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tats = {}
local wait, by = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat + interval
  local allow_at = tats[i] - interval * burst
  if allow_at - now > wait then wait, by = allow_at - now, i end
end
if wait > 0 then return {0, wait, by} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil(tats[i] - now) + 1000)
end
return {1, 0, 0}
`)

// spend is one request's charge against one bucket: bucket/id at rate
// requests per second with a burst of one second's worth.
type spend struct {
	bucket, id string
	rate       float64
}

// Limiter enforces requests-per-second budgets in Redis, shared by every
// replica. While Redis cannot answer, each replica enforces the same
// budgets alone (local), so an outage of Redis relaxes the limits to one
// budget per replica instead of none.
type Limiter struct {
	rdb   redis.UniversalClient
	local localGCRA

	mu      sync.Mutex
	offline time.Time // Redis failed; skip it until then
}

// redisRetry is how long the limiter stays on its local budgets after Redis
// failed before trying Redis again, so an outage does not add a Redis
// timeout to every request.
const redisRetry = time.Second

// Allow spends one request from every bucket or from none. When refused it
// returns how long to wait and which spend refused (an index into spends).
func (l *Limiter) Allow(ctx context.Context, spends ...spend) (ok bool, wait time.Duration, by int) {
	keys := make([]string, 0, len(spends))
	args := make([]any, 0, 2*len(spends))
	live := make([]int, 0, len(spends)) // index in spends of each key
	for i, sp := range spends {
		if sp.rate <= 0 {
			continue
		}
		keys = append(keys, "warden:rl:"+sp.bucket+":"+sp.id)
		interval, burst := cell(sp.rate)
		args = append(args, strconv.FormatFloat(interval, 'f', 3, 64), strconv.FormatFloat(burst, 'f', 0, 64))
		live = append(live, i)
	}
	if len(keys) == 0 {
		return true, 0, -1
	}
	if l.redisDown() {
		return l.local.allow(keys, spends, live, time.Now())
	}
	res, err := gcra.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil || len(res) != 3 {
		if ctx.Err() != nil { // the client went away; not an outage
			return true, 0, -1
		}
		l.markDown(err)
		return l.local.allow(keys, spends, live, time.Now())
	}
	if res[0] == 1 {
		return true, 0, -1
	}
	// res[2] counts the keys sent (1-based); map it back to spends.
	by = live[0]
	if n := res[2]; n >= 1 && n <= int64(len(live)) {
		by = live[n-1]
	}
	return false, time.Duration(res[1]) * time.Millisecond, by
}

func (l *Limiter) redisDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.offline)
}

func (l *Limiter) markDown(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !time.Now().Before(l.offline) {
		slog.Warn("rate limiter: Redis unavailable; enforcing the budgets in this replica alone", "err", err, "retry_in", redisRetry)
	}
	l.offline = time.Now().Add(redisRetry)
}

// cell is GCRA's emission interval (ms) and burst for a rate in requests per
// second: a burst of one second's worth, at least one.
func cell(rate float64) (interval, burst float64) {
	return 1000 / rate, math.Max(1, math.Floor(rate))
}

// localGCRA is the gcra script's algorithm in process, for Redis outages.
type localGCRA struct {
	mu   sync.Mutex
	tats map[string]float64 // theoretical arrival time, ms since the epoch
}

// maxLocalBuckets bounds the fallback's memory under a spread-out flood;
// past it, buckets whose arrival time has passed (full budgets) are
// dropped, and if none has, the map is reset rather than grown.
const maxLocalBuckets = 100000

func (g *localGCRA) allow(keys []string, spends []spend, live []int, at time.Time) (bool, time.Duration, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := float64(at.UnixMicro()) / 1000
	if g.tats == nil || len(g.tats) >= maxLocalBuckets {
		g.prune(now)
	}
	next := make([]float64, len(keys))
	wait, by := 0.0, -1
	for i, k := range keys {
		interval, burst := cell(spends[live[i]].rate)
		tat, ok := g.tats[k]
		if !ok || tat < now {
			tat = now
		}
		next[i] = tat + interval
		if w := next[i] - interval*burst - now; w > wait {
			wait, by = w, live[i]
		}
	}
	if by >= 0 {
		return false, time.Duration(wait * float64(time.Millisecond)), by
	}
	for i, k := range keys {
		g.tats[k] = next[i]
	}
	return true, 0, -1
}

func (g *localGCRA) prune(now float64) {
	if g.tats == nil {
		g.tats = map[string]float64{}
		return
	}
	for k, tat := range g.tats {
		if tat <= now {
			delete(g.tats, k)
		}
	}
	if len(g.tats) >= maxLocalBuckets {
		g.tats = map[string]float64{}
	}
}

// refusals remembers, per replica, client-IP budgets that Redis has just
// refused,
// until their wait is over: requests from them are then refused before
// authentication (no database lookup, no Redis call). Authentication runs
// before the IP budget is spent (so that one round trip spends both the
// IP's and the credential's budget); this keeps a client that is guessing
// keys from reaching the database faster than its IP budget allows.
type refusals struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (r *refusals) wait(key string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.until[key]
	if !ok {
		return 0
	}
	if !now.Before(u) {
		delete(r.until, key)
		return 0
	}
	return u.Sub(now)
}

func (r *refusals) add(key string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = map[string]time.Time{}
	}
	if len(r.until) >= 10000 { // bound memory under a spread-out flood
		now := time.Now()
		for k, u := range r.until {
			if !now.Before(u) {
				delete(r.until, k)
			}
		}
	}
	r.until[key] = until
}

// bucket is a per-client-IP budget of a route.
type bucket struct {
	name string
	rate float64
}

// limit is middleware for routes without authentication: the client IP's
// budgets only.
func (s *Server) limit(buckets ...bucket) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			spends, err := s.ipSpends(c, buckets)
			if err == nil {
				err = s.spend(c, spends...)
			}
			if err != nil {
				return err
			}
			return next(c)
		}
	}
}

// guard is middleware for routes that take credentials: it authenticates
// the caller (see identify) and spends the client IP's budgets together
// with, for an authenticated caller, the credential's budget, in one
// Redis round trip. Failed authentication spends the IP's budgets too, so
// a client guessing credentials meets 429 like any other.
func (s *Server) guard(buckets ...bucket) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			spends, err := s.ipSpends(c, buckets)
			if err != nil {
				return err
			}
			p, bearer, err := s.identify(c)
			if err != nil {
				if lerr := s.spend(c, spends...); lerr != nil {
					return lerr
				}
				return err
			}
			if p != nil {
				spends = append(spends, spend{"cred", p.CredentialID, s.Config.RateCredential})
			}
			if err := s.spend(c, spends...); err != nil {
				return err
			}
			if p != nil {
				c.Set(principalKey, p)
				c.Set(bearerKey, bearer)
			}
			return next(c)
		}
	}
}

// ipSpends is the request's charge to the route's client-IP budgets, or
// 429 at once when one of them was refused moments ago.
func (s *Server) ipSpends(c echo.Context, buckets []bucket) ([]spend, error) {
	ip := clientBucket(c.RealIP())
	out := make([]spend, len(buckets), len(buckets)+1)
	for i, b := range buckets {
		out[i] = spend{b.name, ip, b.rate}
	}
	return out, s.refusedRecently(c, out)
}

// refusedRecently answers 429 at once when one of these client-IP budgets
// was refused moments ago.
func (s *Server) refusedRecently(c echo.Context, spends []spend) error {
	now := time.Now()
	for _, sp := range spends {
		if sp.bucket == "cred" {
			continue
		}
		if wait := s.refused.wait(sp.bucket+":"+sp.id, now); wait > 0 {
			return tooMany(c, wait)
		}
	}
	return nil
}

// spend charges the request to every budget in one Redis call and answers
// 429 when one refuses; a refused client-IP budget is remembered locally
// (see refusals). Callers get their spends from ipSpends, which checks
// those refusals first.
func (s *Server) spend(c echo.Context, spends ...spend) error {
	if len(spends) == 0 {
		return nil
	}
	ok, wait, by := s.limiter.Allow(c.Request().Context(), spends...)
	if ok {
		return nil
	}
	if sp := spends[by]; sp.bucket != "cred" {
		s.refused.add(sp.bucket+":"+sp.id, time.Now().Add(wait))
	}
	return tooMany(c, wait)
}

func tooMany(c echo.Context, wait time.Duration) error {
	secs := retryAfter(c, wait)
	return &warden.Error{Code: warden.ERATELIMITED, Message: "Rate limit exceeded", Details: map[string]string{"retry_after_seconds": secs}}
}

// retryAfter sets the Retry-After header to wait in whole seconds (at
// least 1) and answers the value.
func retryAfter(c echo.Context, wait time.Duration) string {
	secs := strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1))
	c.Response().Header().Set("Retry-After", secs)
	return secs
}

// clientBucket is the rate-limit identity of a client address: the address
// for IPv4, its /64 for IPv6 (one subscriber holds a whole /64, so
// per-address buckets would give it 2^64 budgets).
func clientBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
