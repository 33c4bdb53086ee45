package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/queue"
)

// getHealth answers spec 003's health check. ml_models_loaded is true when
// at least one live worker serves the cpu queue, i.e. the verification
// detectors are loaded somewhere and jobs will run; 503 when the database or
// Redis is down.
func (s *Server) getHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	resp := map[string]any{"status": "healthy", "version": Version, "timestamp": formatTime(time.Now()),
		"database": "connected", "redis": "connected", "ml_models_loaded": false, "workers": 0}
	status := http.StatusOK
	if err := s.DB.Ping(ctx); err != nil {
		slog.Warn("health: database down", "err", err)
		resp["database"], resp["status"], status = "disconnected", "unhealthy", http.StatusServiceUnavailable
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		slog.Warn("health: redis down", "err", err)
		resp["redis"], resp["status"], status = "disconnected", "unhealthy", http.StatusServiceUnavailable
	} else if servers, err := s.Workers.Servers(); err == nil {
		n, cpu := 0, false
		for _, sv := range servers {
			if sv.Status == "active" {
				n++
				if _, ok := sv.Queues[jobs.QueueCPU]; ok {
					cpu = true
				}
			}
		}
		resp["workers"], resp["ml_models_loaded"] = n, cpu
		resp["sandbox"] = s.sandboxes(ctx)
	}
	return c.JSON(status, resp)
}

// sandboxes lists what each live worker published about its model
// runners: the confinement layers on, and whether it accepts tenant models.
func (s *Server) sandboxes(ctx context.Context) []json.RawMessage {
	out := []json.RawMessage{}
	var keys []string
	iter := s.rdb.Scan(ctx, 0, queue.SandboxKeyPrefix+"*", 100).Iterator()
	for iter.Next(ctx) && len(keys) < 1000 {
		keys = append(keys, iter.Val())
	}
	if len(keys) == 0 {
		return out
	}
	sort.Strings(keys)
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return out
	}
	for _, v := range vals {
		if str, ok := v.(string); ok && json.Valid([]byte(str)) {
			out = append(out, json.RawMessage(str))
		}
	}
	return out
}
