package analysis

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"strings"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// featureBox is each column's observed range in the data and whether all
// its values are integers.
type featureBox struct {
	lo, hi  []float32
	integer []bool
}

// columnRanges measures the columns of an [N, F] table.
func columnRanges(x attacks.Batch) featureBox {
	f := x.SampleSize()
	b := featureBox{lo: make([]float32, f), hi: make([]float32, f), integer: make([]bool, f)}
	copy(b.lo, x.Sample(0))
	copy(b.hi, x.Sample(0))
	for j := range b.integer {
		b.integer[j] = true
	}
	for i := 0; i < x.N(); i++ {
		for j, v := range x.Sample(i) {
			b.lo[j], b.hi[j] = min(b.lo[j], v), max(b.hi[j], v)
			if b.integer[j] && float64(v) != math.Round(float64(v)) {
				b.integer[j] = false
			}
		}
	}
	return b
}

// project maps the continuous iterate s into the ball of radius eps (a
// fraction of each feature's range) around x0 and into each feature's
// [lo, hi], and writes to out the point the model sees: s with integer
// columns rounded, towards x0 when rounding would leave the ball.
func (b featureBox) project(x0, s, out []float32, eps float64) {
	for j := range s {
		r := float32(eps) * (b.hi[j] - b.lo[j])
		s[j] = clampf(x0[j]+clampf(s[j]-x0[j], -r, r), b.lo[j], b.hi[j])
		out[j] = s[j]
		if b.integer[j] {
			v := float32(math.Round(float64(s[j])))
			if d := v - x0[j]; d > r || d < -r {
				v -= signf(d)
			}
			out[j] = clampf(v, b.lo[j], b.hi[j])
		}
	}
}

// tableAttack attacks one chunk of rows: sign-gradient steps of the
// cross-entropy, each of 2.5·ε/steps (FGSM: one of ε) times the feature's
// range, projected by featureBox.project. Gradients and the result are
// taken at the rounded point.
func tableAttack(ctx context.Context, v Victim, b featureBox, x0 attacks.Batch, labels []int, p jobs.AnalysisParams, eps float64) (attacks.Batch, error) {
	steps, alpha := p.Steps, pgdStep(eps, p.Steps)
	if p.Attack == "fgsm" {
		steps, alpha = 1, eps
	}
	s, seen := x0.Clone(), x0.Clone()
	for it := 0; it < steps; it++ {
		grad, _, err := v.LossGradient(ctx, seen, labels)
		if err != nil {
			return attacks.Batch{}, err
		}
		for i := 0; i < x0.N(); i++ {
			si, gi := s.Sample(i), grad.Sample(i)
			for j := range si {
				si[j] += float32(alpha) * (b.hi[j] - b.lo[j]) * signf(gi[j])
			}
			b.project(x0.Sample(i), si, seen.Sample(i), eps)
		}
	}
	return seen, nil
}

// scaledNorms are the L∞ and L2 norms of a perturbation measured in
// fractions of each feature's range.
func (b featureBox) scaledNorms(x0, adv []float32) (linf, l2 float64) {
	for j := range x0 {
		r := float64(b.hi[j] - b.lo[j])
		if r <= 0 {
			continue
		}
		d := math.Abs(float64(adv[j]-x0[j])) / r
		linf = math.Max(linf, d)
		l2 += d * d
	}
	return linf, math.Sqrt(l2)
}

