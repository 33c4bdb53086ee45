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

// Limiter enforces requests-per-second budgets in Redis.
type Limiter struct{ rdb redis.UniversalClient }

// Allow spends one request from every bucket or from none. When refused it
// returns how long to wait and which spend refused. On Redis failure it
// allows (an outage of the limiter must not take the API down) and logs.
func (l *Limiter) Allow(ctx context.Context, spends ...spend) (ok bool, wait time.Duration, by int) {
	keys := make([]string, 0, len(spends))
	args := make([]any, 0, 2*len(spends))
	for _, sp := range spends {
		if sp.rate <= 0 {
			continue
		}
		keys = append(keys, "warden:rl:"+sp.bucket+":"+sp.id)
		interval := 1000 / sp.rate
		args = append(args, strconv.FormatFloat(interval, 'f', 3, 64), strconv.FormatFloat(math.Max(1, math.Floor(sp.rate)), 'f', 0, 64))
	}
	if len(keys) == 0 {
		return true, 0, -1
	}
	res, err := gcra.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil || len(res) != 3 {
		slog.Warn("rate limiter unavailable; allowing request", "err", err)
		return true, 0, -1
	}
	if res[0] == 1 {
		return true, 0, -1
	}
	// res[2] counts the keys sent (1-based); map it back to spends.
	for i, n := 0, int64(0); i < len(spends); i++ {
		if spends[i].rate > 0 {
			if n++; n == res[2] {
				by = i
			}
		}
	}
	return false, time.Duration(res[1]) * time.Millisecond, by
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
