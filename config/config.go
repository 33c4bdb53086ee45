// Package config reads Warden's configuration from environment variables.
// Every setting has a safe default so that `warden dev` runs with no setup;
// README lists them all.
package config

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wardenlab/warden/outbound"
)

// Config is the whole configuration of an API or worker process.
type Config struct {
	Addr        string // WARDEN_ADDR
	PublicURL   string // WARDEN_PUBLIC_URL, used to build links in webhooks
	DataDir     string // WARDEN_DATA_DIR
	DatabaseURL string // WARDEN_DATABASE_URL; empty → SQLite file in DataDir
	RedisURL    string // WARDEN_REDIS_URL
	BlobDir     string // WARDEN_BLOB_DIR
	// BlobURL selects an S3-compatible blob store instead of BlobDir:
	// s3://bucket[/prefix]?endpoint=host:port&region=…&secure=…&path_style=…
	// (storage.ParseS3URL). Its keys are S3AccessKey and S3SecretKey,
	// never part of the URL.
	BlobURL        string // WARDEN_BLOB_URL
	S3AccessKey    string // WARDEN_S3_ACCESS_KEY, else AWS_ACCESS_KEY_ID
	S3SecretKey    string // WARDEN_S3_SECRET_KEY, else AWS_SECRET_ACCESS_KEY
	S3SessionToken string // WARDEN_S3_SESSION_TOKEN, else AWS_SESSION_TOKEN
	LogLevel       string // WARDEN_LOG_LEVEL

	MaxUploadBytes int64 // WARDEN_MAX_UPLOAD_BYTES

	// Per-org quotas, checked when a job or model is submitted; 0 is
	// unlimited. Anonymous jobs are not counted (they are rate-limited).
	OrgMaxActiveJobs  int64 // WARDEN_ORG_MAX_ACTIVE_JOBS: queued and in_progress jobs
	OrgMaxStoredBytes int64 // WARDEN_ORG_MAX_STORED_BYTES: job inputs, artifacts and model files

	RateGeneral    float64 // WARDEN_RATE_GENERAL, requests/s per client IP
	RateUpload     float64 // WARDEN_RATE_UPLOAD, uploads/s per client IP
	RateCredential float64 // WARDEN_RATE_CREDENTIAL, requests/s per credential
	RateToken      float64 // WARDEN_RATE_TOKEN, POST /v1/auth/token per client IP

	JWTKeys     []JWTKey      // WARDEN_JWT_KEYS, "kid:base64secret,…"; empty → keys in the database
	JWTAudience string        // WARDEN_JWT_AUDIENCE, the access tokens' aud
	TokenTTL    time.Duration // WARDEN_TOKEN_TTL, access token lifetime

	// SecretKey seals the secrets stored in the database (signing keys,
	// webhook secrets); empty stores them in clear. RequireSecretKey, the
	// production switch, refuses to start without one.
	SecretKey        []byte // WARDEN_SECRET_KEY, base64 of 32 random bytes
	RequireSecretKey bool   // WARDEN_REQUIRE_SECRET_KEY

	// Private targets each kind of outbound request may reach, comma-separated
	// CIDRs, IPs or host:port (outbound.ParseAllowList); empty reaches only
	// public addresses.
	VerifyURLAllow    string   // WARDEN_VERIFY_URL_ALLOW, verify-url downloads
	WebhookAllow      string   // WARDEN_WEBHOOK_ALLOW, webhook callback URLs
	ModelURLAllow     string   // WARDEN_MODEL_URL_ALLOW, model_file_url and model endpoints
	TrustedProxies    string   // WARDEN_TRUSTED_PROXIES, CIDRs whose X-Forwarded-For is believed
	CORSOrigins       []string // WARDEN_CORS_ORIGINS, browser origins allowed to call the API (ParseOrigins)
	WorkerMetricsAddr string   // WARDEN_WORKER_METRICS_ADDR, where `warden worker` serves /metrics
	PprofAddr         string   // WARDEN_PPROF_ADDR, where api, worker and dev serve /debug/pprof ("" off)

	C2PATrustAnchors   string // WARDEN_C2PA_TRUST_ANCHORS, path to a PEM bundle
	SensorTrustAnchors string // WARDEN_SENSOR_TRUST_ANCHORS, path to a PEM bundle
	AIThreshold        float64

	WorkerConcurrency int            // WARDEN_WORKER_CONCURRENCY
	WorkerQueues      map[string]int // WARDEN_WORKER_QUEUES, "critical=6,gpu=3,cpu=1"
	ReconcileInterval time.Duration  // WARDEN_RECONCILE_INTERVAL
	TaskCheckInterval time.Duration  // WARDEN_TASK_CHECK_INTERVAL, how long an idle worker slot waits before polling again
	JobDeadline       time.Duration  // WARDEN_JOB_DEADLINE
	ShutdownTimeout   time.Duration  // WARDEN_SHUTDOWN_TIMEOUT

	MaxModelBytes  int64         // WARDEN_MAX_MODEL_BYTES
	TorchThreads   int           // WARDEN_TORCH_THREADS; 0 = one per CPU
	WordNetDir     string        // WARDEN_WORDNET_DIR
	PredictTimeout time.Duration // WARDEN_PREDICT_TIMEOUT, how long POST /predict waits (504 beyond)

	// Synchronous predictions (package predict): concurrent predictions of
	// one model on one worker share a forward pass, at most
	// PredictBatchMax (1 turns batching off); while a model is busy a
	// batch waits up to PredictBatchWindow for company. Warm runners:
	// at most PredictPoolSize per worker, PredictPoolMemory bytes resident
	// together (0: no cap), each closed after RunnerIdleTimeout unused.
	PredictBatchWindow time.Duration // WARDEN_PREDICT_BATCH_WINDOW
	PredictBatchMax    int           // WARDEN_PREDICT_BATCH_MAX
	PredictPoolSize    int           // WARDEN_PREDICT_POOL_SIZE
	PredictPoolMemory  int64         // WARDEN_PREDICT_POOL_MEMORY

	// Model runners (worker/runner): Sandbox "on" (default) confines each
	// runner with namespaces, Landlock, seccomp and rlimits and refuses
	// tenant models where the host gives none; "off" runs them in an
	// unconfined runner process.
	Sandbox           string        // WARDEN_SANDBOX
	RunnerMemory      int64         // WARDEN_RUNNER_MEMORY, address-space limit of a runner in bytes
	RunnerIdleTimeout time.Duration // WARDEN_RUNNER_IDLE_TIMEOUT, how long a warm prediction runner waits unused
	// RunnerSkipInspection turns the operator allow-list off. Tests only
	// (they check what the confinement does to a model the inspection
	// missed); no environment variable sets it.
	RunnerSkipInspection bool

	// OperatorToken opens /monitoring (HTTP Basic, user "operator"); empty
	// turns the operator surface off. MonitoringWrite lets operators act
	// there (pause queues, delete tasks); it is view-only otherwise.
	OperatorToken   string // WARDEN_OPERATOR_TOKEN
	MonitoringWrite bool   // WARDEN_MONITORING_WRITE

	// AnonymousRetention is how long anonymous verification jobs and their
	// files are kept after they finish (WARDEN_ANONYMOUS_RETENTION; 0
	// keeps them until deleted through the API).
	AnonymousRetention time.Duration

	BodyTimeout   time.Duration // WARDEN_BODY_TIMEOUT: time to send a request body (408 beyond)
	UploadTimeout time.Duration // WARDEN_UPLOAD_TIMEOUT: the same for file uploads
}