// evadeTable is EVA for tabular classifiers (TC).
func evadeTable(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	if len(ds.X.Shape) != 2 {
		return r, fmt.Errorf("%w: a table must be [N, F], have %v", ais.ErrUserData, ds.X.Shape)
	}
	cs, err := newClassifierCurve(ctx, v, ds, p, env)
	if err != nil {
		return r, err
	}
	box := columnRanges(ds.X)
	cs.norms = box.scaledNorms
	pts, shown, err := cs.run(ctx, v, p, env, "rows", func(lo, hi int, eps float64) (attacks.Batch, []bool, error) {
		adv, err := tableAttack(ctx, v, box, cs.chunk(lo, hi), cs.labels[lo:hi], p, eps)
		if err != nil {
			return attacks.Batch{}, nil, err
		}
		probs, err := v.Predict(ctx, adv)
		if err != nil {
			return attacks.Batch{}, nil, fmt.Errorf("predict the adversarial rows: %w", err)
		}
		ok := make([]bool, len(probs))
		for j := range probs {
			ok[j] = argmax(probs[j]) != cs.labels[lo+j]
		}
		return adv, ok, nil
	})
	if err != nil {
		return r, err
	}
	idx, acc, n, x0, labels := cs.idx, cs.acc, len(cs.idx), cs.x0, cs.labels
	r.Metrics = classifierMetrics(acc, n, ds.N())
	var ints []string
	for j, ok := range box.integer {
		if ok {
			ints = append(ints, featureName(ds, j))
		}
	}
	r.Metrics = append(r.Metrics, jobs.Metric{Name: "integer_features", Value: float64(len(ints)), Unit: "features",
		Help: "Columns whose values are all integers in the data; the attack keeps them integers."})
	evaCurves(&r, pts, "fraction of each feature's range", "robust_accuracy",
		"Estimated accuracy on the data under attack: clean accuracy × (1 − success rate); misclassified samples count as already fooled.", true)
	r.Notes = append(r.Notes,
		fmt.Sprintf("Tabular attack: ε is a fraction of each feature's range observed in the data (min to max per column). %s, untargeted, L∞ in that scaled space (a step moves each feature by its step size times its range), every value kept within its column's [min, max]. The iterate stays continuous; the point the model sees after each step has its integer-valued columns (%s) rounded (towards the original value where rounding would leave the ε budget), and gradients and success are taken at that rounded point. Norms are measured in fractions of the range.",
			tableSteps(p), orNone(ints)),
		monotoneNote)
	env.progress(96, "listing_samples")
	if err := tableSamples(ctx, &r, ds, idx, x0, labels, shown, env); err != nil {
		return r, err
	}
	env.progress(100, "completed")
	return r, nil
}

// tableSteps describes the tabular attack's steps.
func tableSteps(p jobs.AnalysisParams) string {
	if p.Attack == "fgsm" {
		return "FGSM: one sign-gradient step of size ε"
	}
	return fmt.Sprintf("PGD: %d sign-gradient steps of size 2.5·ε/%d from the clean row (no random start)", p.Steps, p.Steps)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// featureName names column j.
func featureName(ds *ais.Dataset, j int) string {
	if j < len(ds.Features) && ds.Features[j] != "" {
		return ds.Features[j]
	}
	return fmt.Sprintf("feature %d", j)
}

// tableSamples lists the features the shown adversarial rows change: a
// note per row and a CSV artifact with every change.
func tableSamples(ctx context.Context, r *jobs.AnalysisResult, ds *ais.Dataset, idx []int, x0 attacks.Batch, labels []int, shown []shownExample, env Env) error {
	if len(shown) == 0 {
		return nil
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"sample", "epsilon", "true_class", "adversarial_class", "feature", "original", "adversarial"})
	for _, s := range shown {
		name := sampleName(ds, idx[s.i])
		var changes []string
		for j, a := range s.adv {
			o := x0.Sample(s.i)[j]
			if a == o {
				continue
			}
			changes = append(changes, fmt.Sprintf("%s %g → %g", featureName(ds, j), o, a))
			_ = w.Write([]string{name, fmt.Sprint(s.eps), className(ds, labels[s.i]), className(ds, s.pred), featureName(ds, j), fmt.Sprint(o), fmt.Sprint(a)})
		}
		r.Notes = append(r.Notes, fmt.Sprintf("Example: %s, %s → %s at ε = %g: %s.", name, className(ds, labels[s.i]), className(ds, s.pred), s.eps, strings.Join(changes, ", ")))
	}
	w.Flush()
	if env.Artifact == nil {
		return nil
	}
	name, err := env.Artifact(ctx, "eva_adversarial_rows.csv", "text/csv", buf.Bytes())
	if err != nil {
		return fmt.Errorf("store the adversarial rows: %w", err)
	}
	r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "text/csv",
		Description: "The example adversarial rows: each feature the attack changed, its original and adversarial value."})
	return nil
}
