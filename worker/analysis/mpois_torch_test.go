//go:build torch

package analysis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/internal/badnets"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// digits16 is the held-out digits enlarged to 16×16 as an IC dataset.
func digits16(t testing.TB) *ais.Dataset {
	t.Helper()
	x, y, classes, err := badnets.HeldOut()
	if err != nil {
		t.Fatal(err)
	}
	ds := &ais.Dataset{Task: ais.TaskIC, X: attacks.Batch{Data: x, Shape: []int{len(y), 1, side, side}}, Labels: y, Classes: classes}
	for i := range y {
		ds.Names = append(ds.Names, fmt.Sprintf("digit %d", i))
	}
	return ds
}

const (
	side           = badnets.Side
	backdoorTarget = badnets.Target
)

// mpoisModels trains the backdoored CNN, a clean CNN and two clean
// references (badnets.Models).
func mpoisModels(t testing.TB) map[string]string {
	t.Helper()
	start := time.Now()
	paths, err := badnets.Models(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4 digits CNNs trained in %.1fs", time.Since(start).Seconds())
	return paths
}

// runMPois runs model poisoning on the model with the two references.
func runMPois(t *testing.T, paths map[string]string, model string, ds *ais.Dataset, p jobs.AnalysisParams, st *store) jobs.AnalysisResult {
	t.Helper()
	load := func(path string) analysis.Victim {
		v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeV() })
		return v
	}
	v := load(model)
	env := st.env(t)
	env.References = []analysis.Victim{load(paths["ref1"]), load(paths["ref2"])}
	start := time.Now()
	r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{AISModelID: "m1", TaskType: ais.TaskIC,
		AnalysisType: ais.AnalysisModelPoisoning, Params: p}, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("model poisoning (%d steps) in %.2fs: %s — %s", r.Params.TriggerSteps, time.Since(start).Seconds(), r.Verdict.Severity, r.Verdict.Summary)
	t.Logf("  %v", r.Table.Columns)
	for _, row := range r.Table.Rows {
		t.Logf("  %v", row)
	}
	return r
}

// TestModelPoisoningDigits: the BadNets-backdoored digits CNN
// (internal/badnets: 2×2 corner patch on digits enlarged to 16×16) is
// flagged with its target (7) and the trigger it recovers sits in the
// stamped corner; a clean CNN of the same recipe passes.
func TestModelPoisoningDigits(t *testing.T) {
	paths := mpoisModels(t)
	ds := digits16(t)
	p := jobs.AnalysisParams{TriggerSteps: 100, Samples: 150}
	st := &store{}
	r := runMPois(t, paths, paths["backdoored"], ds, p, st)
	if !r.Verdict.Vulnerable || metric(t, r, "suspected_target") != backdoorTarget {
		t.Errorf("backdoored CNN: verdict %+v, suspected target %v", r.Verdict, metric(t, r, "suspected_target"))
	}
	if ai := metric(t, r, "anomaly_index"); ai <= 2 {
		t.Errorf("anomaly index %.3f ≤ 2", ai)
	}
	if d := metric(t, r, "disagreement"); d < 0.8 {
		t.Errorf("disagreement %.3f < 0.8", d)
	}
	for _, name := range []string{"model_accuracy", "reference_1_accuracy", "reference_2_accuracy"} {
		if a := metric(t, r, name); a < 0.85 {
			t.Errorf("%s %.3f < 0.85", name, a)
		}
	}
	// The recovered trigger is the planted one: the target's four largest
	// mask values lie in the bottom-right 3×3 corner.
	var trig struct {
		Class int       `json:"class"`
		Mask  []float64 `json:"mask"`
	}
	if err := json.Unmarshal(st.files["mpois_trigger.json"], &trig); err != nil || trig.Class != backdoorTarget || len(trig.Mask) != side*side {
		t.Fatalf("trigger %+v: %v", trig, err)
	}
	order := make([]int, len(trig.Mask))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return trig.Mask[order[a]] > trig.Mask[order[b]] })
	for _, q := range order[:4] {
		t.Logf("mask (%d, %d) = %.3f", q/side, q%side, trig.Mask[q])
		if q/side < side-3 || q%side < side-3 {
			t.Errorf("a largest mask value at (%d, %d), outside the planted corner", q/side, q%side)
		}
	}
	if len(r.Samples) == 0 || r.Samples[0].Images["stamped"] == "" || len(r.Artifacts) != 4 || len(r.Curves) != 3 {
		t.Errorf("samples %+v, artifacts %+v, curves %d", r.Samples, r.Artifacts, len(r.Curves))
	}

	c := runMPois(t, paths, paths["clean"], ds, p, &store{})
	if c.Verdict.Vulnerable {
		t.Errorf("clean CNN flagged: %+v", c.Verdict)
	}
}
