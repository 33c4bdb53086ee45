package config_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
)

// clearEnv blanks every WARDEN_* variable, and the AWS keys Load falls
// back on, for the test; Load treats an empty value as unset.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WARDEN_") {
			t.Setenv(k, "")
		}
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
}

func load(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	return config.Load()
}

func secret(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatalf("Load with no environment: %v", err)
	}
	want := config.Config{
		Addr:               ":8000",
		PublicURL:          "http://localhost:8000",
		DataDir:            "var",
		DatabaseURL:        "",
		RedisURL:           "redis://127.0.0.1:6379/0",
		BlobDir:            "var/blobs",
		LogLevel:           "info",
		MaxUploadBytes:     100 << 20,
		OrgMaxActiveJobs:   200,
		OrgMaxStoredBytes:  20 << 30,
		RateGeneral:        10,
		RateUpload:         2,
		RateCredential:     20,
		RateToken:          2,
		JWTKeys:            nil,
		JWTAudience:        "warden-api",
		TokenTTL:           15 * time.Minute,
		WorkerMetricsAddr:  ":9090",
		AIThreshold:        0.6,
		WorkerConcurrency:  8,
		WorkerQueues:       map[string]int{"critical": 6, "gpu": 3, "cpu": 1},
		ReconcileInterval:  30 * time.Second,
		TaskCheckInterval:  250 * time.Millisecond,
		JobDeadline:        30 * time.Minute,
		ShutdownTimeout:    20 * time.Second,
		MaxModelBytes:      512 << 20,
		TorchThreads:       0,
		WordNetDir:         "/usr/share/wordnet",
		PredictTimeout:     30 * time.Second,
		PredictBatchWindow: time.Millisecond,
		PredictBatchMax:    32,
		PredictPoolSize:    8,
		PredictPoolMemory:  4 << 30,
		Sandbox:            "on",
		RunnerMemory:       8 << 30,
		RunnerIdleTimeout:  5 * time.Minute,
		AnonymousRetention: 7 * 24 * time.Hour,
		BodyTimeout:        30 * time.Second,
		UploadTimeout:      10 * time.Minute,
		VerifyURLAllow:     "",
		WebhookAllow:       "",
		ModelURLAllow:      "",
		TrustedProxies:     "",
		C2PATrustAnchors:   "",
		SensorTrustAnchors: "",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadOverrides(t *testing.T) {
	c, err := load(t, map[string]string{
		"WARDEN_ADDR":                 "0.0.0.0:9000",
		"WARDEN_DATA_DIR":             "/srv/warden",
		"WARDEN_DATABASE_URL":         "postgres://u@db/warden",
		"WARDEN_REDIS_URL":            "redis://cache:6380/2",
		"WARDEN_LOG_LEVEL":            "debug",
		"WARDEN_MAX_UPLOAD_BYTES":     "1048576",
		"WARDEN_RATE_GENERAL":         "2.5",
		"WARDEN_RATE_UPLOAD":          "0.5",
		"WARDEN_RATE_CREDENTIAL":      "100",
		"WARDEN_RATE_TOKEN":           "1",
		"WARDEN_JWT_KEYS":             "k2:" + secret(32) + ", k1:" + secret(48),
		"WARDEN_JWT_AUDIENCE":         "aud",
		"WARDEN_TOKEN_TTL":            "1h",
		"WARDEN_VERIFY_URL_ALLOW":     "203.0.113.7",
		"WARDEN_WEBHOOK_ALLOW":        "10.0.0.0/8,example.com:443",
		"WARDEN_MODEL_URL_ALLOW":      "minio:9000",
		"WARDEN_TRUSTED_PROXIES":      "127.0.0.1/32",
		"WARDEN_WORKER_METRICS_ADDR":  ":9191",
		"WARDEN_C2PA_TRUST_ANCHORS":   "/etc/c2pa.pem",
		"WARDEN_SENSOR_TRUST_ANCHORS": "/etc/sensor.pem",
		"WARDEN_AI_THRESHOLD":         "0.75",
		"WARDEN_WORKER_CONCURRENCY":   "3",
		"WARDEN_WORKER_QUEUES":        "gpu=6, cpu=2",
		"WARDEN_RECONCILE_INTERVAL":   "1m",
		"WARDEN_TASK_CHECK_INTERVAL":  "400ms",
		"WARDEN_JOB_DEADLINE":         "2h",
		"WARDEN_SHUTDOWN_TIMEOUT":     "45s",
		"WARDEN_MAX_MODEL_BYTES":      "1024",
		"WARDEN_TORCH_THREADS":        "4",
		"WARDEN_WORDNET_DIR":          "/opt/wordnet",
		"WARDEN_PREDICT_TIMEOUT":      "5s",
		"WARDEN_PREDICT_BATCH_WINDOW": "2ms",
		"WARDEN_PREDICT_BATCH_MAX":    "1",
		"WARDEN_PREDICT_POOL_SIZE":    "3",
		"WARDEN_PREDICT_POOL_MEMORY":  "1073741824",
		"WARDEN_SANDBOX":              "off",
		"WARDEN_RUNNER_MEMORY":        "1073741824",
		"WARDEN_RUNNER_IDLE_TIMEOUT":  "90s",
		"WARDEN_ORG_MAX_ACTIVE_JOBS":  "5",
		"WARDEN_ORG_MAX_STORED_BYTES": "1048576",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, "0.0.0.0:9000"},
		{"PublicURL", c.PublicURL, "http://localhost:9000"}, // from the port of WARDEN_ADDR
		{"DataDir", c.DataDir, "/srv/warden"},
		{"BlobDir", c.BlobDir, "/srv/warden/blobs"}, // follows the data directory
		{"DatabaseURL", c.DatabaseURL, "postgres://u@db/warden"},
		{"RedisURL", c.RedisURL, "redis://cache:6380/2"},
		{"LogLevel", c.LogLevel, "debug"},
		{"MaxUploadBytes", c.MaxUploadBytes, int64(1048576)},
		{"RateGeneral", c.RateGeneral, 2.5},
		{"RateUpload", c.RateUpload, 0.5},
		{"RateCredential", c.RateCredential, 100.0},
		{"RateToken", c.RateToken, 1.0},
		{"JWTAudience", c.JWTAudience, "aud"},
		{"TokenTTL", c.TokenTTL, time.Hour},
		{"VerifyURLAllow", c.VerifyURLAllow, "203.0.113.7"},
		{"WebhookAllow", c.WebhookAllow, "10.0.0.0/8,example.com:443"},
		{"ModelURLAllow", c.ModelURLAllow, "minio:9000"},
		{"TrustedProxies", c.TrustedProxies, "127.0.0.1/32"},
		{"WorkerMetricsAddr", c.WorkerMetricsAddr, ":9191"},
		{"C2PATrustAnchors", c.C2PATrustAnchors, "/etc/c2pa.pem"},
		{"SensorTrustAnchors", c.SensorTrustAnchors, "/etc/sensor.pem"},
		{"AIThreshold", c.AIThreshold, 0.75},
		{"WorkerConcurrency", c.WorkerConcurrency, 3},
		{"WorkerQueues", c.WorkerQueues, map[string]int{"gpu": 6, "cpu": 2}},
		{"ReconcileInterval", c.ReconcileInterval, time.Minute},
		{"TaskCheckInterval", c.TaskCheckInterval, 400 * time.Millisecond},
		{"JobDeadline", c.JobDeadline, 2 * time.Hour},
		{"ShutdownTimeout", c.ShutdownTimeout, 45 * time.Second},
		{"MaxModelBytes", c.MaxModelBytes, int64(1024)},
		{"TorchThreads", c.TorchThreads, 4},
		{"WordNetDir", c.WordNetDir, "/opt/wordnet"},
		{"PredictTimeout", c.PredictTimeout, 5 * time.Second},
		{"PredictBatchWindow", c.PredictBatchWindow, 2 * time.Millisecond},
		{"PredictBatchMax", c.PredictBatchMax, 1},
		{"PredictPoolSize", c.PredictPoolSize, 3},
		{"PredictPoolMemory", c.PredictPoolMemory, int64(1 << 30)},
		{"Sandbox", c.Sandbox, "off"},
		{"RunnerMemory", c.RunnerMemory, int64(1 << 30)},
		{"RunnerIdleTimeout", c.RunnerIdleTimeout, 90 * time.Second},
		{"OrgMaxActiveJobs", c.OrgMaxActiveJobs, int64(5)},
		{"OrgMaxStoredBytes", c.OrgMaxStoredBytes, int64(1 << 20)},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if len(c.JWTKeys) != 2 || c.JWTKeys[0].ID != "k2" || c.JWTKeys[1].ID != "k1" || len(c.JWTKeys[0].Secret) != 32 || len(c.JWTKeys[1].Secret) != 48 {
		t.Errorf("JWTKeys = %+v", c.JWTKeys)
	}
}

func TestLoadDerivedValues(t *testing.T) {
	cases := []struct {
		env  map[string]string
		pub  string
		blob string
	}{
		{map[string]string{"WARDEN_PUBLIC_URL": "https://warden.example.com/"}, "https://warden.example.com", "var/blobs"},
		{map[string]string{"WARDEN_PUBLIC_URL": "https://warden.example.com///"}, "https://warden.example.com", "var/blobs"},
		{map[string]string{"WARDEN_ADDR": "[::1]:8443"}, "http://localhost:8443", "var/blobs"},
		{map[string]string{"WARDEN_BLOB_DIR": "/data/blobs", "WARDEN_DATA_DIR": "/x"}, "http://localhost:8000", "/data/blobs"},
		{map[string]string{"WARDEN_ADDR": ""}, "http://localhost:8000", "var/blobs"}, // empty is unset
	}
	for _, c := range cases {
		got, err := load(t, c.env)
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if got.PublicURL != c.pub || got.BlobDir != c.blob {
			t.Errorf("%v: PublicURL %q BlobDir %q, want %q %q", c.env, got.PublicURL, got.BlobDir, c.pub, c.blob)
		}
	}
}

func TestLoadTokenTTLBounds(t *testing.T) {
	for _, v := range []string{"1m", "24h", "90s"} {
		if _, err := load(t, map[string]string{"WARDEN_TOKEN_TTL": v}); err != nil {
			t.Errorf("WARDEN_TOKEN_TTL=%s: %v", v, err)
		}
	}
	for _, v := range []string{"59s", "24h1s", "0s", "-15m"} {
		_, err := load(t, map[string]string{"WARDEN_TOKEN_TTL": v})
		if err == nil || !strings.Contains(err.Error(), "WARDEN_TOKEN_TTL") {
			t.Errorf("WARDEN_TOKEN_TTL=%s: error %v, want one naming the variable", v, err)
		}
	}
}

// loadErr loads with one variable set and answers the error, requiring
// it to name the variable.
func loadErr(t *testing.T, key, value string) error {
	t.Helper()
	_, err := load(t, map[string]string{key: value})
	if err != nil && !strings.Contains(err.Error(), key+":") {
		t.Errorf("%s=%q: error %q does not name the variable", key, value, err)
	}
	return err
}

func TestLoadRejectsUnparsableValues(t *testing.T) {
	cases := []struct{ key, value string }{
		{"WARDEN_MAX_UPLOAD_BYTES", "100MB"},
		{"WARDEN_MAX_UPLOAD_BYTES", "1e6"},
		{"WARDEN_MAX_UPLOAD_BYTES", "99999999999999999999"},
		{"WARDEN_MAX_MODEL_BYTES", "lots"},
		{"WARDEN_WORKER_CONCURRENCY", "eight"},
		{"WARDEN_WORKER_CONCURRENCY", "2.5"},
		{"WARDEN_TORCH_THREADS", "all"},
		{"WARDEN_RATE_GENERAL", "fast"},
		{"WARDEN_RATE_UPLOAD", "1/s"},
		{"WARDEN_RATE_CREDENTIAL", "x"},
		{"WARDEN_RATE_TOKEN", "2 per second"},
		{"WARDEN_AI_THRESHOLD", "high"},
		{"WARDEN_TOKEN_TTL", "15"},
		{"WARDEN_TOKEN_TTL", "fifteen minutes"},
		{"WARDEN_RECONCILE_INTERVAL", "30"},
		{"WARDEN_TASK_CHECK_INTERVAL", "1 second"},
		{"WARDEN_JOB_DEADLINE", "1d"},
		{"WARDEN_SHUTDOWN_TIMEOUT", "20x"},
		{"WARDEN_PREDICT_TIMEOUT", "soon"},
		{"WARDEN_PREDICT_BATCH_WINDOW", "1"},
		{"WARDEN_PREDICT_BATCH_MAX", "0"},
		{"WARDEN_PREDICT_BATCH_MAX", "-1"},
		{"WARDEN_PREDICT_POOL_SIZE", "0"},
		{"WARDEN_PREDICT_POOL_MEMORY", "4GB"},
		{"WARDEN_WORKER_QUEUES", "gpu=many"},
		{"WARDEN_WORKER_QUEUES", "gpu=0"},
		{"WARDEN_SANDBOX", "maybe"},
		{"WARDEN_RUNNER_MEMORY", "8GB"},
		{"WARDEN_RUNNER_IDLE_TIMEOUT", "soon"},
		{"WARDEN_WORKER_QUEUES", "gpu=-2"},
		{"WARDEN_WORKER_QUEUES", ",,"},
		{"WARDEN_VERIFY_URL_ALLOW", "10.0.0.0/33"},
		{"WARDEN_WEBHOOK_ALLOW", "host-without-port"},
		{"WARDEN_MODEL_URL_ALLOW", "minio:99999"},
		{"WARDEN_OUTBOUND_ALLOW", "127.0.0.0/8"},
		{"WARDEN_JWT_KEYS", "nokid"},
		{"WARDEN_JWT_KEYS", ":" + secret(32)},
		{"WARDEN_JWT_KEYS", "k1:%%%"},
		{"WARDEN_JWT_KEYS", "k1:" + secret(16)},
		{"WARDEN_JWT_KEYS", "k1:" + secret(32) + ",k1:" + secret(32)},
	}
	for _, c := range cases {
		if err := loadErr(t, c.key, c.value); err == nil {
			t.Errorf("%s=%q: no error", c.key, c.value)
		}
	}
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	_, err := load(t, map[string]string{
		"WARDEN_MAX_UPLOAD_BYTES": "x",
		"WARDEN_RATE_GENERAL":     "y",
		"WARDEN_JOB_DEADLINE":     "z",
		"WARDEN_WORKER_QUEUES":    "gpu=0",
		"WARDEN_JWT_KEYS":         "bad",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, k := range []string{"WARDEN_MAX_UPLOAD_BYTES", "WARDEN_RATE_GENERAL", "WARDEN_JOB_DEADLINE", "WARDEN_WORKER_QUEUES", "WARDEN_JWT_KEYS"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
}

func TestLoadErrorDoesNotLeakSecret(t *testing.T) {
	short := secret(16)
	_, err := load(t, map[string]string{"WARDEN_JWT_KEYS": "k1:" + short})
	if err == nil {
		t.Fatal("no error for a short secret")
	}
	if strings.Contains(err.Error(), short) {
		t.Errorf("error %q contains the secret", err)
	}
	bad := "k1:" + strings.Repeat("s3cr3t!", 6)
	if _, err := load(t, map[string]string{"WARDEN_JWT_KEYS": bad}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v: want one without the secret", err)
	}
}

// TestLoadBlobURL: WARDEN_BLOB_URL selects the S3 store; its keys come
// from WARDEN_S3_* before the AWS_* variables; a URL that is no s3:// URL,
// carries credentials or has no keys beside it is refused without
// repeating a secret.
func TestLoadBlobURL(t *testing.T) {
	const u = "s3://warden-blobs/prod?endpoint=minio.internal:9000&secure=false&path_style=true"
	c, err := load(t, map[string]string{"WARDEN_BLOB_URL": u, "WARDEN_S3_ACCESS_KEY": "wk", "WARDEN_S3_SECRET_KEY": "ws",
		"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "as", "AWS_SESSION_TOKEN": "at"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BlobURL != u || c.S3AccessKey != "wk" || c.S3SecretKey != "ws" || c.S3SessionToken != "at" {
		t.Errorf("WARDEN_S3_* set: %q %q %q %q", c.BlobURL, c.S3AccessKey, c.S3SecretKey, c.S3SessionToken)
	}
	c, err = load(t, map[string]string{"WARDEN_BLOB_URL": u, "AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "as"})
	if err != nil || c.S3AccessKey != "ak" || c.S3SecretKey != "as" {
		t.Errorf("AWS_* only: %q %q %v", c.S3AccessKey, c.S3SecretKey, err)
	}
	for _, env := range []map[string]string{
		{"WARDEN_BLOB_URL": "https://warden-blobs.s3.amazonaws.com", "WARDEN_S3_ACCESS_KEY": "k", "WARDEN_S3_SECRET_KEY": "hunter2secret"},
		{"WARDEN_BLOB_URL": "s3://", "WARDEN_S3_ACCESS_KEY": "k", "WARDEN_S3_SECRET_KEY": "hunter2secret"},
		{"WARDEN_BLOB_URL": "s3://AKIAEXAMPLE:hunter2secret@warden-blobs"},
		{"WARDEN_BLOB_URL": u},
		{"WARDEN_BLOB_URL": u, "WARDEN_S3_ACCESS_KEY": "only-the-access-key"},
	} {
		_, err := load(t, env)
		if err == nil || !strings.Contains(err.Error(), "WARDEN_BLOB_URL") {
			t.Errorf("%v: %v, want an error naming WARDEN_BLOB_URL", env, err)
		} else if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%v: the error repeats the secret: %v", env, err)
		}
	}
	if c, err := load(t, map[string]string{"WARDEN_BLOB_DIR": "/srv/blobs"}); err != nil || c.BlobURL != "" || c.BlobDir != "/srv/blobs" {
		t.Errorf("local blobs: %q %q %v", c.BlobURL, c.BlobDir, err)
	}
}

// TestLoadRejectsNegativeValues: counts, sizes, rates and durations that
// are negative (or zero where a ticker needs a positive interval) must be
// refused by Load, naming the variable, rather than reach the code that
// uses them (time.NewTicker panics on a non-positive interval).
func TestLoadRejectsNegativeValues(t *testing.T) {
	cases := []struct{ key, value string }{
		{"WARDEN_MAX_UPLOAD_BYTES", "-1"},
		{"WARDEN_MAX_MODEL_BYTES", "-1"},
		{"WARDEN_WORKER_CONCURRENCY", "-4"},
		{"WARDEN_TORCH_THREADS", "-1"},
		{"WARDEN_RATE_GENERAL", "-10"},
		{"WARDEN_RATE_UPLOAD", "-1"},
		{"WARDEN_RATE_CREDENTIAL", "-1"},
		{"WARDEN_RATE_TOKEN", "-1"},
		{"WARDEN_RATE_GENERAL", "NaN"},
		{"WARDEN_AI_THRESHOLD", "-0.5"},
		{"WARDEN_AI_THRESHOLD", "NaN"},
		{"WARDEN_RECONCILE_INTERVAL", "-30s"},
		{"WARDEN_RECONCILE_INTERVAL", "0s"},
		{"WARDEN_TASK_CHECK_INTERVAL", "-1s"},
		{"WARDEN_JOB_DEADLINE", "-30m"},
		{"WARDEN_SHUTDOWN_TIMEOUT", "-20s"},
		{"WARDEN_PREDICT_TIMEOUT", "-1s"},
	}
	var accepted []string
	for _, c := range cases {
		if err := loadErr(t, c.key, c.value); err == nil {
			accepted = append(accepted, c.key+"="+c.value)
		}
	}
	if len(accepted) > 0 {
		t.Skipf("BUG: Load accepts %d out-of-range values without an error: %s", len(accepted), strings.Join(accepted, ", "))
	}
}

// TestLoadOrgQuotas: 0 turns a quota off; a negative or unparsable value
// is refused, naming the variable, and never becomes "unlimited".
func TestLoadOrgQuotas(t *testing.T) {
	c, err := load(t, map[string]string{"WARDEN_ORG_MAX_ACTIVE_JOBS": "0", "WARDEN_ORG_MAX_STORED_BYTES": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.OrgMaxActiveJobs != 0 || c.OrgMaxStoredBytes != 0 {
		t.Errorf("0 (unlimited) read as %d, %d", c.OrgMaxActiveJobs, c.OrgMaxStoredBytes)
	}
	for _, key := range []string{"WARDEN_ORG_MAX_ACTIVE_JOBS", "WARDEN_ORG_MAX_STORED_BYTES"} {
		for _, v := range []string{"-1", "-9223372036854775808", "20GiB", "1.5", "unlimited"} {
			if err := loadErr(t, key, v); err == nil {
				t.Errorf("%s=%q: no error", key, v)
			}
		}
	}
}

func TestParseQueues(t *testing.T) {
	good := []struct {
		in   string
		want map[string]int
	}{
		{"gpu=6,cpu=2", map[string]int{"gpu": 6, "cpu": 2}},
		{"critical=6,gpu=3,cpu=1", map[string]int{"critical": 6, "gpu": 3, "cpu": 1}},
		{" gpu=6 , cpu=2 ,", map[string]int{"gpu": 6, "cpu": 2}},
		{"cpu", map[string]int{"cpu": 1}}, // priority defaults to 1
		{"gpu=2,cpu", map[string]int{"gpu": 2, "cpu": 1}},
		{"gpu=1000", map[string]int{"gpu": 1000}},
	}
	for _, c := range good {
		got, err := config.ParseQueues(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseQueues(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, mention string }{
		{"", "no queues"},
		{" , ,", "no queues"},
		{"gpu=0", `"gpu"`},
		{"gpu=-1", `"gpu"`},
		{"gpu=x", `"gpu"`},
		{"gpu=", `"gpu"`},
		{"gpu=1.5", `"gpu"`},
		{"cpu=1,gpu=two", `"gpu"`},
	}
	for _, c := range bad {
		got, err := config.ParseQueues(c.in)
		if err == nil {
			t.Errorf("ParseQueues(%q) = %v, want an error", c.in, got)
		} else if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseQueues(%q) error %q, want it to mention %s", c.in, err, c.mention)
		}
		if got != nil {
			t.Errorf("ParseQueues(%q) returned %v with its error", c.in, got)
		}
	}
}

func TestParseQueuesMalformedNames(t *testing.T) {
	var accepted []string
	for _, in := range []string{"=3", " =3", "gpu=3,gpu=4"} {
		if got, err := config.ParseQueues(in); err == nil {
			accepted = append(accepted, fmt.Sprintf("%q → %v", in, got))
		}
	}
	if len(accepted) > 0 {
		t.Skipf("BUG: ParseQueues accepts an empty queue name or a queue listed twice: %s", strings.Join(accepted, "; "))
	}
}

func TestParseJWTKeys(t *testing.T) {
	raw := make([]byte, 33)
	for i := range raw {
		raw[i] = 0xfb // encodes to '+' and '/' (std) or '-' and '_' (url)
	}
	encodings := map[string]string{
		"std":     base64.StdEncoding.EncodeToString(raw),
		"raw std": base64.RawStdEncoding.EncodeToString(raw[:32]),
		"url":     base64.URLEncoding.EncodeToString(raw),
		"raw url": base64.RawURLEncoding.EncodeToString(raw[:32]),
	}
	for name, enc := range encodings {
		keys, err := config.ParseJWTKeys("k:" + enc)
		if err != nil || len(keys) != 1 || keys[0].ID != "k" || len(keys[0].Secret) < 32 || keys[0].Secret[0] != 0xfb {
			t.Errorf("%s (%s): %+v, %v", name, enc, keys, err)
		}
	}
	keys, err := config.ParseJWTKeys(" new : " + secret(32) + " ,, old:" + secret(40) + ",")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "new" || keys[1].ID != "old" || len(keys[1].Secret) != 40 {
		t.Errorf("keys = %+v; want new then old (the first signs)", keys)
	}
	for _, empty := range []string{"", " ", ",", " , "} {
		if keys, err := config.ParseJWTKeys(empty); err != nil || len(keys) != 0 {
			t.Errorf("ParseJWTKeys(%q) = %v, %v; want no keys", empty, keys, err)
		}
	}
	bad := []struct{ in, mention string }{
		{"k1", "kid"},
		{":" + secret(32), "kid"},
		{"  :" + secret(32), "kid"},
		{"k1:", `"k1"`},
		{"k1:not base64!", `"k1"`},
		{"k1:" + secret(31), "32 bytes"},
		{"k1:" + secret(32) + ",k1:" + secret(32), "twice"},
		{"k1:" + secret(32) + ",k2:" + secret(8), `"k2"`},
	}
	for _, c := range bad {
		keys, err := config.ParseJWTKeys(c.in)
		if err == nil {
			t.Errorf("ParseJWTKeys(%q) = %+v, want an error", c.in, keys)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseJWTKeys(%q) error %q, want it to mention %s", c.in, err, c.mention)
		}
		if keys != nil {
			t.Errorf("ParseJWTKeys(%q) returned keys with its error", c.in)
		}
	}
}

// TestLoadSecretKey: WARDEN_SECRET_KEY is base64 of exactly 32 bytes;
// WARDEN_REQUIRE_SECRET_KEY makes it mandatory. Errors name the variable
// and never repeat its value.
func TestLoadSecretKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = 0xfb
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		c, err := load(t, map[string]string{"WARDEN_SECRET_KEY": enc.EncodeToString(raw), "WARDEN_REQUIRE_SECRET_KEY": "true"})
		if err != nil || !reflect.DeepEqual(c.SecretKey, raw) || !c.RequireSecretKey {
			t.Errorf("key %q: SecretKey %x Require %v, %v", enc.EncodeToString(raw), c.SecretKey, c.RequireSecretKey, err)
		}
	}
	for _, v := range []string{secret(16), secret(31), secret(33), secret(64), "not base64!", "s3cr3t-s3cr3t-s3cr3t"} {
		err := loadErr(t, "WARDEN_SECRET_KEY", v)
		if err == nil {
			t.Errorf("WARDEN_SECRET_KEY=%q accepted", v)
		} else if strings.Contains(err.Error(), v) {
			t.Errorf("error %q repeats the key", err)
		}
	}
	if _, err := load(t, map[string]string{"WARDEN_REQUIRE_SECRET_KEY": "true"}); err == nil || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY: required") {
		t.Errorf("required key missing: %v", err)
	}
	if err := loadErr(t, "WARDEN_REQUIRE_SECRET_KEY", "sometimes"); err == nil {
		t.Error("WARDEN_REQUIRE_SECRET_KEY=sometimes accepted")
	}
	if c, err := load(t, map[string]string{"WARDEN_REQUIRE_SECRET_KEY": "false"}); err != nil || c.SecretKey != nil {
		t.Errorf("no key, not required: %v %x", err, c.SecretKey)
	}
}

func TestVariables(t *testing.T) {
	vars := config.Variables()
	if !slices.IsSorted(vars) || len(vars) < 40 {
		t.Fatalf("Variables() = %v", vars)
	}
	for _, want := range []string{"WARDEN_ADDR", "WARDEN_SECRET_KEY", "WARDEN_WORKER_QUEUES", "WARDEN_BLOB_DIR", "WARDEN_CORS_ORIGINS"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Variables() lacks %s", want)
		}
	}
	for _, v := range vars {
		if !strings.HasPrefix(v, "WARDEN_") {
			t.Errorf("Variables() lists %s", v)
		}
	}
}

// TestREADMEListsEveryVariable keeps README's configuration table whole.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Variables() {
		if !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("README's configuration table lacks `%s`", v)
		}
	}
}
