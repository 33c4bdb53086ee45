package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/secretbox"
	"github.com/wardenlab/warden/storage"
)

// Services are what an API server or a worker under test is built on: a
// test configuration, a private PostgreSQL database, a blob store (a
// directory, or the S3 bucket an option configures: S3.Configure), a
// private Redis database (or the Redis an option names), the enqueue
// client, the job service and the outbound client. Everything is closed
// when the test ends.
type Services struct {
	Config   config.Config
	DB       *storage.DB
	DBURL    string
	Blobs    storage.BlobStore
	Redis    asynq.RedisConnOpt
	Client   *queue.Client
	Jobs     *queue.Service
	Outbound outbound.Uses
}

// OperatorToken opens /monitoring in tests (user "operator").
const OperatorToken = "test-operator-token-0123456789"

// NewServices builds Services. The configuration allows loopback targets
// (test receivers and file servers), raises rate limits out of the way and
// trusts the C2PA test root; opts adjust it before anything is opened (an
// option may set RedisURL to a private redis-server's, or SecretKey to seal
// the database's secrets).
func NewServices(t testing.TB, opts ...func(*config.Config)) *Services {
	t.Helper()
	db, dbURL := Postgres(t)
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = ""
	cfg.DataDir = t.TempDir()
	cfg.BlobDir = filepath.Join(cfg.DataDir, "blobs")
	cfg.RateGeneral, cfg.RateUpload, cfg.RateCredential, cfg.RateToken = 10000, 10000, 10000, 10000
	cfg.VerifyURLAllow, cfg.WebhookAllow, cfg.ModelURLAllow = "127.0.0.0/8", "127.0.0.0/8", "127.0.0.0/8"
	cfg.C2PATrustAnchors = filepath.Join(RepoRoot(), "media", "c2pa", "testdata", "certs", "test_cert_root_bundle.pem")
	cfg.ReconcileInterval = time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.OperatorToken = OperatorToken
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.RedisURL == "" {
		cfg.RedisURL = Redis(t)
	}
	s := &Services{Config: cfg, DB: db, DBURL: dbURL}
	if cfg.DatabaseURL != dbURL || len(cfg.SecretKey) > 0 { // another server, or secrets sealed under a key
		var opts []storage.Option
		if len(cfg.SecretKey) > 0 {
			box, err := secretbox.New(cfg.SecretKey)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, storage.WithSecretBox(box))
		}
		if s.DB, err = storage.Open(context.Background(), cfg.DatabaseURL, "", opts...); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.DB.Close() })
		s.DBURL = cfg.DatabaseURL
	}
	if s.Blobs, err = storage.OpenBlobs(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if s.Redis, err = queue.RedisOpt(cfg.RedisURL); err != nil {
		t.Fatal(err)
	}
	s.Client = queue.NewClient(s.Redis)
	t.Cleanup(func() { s.Client.Close() })
	s.Jobs = queue.NewService(s.DB, s.Blobs, s.Redis, s.Client, cfg.JobDeadline)
	s.Jobs.SetQuota(storage.Quota{MaxActiveJobs: cfg.OrgMaxActiveJobs, MaxStoredBytes: cfg.OrgMaxStoredBytes})
	t.Cleanup(func() { s.Jobs.Close() })
	if s.Outbound, err = outbound.NewUses(cfg.OutboundAllows()); err != nil {
		t.Fatal(err)
	}
	return s
}

// Org creates an org (with its admin API key, OAuth2 client and webhook
// secret) in db.
func Org(t testing.TB, db *storage.DB, name string) storage.NewOrgCredentials {
	t.Helper()
	c, err := db.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
