package analysis

import (
	"context"
	"fmt"
	"math"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// gradientVictim lets the attacks package drive a classifier victim.
type gradientVictim struct {
	v Victim
	k int
}

var _ attacks.GradientClassifier = gradientVictim{}

func (g gradientVictim) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	return g.v.Predict(ctx, x)
}

func (g gradientVictim) NumClasses() int { return g.k }

func (g gradientVictim) LossGradient(ctx context.Context, x attacks.Batch, labels []int) (attacks.Batch, []float32, error) {
	return g.v.LossGradient(ctx, x, labels)
}

// pgdStep is PGD's step size for budget eps: 2.5·ε/steps (Madry et al.),
// so that the iterate can cross the ball and come back.
func pgdStep(eps float64, steps int) float64 { return 2.5 * eps / float64(steps) }

// imageAttack runs the chosen attack (untargeted, L∞, in [0,1], PGD from x
// itself, no random start) through the attacks package.
func imageAttack(ctx context.Context, clf attacks.GradientClassifier, in attacks.Input, p jobs.AnalysisParams, eps float64) (*attacks.Result, error) {
	com := attacks.Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1, Seed: uint64(p.Seed)}
	if p.Attack == "fgsm" {
		return attacks.FGSM(ctx, clf, in, attacks.FGSMParams{Common: com, Epsilon: float32(eps)}, nil)
	}
	return attacks.PGD(ctx, clf, in, attacks.PGDParams{Common: com, Norm: "inf", Eps: float32(eps),
		EpsStep: float32(pgdStep(eps, p.Steps)), MaxIter: p.Steps}, nil)
}

// shownExample is an adversarial example the report shows: sample i
// (index into the attacked samples), fooled first at eps into class pred.
type shownExample struct {
	i    int
	eps  float64
	adv  []float32
	pred int
}

// evadeImages is EVA for image classifiers (IC).
func evadeImages(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	if len(ds.X.Shape) != 4 {
		return r, fmt.Errorf("%w: images must be [N, C, H, W], have %v", ais.ErrUserData, ds.X.Shape)
	}
	cs, err := newClassifierCurve(ctx, v, ds, p, env)
	if err != nil {
		return r, err
	}
	cs.norms = func(a, b []float32) (float64, float64) {
		return float64(attacks.LinfNorm(a, b)), float64(attacks.L2Norm(a, b))
	}
	clf := gradientVictim{v: v, k: numClasses(v)}
	pts, shown, err := cs.run(ctx, v, p, env, "examples", func(lo, hi int, eps float64) (attacks.Batch, []bool, error) {
		res, err := imageAttack(ctx, clf, attacks.Input{X: cs.chunk(lo, hi), Labels: cs.labels[lo:hi]}, p, eps)
		if err != nil {
			return attacks.Batch{}, nil, err
		}
		return res.Adversarial, res.Success, nil
	})
	if err != nil {
		return r, err
	}
	idx, acc, n, x0, labels := cs.idx, cs.acc, len(cs.idx), cs.x0, cs.labels
	r.Metrics = classifierMetrics(acc, n, ds.N())
	evaCurves(&r, pts, "L∞ in the [0,1] pixel scale", "robust_accuracy",
		"Estimated accuracy on the data under attack: clean accuracy × (1 − success rate); misclassified samples count as already fooled.", true)
	r.Notes = append(r.Notes, attackNote(p), monotoneNote)
	env.progress(96, "rendering_samples")
	if err := imageSamples(ctx, &r, ds, idx, x0, labels, shown, env); err != nil {
		return r, err
	}
	env.progress(100, "completed")
	return r, nil
}

// classifierMetrics are the headline numbers about the data attacked.
func classifierMetrics(acc float64, used, total int) []jobs.Metric {
	return []jobs.Metric{
		{Name: "clean_accuracy", Value: acc, Unit: "ratio", Help: fmt.Sprintf("Accuracy of the model on all %d samples of the data, before any attack.", total)},
		{Name: "samples_attacked", Value: float64(used), Unit: "samples", Help: "Correctly classified samples the attack ran on, drawn at random (seeded) from the data."},
	}
}

