// Package worker runs Warden's background jobs: an asynq server whose mux
// dispatches each job kind to its handler, the webhook deliverer and the
// reconciler that keeps Redis in step with PostgreSQL.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/torch"
)

// JobFunc does the work of one job kind. It reports progress through p and
// returns the result to store; an error wrapped with Permanent fails the job
// without retrying.
type JobFunc func(ctx context.Context, j *Run) (Output, error)

// Output is what a JobFunc produces.
type Output struct {
	Label string         // indexed summary (verification label, attack outcome)
	Data  any            // marshalled to JSON as the result document
	Event map[string]any // extra fields for the webhook event, per the job kind's spec
}

// Deps are the shared services a worker needs.
type Deps struct {
	Config   config.Config
	DB       *storage.DB
	Blobs    storage.BlobStore
	Redis    asynq.RedisConnOpt
	Client   *jobs.Client
	Outbound *outbound.Client
	Metrics  *dashboards.Metrics
	Trust    TrustStores
}

// Worker is an asynq server plus the reconciler.
type Worker struct {
	Deps
	srv       *asynq.Server
	inspector *asynq.Inspector
	rdb       redis.UniversalClient
	handlers  map[string]JobFunc
	models    *modelCache
	device    torch.Device
	threads   int
	wordnetState
}

// New builds a worker serving the configured queues.
func New(d Deps) *Worker {
	w := &Worker{Deps: d, handlers: map[string]JobFunc{}, inspector: asynq.NewInspector(d.Redis)}
	w.rdb, _ = d.Redis.MakeRedisClient().(redis.UniversalClient)
	w.handlers[jobs.KindProbe] = w.probe
	w.handlers[jobs.KindVerifyMedia] = w.verifyMedia
	w.handlers[jobs.KindModelLoad] = w.validateModel
	w.handlers[jobs.KindPredict] = w.predict
	w.handlers[jobs.KindAttack] = w.attack
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
	w.models = newModelCache(filepath.Join(d.Config.DataDir, "model-cache"), w.device)
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

// Register adds (or replaces) the handler of a job kind; later issues add
// attack and analysis kinds this way.
func (w *Worker) Register(kind string, fn JobFunc) { w.handlers[kind] = fn }

func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if t.Type() == jobs.TypeWebhook {
		return jobs.WebhookRetryDelay(n)
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
	mux.HandleFunc(jobs.TypeJob, w.handleJob)
	mux.HandleFunc(jobs.TypeWebhook, w.handleWebhook)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	slog.Info("worker started", "queues", w.Config.WorkerQueues, "concurrency", w.Config.WorkerConcurrency)
	recDone := make(chan struct{})
	go func() { defer close(recDone); w.reconcileLoop(ctx) }()
	<-ctx.Done()
	slog.Info("worker shutting down")
	w.srv.Shutdown()
	<-recDone
	w.inspector.Close()
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
