//go:build torch

package torch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"
)

// The reference implementation is Debian's python3-torch under
// /usr/bin/python3 (make torch-test installs it). Without it the comparison
// tests skip, unless TORCH_TEST_REQUIRE_PYTHON=1 makes that a failure.
const python = "/usr/bin/python3"

const tol = 1e-5

type ref struct {
	Shape       []int64   `json:"shape"`
	X           []float32 `json:"x"`
	Labels      []int64   `json:"labels"`
	Logits      []float32 `json:"logits"`
	LogitsShape []int64   `json:"logits_shape"`
	Loss        float64   `json:"loss"`
	Grad        []float32 `json:"grad"`
	Version     string    `json:"torch_version"`
}

// TestMain applies TORCH_THREADS (make torch-test TORCH_THREADS=n).
func TestMain(m *testing.M) {
	n := ThreadsFromEnv()
	fmt.Fprintf(os.Stderr, "worker/torch: libtorch %s, %d intra-op threads\n", TorchVersion(), n)
	os.Exit(m.Run())
}

func needPython(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import torch").Run()
	if err == nil {
		return
	}
	msg := "python3-torch not importable by " + python + " (run scripts/torch/test-setup): " + err.Error()
	if os.Getenv("TORCH_TEST_REQUIRE_PYTHON") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func runPython(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(python, append([]string{filepath.Join("testdata", "reference.py")}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference.py %v: %v\n%s", args, err, out)
	}
}

func readRef(t *testing.T, path string) *ref {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r ref
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func pythonModel(t *testing.T) (string, *ref) {
	t.Helper()
	needPython(t)
	dir := t.TempDir()
	runPython(t, "make", dir)
	return filepath.Join(dir, "model.pt"), readRef(t, filepath.Join(dir, "ref.json"))
}

func maxDiff(t *testing.T, what string, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var m float64
	for i := range got {
		m = math.Max(m, math.Abs(float64(got[i])-float64(want[i])))
	}
	if m > tol {
		t.Errorf("%s: max |go - python| = %g > %g", what, m, tol)
	}
	return m
}

func TestDeviceIsCPUHere(t *testing.T) {
	d, why := SelectDevice()
	t.Logf("SelectDevice: %v (%s); %s", d, why, Reason())
	if os.Getenv("TORCH_TEST_EXPECT_CUDA") == "1" {
		if !d.IsCUDA() {
			t.Fatalf("want CUDA, got %v", d)
		}
		return
	}
	if d != CPU {
		t.Fatalf("SelectDevice() = %v, want cpu on this machine", d)
	}
	if !strings.HasPrefix(TorchVersion(), "1.") && !strings.HasPrefix(TorchVersion(), "2.") {
		t.Errorf("TorchVersion() = %q", TorchVersion())
	}
}

func TestSetThreads(t *testing.T) {
	prev := Threads()
	defer SetThreads(prev)
	SetThreads(1)
	if got := Threads(); got != 1 {
		t.Fatalf("Threads() = %d after SetThreads(1)", got)
	}
	SetThreads(2)
	if got := Threads(); got != 2 {
		t.Fatalf("Threads() = %d after SetThreads(2)", got)
	}
}

func TestForwardAndInputGradientMatchPython(t *testing.T) {
	path, r := pythonModel(t)
	m, err := LoadModule(path, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	x, err := NewTensor(r.X, r.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shape) != 2 || out.Shape[0] != r.LogitsShape[0] || out.Shape[1] != r.LogitsShape[1] {
		t.Fatalf("logits shape %v, want %v", out.Shape, r.LogitsShape)
	}
	dl := maxDiff(t, "Forward logits", out.Data, r.Logits)

	loss, grad, logits, err := InputGradient(m, r.X, r.Shape, r.Labels)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(loss - r.Loss); d > tol {
		t.Errorf("loss %v, python %v", loss, r.Loss)
	}
	dg := maxDiff(t, "input gradient", grad, r.Grad)
	maxDiff(t, "InputGradient logits", logits, r.Logits)
	t.Logf("python torch %s: max diff logits %.2g, grad %.2g, loss %.2g", r.Version, dl, dg, math.Abs(loss-r.Loss))

	// Repeated calls give the same gradient (nothing accumulates).
	_, grad2, _, err := InputGradient(m, r.X, r.Shape, r.Labels)
	if err != nil {
		t.Fatal(err)
	}
	for i := range grad {
		if grad[i] != grad2[i] {
			t.Fatalf("gradient changed between calls at %d: %v vs %v", i, grad[i], grad2[i])
		}
	}
}

func TestModuleErrors(t *testing.T) {
	if _, err := LoadModule(filepath.Join(t.TempDir(), "missing.pt"), CPU); err == nil {
		t.Fatal("LoadModule of a missing file succeeded")
	}
	path, r := pythonModel(t)
	m, err := LoadModule(path, CPU)
	if err != nil {
		t.Fatal(err)
	}
	// Wrong input shape: libtorch raises, we get an error, not a crash.
	bad, _ := NewTensor(make([]float32, 6), 1, 6)
	if _, err := m.Forward(bad); err == nil {
		t.Error("Forward with a bad shape succeeded")
	}
	if _, _, _, err := InputGradient(m, r.X, r.Shape, r.Labels[:2]); err == nil {
		t.Error("InputGradient with too few labels succeeded")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	x, _ := NewTensor(r.X, r.Shape...)
	if _, err := m.Forward(x); !errors.Is(err, errClosed) {
		t.Fatalf("Forward after Close: %v", err)
	}
}

// A wrapper disabled by scripts/torch/setup reports an error instead of
// failing to build (atg_matrix_rank: torch::matrix_rank is gone from libtorch 1.13).
func TestDisabledWrapperReturnsError(t *testing.T) {
	if !strings.HasPrefix(TorchVersion(), "1.13") {
		t.Skip("list of disabled wrappers is specific to libtorch 1.13")
	}
	defer pin()()
	a := ts.MustOnes([]int64{2, 2}, gotchFloat, gotchCPU)
	defer a.MustDrop()
	_, err := a.MatrixRank(false, false)
	if err == nil || !strings.Contains(err.Error(), "not supported by libtorch 1.13") {
		t.Fatalf("want 'not supported' error, got %v", err)
	}
}

func blobs(n int, seed int64) ([]float32, []int64) {
	rng := rand.New(rand.NewSource(seed))
	centers := [][2]float64{{2, 0}, {-2, 1}, {0, -2}}
	xs := make([]float32, 0, 2*n)
	ys := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		c := i % 3
		xs = append(xs, float32(centers[c][0]+0.5*rng.NormFloat64()), float32(centers[c][1]+0.5*rng.NormFloat64()))
		ys = append(ys, int64(c))
	}
	return xs, ys
}

func TestTrainMLPExportsTorchScript(t *testing.T) {
	xs, ys := blobs(150, 7)
	dir := t.TempDir()
	res, err := TrainMLP(xs, ys, []int64{2}, 3, TrainConfig{Hidden: []int64{16}, Epochs: 30}, filepath.Join(dir, "mlp.pt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %.3f -> %.3f, accuracy %.3f", res.Losses[0], res.Losses[len(res.Losses)-1], res.Accuracy)
	if res.Accuracy < 0.9 || res.Losses[len(res.Losses)-1] >= res.Losses[0] {
		t.Fatalf("did not learn: %+v", res)
	}
	if _, err := os.Stat(res.WeightsPath); err != nil {
		t.Fatal(err)
	}
	checkExported(t, res.ModelPath, xs[:20], []int64{10, 2}, ys[:10])
}

func TestTrainCNNExportsTorchScript(t *testing.T) {
	// 1x8x8 images: class 0 = bright left half, 1 = bright right half.
	rng := rand.New(rand.NewSource(3))
	n := 64
	xs := make([]float32, 0, n*64)
	ys := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		c := int64(i % 2)
		for r := 0; r < 8; r++ {
			for col := 0; col < 8; col++ {
				v := 0.2 * rng.NormFloat64()
				if (col < 4) == (c == 0) {
					v += 1
				}
				xs = append(xs, float32(v))
			}
		}
		ys = append(ys, c)
	}
	res, err := TrainCNN(xs, ys, []int64{1, 8, 8}, 2, TrainConfig{Hidden: []int64{4}, Epochs: 8, BatchSize: 16}, filepath.Join(t.TempDir(), "cnn.pt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %.3f -> %.3f, accuracy %.3f", res.Losses[0], res.Losses[len(res.Losses)-1], res.Accuracy)
	if res.Accuracy < 0.9 {
		t.Fatalf("did not learn: %+v", res)
	}
	checkExported(t, res.ModelPath, xs[:4*64], []int64{4, 1, 8, 8}, ys[:4])
}

// checkExported loads a Go-exported TorchScript module in Go and, when
// available, in Python, and compares logits and input gradients.
func checkExported(t *testing.T, path string, x []float32, shape []int64, labels []int64) {
	t.Helper()
	m, err := LoadModule(path, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	loss, grad, logits, err := InputGradient(m, x, shape, labels)
	if err != nil {
		t.Fatal(err)
	}
	if exec.Command(python, "-c", "import torch").Run() != nil {
		t.Log("python3-torch missing: exported module not cross-checked in Python")
		return
	}
	in := filepath.Join(t.TempDir(), "in.json")
	b, _ := json.Marshal(map[string]any{"x": x, "shape": shape, "labels": labels})
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(filepath.Dir(in), "out.json")
	runPython(t, "eval", path, in, out)
	r := readRef(t, out)
	maxDiff(t, "exported logits (go vs python)", logits, r.Logits)
	maxDiff(t, "exported input gradient (go vs python)", grad, r.Grad)
	if math.Abs(loss-r.Loss) > tol {
		t.Errorf("exported loss %v, python %v", loss, r.Loss)
	}
}
