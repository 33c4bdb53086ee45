//go:build torch

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/internal/testenv"
)

// hostileModels builds worker/runner/testdata/hostile_models.py's models
// with python3-torch (skipped without it, unless TORCH_TEST_REQUIRE_PYTHON=1).
func hostileModels(t *testing.T, secret string) string {
	t.Helper()
	reftorch.Need(t)
	dir := t.TempDir()
	script := filepath.Join(testenv.RepoRoot(), "worker", "runner", "testdata", "hostile_models.py")
	if out, err := exec.Command("/usr/bin/python3", script, dir, secret).CombinedOutput(); err != nil {
		t.Fatalf("build hostile models: %v\n%s", err, out)
	}
	return dir
}

// TestHostileModels: through the API and a real worker, a model that
// reads a file and a pickled checkpoint fail validation with the reason
// (the operator named, how to export), a model that allocates without
// bound fails with "resource limit"; the same worker then validates and
// serves an honest model, and /health shows its runners' confinement.
func TestHostileModels(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("SECRET-hunter2-7f3a"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := hostileModels(t, secret)
	s := newStack(t, true)
	org := s.org("acme")
	const meta = `{"input_shape":[4]}`
	for file, want := range map[string]string{
		"reads_file.pt":           "aten::from_file",
		"reads_file_submodule.pt": "aten::from_file",
		"state_dict.pth":          "torch.jit.save",
		"allocates.pt":            "resource limit",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		code, m := uploadModel(t, s, org, file, b, meta)
		if code != 201 {
			t.Fatalf("%s: register: %d %v", file, code, m)
		}
		d := waitModel(t, s, org, m["id"].(string))
		msg, _ := d["error"].(string)
		if d["status"] != "failed" || !strings.Contains(msg, want) {
			t.Errorf("%s: %v %q, want failed with %q", file, d["status"], msg, want)
		}
		if strings.Contains(msg, "SECRET") {
			t.Errorf("%s: the secret reached the model's error", file)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "honest.pt"))
	if err != nil {
		t.Fatal(err)
	}
	code, m := uploadModel(t, s, org, "honest", b, meta)
	if code != 201 {
		t.Fatalf("honest: %d %v", code, m)
	}
	id := m["id"].(string)
	if d := waitModel(t, s, org, id); d["status"] != "active" {
		t.Fatalf("honest model: %v", d)
	}
	code, p := s.postJSON("/v1/models/"+id+"/predict", map[string]any{"input_data": []float32{0.1, 0.2, 0.3, 0.4}}, withKey(org))
	if code != 200 || p["prediction"] == nil {
		t.Fatalf("predict: %d %v", code, p)
	}
	_, h := s.getJSON("/health")
	sb, _ := h["sandbox"].([]any)
	if len(sb) != 1 {
		t.Fatalf("health sandbox: %v", h["sandbox"])
	}
	w := sb[0].(map[string]any)
	layers := strings.Join(func() []string {
		var out []string
		for _, l := range w["layers"].([]any) {
			out = append(out, l.(string))
		}
		return out
	}(), "; ")
	for _, layer := range []string{"namespaces", "landlock", "seccomp", "rlimits"} {
		if !strings.Contains(layers, layer) {
			t.Errorf("health: layer %s missing: %s", layer, layers)
		}
	}
	if w["tenant_models"] != true {
		t.Errorf("health: %v", w)
	}
}
