package deploy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

var composeSecrets = []string{"POSTGRES_PASSWORD=pw", "S3_ACCESS_KEY=ak", "S3_SECRET_KEY=sk",
	"WARDEN_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}

func loadCompose(t *testing.T, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithWorkingDirectory("."),
		cli.WithEnv(env), cli.WithProfiles(profiles), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestCompose loads deploy/compose.yaml with the compose library (schema
// validation, interpolation, profiles) and checks how it wires Warden.
func TestCompose(t *testing.T) {
	if _, err := loadCompose(t, nil); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Fatalf("compose without secrets: %v, want a refusal naming POSTGRES_PASSWORD", err)
	}
	p, err := loadCompose(t, composeSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetService("worker-gpu"); err == nil {
		t.Error("the GPU worker runs without the gpu profile")
	}
	for _, name := range []string{"api", "worker-cpu", "migrate", "postgres", "redis", "s3"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	p, err = loadCompose(t, composeSecrets, "gpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if !slices.Contains([]string{"api", "worker-cpu", "worker-gpu", "migrate"}, s.Name) {
			continue
		}
		for k := range s.Environment {
			checkVariable(t, "compose "+s.Name, k)
		}
		if s.Name == "migrate" {
			continue
		}
		if c, ok := s.DependsOn["migrate"]; !ok || c.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for the migration: %+v", s.Name, s.DependsOn)
		}
		if strings.HasPrefix(s.Name, "worker") && !slices.Contains(s.SecurityOpt, "seccomp=unconfined") {
			t.Errorf("%s: the runner sandbox needs user namespaces (seccomp=unconfined)", s.Name)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= envDuration(t, s, "WARDEN_SHUTDOWN_TIMEOUT") {
			t.Errorf("%s: stop_grace_period %v is not above WARDEN_SHUTDOWN_TIMEOUT", s.Name, s.StopGracePeriod)
		}
	}
	gpu, err := p.GetService("worker-gpu")
	if err != nil {
		t.Fatal(err)
	}
	if gpu.Deploy == nil || gpu.Deploy.Resources.Reservations == nil || len(gpu.Deploy.Resources.Reservations.Devices) != 1 ||
		!slices.Contains(gpu.Deploy.Resources.Reservations.Devices[0].Capabilities, "gpu") ||
		gpu.Deploy.Resources.Reservations.Devices[0].Driver != "nvidia" {
		t.Errorf("worker-gpu reserves no NVIDIA GPU: %+v", gpu.Deploy)
	}
	if q := gpu.Environment["WARDEN_WORKER_QUEUES"]; q == nil || *q != "gpu=1" {
		t.Errorf("worker-gpu serves %v", q)
	}
}

func envDuration(t *testing.T, s types.ServiceConfig, name string) time.Duration {
	t.Helper()
	v := s.Environment[name]
	if v == nil {
		t.Fatalf("%s does not set %s", s.Name, name)
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.Name, name, err)
	}
	return d
}
