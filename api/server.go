// Package api is Warden's HTTP surface: one echo server that serves the
// three specs (verification under /api, the adversarial sandbox under /v1,
// AISpectra under /api/ais), plus health, metrics, docs and asynqmon. It
// submits work through jobs.Service, renders each surface's documents,
// errors and webhook events, and never links libtorch.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/predict"
	"github.com/wardenlab/warden/storage"
)

// Version is set at build time with -ldflags "-X .../api.Version=…".
var Version = "0.1.0-dev"

// Deps are the services the API needs.
type Deps struct {
	Config   config.Config
	DB       *storage.DB
	Blobs    storage.BlobStore
	Redis    asynq.RedisConnOpt
	Jobs     jobs.Service
	Workers  WorkerLister // for /health
	Webhooks Redeliverer  // manual redeliveries
	Outbound outbound.Uses
	Metrics  *dashboards.Metrics
}

// Redeliverer queues a webhook delivery again (queue.Service does).
type Redeliverer interface {
	Redeliver(ctx context.Context, deliveryID string) error
}

// WorkerLister lists live worker processes (queue.Service does).
type WorkerLister interface {
	Servers() ([]*asynq.ServerInfo, error)
}

// Server is the echo application.
type Server struct {
	Deps
	e       *echo.Echo
	rdb     redis.UniversalClient
	limiter *Limiter
	refused refusals // client-IP budgets Redis refused moments ago
	tokens  *tokens
	// predictions sends synchronous predictions to the workers; audit
	// records them.
	predictions *predict.Client
	audit       *predictionAudit
	inflight    inflightPredictions
	models      activeModels
	guards      guardTargets  // the guarded prediction endpoint's registrations
	done        completedDocs // rendered documents of completed jobs
	routes      []route       // for the OpenAPI document
	groups      []*routeGroup // one per surface, longest prefix first
	// streams ends with Run's shutdown, and with it the UI's event
	// streams, which would otherwise hold Shutdown until its timeout.
	streams    context.Context
	endStreams context.CancelFunc
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	rdb, ok := d.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("api: unexpected redis client type")
	}
	s := &Server{Deps: d, e: echo.New(), rdb: rdb, limiter: &Limiter{rdb: rdb}, tokens: newTokens(d.Config, d.DB),
		predictions: predict.NewClient(rdb), audit: newPredictionAudit(d.DB), done: completedDocs{Limit: completedDocEntries}}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	s.e.HideBanner, s.e.HidePort = true, true
	s.e.HTTPErrorHandler = s.handleError
	s.e.IPExtractor = echo.ExtractIPDirect()
	if d.Config.TrustedProxies != "" {
		var opts []echo.TrustOption
		for _, cidr := range strings.Split(d.Config.TrustedProxies, ",") {
			_, n, err := net.ParseCIDR(strings.TrimSpace(cidr))
			if err != nil {
				return nil, fmt.Errorf("WARDEN_TRUSTED_PROXIES: %w", err)
			}
			opts = append(opts, echo.TrustIPRange(n))
		}
		s.e.IPExtractor = echo.ExtractIPFromXFFHeader(append(opts, echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))...)
	}
	s.e.Use(middleware.RequestID())
	s.e.Use(s.bodyDeadline)
	s.e.Use(s.observe)
	s.e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		slog.Error("panic in handler", "err", err, "stack", string(stack))
		return err
	}}))
	s.e.Use(middleware.SecureWithConfig(middleware.SecureConfig{XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "SAMEORIGIN"}))
	o := newOrigins(d.Config.PublicURL, d.Config.CORSOrigins)
	if cors := o.corsMiddleware(); cors != nil {
		s.e.Use(cors)
	}
	s.e.Use(o.refuseCrossSite)
	s.routesVerify()
	s.routesAIS()
	v1 := s.group("/v1", renderSandboxError)
	s.routesPlatform(v1)
	s.routesModels(v1)
	s.routesAttacks(v1)
	s.routesUI()
	return s, nil
}

// Handler exposes the server for httptest.
func (s *Server) Handler() http.Handler { return s.e }

// observe logs each request as JSON and records its latency by route.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		d := time.Since(start)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		s.Metrics.ObserveHTTP(c.Request().Method, route, status, d)
		slog.Info("http request", "method", c.Request().Method, "route", route, "status", status,
			"duration_ms", d.Milliseconds(), "ip", c.RealIP(), "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

// add registers a route and records it for the OpenAPI document.
func (s *Server) add(r route, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	s.e.Add(r.Method, r.Path, h, mw...)
	s.routes = append(s.routes, r)
}

// Run serves on cfg.Addr until ctx ends, then drains in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Addr:              s.Config.Addr,
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	srv.RegisterOnShutdown(s.endStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("api listening", "addr", s.Config.Addr, "version", Version)
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	slog.Info("api shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	return err
}

// Close writes the last prediction audit records and releases the
// server's Redis connections.
func (s *Server) Close() {
	s.endStreams()
	s.predictions.Close()
	s.audit.Close()
	s.rdb.Close()
}
