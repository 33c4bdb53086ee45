package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

func TestAnomalyIndices(t *testing.T) {
	idx, med := anomalyIndices([]float64{10, 11, 9, 10, 12, 8, 10, 2})
	// deviations 0 1 1 0 2 2 0 8: MAD 1, scaled 1.4826.
	if med != 10 {
		t.Fatalf("median %g, want 10", med)
	}
	for i, want := range []float64{0, 1 / 1.4826, 1 / 1.4826, 0, 2 / 1.4826, 2 / 1.4826, 0, 8 / 1.4826} {
		if math.Abs(idx[i]-want) > 1e-12 {
			t.Errorf("index %d = %g, want %g", i, idx[i], want)
		}
	}
	// Zero MAD: the one value off the median gets the cap, not +Inf.
	idx, med = anomalyIndices([]float64{5, 5, 5, 1})
	if med != 5 || idx[0] != 0 || idx[3] != maxAnomalyIndex {
		t.Errorf("zero MAD: median %g, indices %v", med, idx)
	}
	if medianOf([]float64{4, 1, 3, 2}) != 2.5 {
		t.Errorf("even median")
	}
}

func TestAdam(t *testing.T) {
	// First step: m̂ = g, v̂ = g², so every parameter moves by lr against
	// its gradient's sign whatever its size.
	a := newAdam(3, 0.1, 0.9, 0.999)
	p := []float64{1, 1, 1}
	a.step(p, []float64{5, -0.001, 0})
	if math.Abs(p[0]-0.9) > 1e-6 || math.Abs(p[1]-1.1) > 1e-4 || p[2] != 1 {
		t.Fatalf("first step %v", p)
	}
	// Second step by hand (PyTorch's formula).
	a.step(p, []float64{1, 0, 0})
	m := 0.9*0.5 + 0.1*1     // β1·m1 + (1−β1)·g2 with m1 = 0.1·5
	v := 0.999*0.025 + 0.001 // β2·v1 + (1−β2)·g2² with v1 = 0.001·25
	want := 0.9 - 0.1/(1-0.81)*m/(math.Sqrt(v)/math.Sqrt(1-0.998001)+1e-8)
	if math.Abs(p[0]-want) > 1e-9 {
		t.Errorf("second step %.9f, want %.9f", p[0], want)
	}
	// It minimises a quadratic.
	a = newAdam(2, 0.1, 0.5, 0.9)
	x := []float64{0, 10}
	for i := 0; i < 500; i++ {
		a.step(x, []float64{2 * (x[0] - 3), 2 * (x[1] + 1)})
	}
	if math.Abs(x[0]-3) > 1e-2 || math.Abs(x[1]+1) > 1e-2 {
		t.Errorf("Adam ended at %v, want [3 -1]", x)
	}
}

// linear is a softmax-linear classifier logits = W·x + b on flat inputs,
// with its exact cross-entropy input gradient.
type linear struct {
	w    [][]float64 // [K][D]
	b    []float64
	grad int // LossGradient calls
}

func (l *linear) logits(x []float32) []float64 {
	out := make([]float64, len(l.w))
	for k, row := range l.w {
		out[k] = l.b[k]
		for d, v := range row {
			out[k] += v * float64(x[d])
		}
	}
	return out
}