// OutboundAllows are the allow-lists of each kind of outbound request.
func (c Config) OutboundAllows() outbound.UseAllows {
	return outbound.UseAllows{Verify: c.VerifyURLAllow, Webhook: c.WebhookAllow, Model: c.ModelURLAllow}
}

// SandboxOn reports whether runners are confined.
func (c Config) SandboxOn() bool { return c.Sandbox != "off" }

// Load reads the environment. It fails on values that do not parse rather
// than silently falling back to a default.
func Load() (Config, error) { return load(&env{}) }

// Variables lists every environment variable Load reads, sorted (the
// deployment manifests are checked against it).
func Variables() []string {
	e := &env{keys: map[string]bool{}}
	_, _ = load(e)
	names := make([]string, 0, len(e.keys))
	for k := range e.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func load(e *env) (Config, error) {
	c := Config{
		Addr:               e.str("WARDEN_ADDR", ":8000"),
		DataDir:            e.str("WARDEN_DATA_DIR", "var"),
		DatabaseURL:        e.str("WARDEN_DATABASE_URL", ""),
		RedisURL:           e.str("WARDEN_REDIS_URL", "redis://127.0.0.1:6379/0"),
		LogLevel:           e.str("WARDEN_LOG_LEVEL", "info"),
		MaxUploadBytes:     e.int64("WARDEN_MAX_UPLOAD_BYTES", 100<<20),
		OrgMaxActiveJobs:   e.int64("WARDEN_ORG_MAX_ACTIVE_JOBS", 200),
		OrgMaxStoredBytes:  e.int64("WARDEN_ORG_MAX_STORED_BYTES", 20<<30),
		RateGeneral:        e.float("WARDEN_RATE_GENERAL", 10),
		RateUpload:         e.float("WARDEN_RATE_UPLOAD", 2),
		RateCredential:     e.float("WARDEN_RATE_CREDENTIAL", 20),
		RateToken:          e.float("WARDEN_RATE_TOKEN", 2),
		JWTAudience:        e.str("WARDEN_JWT_AUDIENCE", "warden-api"),
		TokenTTL:           e.duration("WARDEN_TOKEN_TTL", 15*time.Minute),
		RequireSecretKey:   e.bool("WARDEN_REQUIRE_SECRET_KEY", false),
		VerifyURLAllow:     e.str("WARDEN_VERIFY_URL_ALLOW", ""),
		WebhookAllow:       e.str("WARDEN_WEBHOOK_ALLOW", ""),
		ModelURLAllow:      e.str("WARDEN_MODEL_URL_ALLOW", ""),
		TrustedProxies:     e.str("WARDEN_TRUSTED_PROXIES", ""),
		WorkerMetricsAddr:  e.str("WARDEN_WORKER_METRICS_ADDR", ":9090"),
		PprofAddr:          e.str("WARDEN_PPROF_ADDR", ""),
		C2PATrustAnchors:   e.str("WARDEN_C2PA_TRUST_ANCHORS", ""),
		SensorTrustAnchors: e.str("WARDEN_SENSOR_TRUST_ANCHORS", ""),
		AIThreshold:        e.float("WARDEN_AI_THRESHOLD", 0.6),
		WorkerConcurrency:  int(e.int64("WARDEN_WORKER_CONCURRENCY", 8)),
		ReconcileInterval:  e.duration("WARDEN_RECONCILE_INTERVAL", 30*time.Second),
		TaskCheckInterval:  e.duration("WARDEN_TASK_CHECK_INTERVAL", 250*time.Millisecond),
		JobDeadline:        e.duration("WARDEN_JOB_DEADLINE", 30*time.Minute),
		ShutdownTimeout:    e.duration("WARDEN_SHUTDOWN_TIMEOUT", 20*time.Second),
		MaxModelBytes:      e.int64("WARDEN_MAX_MODEL_BYTES", 512<<20),
		TorchThreads:       int(e.int64("WARDEN_TORCH_THREADS", 0)),
		WordNetDir:         e.str("WARDEN_WORDNET_DIR", "/usr/share/wordnet"),
		PredictTimeout:     e.duration("WARDEN_PREDICT_TIMEOUT", 30*time.Second),
		PredictBatchWindow: e.duration("WARDEN_PREDICT_BATCH_WINDOW", time.Millisecond),
		PredictBatchMax:    int(e.int64("WARDEN_PREDICT_BATCH_MAX", 32)),
		PredictPoolSize:    int(e.int64("WARDEN_PREDICT_POOL_SIZE", 8)),
		PredictPoolMemory:  e.int64("WARDEN_PREDICT_POOL_MEMORY", 4<<30),
		Sandbox:            e.str("WARDEN_SANDBOX", "on"),
		RunnerMemory:       e.int64("WARDEN_RUNNER_MEMORY", 8<<30),
		RunnerIdleTimeout:  e.duration("WARDEN_RUNNER_IDLE_TIMEOUT", 5*time.Minute),
		OperatorToken:      e.str("WARDEN_OPERATOR_TOKEN", ""),
		MonitoringWrite:    e.bool("WARDEN_MONITORING_WRITE", false),
		AnonymousRetention: e.duration("WARDEN_ANONYMOUS_RETENTION", 7*24*time.Hour),
		BodyTimeout:        e.duration("WARDEN_BODY_TIMEOUT", 30*time.Second),
		UploadTimeout:      e.duration("WARDEN_UPLOAD_TIMEOUT", 10*time.Minute),
	}
	if t := c.OperatorToken; t != "" && len(t) < 16 {
		e.errs = append(e.errs, "WARDEN_OPERATOR_TOKEN: at least 16 characters")
	}
	if _, err := outbound.NewUses(c.OutboundAllows()); err != nil {
		e.errs = append(e.errs, err.Error())
	}
	if os.Getenv("WARDEN_OUTBOUND_ALLOW") != "" {
		e.errs = append(e.errs, "WARDEN_OUTBOUND_ALLOW: replaced by WARDEN_VERIFY_URL_ALLOW, WARDEN_WEBHOOK_ALLOW and WARDEN_MODEL_URL_ALLOW (one allow-list per use)")
	}
	if c.Sandbox != "on" && c.Sandbox != "off" {
		e.errs = append(e.errs, "WARDEN_SANDBOX: on or off")
	}
	c.BlobDir = e.str("WARDEN_BLOB_DIR", filepath.Join(c.DataDir, "blobs"))
	c.BlobURL = e.str("WARDEN_BLOB_URL", "")
	c.S3AccessKey = e.str("WARDEN_S3_ACCESS_KEY", os.Getenv("AWS_ACCESS_KEY_ID"))
	c.S3SecretKey = e.str("WARDEN_S3_SECRET_KEY", os.Getenv("AWS_SECRET_ACCESS_KEY"))
	c.S3SessionToken = e.str("WARDEN_S3_SESSION_TOKEN", os.Getenv("AWS_SESSION_TOKEN"))
	if c.BlobURL != "" {
		e.blobURL(c)
	}
	c.PublicURL = strings.TrimRight(e.str("WARDEN_PUBLIC_URL", "http://localhost"+portOf(c.Addr)), "/")
	var err error
	if c.CORSOrigins, err = ParseOrigins(e.str("WARDEN_CORS_ORIGINS", "")); err != nil {
		e.errs = append(e.errs, fmt.Sprintf("WARDEN_CORS_ORIGINS: %v", err))
	}
	q, err := ParseQueues(e.str("WARDEN_WORKER_QUEUES", "critical=6,gpu=3,cpu=1"))
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("WARDEN_WORKER_QUEUES: %v", err))
	}
	c.WorkerQueues = q
	if c.JWTKeys, err = ParseJWTKeys(e.str("WARDEN_JWT_KEYS", "")); err != nil {
		e.errs = append(e.errs, fmt.Sprintf("WARDEN_JWT_KEYS: %v", err))
	}
	if c.SecretKey, err = parseSecretKey(e.str("WARDEN_SECRET_KEY", "")); err != nil {
		e.errs = append(e.errs, fmt.Sprintf("WARDEN_SECRET_KEY: %v", err))
	} else if c.SecretKey == nil && c.RequireSecretKey {
		e.errs = append(e.errs, "WARDEN_SECRET_KEY: required (WARDEN_REQUIRE_SECRET_KEY is set)")
	}
	e.positive(map[string]float64{
		"WARDEN_MAX_UPLOAD_BYTES": float64(c.MaxUploadBytes), "WARDEN_MAX_MODEL_BYTES": float64(c.MaxModelBytes),
		"WARDEN_WORKER_CONCURRENCY": float64(c.WorkerConcurrency), "WARDEN_RECONCILE_INTERVAL": float64(c.ReconcileInterval),
		"WARDEN_TASK_CHECK_INTERVAL": float64(c.TaskCheckInterval), "WARDEN_JOB_DEADLINE": float64(c.JobDeadline),
		"WARDEN_PREDICT_TIMEOUT": float64(c.PredictTimeout), "WARDEN_PREDICT_BATCH_MAX": float64(c.PredictBatchMax),
		"WARDEN_PREDICT_POOL_SIZE": float64(c.PredictPoolSize),
	})
	if c.AIThreshold > 1 {
		e.errs = append(e.errs, "WARDEN_AI_THRESHOLD: must be between 0 and 1")
	}
	if c.TokenTTL < time.Minute || c.TokenTTL > 24*time.Hour {
		e.errs = append(e.errs, "WARDEN_TOKEN_TTL: must be between 1m and 24h")
	}
	if len(e.errs) > 0 {
		return c, fmt.Errorf("config: %s", strings.Join(e.errs, "; "))
	}
	return c, nil
}

