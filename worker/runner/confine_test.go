package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenlab/warden/worker/runner"
)

func init() { runner.ServeIfStarted() }

func start(t *testing.T, sandbox bool) *runner.Process {
	t.Helper()
	p, err := runner.Start(context.Background(), runner.Options{Sandbox: sandbox, Inspect: true, Threads: 1,
		Limits: runner.DefaultLimits(), Scratch: t.TempDir()}, runner.ModelFile{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if sandbox {
		runner.RequireLayers(t, p.Layers)
	}
	return p
}

// TestConfinement: a confined runner cannot read a file outside what it
// was given, open a TCP connection or execute a program; the same runner
// unconfined can (so the checks can fail).
func TestConfinement(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("postgres://warden:hunter2@db/warden"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := runner.Request{Op: runner.OpCheck, Check: &runner.CheckRequest{
		ReadFiles: []string{secret, "/etc/passwd"}, Connect: []string{"127.0.0.1:6379"}, Exec: []string{"/bin/true"}}}

	confined := start(t, true)
	d, err := confined.Run(context.Background(), req, runner.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range d.Check.Results {
		if !strings.HasPrefix(got, "denied") {
			t.Errorf("confined runner: %s %s", what, got)
		}
	}
	if len(d.Check.Results) != 4 {
		t.Errorf("results %v", d.Check.Results)
	}

	open := start(t, false)
	d, err = open.Run(context.Background(), req, runner.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Check.Results["read "+secret]; got != "allowed" {
		t.Errorf("unconfined runner could not read the file: %s", got)
	}
	if got := d.Check.Results["exec /bin/true"]; got != "allowed" {
		t.Errorf("unconfined runner could not exec: %s", got)
	}
}

// TestRunnerEnvironment: nothing of the worker's environment reaches a
// runner (database URL, S3 keys).
func TestRunnerEnvironment(t *testing.T) {
	t.Setenv("WARDEN_DATABASE_URL", "postgres://warden:hunter2@db/warden")
	// The S3 blob store's keys: a runner copies nothing from the bucket.
	t.Setenv("WARDEN_S3_ACCESS_KEY", "AKIAEXAMPLE")
	t.Setenv("WARDEN_S3_SECRET_KEY", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
	p := start(t, true)
	d, err := p.Run(context.Background(), runner.Request{Op: runner.OpCheck}, runner.Sink{})
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"WARDEN_RUNNER_CONFIG": true, "WARDEN_RUNNER_STAGE": true, "WARDEN_RUNNER_LAYERS": true,
		"PATH": true, "HOME": true, "TMPDIR": true, "LANG": true, "OMP_NUM_THREADS": true}
	if len(d.Check.EnvVars) == 0 {
		t.Fatal("no environment reported")
	}
	for _, name := range d.Check.EnvVars {
		if !allowed[name] {
			t.Errorf("runner environment has %s", name)
		}
	}
	t.Logf("layers: %q", p.Layers)
}
