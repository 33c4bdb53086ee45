//go:build torch

package analysis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// trainDigits is the digits CNN's training split as an IC dataset: the
// owner's data the defence profile is built from (the test digits stay
// unseen).
func trainDigits(t testing.TB) *ais.Dataset {
	t.Helper()
	train, _, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	ds := &ais.Dataset{Task: ais.TaskIC, X: attacks.Batch{Data: train.X, Shape: []int{train.N(), 1, 8, 8}}, Classes: train.Labels}
	for _, y := range train.Y {
		ds.Labels = append(ds.Labels, int(y))
	}
	return ds
}

// gradientClassifier drives a victim with the attacks package.
type gradientClassifier struct {
	analysis.Victim
	k int
}

func (g gradientClassifier) NumClasses() int { return g.k }

// answered predicts x and its squeezed copies as the guarded endpoint does.
func answered(t *testing.T, v analysis.Victim, p *defence.Profile, x attacks.Batch) []defence.Sample {
	t.Helper()
	sq, err := p.Squeezer.Squeeze(x)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]defence.Sample, x.N())
	for _, b := range append([]attacks.Batch{x}, sq...) {
		rows, err := v.Predict(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			out[i].Outs = append(out[i].Outs, r)
		}
	}
	for i := range out {
		out[i].Shape, out[i].X = x.Shape[1:], x.Sample(i)
	}
	return out
}

// TestDefenceDigitsCNN builds the digits CNN's profile from its training
// digits and checks it on the unseen test digits: at most 5 % of the clean
// ones flagged, at least 80 % of PGD ε = 0.3 examples flagged, and MEA's
// query stream flagged before its budget is spent while a clean stream is not.
func TestDefenceDigitsCNN(t *testing.T) {
	model := digitsModel(t)
	ds := trainDigits(t)
	v, closeModel, err := runner.LoadVictim(model, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeModel()
	var st store
	start := time.Now()
	p := jobs.AnalysisParams{}.ApplyDefaults()
	r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{AISModelID: "m1", TaskType: ais.TaskIC, AnalysisType: ais.AnalysisDefence, Params: p}, st.env(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("defence analysis took %.2fs: %s", time.Since(start).Seconds(), r.Verdict.Summary)
	for _, row := range r.Table.Rows {
		t.Logf("  %v", row)
	}
	for _, n := range r.Notes {
		t.Logf("  note: %s", n)
	}
	var prof defence.Profile
	if err := json.Unmarshal(st.files[analysis.ProfileArtifact], &prof); err != nil {
		t.Fatalf("profile.json: %v", err)
	}
	c := prof.Stats
	if prof.ModelID != "m1" || prof.Mode != defence.ModeFlag || fmt.Sprint(prof.InputShape) != "[1 8 8]" || prof.Classes != 10 {
		t.Errorf("profile header: %+v", prof)
	}
	if c.FPR > 0.05 || c.Detection < 0.8 || c.AdvSamples < 100 {
		t.Errorf("held-out: false positives %.4f, detection %.4f on %d examples", c.FPR, c.Detection, c.AdvSamples)
	}
	if c.StreamFlaggedAt <= 0 || c.StreamFlaggedAt >= c.StreamBudget || c.CleanFlaggedAt != 0 {
		t.Errorf("MEA stream flagged at %d of %d (by %s); clean stream at %d", c.StreamFlaggedAt, c.StreamBudget, c.StreamFlaggedBy, c.CleanFlaggedAt)
	}
	if len(r.Curves) != 2 || len(r.Curves[0].X) == 0 || r.Curves[0].Y[len(r.Curves[0].Y)-1] < prof.Monitor.CUSUMLimit {
		t.Errorf("the MEA stream's CUSUM curve: %+v", r.Curves)
	}
	if r.Verdict.Vulnerable || r.Verdict.Severity != "none" {
		t.Errorf("verdict %+v", r.Verdict)
	}

	// The unseen test digits: clean false positives, then PGD ε = 0.3.
	test := heldOutDigits(t)
	clean, _, err := prof.Evaluate(answered(t, v, &prof, test.X))
	if err != nil {
		t.Fatal(err)
	}
	res, err := attacks.PGD(context.Background(), gradientClassifier{Victim: v, k: 10}, attacks.Input{X: test.X, Labels: test.Labels},
		attacks.PGDParams{Common: attacks.Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1, Seed: 1}, Norm: "inf", Eps: 0.3, EpsStep: 0.075, MaxIter: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	advs := answered(t, v, &prof, res.Adversarial)
	var fooled []defence.Sample
	for i, a := range advs {
		if argmaxOf(a.Outs[0]) != test.Labels[i] && argmaxOf(answered(t, v, &prof, attacks.Batch{Data: test.X.Sample(i), Shape: []int{1, 1, 8, 8}})[0].Outs[0]) == test.Labels[i] {
			fooled = append(fooled, a)
		}
	}
	det, _, err := prof.Evaluate(fooled)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test digits: clean false positives %.4f %v (of %d); PGD ε=0.3 detection %.4f %v (of %d fooled)", clean.Any, clean.ByCheck, clean.N, det.Any, det.ByCheck, det.N)
	if clean.Any > 0.05 {
		t.Errorf("clean test digits flagged at %.4f, want ≤ 0.05", clean.Any)
	}
	if det.N < 100 || det.Any < 0.8 {
		t.Errorf("PGD ε=0.3 examples flagged at %.4f of %d, want ≥ 0.8", det.Any, det.N)
	}
}

func argmaxOf(v []float32) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}