// JWTKey is one HS256 key for access tokens.
type JWTKey struct {
	ID     string // the tokens' kid header
	Secret []byte
}

// ParseJWTKeys parses "kid:base64secret,…". The first key signs, every key
// verifies: to rotate, put the new key first, keep the old one listed for
// one token TTL, then drop it. Secrets must decode to at least 32 bytes.
func ParseJWTKeys(s string) ([]JWTKey, error) {
	var keys []JWTKey
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kid, secret, ok := strings.Cut(part, ":")
		kid = strings.TrimSpace(kid)
		if !ok || kid == "" {
			return nil, fmt.Errorf("want kid:base64secret, got an entry without a kid")
		}
		if seen[kid] {
			return nil, fmt.Errorf("kid %q listed twice", kid)
		}
		seen[kid] = true
		b, err := decodeBase64(strings.TrimSpace(secret))
		if err != nil {
			return nil, fmt.Errorf("kid %q: secret is not base64: %v", kid, err)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("kid %q: secret must be at least 32 bytes, got %d", kid, len(b))
		}
		keys = append(keys, JWTKey{ID: kid, Secret: b})
	}
	return keys, nil
}

// parseSecretKey decodes WARDEN_SECRET_KEY: base64 of exactly 32 bytes
// (AES-256). Empty is no key. Errors never repeat the value.
func parseSecretKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := decodeBase64(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64 (generate one with: openssl rand -base64 32)")
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("must decode to 32 bytes, got %d (generate one with: openssl rand -base64 32)", len(b))
	}
	return b, nil
}

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// ParseQueues parses "gpu=6,cpu=2" into queue priorities.
func ParseQueues(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, prio, ok := strings.Cut(part, "=")
		if !ok {
			prio = "1"
		}
		name = strings.TrimSpace(name)
		n, err := strconv.Atoi(strings.TrimSpace(prio))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("queue %q: priority must be a positive integer", name)
		}
		if name == "" {
			return nil, fmt.Errorf("%q: a queue needs a name", part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("queue %q listed twice", name)
		}
		out[name] = n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no queues")
	}
	return out, nil
}

