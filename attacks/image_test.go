package attacks

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFGSMClosedForm(t *testing.T) {
	d := digits(t)
	x, y := d.correct(100)
	ctx := context.Background()
	for _, targeted := range []bool{false, true} {
		p := DefaultFGSMParams()
		p.Epsilon = 0.2
		in := Input{X: x, Labels: y}
		goal, dir := y, float32(1)
		if targeted {
			p.Targeted, p.TargetLabel = true, 3
			goal = make([]int, len(y))
			for i := range goal {
				goal[i] = 3
			}
			dir = -1
		}
		r, err := FGSM(ctx, d.model, in, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		g, _, _ := d.model.LossGradient(ctx, x, goal)
		for j, v := range x.Data {
			s := float32(0)
			if g.Data[j] > 0 {
				s = 1
			} else if g.Data[j] < 0 {
				s = -1
			}
			want := min(max(v+dir*p.Epsilon*s, 0), 1)
			if r.Adversarial.Data[j] != want {
				t.Fatalf("targeted=%v value %d: got %v, want closed form %v", targeted, j, r.Adversarial.Data[j], want)
			}
		}
		if r.Gradients != int64(x.N()) || r.Queries != int64(2*x.N()) {
			t.Errorf("queries %d gradients %d, want %d and %d", r.Queries, r.Gradients, 2*x.N(), x.N())
		}
		t.Logf("FGSM eps=0.2 targeted=%v: success %.2f, %+v", targeted, r.SuccessRate, r.Summarize().Linf)
		if !targeted && r.SuccessRate < 0.5 {
			t.Errorf("FGSM eps=0.2 fooled only %.2f of correctly classified digits", r.SuccessRate)
		}
	}
}

func checkBall(t *testing.T, x, adv Batch, norm string, eps, lo, hi float32) {
	t.Helper()
	for i := 0; i < x.N(); i++ {
		a, b := x.Sample(i), adv.Sample(i)
		var n float32
		if norm == "inf" {
			n = LinfNorm(a, b)
		} else {
			n = L2Norm(a, b)
		}
		if n > eps*(1+1e-5) {
			t.Fatalf("sample %d left the L%s ball: norm %g > eps %g", i, norm, n, eps)
		}
		for _, v := range b {
			if v < lo || v > hi {
				t.Fatalf("sample %d value %g outside clip range [%g,%g]", i, v, lo, hi)
			}
		}
	}
}

func TestPGDStaysInBallAndClipRange(t *testing.T) {
	d := digits(t)
	x, y := d.correct(60)
	for _, tc := range []struct {
		norm      string
		eps, step float32
		lo, hi    float32
	}{
		{"inf", 0.08, 0.03, 0, 1},
		{"inf", 0.3, 0.2, 0.1, 0.9},
		{"2", 1.0, 0.3, 0, 1},
		{"2", 3.0, 2.0, 0, 1},
	} {
		p := DefaultPGDParams()
		p.Norm, p.Eps, p.EpsStep, p.MaxIter, p.NumRandomInit = tc.norm, tc.eps, tc.step, 15, 2
		p.ClipMin, p.ClipMax = tc.lo, tc.hi
		xc := x.Clone()
		for j := range xc.Data {
			xc.Data[j] = clip(xc.Data[j], tc.lo, tc.hi)
		}
		r, err := PGD(context.Background(), d.model, Input{X: xc, Labels: y}, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBall(t, xc, r.Adversarial, tc.norm, tc.eps, tc.lo, tc.hi)
		s := r.Summarize()
		t.Logf("PGD L%s eps=%g: success %.2f, linf max %.4f, l2 max %.4f, gradients %d", tc.norm, tc.eps, r.SuccessRate, s.Linf.Max, s.L2.Max, r.Gradients)
	}
}

// TestPGDBeatsRandomNoise: the same L∞ budget spent on random ±ε noise
// barely hurts the model, PGD destroys it — the attack follows the gradient.
func TestPGDBeatsRandomNoise(t *testing.T) {
	d := digits(t)
	x := toBatch(d.testX)
	y := d.testY
	const eps = 0.15
	clean := accuracy(t, d.model, x, y)
	noisy := x.Clone()
	r := rand.New(rand.NewPCG(1, 2))
	for j := range noisy.Data {
		s := float32(eps)
		if r.IntN(2) == 0 {
			s = -eps
		}
		noisy.Data[j] = clip(noisy.Data[j]+s, 0, 1)
	}
	noiseAcc := accuracy(t, d.model, noisy, y)
	p := DefaultPGDParams()
	p.Eps, p.EpsStep, p.MaxIter = eps, 0.025, 20
	res, err := PGD(context.Background(), d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	pgdAcc := accuracy(t, d.model, res.Adversarial, y)
	t.Logf("L∞ eps=%.2f accuracy: clean %.3f, random sign noise %.3f, PGD %.3f", eps, clean, noiseAcc, pgdAcc)
	if pgdAcc > 0.2 || noiseAcc-pgdAcc < 0.5 {
		t.Fatalf("PGD accuracy %.3f not far below random-noise accuracy %.3f", pgdAcc, noiseAcc)
	}
	// Same for L2.
	const eps2 = 1.0
	for i := 0; i < x.N(); i++ {
		s := noisy.Sample(i)
		copy(s, x.Sample(i))
		dir := make([]float64, len(s))
		var nn float64
		for j := range dir {
			dir[j] = r.NormFloat64()
			nn += dir[j] * dir[j]
		}
		for j := range s {
			s[j] = clip(s[j]+float32(eps2*dir[j]/math.Sqrt(nn)), 0, 1)
		}
	}
	noiseAcc = accuracy(t, d.model, noisy, y)
	p.Norm, p.Eps, p.EpsStep = "2", eps2, 0.25
	res, err = PGD(context.Background(), d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	pgdAcc = accuracy(t, d.model, res.Adversarial, y)
	t.Logf("L2 eps=%.1f accuracy: clean %.3f, random noise %.3f, PGD %.3f", eps2, clean, noiseAcc, pgdAcc)
	if pgdAcc > 0.35 || noiseAcc-pgdAcc < 0.4 {
		t.Fatalf("L2 PGD accuracy %.3f not far below random-noise accuracy %.3f", pgdAcc, noiseAcc)
	}
}

func TestPGDTargeted(t *testing.T) {
	d := digits(t)
	x, y := d.correct(100)
	targets := make([]int, len(y))
	for i := range y {
		targets[i] = (y[i] + 1) % 10
	}
	p := DefaultPGDParams()
	p.Eps, p.EpsStep, p.MaxIter, p.Targeted, p.EarlyStop = 0.3, 0.03, 30, true, true
	r, err := PGD(context.Background(), d.model, Input{X: x, Labels: y, Targets: targets}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	hit := 0
	for i, pr := range r.AdversarialPredictions {
		if pr == targets[i] {
			hit++
		}
	}
	t.Logf("targeted PGD eps=0.3: %d/%d reach target, gradients %d (early stop)", hit, len(y), r.Gradients)
	if float64(hit)/float64(len(y)) < 0.8 || r.SuccessRate != float64(hit)/float64(len(y)) {
		t.Fatalf("targeted PGD reached the target on %d/%d (success rate %.2f)", hit, len(y), r.SuccessRate)
	}
	checkBall(t, x, r.Adversarial, "inf", 0.3, 0, 1)
	if r.Gradients >= int64(len(y)*p.MaxIter) {
		t.Errorf("early stop did not save gradient evaluations: %d", r.Gradients)
	}
}

func TestHopSkipJump(t *testing.T) {
	d := digits(t)
	x, y := d.correct(25)
	p := DefaultHopSkipJumpParams()
	p.MaxIter, p.InitEval, p.MaxEval, p.MaxQueries, p.Seed = 30, 40, 200, 2000, 3
	p0 := p
	p0.MaxIter = 0 // initialisation + binary search only
	ctx := context.Background()
	r0, err := HopSkipJump(ctx, d.model, Input{X: x, Labels: y}, p0, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := HopSkipJump(ctx, d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s0, s := r0.Summarize(), r.Summarize()
	perSample := float64(r.Queries-int64(2*x.N())) / float64(x.N())
	t.Logf("HSJA: success %.2f, L2 median %.3f mean %.3f (after init+binary search: median %.3f), %.0f queries/sample",
		r.SuccessRate, s.L2.Median, s.L2.Mean, s0.L2.Median, perSample)
	if r.SuccessRate < 0.8 {
		t.Fatalf("HSJA success %.2f < 0.8", r.SuccessRate)
	}
	// HSJA always returns an adversarial point once it found a start, so
	// also require the perturbations to be small: within the L2 budget of 1.0
	// at which white-box PGD fools 95 % of these digits.
	small := 0
	for i, ok := range r.Success {
		if ok && r.L2Norms[i] <= 1.0 {
			small++
		}
	}
	t.Logf("HSJA: %d/%d adversarial with L2 <= 1.0", small, x.N())
	if float64(small) < 0.8*float64(x.N()) {
		t.Fatalf("HSJA found L2 <= 1 adversarials for only %d/%d samples", small, x.N())
	}
	if perSample > float64(p.MaxQueries) {
		t.Fatalf("HSJA used %.0f queries per sample, budget %d", perSample, p.MaxQueries)
	}
	if s.L2.Median > 0.5*s0.L2.Median {
		t.Fatalf("HSJA iterations did not shrink the perturbation: median L2 %.3f vs %.3f at start", s.L2.Median, s0.L2.Median)
	}
	checkBall(t, x, r.Adversarial, "inf", 1, 0, 1)
	// Deterministic with a seed.
	r2, err := HopSkipJump(ctx, d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j := range r.Adversarial.Data {
		if r.Adversarial.Data[j] != r2.Adversarial.Data[j] {
			t.Fatal("HSJA is not deterministic for a fixed seed")
		}
	}
}

func TestHopSkipJumpTargetedWithStart(t *testing.T) {
	d := digits(t)
	x, y := d.correct(40)
	// Start from a correctly classified image of the target class 0.
	var zero []float32
	for i, v := range y {
		if v == 0 {
			zero = x.Sample(i)
			break
		}
	}
	var idx []int
	for i, v := range y {
		if v != 0 && len(idx) < 10 {
			idx = append(idx, i)
		}
	}
	xs := x.subBatch(idx)
	ys := make([]int, len(idx))
	starts := Batch{Shape: xs.Shape}
	for k, i := range idx {
		ys[k] = y[i]
		starts.Data = append(starts.Data, zero...)
	}
	p := DefaultHopSkipJumpParams()
	p.MaxIter, p.InitEval, p.MaxEval, p.MaxQueries, p.Targeted, p.TargetLabel = 20, 40, 200, 1500, true, 0
	r, err := HopSkipJump(context.Background(), d.model, Input{X: xs, Labels: ys, Starts: &starts}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	startL2 := Stats([]float32{L2Norm(xs.Sample(0), zero)}, nil).Median
	t.Logf("targeted HSJA to class 0: success %.2f, L2 median %.3f (start image at L2 %.3f from the first sample)", r.SuccessRate, r.Summarize().L2.Median, startL2)
	if r.SuccessRate < 0.8 {
		t.Fatalf("targeted HSJA success %.2f", r.SuccessRate)
	}
	for _, pr := range r.AdversarialPredictions {
		if pr != 0 && r.SuccessRate == 1 {
			t.Fatal("success rate disagrees with predictions")
		}
	}
}

func TestSquare(t *testing.T) {
	d := digits(t)
	x, y := d.correct(60)
	p := DefaultSquareParams()
	p.Eps, p.MaxQueries, p.PInit, p.Seed = 0.15, 1000, 0.1, 5
	r, err := Square(context.Background(), d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summarize()
	perSample := float64(r.Queries-int64(2*x.N())) / float64(x.N())
	t.Logf("Square L∞ eps=%.2f: success %.2f, mean %.0f queries/sample (budget %d), linf max %.3f, l2 median %.3f",
		p.Eps, r.SuccessRate, perSample, p.MaxQueries, s.Linf.Max, s.L2.Median)
	if r.SuccessRate < 0.8 {
		t.Fatalf("Square success %.2f < 0.8", r.SuccessRate)
	}
	checkBall(t, x, r.Adversarial, "inf", p.Eps, 0, 1)
	if perSample > float64(p.MaxQueries) {
		t.Fatalf("Square used %.0f queries/sample > budget", perSample)
	}
	// Random ±ε noise of the same L∞ norm (the Square init alone) is far weaker.
	p.MaxQueries = 1
	r0, err := Square(context.Background(), d.model, Input{X: x, Labels: y}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Square stripes init only: success %.2f", r0.SuccessRate)
	if r0.SuccessRate > r.SuccessRate-0.3 {
		t.Fatalf("random search added little over its initialisation: %.2f vs %.2f", r.SuccessRate, r0.SuccessRate)
	}
}

// cancelAfter cancels the context after n Predict/LossGradient calls.
type cancelAfter struct {
	*mlp
	n      int64
	cancel context.CancelFunc
	seen   int64
}

func (c *cancelAfter) Predict(ctx context.Context, x Batch) ([][]float32, error) {
	c.seen++
	if c.seen == c.n {
		c.cancel()
	}
	return c.mlp.Predict(ctx, x)
}

func (c *cancelAfter) LossGradient(ctx context.Context, x Batch, y []int) (Batch, []float32, error) {
	c.seen++
	if c.seen == c.n {
		c.cancel()
	}
	return c.mlp.LossGradient(ctx, x, y)
}

func TestCancellation(t *testing.T) {
	d := digits(t)
	x, y := d.correct(20)
	runs := map[string]func(ctx context.Context, m GradientClassifier) (*Result, error){
		"pgd": func(ctx context.Context, m GradientClassifier) (*Result, error) {
			p := DefaultPGDParams()
			p.MaxIter = 1000000
			return PGD(ctx, m, Input{X: x, Labels: y}, p, nil)
		},
		"hsja": func(ctx context.Context, m GradientClassifier) (*Result, error) {
			p := DefaultHopSkipJumpParams()
			p.MaxIter, p.MaxQueries = 100000, 0
			return HopSkipJump(ctx, m, Input{X: x, Labels: y}, p, nil)
		},
		"square": func(ctx context.Context, m GradientClassifier) (*Result, error) {
			p := DefaultSquareParams()
			p.Eps, p.MaxQueries = 0.001, 10000000
			return Square(ctx, m, Input{X: x, Labels: y}, p, nil)
		},
	}
	for name, run := range runs {
		ctx, cancel := context.WithCancel(context.Background())
		m := &cancelAfter{mlp: d.model, n: 20, cancel: cancel}
		start := time.Now()
		_, err := run(ctx, m)
		el := time.Since(start)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", name, err)
		}
		if m.seen > 22 || el > 2*time.Second {
			t.Errorf("%s: kept going after cancellation: %d model calls, %v", name, m.seen, el)
		}
	}
	// A deadline stops a long attack promptly too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	p := DefaultPGDParams()
	p.MaxIter = 1 << 30
	_, err := PGD(ctx, d.model, Input{X: x, Labels: y}, p, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("PGD with 50ms deadline: err %v after %v", err, time.Since(start))
	}
}

func TestProgressAndValidation(t *testing.T) {
	d := digits(t)
	x, y := d.correct(5)
	var last int
	var calls int
	p := DefaultPGDParams()
	p.MaxIter = 50
	_, err := PGD(context.Background(), d.model, Input{X: x, Labels: y}, p, func(pct int, stage string) {
		if pct < last {
			t.Errorf("progress went backwards: %d after %d", pct, last)
		}
		last = pct
		calls++
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != 100 || calls < 3 || calls > 30 {
		t.Errorf("progress: last %d after %d calls", last, calls)
	}
	if _, err := PGD(context.Background(), d.model, Input{X: Batch{Data: x.Data[:10], Shape: x.Shape}}, p, nil); err == nil {
		t.Error("bad batch shape accepted")
	}
	bad := p
	bad.Norm = "1"
	if _, err := PGD(context.Background(), d.model, Input{X: x}, bad, nil); err == nil {
		t.Error("unknown norm accepted")
	}
	bad = p
	bad.Targeted, bad.TargetLabel = true, 12
	if _, err := PGD(context.Background(), d.model, Input{X: x}, bad, nil); err == nil {
		t.Error("out-of-range target accepted")
	}
}
