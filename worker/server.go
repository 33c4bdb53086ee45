// Package worker runs Warden's background jobs: an asynq server whose mux
// dispatches each job kind to its handler, the webhook deliverer and the
// reconciler that keeps Redis in step with PostgreSQL.
package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// Deps are the shared services a worker needs.
type Deps struct {
	Config   config.Config
	DB       *storage.DB
	Blobs    storage.BlobStore
	Redis    asynq.RedisConnOpt
	Client   *queue.Client  // webhook and reconciler enqueues
	Jobs     *queue.Service // task state and stop signals, for the reconciler
	Events   jobs.Events    // webhook bodies, rendered by the surfaces
	Outbound outbound.Uses
	Metrics  *dashboards.Metrics
	Trust    TrustStores
}

// Worker is an asynq server plus the reconciler.
type Worker struct {
	Deps
	srv      *asynq.Server
	rdb      redis.UniversalClient
	handlers map[string]*handler
	runners  *runner.Pool
	predicts *predictions
	sbOnce   sync.Once
	sb       sandboxState
	device   torch.Device
	threads  int
}

// New builds a worker serving the configured queues.
func New(d Deps) *Worker {
	w := &Worker{Deps: d, handlers: map[string]*handler{}}
	w.rdb, _ = d.Redis.MakeRedisClient().(redis.UniversalClient)
	Handle(w, jobs.Probe, w.probe)
	Handle(w, jobs.VerifyMedia, w.verifyMedia)
	Handle(w, jobs.ValidateModel, w.validateModel)
	w.onFailure(jobs.ValidateModel.Name, modelValidationFailed)
	Handle(w, jobs.Attack, w.attack)
	Handle(w, jobs.Analysis, w.analyze)
	if torch.Available() {
		var why string
		w.device, why = torch.SelectDevice()
		w.threads = d.Config.TorchThreads
		if w.threads <= 0 {
			w.threads = runtime.NumCPU()
		}
		torch.SetThreads(w.threads)
		slog.Info("tensor engine ready", "libtorch", torch.TorchVersion(), "device", w.device.String(), "why", why, "threads", torch.Threads())
	} else {
		slog.Warn("tensor engine unavailable: model, prediction and attack jobs will fail", "reason", torch.Reason())
	}
	w.runners = runnerPool(w)
	if w.rdb != nil {
		w.predicts = newPredictions(w)
	}
	w.srv = asynq.NewServer(d.Redis, asynq.Config{
		Concurrency:    d.Config.WorkerConcurrency,
		Queues:         d.Config.WorkerQueues,
		RetryDelayFunc: retryDelay,
		// asynq polls (it does not block on Redis); an idle slot sleeps
		// this long (±50 %) before polling again. asynq's default, 1 s,
		// leaves slots asleep while jobs arrive one by one over HTTP.
		TaskCheckInterval: d.Config.TaskCheckInterval,
		ShutdownTimeout:   d.Config.ShutdownTimeout,
		Logger:            slogAdapter{},
		HealthCheckFunc: func(err error) {
			if err != nil {
				slog.Warn("redis unreachable; worker keeps retrying", "err", err)
			}
		},
	})
	return w
}

func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if t.Type() == queue.TypeWebhook {
		return queue.WebhookRetryDelay(n)
	}
	d := time.Duration(n*n) * 2 * time.Second
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d
}

// Run serves until ctx ends, then shuts down gracefully: in-flight tasks get
// ShutdownTimeout to finish, the rest go back to Redis.
func (w *Worker) Run(ctx context.Context) error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TypeJob, w.handleJob)
	mux.HandleFunc(queue.TypeWebhook, w.handleWebhook)
	sb := w.sandbox()
	if sb.err != nil {
		slog.Error("model runner sandbox", "layers", sb.layers, "err", sb.err)
	} else {
		slog.Info("model runner sandbox", "layers", sb.layers, "sandbox", w.Config.Sandbox)
	}
	w.publishSandbox(ctx)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	slog.Info("worker started", "queues", w.Config.WorkerQueues, "concurrency", w.Config.WorkerConcurrency)
	recDone := make(chan struct{})
	go func() { defer close(recDone); w.reconcileLoop(ctx) }()
	predDone := make(chan struct{})
	go func() {
		defer close(predDone)
		if w.predicts != nil {
			w.predicts.serve(ctx)
		}
	}()
	<-ctx.Done()
	slog.Info("worker shutting down")
	w.srv.Shutdown()
	<-predDone
	w.runners.Close()
	<-recDone
	if w.rdb != nil {
		w.rdb.Close()
	}
	return nil
}

// slogAdapter routes asynq's logs to slog.
type slogAdapter struct{}

func (slogAdapter) Debug(args ...any) { slog.Debug(fmt.Sprint(args...), "component", "asynq") }
func (slogAdapter) Info(args ...any)  { slog.Info(fmt.Sprint(args...), "component", "asynq") }
func (slogAdapter) Warn(args ...any)  { slog.Warn(fmt.Sprint(args...), "component", "asynq") }
func (slogAdapter) Error(args ...any) { slog.Error(fmt.Sprint(args...), "component", "asynq") }
func (slogAdapter) Fatal(args ...any) {
	slog.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
	os.Exit(1) // asynq expects Fatal not to return
}

// sandbox probes, once, what confinement runners get on this host.
func (w *Worker) sandbox() sandboxState {
	w.sbOnce.Do(func() { w.sb = w.probeSandbox(context.Background()) })
	return w.sb
}

// publishSandbox writes this worker's runner layers to Redis for /health,
// expiring unless refreshed (each reconcile tick).
func (w *Worker) publishSandbox(ctx context.Context) {
	if w.rdb == nil {
		return
	}
	sb := w.sandbox()
	host, _ := os.Hostname()
	v := map[string]any{"worker": fmt.Sprintf("%s:%d", host, os.Getpid()), "layers": sb.layers, "tenant_models": sb.err == nil}
	if sb.err != nil {
		v["reason"] = sb.err.Error()
	}
	b, _ := json.Marshal(v)
	ttl := 3 * w.Config.ReconcileInterval
	if err := w.rdb.Set(ctx, queue.SandboxKeyPrefix+v["worker"].(string), b, ttl).Err(); err != nil && ctx.Err() == nil {
		slog.Debug("sandbox state not published", "err", err)
	}
}