// ParseOrigins parses a comma-separated list of browser origins
// ("https://app.example.com,http://localhost:3000") into their canonical
// form (scheme://host[:port], lower case, no path). "*" is refused: the
// list also decides which cross-site browser requests may change state.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		o, err := canonicalOrigin(part)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// canonicalOrigin checks that s is an origin as browsers send it in the
// Origin header and returns it in lower case.
func canonicalOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: an origin is scheme://host[:port] with scheme http or https (\"*\" is not accepted)", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func portOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[i:]
	}
	return ""
}

type env struct {
	errs []string
	keys map[string]bool // when set, records every key read (Variables)
}

func (e *env) str(key, def string) string {
	if e.keys != nil {
		e.keys[key] = true
	}
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func (e *env) bool(key string, def bool) bool {
	v := e.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s: %v", key, err))
		return def
	}
	return b
}

func (e *env) int64(key string, def int64) int64 {
	v := e.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s: %v", key, err))
		return def
	}
	if n < 0 {
		e.errs = append(e.errs, fmt.Sprintf("%s: must not be negative", key))
		return def
	}
	return n
}

func (e *env) float(key string, def float64) float64 {
	v := e.str(key, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s: %v", key, err))
		return def
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		e.errs = append(e.errs, fmt.Sprintf("%s: must be a finite number, not negative", key))
		return def
	}
	return f
}

