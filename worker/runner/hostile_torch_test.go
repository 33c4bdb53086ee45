//go:build torch

package runner

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/jobs"
)

const secretText = "SECRET-hunter2-7f3a"

// hostileModels builds the models of testdata/hostile_models.py with
// python3-torch; secret is a file none of them may read.
func hostileModels(t *testing.T) (dir, secret string) {
	t.Helper()
	reftorch.Need(t)
	dir = t.TempDir()
	secret = filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(refPython, "testdata/hostile_models.py", dir, secret).CombinedOutput()
	if err != nil {
		t.Fatalf("build hostile models: %v\n%s", err, out)
	}
	return dir, secret
}

func startRunner(t *testing.T, path string, sandbox, inspect bool) *Process {
	t.Helper()
	limits := DefaultLimits()
	limits.AddressSpace = 4 << 30
	p, err := Start(context.Background(), Options{Sandbox: sandbox, Inspect: inspect, Threads: 1, Limits: limits, Scratch: t.TempDir()},
		ModelFile{ID: "mdl_test", Type: "CV", Metadata: json.RawMessage(`{"input_shape":[4]}`), Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if sandbox {
		RequireLayers(t, p.Layers)
	}
	return p
}

// predictOne runs one input on a runner as the worker does (a batch of
// one) and returns its prediction, or the input's own error.
func predictOne(ctx context.Context, p *Process, input any) (*jobs.PredictResult, error) {
	raw, _ := json.Marshal(input)
	d, err := p.Run(ctx, Request{Op: OpBatch, Batch: &PredictBatch{ModelID: "mdl_test", Inputs: []json.RawMessage{raw}}}, Sink{})
	if err != nil {
		return nil, err
	}
	if it := d.Batch.Items[0]; it.Error != "" {
		return nil, Permanent("%s", it.Error)
	}
	return d.Batch.Items[0].Result, nil
}

// TestHonestModelInRunner: an ordinary model validates and predicts in a
// confined runner, whose operators the inspection reports.
func TestHonestModelInRunner(t *testing.T) {
	dir, _ := hostileModels(t)
	p := startRunner(t, filepath.Join(dir, "honest.pt"), true, true)
	d, err := p.Run(context.Background(), Request{Op: OpValidate}, Sink{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Validate.NumClasses != 2 || d.Validate.InputSize != 4 || d.Validate.Device != "cpu" {
		t.Errorf("validation %+v", d.Validate)
	}
	ops := strings.Join(d.Validate.Operators, " ")
	if !strings.Contains(ops, "aten::linear") {
		t.Errorf("operators %v lack aten::linear", d.Validate.Operators)
	}
	pr, err := predictOne(context.Background(), p, []float32{0.1, 0.2, 0.3, 0.4})
	if err != nil {
		t.Fatal(err)
	}
	var sum float32
	for _, v := range pr.Probabilities {
		sum += v
	}
	if len(pr.Probabilities) != 2 || sum < 0.99 || sum > 1.01 {
		t.Errorf("prediction %+v", pr)
	}
}

// TestInspectionRefusesFileReads: a model that reads a file, in forward or
// hidden in a submodule's method, is refused before it runs, with the
// operator named.
func TestInspectionRefusesFileReads(t *testing.T) {
	dir, _ := hostileModels(t)
	for _, name := range []string{"reads_file.pt", "reads_file_submodule.pt"} {
		t.Run(name, func(t *testing.T) {
			p := startRunner(t, filepath.Join(dir, name), true, true)
			_, err := p.Run(context.Background(), Request{Op: OpValidate}, Sink{})
			msg, perm := IsPermanent(err)
			if !perm || !strings.Contains(msg, "aten::from_file") {
				t.Fatalf("validation: %v", err)
			}
			if strings.Contains(msg, secretText) {
				t.Fatal("the secret reached the error")
			}
			t.Logf("refused: %s", msg)
		})
	}
}

// TestConfinementStopsMissedFileRead: with the inspection off (as if it
// missed the operator), the confined runner cannot open the file: the
// model fails with a clear reason and the secret appears nowhere. The same
// model unconfined reads it, so the test can fail.
func TestConfinementStopsMissedFileRead(t *testing.T) {
	dir, _ := hostileModels(t)
	path := filepath.Join(dir, "reads_file.pt")
	p := startRunner(t, path, true, false)
	_, err := predictOne(context.Background(), p, []float32{0, 0, 0, 0})
	msg, perm := IsPermanent(err)
	if !perm || !strings.Contains(msg, "ermission denied") {
		t.Fatalf("confined: %v", err)
	}
	if strings.Contains(msg, secretText) || strings.Contains(p.stderr.String(), secretText) {
		t.Fatal("the secret reached the error or the runner's output")
	}
	t.Logf("confined: %s", msg)

	open := startRunner(t, path, false, false)
	pr, err := predictOne(context.Background(), open, []float32{0, 0, 0, 0})
	if err != nil {
		t.Fatalf("unconfined: %v", err)
	}
	if pr.Prediction != "0" { // logits are the bytes 'S' (83) and 'E' (69)
		t.Errorf("unconfined prediction %+v", pr)
	}
}

// TestAllocationHitsLimit: a model asking for 1 TiB fails with "resource
// limit"; a new runner serves the next model.
func TestAllocationHitsLimit(t *testing.T) {
	dir, _ := hostileModels(t)
	p := startRunner(t, filepath.Join(dir, "allocates.pt"), true, true)
	_, err := p.Run(context.Background(), Request{Op: OpValidate}, Sink{})
	if msg, _ := IsPermanent(err); !strings.Contains(msg, "resource limit") {
		t.Fatalf("validation: %v", err)
	}
	t.Logf("allocation: %v", err)
	next := startRunner(t, filepath.Join(dir, "honest.pt"), true, true)
	if _, err := next.Run(context.Background(), Request{Op: OpValidate}, Sink{}); err != nil {
		t.Fatalf("next model: %v", err)
	}
}

// TestLoopKilledAtDeadline: a forward that never returns is killed when
// the caller's deadline passes.
func TestLoopKilledAtDeadline(t *testing.T) {
	dir, _ := hostileModels(t)
	p := startRunner(t, filepath.Join(dir, "loops.pt"), true, true)
	if _, err := p.Run(context.Background(), Request{Op: OpValidate}, Sink{}); err != nil {
		t.Fatalf("validation (zero input ends the loop): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := predictOne(ctx, p, []float32{1, 1, 1, 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("looping prediction: %v", err)
	}
	if !p.Exited() {
		t.Error("the runner still runs after the deadline")
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("killed after %s", waited)
	}
}

// TestCorruptArchive: damaged TorchScript archives (a broken zip, and a
// well-formed zip whose code and pickles are garbage) fail the model.
func TestCorruptArchive(t *testing.T) {
	dir, _ := hostileModels(t)
	b, err := os.ReadFile(filepath.Join(dir, "honest.pt"))
	if err != nil {
		t.Fatal(err)
	}
	broken := append([]byte(nil), b...)
	for i := 200; i < len(broken)-200; i += 7 {
		broken[i] ^= 0x5a
	}
	// The same entries, each one's content replaced by noise.
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var garbled bytes.Buffer
	zw := zip.NewWriter(&garbled)
	for i, f := range zr.File {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		noise := make([]byte, f.UncompressedSize64)
		for j := range noise {
			noise[j] = byte(j*31 + i*17)
		}
		w.Write(noise)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"broken_zip.pt": broken, "garbled_entries.pt": garbled.Bytes()} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p := startRunner(t, path, true, true)
		_, err = p.Run(context.Background(), Request{Op: OpValidate}, Sink{})
		if _, perm := IsPermanent(err); !perm {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %.200s", name, err)
	}
}

// TestRunnerCrash: a runner that dies mid-operation (as libtorch does on a
// hostile archive that corrupts memory) fails the operation with the
// signal named; the caller and the next runner carry on.
func TestRunnerCrash(t *testing.T) {
	dir, _ := hostileModels(t)
	p := startRunner(t, filepath.Join(dir, "loops.pt"), true, true)
	go func() {
		time.Sleep(time.Second)
		p.cmd.Process.Signal(syscall.SIGSEGV)
	}()
	_, err := predictOne(context.Background(), p, []float32{1, 1, 1, 1})
	msg, perm := IsPermanent(err)
	if !perm || !strings.Contains(msg, "crashed") || !strings.Contains(msg, "segmentation") {
		t.Fatalf("crash: %v", err)
	}
	t.Logf("crash: %s", msg)
	next := startRunner(t, filepath.Join(dir, "honest.pt"), true, true)
	if _, err := predictOne(context.Background(), next, []float32{0, 0, 0, 0}); err != nil {
		t.Fatalf("next runner: %v", err)
	}
}

// TestPicklesRefused: files torch.save wrote are refused without being
// unpickled, with the way to export the model.
func TestPicklesRefused(t *testing.T) {
	dir, _ := hostileModels(t)
	for name, want := range map[string]string{"state_dict.pth": "pickled PyTorch checkpoint", "legacy_pickle.pth": "Python pickle"} {
		err := CheckArchive(filepath.Join(dir, name))
		msg, perm := IsPermanent(err)
		if !perm || !strings.Contains(msg, want) || !strings.Contains(msg, "torch.jit.save") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := CheckArchive(filepath.Join(dir, "honest.pt")); err != nil {
		t.Errorf("honest.pt: %v", err)
	}
}
