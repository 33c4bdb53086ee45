//go:build torch

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
)

// TestSpecModelRegistration: a client that registers models as spec 002
// shows (free-form metadata, a .pth URL, no input shape, no tokenizer,
// a developer's key) gets models that validate, report what validation
// inferred, and predict; a model whose shape cannot be inferred fails with
// a reason that asks for metadata.input_shape.
func TestSpecModelRegistration(t *testing.T) {
	reftorch.Need(t)
	dir := t.TempDir()
	script := filepath.Join(testenv.RepoRoot(), "worker", "runner", "testdata", "inference_models.py")
	if out, err := exec.Command("/usr/bin/python3", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("build models: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(dir, "text_length.pt"), filepath.Join(dir, "spam_classifier_v1.pth")); err != nil {
		t.Fatal(err)
	}
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer files.Close()
	s := newStack(t, true)
	org := s.org("acme")
	_, key, err := s.db.CreateCredential(t.Context(), org.OrgID, records.CredentialAPIKey, records.RoleDeveloper)
	if err != nil {
		t.Fatal(err)
	}
	dev := org
	dev.APIKey = key
	register := func(typ, file string) map[string]any {
		t.Helper()
		code, m := s.postJSON("/v1/models", map[string]any{"name": file, "type": typ, "version": "1.0.0", "description": "spec example",
			"model_file_url": files.URL + "/" + file, "metadata": map[string]any{"trained_on": "public_spam_dataset", "framework": "pytorch"}}, withKey(dev))
		if code != 201 || m["status"] != "processing" {
			t.Fatalf("register %s: %d %v", file, code, m)
		}
		return waitModel(t, s, org, m["id"].(string))
	}
	inferred := func(d map[string]any, key string) {
		t.Helper()
		md, _ := d["metadata"].(map[string]any)
		metrics, _ := d["metrics"].(map[string]any)
		if md["trained_on"] != "public_spam_dataset" || md["framework"] != "pytorch" {
			t.Errorf("owner's metadata lost: %v", md)
		}
		if fmt.Sprint(metrics["inferred"]) != "["+key+"]" || fmt.Sprint(md[key]) != fmt.Sprint(metrics[key]) {
			t.Errorf("inferred %s: metadata %v, metrics %v", key, md, metrics)
		}
	}

	// NLP: forward takes List[str]; the spec's own predict body.
	d := register("NLP", "spam_classifier_v1.pth")
	if d["status"] != "active" {
		t.Fatalf("text model: %v", d)
	}
	inferred(d, "tokenizer")
	if d["metadata"].(map[string]any)["tokenizer"] != "text" {
		t.Errorf("tokenizer %v", d["metadata"])
	}
	code, p := s.postJSON("/v1/models/"+d["id"].(string)+"/predict", map[string]any{"input_data": "This is a great product, I love it!"}, withKey(dev))
	if code != 200 || p["prediction"] != "1" {
		t.Errorf("predict text: %d %v", code, p)
	}

	// CV: a TorchScript file named .pth, shape from its first convolution.
	d = register("CV", "gray_conv.pth")
	if d["status"] != "active" {
		t.Fatalf("conv model: %v", d)
	}
	inferred(d, "input_shape")
	if fmt.Sprint(d["metadata"].(map[string]any)["input_shape"]) != "[1 28 28]" {
		t.Errorf("input_shape %v", d["metadata"])
	}
	if _, ok := d["input_schema"].(map[string]any)["properties"].(map[string]any)["image"]; !ok {
		t.Errorf("input schema lacks image: %v", d["input_schema"])
	}
	code, p = s.postJSON("/v1/models/"+d["id"].(string)+"/predict", map[string]any{"image": grey(0.5)}, withKey(dev))
	if code != 200 || len(p["probabilities"].(map[string]any)) != 10 {
		t.Errorf("predict image: %d %v", code, p)
	}

	// No trial fits: failed, asking for the shape.
	d = register("CV", "odd_size.pt")
	if msg, _ := d["error"].(string); d["status"] != "failed" || !strings.Contains(msg, "give metadata.input_shape") {
		t.Errorf("odd size: %v %q", d["status"], d["error"])
	}
}
