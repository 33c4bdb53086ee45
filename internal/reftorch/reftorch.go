// Package reftorch is the reference PyTorch that tests and benchmarks
// compare Warden with, or build models with: Debian's /usr/bin/python3
// with python3-torch on the same libtorch.
package reftorch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Python is Debian's interpreter (the python3 first on PATH may be another
// one, without torch).
const Python = "/usr/bin/python3"

// Need makes sure Python can import torch, installing Debian's
// python3-torch with scripts/torch/test-setup when it cannot; it skips the
// test, or fails it with TORCH_TEST_REQUIRE_PYTHON=1 (make test), only
// when that fails.
func Need(t testing.TB) {
	t.Helper()
	if exec.Command(Python, "-c", "import torch").Run() == nil {
		return
	}
	out, err := exec.Command(filepath.Join(repoRoot(), "scripts", "torch", "test-setup")).CombinedOutput()
	if err == nil && exec.Command(Python, "-c", "import torch").Run() == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import torch and scripts/torch/test-setup could not install python3-torch (%v): %s", Python, err, out)
	if os.Getenv("TORCH_TEST_REQUIRE_PYTHON") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// repoRoot is the repository's root, from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
