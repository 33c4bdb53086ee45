package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// SquareParams configures the L∞ Square Attack (Andriushchenko, Croce,
// Flammarion, Hein 2020), a score-based random search.
type SquareParams struct {
	Common
	Eps float32 `json:"epsilon"` // ART: eps
	// MaxQueries is the per-sample Predict budget, including the
	// initialisation query.
	MaxQueries int `json:"max_queries"`
	// PInit is the initial fraction of the input changed by one square;
	// it is halved on the schedule of the paper.
	PInit float64 `json:"p_init"`
}

// DefaultSquareParams mirrors the catalog defaults.
func DefaultSquareParams() SquareParams {
	return SquareParams{Common: Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1}, Eps: 0.05, MaxQueries: 1000, PInit: 0.05}
}

// margin is the margin loss on log-probabilities (equal to the logit margin
// because log-softmax shifts all logits by the same constant): untargeted
// log p_y − max_{j≠y} log p_j, targeted max_{j≠t} log p_j − log p_t.
// The attack succeeds once it is negative.
func margin(p []float32, y int, targeted bool) float64 {
	lp := func(v float32) float64 { return math.Log(float64(v) + 1e-30) }
	other := math.Inf(-1)
	for j, v := range p {
		if j != y && lp(v) > other {
			other = lp(v)
		}
	}
	if targeted {
		return other - lp(p[y])
	}
	return lp(p[y]) - other
}

// pSchedule is the paper's piece-wise constant schedule for the fraction of
// pixels changed, rescaled to a budget of n iterations.
func pSchedule(pInit float64, it, n int) float64 {
	i := int(float64(it) / float64(n) * 10000)
	switch {
	case i <= 10:
		return pInit
	case i <= 50:
		return pInit / 2
	case i <= 200:
		return pInit / 4
	case i <= 500:
		return pInit / 8
	case i <= 1000:
		return pInit / 16
	case i <= 2000:
		return pInit / 32
	case i <= 4000:
		return pInit / 64
	case i <= 6000:
		return pInit / 128
	case i <= 8000:
		return pInit / 256
	}
	return pInit / 512
}

// Square runs the L∞ Square Attack. It starts from vertical stripes of ±ε and
// then, one query per iteration and sample, re-draws the perturbation inside
// a random square window (per channel ±ε), keeping the change only when the
// margin loss decreases. A sample stops once it is adversarial or its query
// budget is spent. Sample shapes [C,H,W], [H,W] and [F] (windows become
// contiguous segments) are supported.
func Square(ctx context.Context, clf Classifier, in Input, p SquareParams, progress Progress) (*Result, error) {
	if !(p.Eps > 0) || p.MaxQueries < 1 || !(p.PInit > 0 && p.PInit <= 1) {
		return nil, fmt.Errorf("attacks: need epsilon > 0, max_queries >= 1, 0 < p_init <= 1")
	}
	c := &counter{clf: clf}
	labels, targets, clean, err := resolveLabels(ctx, c, in, p.Common)
	if err != nil {
		return nil, err
	}
	ch, h, w := 1, 1, in.X.SampleSize()
	switch s := in.X.Shape[1:]; len(s) {
	case 3:
		ch, h, w = s[0], s[1], s[2]
	case 2:
		h, w = s[0], s[1]
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0xda3e39cb94b95bdb))
	n := in.X.N()
	goal := labels
	if targets != nil {
		goal = targets
	}
	lossOf := func(pr [][]float32, idx []int) []float64 {
		out := make([]float64, len(idx))
		for k, i := range idx {
			out[k] = margin(pr[k], goal[i], targets != nil)
		}
		return out
	}

	// Initialisation: vertical stripes.
	adv := in.X.Clone()
	for i := 0; i < n; i++ {
		x, s := in.X.Sample(i), adv.Sample(i)
		for c := 0; c < ch; c++ {
			for col := 0; col < w; col++ {
				v := p.Eps
				if rng.IntN(2) == 0 {
					v = -p.Eps
				}
				for r := 0; r < h; r++ {
					q := (c*h+r)*w + col
					s[q] = clip(x[q]+v, p.ClipMin, p.ClipMax)
				}
			}
		}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	pr, err := c.predict(ctx, adv)
	if err != nil {
		return nil, err
	}
	loss := lossOf(pr, all)
	used := 1
	cand := make([]float32, in.X.SampleSize())
	for it := 1; used < p.MaxQueries; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var act []int
		for i := 0; i < n; i++ {
			if loss[i] >= 0 {
				act = append(act, i)
			}
		}
		if len(act) == 0 {
			break
		}
		frac := pSchedule(p.PInit, it, p.MaxQueries)
		var wh, ww int
		if h == 1 {
			wh, ww = 1, max(1, min(w, int(math.Round(frac*float64(w)))))
		} else {
			side := int(math.Round(math.Sqrt(frac * float64(h*w))))
			side = max(1, min(side, h-1, w-1))
			wh, ww = side, side
		}
		trial := Batch{Data: make([]float32, 0, len(act)*len(cand)), Shape: append([]int{len(act)}, in.X.Shape[1:]...)}
		for _, i := range act {
			x, s := in.X.Sample(i), adv.Sample(i)
			copy(cand, s)
			r0, c0 := rng.IntN(h-wh+1), rng.IntN(w-ww+1)
			for try := 0; try < 10; try++ {
				for c := 0; c < ch; c++ {
					v := p.Eps
					if rng.IntN(2) == 0 {
						v = -p.Eps
					}
					for r := r0; r < r0+wh; r++ {
						for col := c0; col < c0+ww; col++ {
							q := (c*h+r)*w + col
							cand[q] = clip(x[q]+v, p.ClipMin, p.ClipMax)
						}
					}
				}
				if !windowUnchanged(cand, s, ch, h, w, r0, c0, wh, ww) {
					break
				}
			}
			trial.Data = append(trial.Data, cand...)
		}
		pr, err := c.predict(ctx, trial)
		if err != nil {
			return nil, err
		}
		used++
		nl := lossOf(pr, act)
		for k, i := range act {
			if nl[k] < loss[i] {
				loss[i] = nl[k]
				copy(adv.Sample(i), trial.Sample(k))
			}
		}
		if it%20 == 0 {
			progress.report(used*100/p.MaxQueries, "iterating")
		}
	}
	progress.report(99, "evaluating")
	r, err := finish(ctx, c, in.X, adv, labels, targets, clean)
	if err != nil {
		return nil, err
	}
	progress.report(100, "completed")
	return r, nil
}

func windowUnchanged(a, b []float32, ch, h, w, r0, c0, wh, ww int) bool {
	for c := 0; c < ch; c++ {
		for r := r0; r < r0+wh; r++ {
			for col := c0; col < c0+ww; col++ {
				q := (c*h+r)*w + col
				if d := a[q] - b[q]; d > 1e-7 || d < -1e-7 {
					return false
				}
			}
		}
	}
	return true
}
