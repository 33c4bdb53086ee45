//go:build torch

package analysis_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// digitsVictim trains the demo digits CNN (demo.DigitsConfig) on the
// demo's training split.
func digitsVictim(t testing.TB, train *demo.Dataset) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "digits.pt")
	if _, err := torch.TrainCNN(train.X, train.Y, train.Shape, 10, demo.DigitsConfig, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMEADigitsCNN is the required proof: a surrogate CNN copies the
// digits CNN with fidelity ≥ 0.90 within 2,000 queries.
func TestMEADigitsCNN(t *testing.T) {
	ds, train := digitsData(t)
	path := digitsVictim(t, train)
	r, c, a := runMEA(t, path, ds, jobs.AnalysisParams{QueryBudget: 2000})
	checkReport(t, r, c, a, 2000)
	fid := metric(t, r, "fidelity")
	t.Logf("digits CNN: fidelity %.4f, surrogate accuracy %.4f, victim accuracy %.4f, queries to 0.9: %v",
		fid, metric(t, r, "surrogate_accuracy"), metric(t, r, "victim_accuracy"), metric(t, r, "queries_to_90_fidelity"))
	if fid < 0.90 {
		t.Errorf("fidelity %.4f < 0.90 within 2,000 queries", fid)
	}
	if !r.Verdict.Vulnerable {
		t.Errorf("verdict %+v: want vulnerable", r.Verdict)
	}
	if q := metric(t, r, "queries_to_90_fidelity"); q <= 0 || q > 2000 {
		t.Errorf("queries_to_90_fidelity = %v", q)
	}
	ys := r.Curves[0].Y
	if ys[0] >= ys[len(ys)-1] {
		t.Errorf("fidelity does not grow with queries: %v", ys)
	}
	// The surrogate is a TorchScript CNN that takes the victim's inputs.
	sp := filepath.Join(t.TempDir(), "surrogate.pt")
	if err := os.WriteFile(sp, a.files["surrogate.pt"], 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := torch.LoadModule(sp, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out, err := m.Forward(&torch.Tensor{Data: ds.X.Data[:5*64], Shape: []int64{5, 1, 8, 8}})
	if err != nil || len(out.Shape) != 2 || out.Shape[1] != 10 {
		t.Fatalf("surrogate output %v, %v", out, err)
	}
}

// TestMEACancel stops an extraction whose context is cancelled while it
// queries the victim.
func TestMEACancel(t *testing.T) {
	ds, train := digitsData(t)
	path := digitsVictim(t, train)
	v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &counting{Victim: v, cancelAfter: 2, cancel: cancel}
	var a artifacts
	_, err = analysis.Run(ctx, c, ds, jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisMEA, Params: jobs.AnalysisParams{QueryBudget: 2000}}, a.env(t.TempDir()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if c.calls != 2 {
		t.Errorf("%d victim calls after cancelling at the 2nd", c.calls)
	}
	if len(a.files) != 0 {
		t.Errorf("a cancelled run stored %d files", len(a.files))
	}
}
