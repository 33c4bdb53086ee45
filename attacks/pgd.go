package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// PGDParams configures Projected Gradient Descent (Madry et al. 2018).
type PGDParams struct {
	Common
	// Norm is "inf" (L∞) or "2" (L2).
	Norm    string  `json:"norm"`
	Eps     float32 `json:"epsilon"`      // ART: eps
	EpsStep float32 `json:"epsilon_step"` // ART: eps_step
	MaxIter int     `json:"max_iter"`
	// NumRandomInit is the number of random restarts, each starting
	// uniformly inside the ε-ball; 0 starts once from x itself.
	NumRandomInit int `json:"num_random_init"`
	// EarlyStop freezes a sample as soon as it is adversarial (costs one
	// Predict pass per iteration).
	EarlyStop bool `json:"early_stop"`
}

// DefaultPGDParams mirrors the catalog defaults.
func DefaultPGDParams() PGDParams {
	return PGDParams{Common: Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1}, Norm: "inf", Eps: 0.3, EpsStep: 0.1, MaxIter: 100}
}

// PGD iterates x ← Π_{B(x0,ε) ∩ [clip_min,clip_max]}(x + α·step(∇x L)) where
// step is sign(g) for L∞ and g/‖g‖₂ for L2 (negated when targeted). With
// several random restarts a sample keeps the first successful restart's
// result (or the last restart's when none succeeds).
func PGD(ctx context.Context, clf GradientClassifier, in Input, p PGDParams, progress Progress) (*Result, error) {
	if p.Norm != "inf" && p.Norm != "2" {
		return nil, fmt.Errorf(`attacks: norm must be "inf" or "2", have %q`, p.Norm)
	}
	if !(p.Eps >= 0) || !(p.EpsStep > 0) || p.MaxIter < 1 || p.NumRandomInit < 0 {
		return nil, fmt.Errorf("attacks: need epsilon >= 0, epsilon_step > 0, max_iter >= 1, num_random_init >= 0")
	}
	c := &counter{clf: clf}
	labels, targets, clean, err := resolveLabels(ctx, c, in, p.Common)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	n := in.X.N()
	goal, dir := labels, float32(1)
	if targets != nil {
		goal, dir = targets, -1
	}
	restarts := max(p.NumRandomInit, 1)
	best := in.X.Clone()
	done := make([]bool, n) // a restart already succeeded for this sample
	total := restarts * p.MaxIter
	for r := 0; r < restarts; r++ {
		// Samples still to attack in this restart.
		var idx []int
		for i := 0; i < n; i++ {
			if !done[i] {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		x0 := in.X.subBatch(idx)
		adv := x0.Clone()
		if p.NumRandomInit > 0 {
			for k := range idx {
				randomStart(rng, adv.Sample(k), p.Norm, p.Eps)
				project(x0.Sample(k), adv.Sample(k), p.Norm, p.Eps, p.ClipMin, p.ClipMax)
			}
		}
		g := make([]int, len(idx))
		for k, i := range idx {
			g[k] = goal[i]
		}
		active := make([]bool, len(idx))
		for k := range active {
			active[k] = true
		}
		for it := 0; it < p.MaxIter; it++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var act []int
			for k, a := range active {
				if a {
					act = append(act, k)
				}
			}
			if len(act) == 0 {
				break
			}
			xa := adv.subBatch(act)
			ga := make([]int, len(act))
			for j, k := range act {
				ga[j] = g[k]
			}
			grad, _, err := c.gradient(ctx, xa, ga)
			if err != nil {
				return nil, err
			}
			for j, k := range act {
				s := adv.Sample(k)
				gs := grad.Sample(j)
				if p.Norm == "inf" {
					for q := range s {
						s[q] += dir * p.EpsStep * sign(gs[q])
					}
				} else {
					var nn float64
					for _, v := range gs {
						nn += float64(v) * float64(v)
					}
					if nn > 0 {
						f := dir * p.EpsStep / float32(math.Sqrt(nn))
						for q := range s {
							s[q] += f * gs[q]
						}
					}
				}
				project(x0.Sample(k), s, p.Norm, p.Eps, p.ClipMin, p.ClipMax)
			}
			if p.EarlyStop {
				preds, _, err := c.labels(ctx, adv.subBatch(act))
				if err != nil {
					return nil, err
				}
				for j, k := range act {
					if isSuccess(preds[j], labels[idx[k]], targets, idx[k]) {
						active[k] = false
					}
				}
			}
			if it%5 == 0 {
				progress.report((r*p.MaxIter+it)*100/total, "iterating")
			}
		}
		preds, _, err := c.labels(ctx, adv)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			copy(best.Sample(i), adv.Sample(k))
			if isSuccess(preds[k], labels[i], targets, i) {
				done[i] = true
			}
		}
	}
	progress.report(99, "evaluating")
	res, err := finish(ctx, c, in.X, best, labels, targets, clean)
	if err != nil {
		return nil, err
	}
	progress.report(100, "completed")
	return res, nil
}

// randomStart adds a perturbation drawn uniformly from the ε-ball to s.
func randomStart(rng *rand.Rand, s []float32, norm string, eps float32) {
	if norm == "inf" {
		for q := range s {
			s[q] += eps * (2*rng.Float32() - 1)
		}
		return
	}
	// Uniform in the L2 ball: Gaussian direction, radius ε·u^(1/d).
	dir := make([]float64, len(s))
	var nn float64
	for q := range dir {
		dir[q] = rng.NormFloat64()
		nn += dir[q] * dir[q]
	}
	rad := float64(eps) * math.Pow(rng.Float64(), 1/float64(len(s))) / math.Sqrt(nn)
	for q := range s {
		s[q] += float32(dir[q] * rad)
	}
}

// project maps s into the ε-ball around x0 and then into the clip range.
// Clipping after the ball projection cannot leave the ball when x0 is inside
// the clip range, because it only moves coordinates towards x0.
func project(x0, s []float32, norm string, eps, lo, hi float32) {
	if norm == "inf" {
		for q := range s {
			s[q] = clip(x0[q]+clip(s[q]-x0[q], -eps, eps), lo, hi)
		}
		return
	}
	var nn float64
	for q := range s {
		d := float64(s[q]) - float64(x0[q])
		nn += d * d
	}
	if n := math.Sqrt(nn); n > float64(eps) {
		f := float64(eps) / n * (1 - 1e-6) // stay strictly inside despite float32 rounding
		for q := range s {
			s[q] = x0[q] + float32((float64(s[q])-float64(x0[q]))*f)
		}
	}
	for q := range s {
		s[q] = clip(s[q], lo, hi)
	}
}
