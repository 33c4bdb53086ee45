package attacks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// HopSkipJumpParams configures the L2 HopSkipJumpAttack (Chen, Jordan,
// Wainwright 2020). Only the argmax of Predict is used.
type HopSkipJumpParams struct {
	Common
	// MaxIter is the number of gradient-estimation/step/binary-search rounds.
	MaxIter int `json:"max_iter"`
	// MaxEval caps the Monte-Carlo samples of one gradient estimate.
	MaxEval int `json:"max_eval"`
	// InitEval is the Monte-Carlo sample count of the first round; round t
	// uses InitEval·√t.
	InitEval int `json:"init_eval"`
	// InitSize is the number of random-noise draws tried to find a starting
	// adversarial point when Input.Starts is nil.
	InitSize int `json:"init_size"`
	// MaxQueries is the per-sample Predict budget (0 = unlimited).
	MaxQueries int `json:"max_queries"`
	// Gamma sets the binary-search threshold θ = γ/d^{3/2}.
	Gamma float64 `json:"gamma"`
}

// DefaultHopSkipJumpParams mirrors the catalog defaults.
func DefaultHopSkipJumpParams() HopSkipJumpParams {
	return HopSkipJumpParams{Common: Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1}, MaxIter: 50, MaxEval: 1000, InitEval: 100, InitSize: 100, MaxQueries: 5000, Gamma: 1}
}

// HopSkipJump runs the decision-based attack sample by sample. Each sample
// starts from Input.Starts (if given) or from uniform noise that the model
// already classifies as adversarial, is moved to the decision boundary by
// binary search, and then repeats: estimate the boundary normal by
// Monte-Carlo sampling of ±1 decisions around the boundary point, take a
// geometrically shrinking step along it until the point is adversarial
// again, and binary-search back towards the original. The returned point is
// always on the adversarial side when a start was found.
func HopSkipJump(ctx context.Context, clf Classifier, in Input, p HopSkipJumpParams, progress Progress) (*Result, error) {
	if p.MaxIter < 0 || p.MaxEval < 1 || p.InitEval < 1 || p.InitSize < 1 || p.MaxQueries < 0 || !(p.Gamma > 0) {
		return nil, fmt.Errorf("attacks: need max_iter >= 0, max_eval >= 1, init_eval >= 1, init_size >= 1, max_queries >= 0, gamma > 0")
	}
	c := &counter{clf: clf}
	labels, targets, clean, err := resolveLabels(ctx, c, in, p.Common)
	if err != nil {
		return nil, err
	}
	if in.Starts != nil && len(in.Starts.Data) != len(in.X.Data) {
		return nil, fmt.Errorf("attacks: starting batch has %d values, input %d", len(in.Starts.Data), len(in.X.Data))
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x5851f42d4c957f2d))
	adv := in.X.Clone()
	n := in.X.N()
	for i := 0; i < n; i++ {
		progress.report(i*100/n, "iterating")
		h := &hsja{c: c, p: p, rng: rng, shape: append([]int{1}, in.X.Shape[1:]...), label: labels[i]}
		if targets != nil {
			h.target, h.targeted = targets[i], true
		}
		var start []float32
		if in.Starts != nil {
			start = in.Starts.Sample(i)
		}
		out, err := h.run(ctx, in.X.Sample(i), start)
		if err != nil {
			return nil, err
		}
		copy(adv.Sample(i), out)
	}
	progress.report(99, "evaluating")
	r, err := finish(ctx, c, in.X, adv, labels, targets, clean)
	if err != nil {
		return nil, err
	}
	progress.report(100, "completed")
	return r, nil
}

type hsja struct {
	c        *counter
	p        HopSkipJumpParams
	rng      *rand.Rand
	shape    []int
	label    int
	target   int
	targeted bool
	used     int
}

// decide queries the model on points (each a sample) and reports which are
// adversarial. It refuses to exceed the per-sample budget.
func (h *hsja) decide(ctx context.Context, pts [][]float32) ([]bool, error) {
	if h.p.MaxQueries > 0 && h.used+len(pts) > h.p.MaxQueries {
		return nil, ErrBudgetExhausted
	}
	d := len(pts[0])
	b := Batch{Data: make([]float32, 0, len(pts)*d), Shape: append([]int{len(pts)}, h.shape[1:]...)}
	for _, q := range pts {
		b.Data = append(b.Data, q...)
	}
	preds, _, err := h.c.labels(ctx, b)
	if err != nil {
		return nil, err
	}
	h.used += len(pts)
	out := make([]bool, len(preds))
	for i, pr := range preds {
		if h.targeted {
			out[i] = pr == h.target
		} else {
			out[i] = pr != h.label
		}
	}
	return out, nil
}

