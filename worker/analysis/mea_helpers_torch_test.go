//go:build torch

package analysis_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// counting wraps a victim and counts the samples it is asked about; with
// cancelAfter > 0 it cancels cancel once that many calls were made.
type counting struct {
	analysis.Victim
	mu          sync.Mutex
	samples     int
	calls       int
	cancelAfter int
	cancel      context.CancelFunc
}

func (c *counting) count(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples += n
	c.calls++
	if c.cancelAfter > 0 && c.calls == c.cancelAfter {
		c.cancel()
	}
}

func (c *counting) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	c.count(x.N())
	return c.Victim.Predict(ctx, x)
}

func (c *counting) PredictText(ctx context.Context, texts []string) ([][]float32, error) {
	c.count(len(texts))
	return c.Victim.PredictText(ctx, texts)
}

// artifacts collects what an analysis stores.
type artifacts struct {
	mu    sync.Mutex
	files map[string][]byte
	pcts  []int
}

func (a *artifacts) env(dir string) analysis.Env {
	a.files = map[string][]byte{}
	return analysis.Env{Scratch: dir,
		Progress: func(pct int, stage string) { a.mu.Lock(); a.pcts = append(a.pcts, pct); a.mu.Unlock() },
		Artifact: func(_ context.Context, name, _ string, data []byte) (string, error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.files[name] = data
			return name, nil
		}}
}

// digitsData is every digit (1,797) as an IC dataset.
func digitsData(t testing.TB) (*ais.Dataset, *demo.Dataset) {
	t.Helper()
	train, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	ds := &ais.Dataset{Task: ais.TaskIC}
	for _, d := range []*demo.Dataset{train, test} {
		ds.X.Data = append(ds.X.Data, d.X...)
		for _, y := range d.Y {
			ds.Labels = append(ds.Labels, int(y))
		}
	}
	for i := range ds.Labels {
		ds.Names = append(ds.Names, "digit "+strconv.Itoa(i))
	}
	for i := 0; i < 10; i++ {
		ds.Classes = append(ds.Classes, strconv.Itoa(i))
	}
	ds.X.Shape = []int{len(ds.Labels), 1, 8, 8}
	return ds, train
}

// runMEA loads the victim at path for ds and runs MEA on it, counting its
// queries.
func runMEA(t *testing.T, path string, ds *ais.Dataset, p jobs.AnalysisParams) (jobs.AnalysisResult, *counting, *artifacts) {
	t.Helper()
	v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeV() })
	c := &counting{Victim: v}
	var a artifacts
	start := time.Now()
	r, err := analysis.Run(context.Background(), c, ds, jobs.AnalysisInput{TaskType: ds.Task, AnalysisType: ais.AnalysisMEA, Params: p}, a.env(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s MEA in %.1fs: verdict %+v", ds.Task, time.Since(start).Seconds(), r.Verdict)
	for _, row := range r.Table.Rows {
		t.Logf("  %v", row)
	}
	for _, n := range r.Notes {
		t.Logf("  note: %s", n)
	}
	return r, c, &a
}

// checkReport asserts what every MEA report must hold: the budget kept,
// the queries counted exactly, a curve per budget, the surrogate sent.
func checkReport(t *testing.T, r jobs.AnalysisResult, c *counting, a *artifacts, budget int) {
	t.Helper()
	used, evalQ := metric(t, r, "queries_used"), metric(t, r, "evaluation_queries")
	if int(used) != budget {
		t.Errorf("queries_used = %v, want the budget %d", used, budget)
	}
	if int(used+evalQ) != c.samples {
		t.Errorf("the report counts %v+%v queries, the victim answered %d", used, evalQ, c.samples)
	}
	if c.samples-int(evalQ) > budget {
		t.Errorf("extraction spent %d queries over a budget of %d", c.samples-int(evalQ), budget)
	}
	if len(r.Curves) == 0 || len(r.Curves[0].X) != len(r.Table.Rows) || r.Curves[0].X[len(r.Curves[0].X)-1] != float64(budget) {
		t.Errorf("curve %+v does not end at the budget %d", r.Curves, budget)
	}
	if len(r.Artifacts) != 1 || len(a.files["surrogate.pt"]) == 0 {
		t.Errorf("artifacts %+v, files %d", r.Artifacts, len(a.files))
	}
	if r.Verdict.Definition == "" || r.Verdict.Severity == "" || r.Verdict.Summary == "" {
		t.Errorf("incomplete verdict %+v", r.Verdict)
	}
	if len(a.pcts) == 0 || a.pcts[len(a.pcts)-1] != 100 {
		t.Errorf("progress %v does not end at 100", a.pcts)
	}
}