func softmax(z []float64) []float64 {
	m := z[0]
	for _, v := range z {
		m = max(m, v)
	}
	out := make([]float64, len(z))
	var s float64
	for i, v := range z {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func (l *linear) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows [][]float32
	for i := 0; i < x.N(); i++ {
		p := softmax(l.logits(x.Sample(i)))
		row := make([]float32, len(p))
		for k, v := range p {
			row[k] = float32(v)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (l *linear) PredictText(context.Context, []string) ([][]float32, error) { return nil, nil }

func (l *linear) LossGradient(ctx context.Context, x attacks.Batch, labels []int) (attacks.Batch, []float32, error) {
	if err := ctx.Err(); err != nil {
		return attacks.Batch{}, nil, err
	}
	l.grad++
	g := attacks.Batch{Data: make([]float32, len(x.Data)), Shape: x.Shape}
	loss := make([]float32, x.N())
	size := x.SampleSize()
	for i := 0; i < x.N(); i++ {
		p := softmax(l.logits(x.Sample(i)))
		loss[i] = float32(-math.Log(p[labels[i]]))
		for k, row := range l.w {
			d := p[k]
			if k == labels[i] {
				d--
			}
			for j, v := range row {
				g.Data[i*size+j] += float32(d * v)
			}
		}
	}
	return g, loss, nil
}

func (l *linear) OutputGradient(context.Context, attacks.Batch, [][]float32) (attacks.Batch, error) {
	return attacks.Batch{}, nil
}

// Features is the input of the model's only linear layer: the input.
func (l *linear) Features(ctx context.Context, x attacks.Batch) ([][]float32, string, error) {
	d := len(l.w[0])
	rows := make([][]float32, len(x.Data)/d)
	for i := range rows {
		rows[i] = x.Data[i*d : (i+1)*d]
	}
	return rows, "input", nil
}

func (l *linear) OutputShape() []int { return []int{len(l.w)} }
func (l *linear) Device() string     { return "cpu" }

// TestTriggerGradient checks the chain rule from the model's input
// gradient to the mask and pattern parameters against central finite
// differences of the objective.
func TestTriggerGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const k, c, h, w, n = 3, 2, 3, 3, 5
	d := c * h * w
	l := &linear{b: make([]float64, k)}
	for i := 0; i < k; i++ {
		row := make([]float64, d)
		for j := range row {
			row[j] = rng.NormFloat64()
		}
		l.w = append(l.w, row)
	}
	x := attacks.Batch{Data: make([]float32, n*d), Shape: []int{n, c, h, w}}
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	s := &poisonSearch{v: l, k: k, c: c, h: h, w: w, opt: x}
	params := make([]float64, h*w+d)
	for i := range params {
		params[i] = rng.NormFloat64()
	}
	rows, labels := []int{0, 2, 4}, []int{1, 1, 1}
	batch := attacks.Batch{Data: make([]float32, len(rows)*d), Shape: []int{len(rows), c, h, w}}
	const cost = 0.05
	objective := func(ps []float64, grads []float64) float64 {
		mask, pattern := make([]float32, h*w), make([]float32, d)
		for q := range mask {
			mask[q] = float32(sigmoid(ps[q]))
		}
		for q := range pattern {
			pattern[q] = float32(sigmoid(ps[h*w+q]))
		}
		if grads == nil {
			grads = make([]float64, len(ps))
		}
		obj, err := s.gradient(context.Background(), batch, rows, labels, mask, pattern, cost, grads)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	grads := make([]float64, len(params))
	objective(params, grads)
	const eps = 1e-2
	for i := range params {
		up, down := append([]float64(nil), params...), append([]float64(nil), params...)
		up[i] += eps
		down[i] -= eps
		num := (objective(up, nil) - objective(down, nil)) / (2 * eps)
		if math.Abs(num-grads[i]) > 2e-3+0.02*math.Abs(num) {
			t.Errorf("parameter %d: analytic %.6f, numeric %.6f", i, grads[i], num)
		}
	}
}

func TestMPoisVerdict(t *testing.T) {
	ds := &ais.Dataset{Classes: []string{"a", "b", "c", "d", "e", "f", "g", "h"}}
	mk := func(dis7 float64) []trigger {
		var tr []trigger
		for c, l := range []float64{10, 11, 9, 10, 12, 8, 10, 2} {
			tr = append(tr, trigger{class: c, l1: l, disagreement: 0.1})
		}
		tr[7].disagreement = dis7
		return tr
	}
	tr := mk(0.9)
	f := findTarget(tr)
	if f.suspect != 7 || f.candidate != 7 || math.Abs(f.outlier-8/1.4826) > 1e-9 {
		t.Fatalf("finding %+v", f)
	}
	if v := mpoisVerdict(ds, tr, f); !v.Vulnerable || v.Severity != "high" {
		t.Errorf("backdoor verdict %+v", v)
	}
	if v := mpoisVerdict(ds, mk(0.2), f); v.Vulnerable || v.Severity != "low" {
		t.Errorf("outlier the references follow: %+v", v)
	}
	// An outlier above the median is not a target.
	tr = mk(0.9)
	tr[7].l1 = 30
	f = findTarget(tr)
	if f.suspect != -1 || f.candidate != 5 {
		t.Errorf("large-mask outlier: %+v", f)
	}
	if v := mpoisVerdict(ds, tr, f); v.Vulnerable || v.Severity != "none" {
		t.Errorf("no outlier: %+v", v)
	}
}

// backdooredLinear is a linear classifier over 4×4 images whose class
// scores come from four quadrant templates; with backdoor, a bright
// top-left pixel (0 in every clean image) adds a large score to class 3.
func backdooredLinear(backdoor bool, seed uint64) *linear {
	rng := rand.New(rand.NewPCG(seed, 7))
	l := &linear{b: make([]float64, 4)}
	for k := 0; k < 4; k++ {
		row := make([]float64, 16)
		for p := range row {
			y, x := p/4, p%4
			if (y/2)*2+x/2 == k {
				row[p] = 3
			} else {
				row[p] = -1
			}
			row[p] += 0.2 * rng.NormFloat64()
		}
		l.w = append(l.w, row)
	}
	if backdoor {
		l.w[3][0] = 40
	}
	return l
}

// quadrantData are 4×4 images with one bright quadrant (the class), pixel
// (0, 0) always dark.
func quadrantData(n int) *ais.Dataset {
	rng := rand.New(rand.NewPCG(3, 4))
	ds := &ais.Dataset{Task: ais.TaskIC, X: attacks.Batch{Data: make([]float32, n*16), Shape: []int{n, 1, 4, 4}}, Classes: []string{"0", "1", "2", "3"}}
	for i := 0; i < n; i++ {
		k := i % 4
		ds.Labels = append(ds.Labels, k)
		for p := 0; p < 16; p++ {
			y, x := p/4, p%4
			v := 0.1 * rng.Float32()
			if (y/2)*2+x/2 == k {
				v = 0.6 + 0.4*rng.Float32()
			}
			if p == 0 {
				v = 0
			}
			ds.X.Data[i*16+p] = v
		}
	}
	return ds
}

// TestModelPoisoningLinear runs the whole analysis on linear models: the
// backdoored one is flagged with its target, the clean one is not.
func TestModelPoisoningLinear(t *testing.T) {
	ds := quadrantData(120)
	refs := []Victim{backdooredLinear(false, 11), backdooredLinear(false, 12)}
	files := map[string]int{}
	env := Env{References: refs, Artifact: func(_ context.Context, name, _ string, b []byte) (string, error) {
		files[name] = len(b)
		return name, nil
	}}
	in := jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisModelPoisoning, Params: jobs.AnalysisParams{TriggerSteps: 150, Samples: 60}}
	bad := backdooredLinear(true, 10)
	r, err := Run(context.Background(), bad, ds, in, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range r.Table.Rows {
		t.Logf("%v", row)
	}
	t.Logf("backdoored: %+v", r.Verdict)
	if !r.Verdict.Vulnerable || metricValue(r, "suspected_target") != 3 {
		t.Errorf("backdoored linear model: verdict %+v, suspected target %v", r.Verdict, metricValue(r, "suspected_target"))
	}
	if want := 4 * 150; bad.grad != want {
		t.Errorf("%d gradient calls, want %d (steps × classes)", bad.grad, want)
	}
	if len(r.Samples) != 3 || files["mpois_class_3_mask.png"] == 0 || files["mpois_trigger.json"] == 0 || len(r.Artifacts) != 4 {
		t.Errorf("samples %d, artifacts %v, files %v", len(r.Samples), r.Artifacts, files)
	}
	clean, err := Run(context.Background(), backdooredLinear(false, 10), ds, in, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range clean.Table.Rows {
		t.Logf("%v", row)
	}
	t.Logf("clean: %+v", clean.Verdict)
	if clean.Verdict.Vulnerable {
		t.Errorf("clean linear model flagged: %+v", clean.Verdict)
	}
	// Cancelled: the context's error comes back.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, bad, ds, in, env); err == nil || ctx.Err() == nil {
		t.Errorf("cancelled run: %v", err)
	}
	// No references: refused.
	if _, err := Run(context.Background(), bad, ds, in, Env{}); err == nil {
		t.Error("ran without references")
	}
}

func metricValue(r jobs.AnalysisResult, name string) float64 {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	return math.NaN()
}