func (h *hsja) run(ctx context.Context, x, start []float32) ([]float32, error) {
	d := len(x)
	lo, hi := h.p.ClipMin, h.p.ClipMax
	theta := h.p.Gamma / (math.Sqrt(float64(d)) * float64(d))

	// Initialisation: a point the model already gets "wrong".
	var cur []float32
	if start != nil {
		ok, err := h.decide(ctx, [][]float32{start})
		if err != nil {
			return nil, err
		}
		if ok[0] {
			cur = append([]float32(nil), start...)
		}
	}
	for t := 0; cur == nil && t < h.p.InitSize; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		noise := make([]float32, d)
		for j := range noise {
			noise[j] = lo + (hi-lo)*h.rng.Float32()
		}
		ok, err := h.decide(ctx, [][]float32{noise})
		if errors.Is(err, ErrBudgetExhausted) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ok[0] {
			cur = noise
		}
	}
	if cur == nil {
		// No adversarial start: return the input unchanged (failure).
		return append([]float32(nil), x...), nil
	}
	cur, dist, err := h.binarySearch(ctx, x, cur, theta)
	if errors.Is(err, ErrBudgetExhausted) {
		return cur, nil
	}
	if err != nil {
		return nil, err
	}

	for t := 1; t <= h.p.MaxIter; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		delta := 0.1 * float64(hi-lo)
		if t > 1 {
			delta = math.Sqrt(float64(d)) * theta * dist
		}
		numEval := min(int(float64(h.p.InitEval)*math.Sqrt(float64(t))), h.p.MaxEval)
		grad, err := h.estimateGradient(ctx, cur, numEval, delta)
		if errors.Is(err, ErrBudgetExhausted) {
			break
		}
		if err != nil {
			return nil, err
		}
		// Geometric progression of the step size.
		eps := dist / math.Sqrt(float64(t))
		var next []float32
		for eps > theta*dist*1e-3 {
			cand := make([]float32, d)
			for j := range cand {
				cand[j] = clip(cur[j]+float32(eps*grad[j]), lo, hi)
			}
			ok, err := h.decide(ctx, [][]float32{cand})
			if errors.Is(err, ErrBudgetExhausted) {
				return cur, nil
			}
			if err != nil {
				return nil, err
			}
			if ok[0] {
				next = cand
				break
			}
			eps /= 2
		}
		if next == nil {
			break // no step keeps us adversarial; cur is the best we have
		}
		bs, bd, err := h.binarySearch(ctx, x, next, theta)
		if errors.Is(err, ErrBudgetExhausted) {
			// next is adversarial; keep it if it is closer.
			if nd := float64(L2Norm(x, next)); nd < dist {
				cur = next
			}
			break
		}
		if err != nil {
			return nil, err
		}
		cur, dist = bs, bd
	}
	return cur, nil
}

// binarySearch finds the point on segment [x, adv] closest to x that is
// still adversarial, to within theta (in blend coefficient).
func (h *hsja) binarySearch(ctx context.Context, x, adv []float32, theta float64) ([]float32, float64, error) {
	blend := func(a float64) []float32 {
		out := make([]float32, len(x))
		for j := range x {
			out[j] = float32((1-a)*float64(x[j]) + a*float64(adv[j]))
		}
		return out
	}
	low, high := 0.0, 1.0
	best := adv
	for high-low > theta {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		mid := (low + high) / 2
		m := blend(mid)
		ok, err := h.decide(ctx, [][]float32{m})
		if err != nil {
			return best, float64(L2Norm(x, best)), err
		}
		if ok[0] {
			high, best = mid, m
		} else {
			low = mid
		}
	}
	return best, float64(L2Norm(x, best)), nil
}

// estimateGradient returns a unit vector approximating the normal of the
// decision boundary at cur, pointing into the adversarial region.
func (h *hsja) estimateGradient(ctx context.Context, cur []float32, numEval int, delta float64) ([]float64, error) {
	d := len(cur)
	lo, hi := h.p.ClipMin, h.p.ClipMax
	if h.p.MaxQueries > 0 {
		// Leave room for at least a step and a short binary search.
		numEval = min(numEval, h.p.MaxQueries-h.used-12)
		if numEval < 2 {
			return nil, ErrBudgetExhausted
		}
	}
	rv := make([][]float64, numEval)
	pts := make([][]float32, numEval)
	for k := range rv {
		v := make([]float64, d)
		var nn float64
		for j := range v {
			v[j] = h.rng.NormFloat64()
			nn += v[j] * v[j]
		}
		nn = math.Sqrt(nn)
		pt := make([]float32, d)
		for j := range v {
			pt[j] = clip(cur[j]+float32(delta*v[j]/nn), lo, hi)
			v[j] = (float64(pt[j]) - float64(cur[j])) / delta // actual direction after clipping
		}
		rv[k], pts[k] = v, pt
	}
	const chunk = 256
	dec := make([]bool, 0, numEval)
	for s := 0; s < numEval; s += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := h.decide(ctx, pts[s:min(s+chunk, numEval)])
		if err != nil {
			return nil, err
		}
		dec = append(dec, ok...)
	}
	fval := make([]float64, numEval)
	var mean float64
	for k, ok := range dec {
		if ok {
			fval[k] = 1
		} else {
			fval[k] = -1
		}
		mean += fval[k]
	}
	mean /= float64(numEval)
	grad := make([]float64, d)
	for k := range rv {
		f := fval[k]
		if math.Abs(mean) < 1 {
			f -= mean // baseline reduces the estimator's variance
		}
		for j := range grad {
			grad[j] += f * rv[k][j]
		}
	}
	var nn float64
	for _, g := range grad {
		nn += g * g
	}
	nn = math.Sqrt(nn)
	if nn == 0 {
		return grad, nil
	}
	for j := range grad {
		grad[j] /= nn
	}
	return grad, nil
}