// attackNote says which attack ran and how.
func attackNote(p jobs.AnalysisParams) string {
	if p.Attack == "fgsm" {
		return "Attack: FGSM (one step of ε·sign(gradient) of the cross-entropy), untargeted, L∞, clipped to the valid input range."
	}
	return fmt.Sprintf("Attack: PGD, untargeted, L∞, %d steps of size 2.5·ε/%d starting from the clean input (no random start, so a run is reproducible), projected onto the ε-ball and the valid input range.", p.Steps, p.Steps)
}

// probability is row[k] as a probability: rows that are not a
// distribution (logits) are soft-maxed first.
func probability(row []float32, k int) float32 {
	var s float64
	dist := true
	for _, v := range row {
		s += float64(v)
		dist = dist && v >= 0 && v <= 1
	}
	if dist && math.Abs(s-1) < 1e-3 {
		return row[k]
	}
	m := row[0]
	for _, v := range row {
		m = max(m, v)
	}
	var z float64
	for _, v := range row {
		z += math.Exp(float64(v - m))
	}
	return float32(math.Exp(float64(row[k]-m)) / z)
}

// imageSamples renders the shown examples (original, adversarial,
// amplified perturbation) as PNG artifacts.
func imageSamples(ctx context.Context, r *jobs.AnalysisResult, ds *ais.Dataset, idx []int, x0 attacks.Batch, labels []int, shown []shownExample, env Env) error {
	if len(shown) == 0 {
		return nil
	}
	if env.Artifact == nil {
		r.Notes = append(r.Notes, "No sample images: this run has no artifact store.")
		return nil
	}
	f := enlargeFactor(x0.Shape)
	for k, s := range shown {
		orig := enlarge(attacks.Batch{Data: x0.Sample(s.i), Shape: append([]int{1}, x0.Shape[1:]...)}, f)
		adv := enlarge(attacks.Batch{Data: s.adv, Shape: append([]int{1}, x0.Shape[1:]...)}, f)
		images := map[string]string{}
		for _, im := range []struct {
			what   string
			render func() ([]byte, error)
		}{
			{"original", func() ([]byte, error) { return attacks.RenderPNG(orig, 0, 0, 1) }},
			{"adversarial", func() ([]byte, error) { return attacks.RenderPNG(adv, 0, 0, 1) }},
			{"perturbation", func() ([]byte, error) { return attacks.RenderPerturbationPNG(orig, adv, 0) }},
		} {
			b, err := im.render()
			if err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("No sample images: %v.", err))
				return nil
			}
			name, err := env.Artifact(ctx, fmt.Sprintf("eva_sample_%d_%s.png", k+1, im.what), "image/png", b)
			if err != nil {
				return fmt.Errorf("store a sample image: %w", err)
			}
			images[im.what] = name
		}
		r.Samples = append(r.Samples, jobs.Sample{Images: images, Caption: fmt.Sprintf("%s: %s → %s at ε = %g (perturbation amplified)",
			sampleName(ds, idx[s.i]), className(ds, labels[s.i]), className(ds, s.pred), s.eps)})
	}
	return nil
}

// enlargeFactor scales small images up to about 64 pixels a side.
func enlargeFactor(shape []int) int {
	side := min(shape[len(shape)-1], shape[len(shape)-2])
	return max(1, min(8, 64/max(side, 1)))
}

// enlarge repeats each pixel of a one-sample [1, C, H, W] batch f×f times.
func enlarge(x attacks.Batch, f int) attacks.Batch {
	if f <= 1 || len(x.Shape) != 4 {
		return x
	}
	c, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	out := attacks.Batch{Data: make([]float32, c*h*w*f*f), Shape: []int{1, c, h * f, w * f}}
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h*f; y++ {
			for xx := 0; xx < w*f; xx++ {
				out.Data[(ch*h*f+y)*w*f+xx] = x.Data[(ch*h+y/f)*w+xx/f]
			}
		}
	}
	return out
}
