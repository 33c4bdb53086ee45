package analysis

import (
	"context"
	"fmt"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// classifierCurve is the robustness curve of a classifier (IC, TC): the
// correctly classified samples drawn for the attack, their clean answers,
// and how perturbations are measured.
type classifierCurve struct {
	idx    []int         // attacked samples (indices into the data)
	acc    float64       // clean accuracy on the whole data
	clean  [][]float32   // clean probabilities of the attacked samples
	x0     attacks.Batch // the attacked samples
	labels []int         // their labels
	norms  func(clean, adv []float32) (linf, l2 float64)
}

// newClassifierCurve draws the samples to attack.
func newClassifierCurve(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (*classifierCurve, error) {
	env.progress(2, "predicting_clean")
	idx, acc, clean, err := correctSamples(ctx, v, ds, p.Samples, p.Seed)
	if err != nil {
		return nil, err
	}
	c := &classifierCurve{idx: idx, acc: acc, clean: clean, x0: subset(ds.X, idx), labels: make([]int, len(idx))}
	for j, i := range idx {
		c.labels[j] = ds.Labels[i]
	}
	return c, nil
}

// chunk is the attacked samples lo to hi (sharing memory).
func (c *classifierCurve) chunk(lo, hi int) attacks.Batch {
	s := c.x0.SampleSize()
	return attacks.Batch{Data: c.x0.Data[lo*s : hi*s], Shape: append([]int{hi - lo}, c.x0.Shape[1:]...)}
}

// run attacks the samples at every ε, in chunks, with attack (which
// returns a chunk's adversarial examples and which of them fooled the
// model). A sample fooled at a smaller ε keeps that example when the
// attack at a larger one fails (the smaller ball lies in the larger).
// Each point is measured with a fresh prediction of the best examples.
func (c *classifierCurve) run(ctx context.Context, v Victim, p jobs.AnalysisParams, env Env, what string,
	attack func(lo, hi int, eps float64) (attacks.Batch, []bool, error)) ([]evaPoint, []shownExample, error) {
	n := len(c.idx)
	best := c.x0.Clone()
	fooled := make([]bool, n)
	var (
		pts   []evaPoint
		shown []shownExample
	)
	for ei, eps := range p.Epsilons {
		env.progress(5+90*ei/len(p.Epsilons), fmt.Sprintf("attacking eps=%g", eps))
		for lo := 0; eps > 0 && lo < n; lo += evaChunk {
			hi := min(lo+evaChunk, n)
			adv, ok, err := attack(lo, hi, eps)
			if err != nil {
				return nil, nil, fmt.Errorf("%s at ε=%g: %w", p.Attack, eps, err)
			}
			for j, success := range ok {
				if success || !fooled[lo+j] {
					copy(best.Sample(lo+j), adv.Sample(j))
				}
			}
		}
		probs, err := v.Predict(ctx, best)
		if err != nil {
			return nil, nil, fmt.Errorf("predict the adversarial %s at ε=%g: %w", what, eps, err)
		}
		pt := evaPoint{eps: eps}
		linf, l2 := make([]float64, n), make([]float64, n)
		for j := range probs {
			pred := argmax(probs[j])
			was := fooled[j]
			fooled[j] = pred != c.labels[j]
			pt.confDrop += float64(probability(c.clean[j], c.labels[j]) - probability(probs[j], c.labels[j]))
			linf[j], l2[j] = c.norms(c.x0.Sample(j), best.Sample(j))
			if fooled[j] && !was && len(shown) < evaShown {
				shown = append(shown, shownExample{i: j, eps: eps, adv: append([]float32(nil), best.Sample(j)...), pred: pred})
			}
		}
		pt.success = attacks.SuccessRate(fooled)
		pt.robust = c.acc * (1 - pt.success)
		pt.confDrop /= float64(n)
		pt.linf, pt.l2 = meanOf(linf, fooled), meanOf(l2, fooled)
		pts = append(pts, pt)
	}
	return pts, shown, nil
}