func (e *env) duration(key string, def time.Duration) time.Duration {
	v := e.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s: %v", key, err))
		return def
	}
	if d < 0 {
		e.errs = append(e.errs, fmt.Sprintf("%s: must not be negative", key))
		return def
	}
	return d
}

// blobURL checks WARDEN_BLOB_URL's form and that the S3 keys are set
// (storage.ParseS3URL checks the rest when the store opens). Its
// messages never repeat the URL or a key.
func (e *env) blobURL(c Config) {
	u, err := url.Parse(c.BlobURL)
	switch {
	case err != nil || u.Scheme != "s3" || u.Host == "":
		e.errs = append(e.errs, "WARDEN_BLOB_URL: want s3://bucket[/prefix]?endpoint=host:port (unset: blobs in WARDEN_BLOB_DIR)")
	case u.User != nil:
		e.errs = append(e.errs, "WARDEN_BLOB_URL: credentials do not belong in the URL; set WARDEN_S3_ACCESS_KEY and WARDEN_S3_SECRET_KEY")
	case c.S3AccessKey == "" || c.S3SecretKey == "":
		e.errs = append(e.errs, "WARDEN_BLOB_URL: set WARDEN_S3_ACCESS_KEY and WARDEN_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
}

// positive records an error for each named setting that is zero; a zero
// interval, size or concurrency makes no sense (and panics a ticker).
func (e *env) positive(values map[string]float64) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if values[k] == 0 {
			e.errs = append(e.errs, fmt.Sprintf("%s: must be positive", k))
		}
	}
}
