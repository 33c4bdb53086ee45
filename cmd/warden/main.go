// Command warden is Warden's single binary: `warden api`, `warden worker`,
// `warden migrate`, `warden dev` (API and worker in one process), CLI
// verbs such as `warden org create`, and the API client commands (`warden
// submit`, `warden jobs`, `warden webhooks`: package cli).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/cli"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/secretbox"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
)

const usage = `usage: warden <command> [flags]

commands:
  api                       serve the HTTP API
  worker [--queues gpu=6,cpu=2] [--concurrency N]
                            run a worker serving the given queues
  dev                       API and worker in one process; creates a demo org
                            and registers the demo models (libtorch builds)
  demo train [--org ORG_ID] train the demo models and register them for an org
  migrate                   apply database migrations and exit
  org create --name N [--json]
                            create an org and print its credentials (once)
  healthcheck [URL]         exit 0 when the API answers 200 at URL
                            (default http://127.0.0.1<WARDEN_ADDR port>/health);
                            for container health checks, no curl needed
  version                   print the version

` + cli.Usage

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if os.Args[1] == "runner" { // started by a worker for one model; reads no configuration
		runner.Exit(runner.Main())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if code, ok := runClient(ctx, os.Args[1:], os.Stdout, os.Stderr); ok {
		stop()
		os.Exit(code)
	}
	if err := run(ctx, os.Args[1], os.Args[2:], os.Stdout); err != nil {
		slog.Error("warden failed", "command", os.Args[1], "err", err)
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string, stdout io.Writer) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	setupLogging(cfg.LogLevel)
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, api.Version)
		return nil
	case "migrate":
		db, err := openDB(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		v, err := db.SchemaVersion(ctx)
		if err == nil {
			fmt.Fprintf(stdout, "database at schema version %d\n", v)
		}
		return err
	case "healthcheck":
		target := "http://127.0.0.1" + addrPort(cfg.Addr) + "/health"
		if len(args) > 0 {
			target = args[0]
		}
		return healthcheck(ctx, target, stdout)
	case "org":
		return orgCommand(ctx, cfg, args, stdout)
	case "demo":
		return demoCommand(ctx, cfg, args, stdout)
	case "api":
		return serve(ctx, cfg, true, false, stdout)
	case "worker":
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		queues := fs.String("queues", "", "queue priorities, e.g. gpu=6,cpu=2 (default WARDEN_WORKER_QUEUES)")
		conc := fs.Int("concurrency", 0, "tasks processed at once (default WARDEN_WORKER_CONCURRENCY)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *queues != "" {
			if cfg.WorkerQueues, err = config.ParseQueues(*queues); err != nil {
				return fmt.Errorf("--queues: %w", err)
			}
		}
		if *conc > 0 {
			cfg.WorkerConcurrency = *conc
		}
		return serve(ctx, cfg, false, true, stdout)
	case "dev":
		if cfg.OperatorToken == "" {
			// One token per run, so the local queue dashboard opens.
			b := make([]byte, 24)
			rand.Read(b)
			cfg.OperatorToken = hex.EncodeToString(b)
			fmt.Fprintf(stdout, "Queue dashboard: %s/monitoring (user operator, password %s; set WARDEN_OPERATOR_TOKEN to keep one)\n",
				cfg.PublicURL, cfg.OperatorToken)
		}
		return serve(ctx, cfg, true, true, stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// runClient runs an API client command (package cli) and reports whether
// args named one. It reads no server configuration: a client machine has
// none, and a server's must not leak into a client's requests.
func runClient(ctx context.Context, args []string, stdout, stderr *os.File) (int, bool) {
	if len(args) == 0 || !cli.Handles(args[0]) {
		return 0, false
	}
	return cli.Run(ctx, args, cli.Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, TTY: isTerminal(stderr)}), true
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func setupLogging(level string) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}

// openDB opens and migrates the database, sealing secrets at rest under
// WARDEN_SECRET_KEY when it is set.
func openDB(ctx context.Context, cfg config.Config) (*storage.DB, error) {
	var opts []storage.Option
	if len(cfg.SecretKey) > 0 {
		box, err := secretbox.New(cfg.SecretKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, storage.WithSecretBox(box))
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL, filepath.Join(cfg.DataDir, "warden.db"), opts...)
	if err != nil {
		return nil, err
	}
	// Retry migrations while the database starts (compose, systemd order).
	for attempt := 1; ; attempt++ {
		err = db.Migrate(ctx)
		if err == nil || attempt == 30 || ctx.Err() != nil || secretKeyProblem(err) {
			break
		}
		slog.Warn("database not ready; retrying migrations", "attempt", attempt, "err", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// secretKeyProblem reports a database whose sealed secrets do not open
// under WARDEN_SECRET_KEY: retrying will not help.
func secretKeyProblem(err error) bool {
	return errors.Is(err, secretbox.ErrNoKey) || errors.Is(err, secretbox.ErrWrongKey) || errors.Is(err, secretbox.ErrInvalid)
}

func orgCommand(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: warden org create --name N [--json]")
	}
	fs := flag.NewFlagSet("org create", flag.ContinueOnError)
	name := fs.String("name", "", "org name")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	creds, err := db.CreateOrg(ctx, *name)
	if err != nil {
		return err
	}
	return printCreds(stdout, creds, *asJSON)
}

func printCreds(w io.Writer, c storage.NewOrgCredentials, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(c)
	}
	_, err := fmt.Fprintf(w, "org_id:         %s\napi_key:        %s\nclient_id:      %s\nclient_secret:  %s\nwebhook_secret: %s\n",
		c.OrgID, c.APIKey, c.ClientID, c.ClientSecret, c.WebhookSecret)
	return err
}

// jobService builds the job service with the configured job deadline,
// per-org quotas and the webhook events a cancel sends.
func jobService(cfg config.Config, db *storage.DB, blobs storage.BlobStore, redisOpt asynq.RedisConnOpt, client *queue.Client) *queue.Service {
	svc := queue.NewService(db, blobs, redisOpt, client, cfg.JobDeadline)
	svc.SetQuota(storage.Quota{MaxActiveJobs: cfg.OrgMaxActiveJobs, MaxStoredBytes: cfg.OrgMaxStoredBytes})
	svc.SetEvents(api.Events{PublicURL: cfg.PublicURL}) // a cancel's webhook
	return svc
}

// warnClearSecrets logs, for `warden api` and `warden worker`, which
// secrets a database dump would give away because WARDEN_SECRET_KEY is not
// set (`warden dev` runs without it on purpose).
func warnClearSecrets(cfg config.Config) {
	if len(cfg.SecretKey) > 0 {
		return
	}
	stored := "webhook secrets"
	if len(cfg.JWTKeys) == 0 {
		stored = "webhook secrets and access-token signing keys"
	}
	slog.Warn("SECRETS STORED IN CLEAR: WARDEN_SECRET_KEY is not set, so "+stored+
		" are stored unencrypted and a database dump can forge them; set WARDEN_SECRET_KEY (openssl rand -base64 32) and WARDEN_REQUIRE_SECRET_KEY=true in production",
		"setting", "WARDEN_SECRET_KEY")
}

// serve runs the API, the worker, or both until ctx ends.
func serve(ctx context.Context, cfg config.Config, withAPI, withWorker bool, stdout io.Writer) error {
	if withAPI != withWorker {
		warnClearSecrets(cfg)
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := storage.OpenBlobs(ctx, cfg)
	if err != nil {
		return err
	}
	redisOpt, err := queue.RedisOpt(cfg.RedisURL)
	if err != nil {
		return err
	}
	out, err := outbound.NewUses(cfg.OutboundAllows())
	if err != nil {
		return err
	}
	client := queue.NewClient(redisOpt)
	defer client.Close()
	jobSvc := jobService(cfg, db, blobs, redisOpt, client)
	defer jobSvc.Close()
	metrics := dashboards.NewMetrics()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	metrics.WatchQueues(insp, db, jobs.Queues)

	demoOrgID := ""
	if withAPI && withWorker {
		if demoOrgID, err = demoOrg(ctx, cfg, db, stdout); err != nil {
			return err
		}
	}
	errc := make(chan error, 2)
	n := 0
	if withWorker {
		trust, err := worker.LoadTrustStores(cfg.C2PATrustAnchors, cfg.SensorTrustAnchors)
		if err != nil {
			return err
		}
		w := worker.New(worker.Deps{Config: cfg, DB: db, Blobs: blobs, Redis: redisOpt, Client: client, Jobs: jobSvc,
			Events: api.Events{PublicURL: cfg.PublicURL}, Outbound: out, Metrics: metrics, Trust: trust})
		n++
		go func() { errc <- w.Run(ctx) }()
		if demoOrgID != "" {
			// Training takes a few seconds the first time; the API does not wait.
			go func() {
				d := demo.Deps{DB: db, Blobs: blobs, Jobs: jobSvc, DataDir: cfg.DataDir, WordNetDir: cfg.WordNetDir}
				if err := demo.EnsureDemoModels(ctx, d, demoOrgID); err != nil && ctx.Err() == nil {
					slog.Warn("demo models not registered", "err", err)
				}
			}()
		}
		if !withAPI && cfg.WorkerMetricsAddr != "" {
			go serveWorkerMetrics(ctx, cfg.WorkerMetricsAddr, metrics)
		}
	}
	if cfg.PprofAddr != "" {
		go servePprof(ctx, cfg.PprofAddr)
	}
	if withAPI {
		srv, err := api.New(api.Deps{Config: cfg, DB: db, Blobs: blobs, Redis: redisOpt, Jobs: jobSvc, Workers: jobSvc, Webhooks: jobSvc, Outbound: out, Metrics: metrics})
		if err != nil {
			return err
		}
		n++
		go func() { errc <- srv.Run(ctx) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		}
	}
	return nil
}

func serveWorkerMetrics(ctx context.Context, addr string, m *dashboards.Metrics) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	serveSide(ctx, "worker metrics", addr, mux)
}

// servePprof serves Go's profiler (/debug/pprof) on its own listener, never
// on the API's: it shows the process's internals, so it belongs on
// loopback or an operators' network.
func servePprof(ctx context.Context, addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	slog.Info("profiler listening", "addr", addr)
	serveSide(ctx, "profiler", addr, mux)
}

// serveSide serves h on addr until ctx ends.
func serveSide(ctx context.Context, what, addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Warn(what+" server stopped", "addr", addr, "err", err)
	}
}

// demoOrg creates the "demo" org on first start and prints its credentials;
// they are kept (mode 0600) in the data directory so later starts can print
// them again. Development convenience only: production creates orgs with
// `warden org create`. It returns the demo org's id.
func demoOrg(ctx context.Context, cfg config.Config, db *storage.DB, stdout io.Writer) (string, error) {
	path := filepath.Join(cfg.DataDir, "demo-credentials.json")
	if b, err := os.ReadFile(path); err == nil {
		var c storage.NewOrgCredentials
		if json.Unmarshal(b, &c) == nil {
			if _, err := db.GetOrg(ctx, c.OrgID); err == nil {
				fmt.Fprintln(stdout, "Demo org credentials ("+path+"):")
				return c.OrgID, printCreds(stdout, c, false)
			}
		}
	}
	if o, err := db.FindOrgByName(ctx, "demo"); err == nil {
		fmt.Fprintln(stdout, "Demo org exists but its credentials file is gone; create another with `warden org create --name N`.")
		return o.ID, nil
	} else if warden.ErrorCode(err) != warden.ENOTFOUND {
		return "", err
	}
	c, err := db.CreateOrg(ctx, "demo")
	if err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	fmt.Fprintln(stdout, "Created demo org; credentials saved to "+path+":")
	return c.OrgID, printCreds(stdout, c, false)
}
