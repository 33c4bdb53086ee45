package cli_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/cli"
	"github.com/wardenlab/warden/client"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker"
)

// server is Warden's real API over httptest on a private PostgreSQL
// database and Redis, with an in-process worker when asked (CGO-free
// builds run verifications and probes).
type server struct {
	t   *testing.T
	url string
	db  *storage.DB
	sv  *testenv.Services
}

func newServer(t *testing.T, withWorker bool) *server {
	t.Helper()
	sv := testenv.NewServices(t, func(c *config.Config) {
		c.WorkerConcurrency = 2
		c.WorkerQueues = map[string]int{jobs.QueueCritical: 6, jobs.QueueGPU: 3, jobs.QueueCPU: 2}
	})
	sv.Jobs.SetEvents(api.Events{PublicURL: sv.Config.PublicURL})
	deps := api.Deps{Config: sv.Config, DB: sv.DB, Blobs: sv.Blobs, Redis: sv.Redis, Jobs: sv.Jobs, Workers: sv.Jobs,
		Webhooks: sv.Jobs, Outbound: sv.Outbound, Metrics: dashboards.NewMetrics()}
	a, err := api.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Close() })
	if withWorker {
		trust, err := worker.LoadTrustStores(sv.Config.C2PATrustAnchors, "")
		if err != nil {
			t.Fatal(err)
		}
		w := worker.New(worker.Deps{Config: sv.Config, DB: sv.DB, Blobs: sv.Blobs, Redis: sv.Redis, Client: sv.Client, Jobs: sv.Jobs,
			Events: api.Events{PublicURL: sv.Config.PublicURL}, Outbound: sv.Outbound, Metrics: dashboards.NewMetrics(), Trust: trust})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return &server{t: t, url: srv.URL, db: sv.DB, sv: sv}
}

// org creates an org; its admin API key is the CLI's credential.
func (s *server) org(name string) storage.NewOrgCredentials { return testenv.Org(s.t, s.db, name) }

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// env is a CLI environment: variables as given, nothing else (no config
// file unless one is named).
func env(vars map[string]string) func(string) string {
	return func(k string) string {
		if k == "XDG_CONFIG_HOME" || k == "HOME" {
			if v, ok := vars[k]; ok {
				return v
			}
			return "/nonexistent-warden-test-home"
		}
		return vars[k]
	}
}

// creds are the environment of an org's API key on s.
func (s *server) creds(c storage.NewOrgCredentials) map[string]string {
	return map[string]string{cli.EnvURL: s.url, cli.EnvOrgID: c.OrgID, cli.EnvAPIKey: c.APIKey}
}

// run runs `warden ARGS` with vars as the environment.
func run(t *testing.T, ctx context.Context, vars map[string]string, tty bool, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, args, cli.Env{Stdout: &out, Stderr: &errb, Getenv: env(vars), TTY: tty,
		Backoff: client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	t.Logf("warden %s → exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// repoFile is a file of the repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// tableRows splits table output into rows of fields.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// field finds a FIELD/VALUE table's value.
func field(out, name string) string {
	for _, r := range tableRows(out) {
		if len(r) >= 2 && r[0] == name {
			return strings.Join(r[1:], " ")
		}
	}
	return ""
}

// oneErrorLine checks that stderr is one line starting "error: " and
// containing each of want.
func oneErrorLine(t *testing.T, r result, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Fatalf("stderr %q: want one line starting with \"error: \"", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error line %q does not contain %q", lines[0], w)
		}
	}
}
