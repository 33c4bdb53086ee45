package api

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden"
)

// gcra is the generic cell rate algorithm in one atomic script, so limits
// hold across every API replica sharing the Redis. Time comes from Redis,
// not the replicas' clocks. Returns {allowed, retry_after_ms}.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
`)

// Limiter enforces requests-per-second budgets in Redis.
type Limiter struct{ rdb redis.UniversalClient }

// Allow spends one request of bucket/id at rate per second with a burst of
// one second's worth. On Redis failure it allows (an outage of the limiter
// must not take the API down) and logs.
func (l *Limiter) Allow(ctx context.Context, bucket, id string, rate float64) (bool, time.Duration) {
	if rate <= 0 {
		return true, 0
	}
	interval := 1000 / rate
	burst := math.Max(1, math.Floor(rate))
	res, err := gcra.Run(ctx, l.rdb, []string{"warden:rl:" + bucket + ":" + id},
		strconv.FormatFloat(interval, 'f', 3, 64), strconv.FormatFloat(burst, 'f', 0, 64)).Int64Slice()
	if err != nil || len(res) != 2 {
		slog.Warn("rate limiter unavailable; allowing request", "err", err)
		return true, 0
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond
}

// limit is middleware for a per-client-IP bucket.
func (s *Server) limit(bucket string, rate float64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := s.spend(c, bucket, c.RealIP(), rate); err != nil {
				return err
			}
			return next(c)
		}
	}
}

func (s *Server) spend(c echo.Context, bucket, id string, rate float64) error {
	ok, wait := s.limiter.Allow(c.Request().Context(), bucket, id, rate)
	if ok {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return &warden.Error{Code: warden.ERATELIMITED, Message: "Rate limit exceeded", Details: map[string]string{"retry_after_seconds": strconv.Itoa(secs)}}
}
