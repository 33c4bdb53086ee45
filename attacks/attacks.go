// Package attacks implements adversarial-example generation for Warden:
// white-box gradient attacks (FGSM, PGD), black-box attacks that only query a
// model (HopSkipJump, decision-based; Square Attack, score-based) and a
// TextFooler-style word-substitution attack for text classifiers.
//
// The package is pure Go (no cgo, no tensor library). A model backend — the
// libtorch worker, a remote endpoint, or the small test models in this
// package's tests — implements Classifier, GradientClassifier or
// TextClassifier, and the attacks drive it through those interfaces only.
// The API imports Catalog and ValidateParams without linking any backend.
package attacks

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Batch is a dense float32 tensor holding a batch of inputs. Shape[0] is the
// batch size N; the remaining dimensions are one sample (C×H×W for images in
// NCHW order, or F features). Data is row-major with len(Data) equal to the
// product of Shape.
type Batch struct {
	Data  []float32
	Shape []int
}

// N is the number of samples in the batch.
func (b Batch) N() int {
	if len(b.Shape) == 0 {
		return 0
	}
	return b.Shape[0]
}

// SampleSize is the number of values in one sample.
func (b Batch) SampleSize() int {
	if len(b.Shape) == 0 {
		return 0
	}
	n := 1
	for _, d := range b.Shape[1:] {
		n *= d
	}
	return n
}

// Sample returns the i-th sample's values (a sub-slice sharing memory).
func (b Batch) Sample(i int) []float32 {
	s := b.SampleSize()
	return b.Data[i*s : (i+1)*s]
}

// Clone returns a deep copy.
func (b Batch) Clone() Batch {
	return Batch{Data: append([]float32(nil), b.Data...), Shape: append([]int(nil), b.Shape...)}
}

// Validate checks that Shape and Data agree.
func (b Batch) Validate() error {
	if len(b.Shape) < 2 {
		return fmt.Errorf("attacks: batch shape %v must have at least 2 dimensions (N, features...)", b.Shape)
	}
	n := 1
	for _, d := range b.Shape {
		if d <= 0 {
			return fmt.Errorf("attacks: batch shape %v has a non-positive dimension", b.Shape)
		}
		n *= d
	}
	if n != len(b.Data) {
		return fmt.Errorf("attacks: batch shape %v needs %d values, have %d", b.Shape, n, len(b.Data))
	}
	return nil
}

// subBatch builds a batch from the given samples of b (copying).
func (b Batch) subBatch(idx []int) Batch {
	s := b.SampleSize()
	out := Batch{Data: make([]float32, 0, len(idx)*s), Shape: append([]int{len(idx)}, b.Shape[1:]...)}
	for _, i := range idx {
		out.Data = append(out.Data, b.Sample(i)...)
	}
	return out
}

// Classifier answers class probabilities for a batch. Black-box attacks use
// only this interface. Predict must return one row of NumClasses()
// probabilities per sample.
type Classifier interface {
	Predict(ctx context.Context, x Batch) ([][]float32, error)
	NumClasses() int
}

// GradientClassifier also returns the gradient of the cross-entropy loss with
// respect to the input (white-box access).
type GradientClassifier interface {
	Classifier
	// LossGradient returns d(loss)/dx, shaped like x, for the cross-entropy
	// loss of each sample against labels[i], plus the per-sample loss. The
	// attacks flip the sign themselves for targeted attacks.
	LossGradient(ctx context.Context, x Batch, labels []int) (grad Batch, loss []float32, err error)
}

// TextClassifier classifies raw strings.
type TextClassifier interface {
	PredictText(ctx context.Context, texts []string) ([][]float32, error)
	NumClasses() int
	Labels() []string
}

// Progress receives coarse progress reports: pct in [0,100] and a short stage
// name such as "iterating". Attacks call it at most every few iterations. It
// may be nil.
type Progress func(pct int, stage string)

func (p Progress) report(pct int, stage string) {
	if p != nil {
		if pct < 0 {
			pct = 0
		}
		if pct > 100 {
			pct = 100
		}
		p(pct, stage)
	}
}

// ErrBudgetExhausted is wrapped in errors from counters that ran out of their
// query budget; attacks treat it as a normal stop, not a failure.
var ErrBudgetExhausted = errors.New("attacks: query budget exhausted")

// counter wraps a model and counts per-sample queries (one query is one
// sample passed through Predict) and gradient evaluations.
type counter struct {
	clf       Classifier
	queries   atomic.Int64
	gradients atomic.Int64
}

func (c *counter) predict(ctx context.Context, x Batch) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := c.clf.Predict(ctx, x)
	if err != nil {
		return nil, err
	}
	if len(p) != x.N() {
		return nil, fmt.Errorf("attacks: model returned %d predictions for %d samples", len(p), x.N())
	}
	k := c.clf.NumClasses()
	for i := range p {
		if len(p[i]) != k {
			return nil, fmt.Errorf("attacks: model returned %d scores for sample %d, want %d", len(p[i]), i, k)
		}
	}
	c.queries.Add(int64(x.N()))
	return p, nil
}

func (c *counter) labels(ctx context.Context, x Batch) ([]int, [][]float32, error) {
	p, err := c.predict(ctx, x)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int, len(p))
	for i := range p {
		out[i] = argmax(p[i])
	}
	return out, p, nil
}

func (c *counter) gradient(ctx context.Context, x Batch, labels []int) (Batch, []float32, error) {
	if err := ctx.Err(); err != nil {
		return Batch{}, nil, err
	}
	g, ok := c.clf.(GradientClassifier)
	if !ok {
		return Batch{}, nil, errors.New("attacks: model does not expose gradients (white-box attack needs a GradientClassifier)")
	}
	grad, loss, err := g.LossGradient(ctx, x, labels)
	if err != nil {
		return Batch{}, nil, err
	}
	if len(grad.Data) != len(x.Data) {
		return Batch{}, nil, fmt.Errorf("attacks: gradient has %d values, input %d", len(grad.Data), len(x.Data))
	}
	c.gradients.Add(int64(x.N()))
	return grad, loss, nil
}

func argmax(v []float32) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

func clip(v, lo, hi float32) float32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// Common holds the options shared by all image attacks.
type Common struct {
	ClipMin float32 `json:"clip_min"`
	ClipMax float32 `json:"clip_max"`
	// Targeted makes the attack aim at Targets (or TargetLabel for every
	// sample) instead of moving away from the true label.
	Targeted bool `json:"targeted"`
	// TargetLabel is used for every sample when Targeted is set and Targets
	// is nil. -1 means unset.
	TargetLabel int `json:"target_label"`
	// Seed makes random choices reproducible.
	Seed uint64 `json:"seed"`
}

func (c Common) check() error {
	if !(c.ClipMax > c.ClipMin) {
		return fmt.Errorf("attacks: clip_max (%g) must exceed clip_min (%g)", c.ClipMax, c.ClipMin)
	}
	return nil
}

// Input bundles an attack's inputs.
type Input struct {
	X Batch
	// Labels are the true labels. When nil the model's clean predictions
	// are used (as ART does), so the attack moves away from what the model
	// currently says.
	Labels []int
	// Targets are per-sample target classes for targeted attacks; when nil
	// and Common.Targeted is set, Common.TargetLabel is used for all.
	Targets []int
	// Starts are optional per-sample starting points for decision-based
	// attacks (e.g. an image of another or of the target class); they must
	// already be adversarial to be used.
	Starts *Batch
}

// Result is the outcome of an image attack on a batch.
type Result struct {
	Adversarial Batch `json:"-"`
	// Labels the attack moved away from (untargeted) and Targets it moved
	// towards (targeted; nil otherwise).
	Labels  []int `json:"labels"`
	Targets []int `json:"targets,omitempty"`
	// CleanPredictions and AdversarialPredictions are the model's argmax
	// labels on the input and on the adversarial batch.
	CleanPredictions       []int `json:"clean_predictions"`
	AdversarialPredictions []int `json:"adversarial_predictions"`
	// Success[i]: the adversarial sample is classified as Targets[i]
	// (targeted) or differently from Labels[i] (untargeted).
	Success     []bool    `json:"success"`
	SuccessRate float64   `json:"success_rate"`
	LinfNorms   []float32 `json:"linf_norms"`
	L2Norms     []float32 `json:"l2_norms"`
	// Queries counts samples sent through Predict (including the final
	// evaluation); Gradients counts per-sample gradient evaluations.
	Queries   int64 `json:"queries"`
	Gradients int64 `json:"gradients"`
}

// resolveLabels fills the labels/targets used by an attack.
func resolveLabels(ctx context.Context, c *counter, in Input, com Common) (labels, targets []int, clean []int, err error) {
	if err := in.X.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if err := com.check(); err != nil {
		return nil, nil, nil, err
	}
	n := in.X.N()
	k := c.clf.NumClasses()
	if k < 2 {
		return nil, nil, nil, fmt.Errorf("attacks: model must have at least 2 classes, has %d", k)
	}
	clean, _, err = c.labels(ctx, in.X)
	if err != nil {
		return nil, nil, nil, err
	}
	labels = in.Labels
	if labels == nil {
		labels = append([]int(nil), clean...)
	}
	if len(labels) != n {
		return nil, nil, nil, fmt.Errorf("attacks: %d labels for %d samples", len(labels), n)
	}
	for _, l := range labels {
		if l < 0 || l >= k {
			return nil, nil, nil, fmt.Errorf("attacks: label %d out of range [0,%d)", l, k)
		}
	}
	if com.Targeted {
		targets = in.Targets
		if targets == nil {
			if com.TargetLabel < 0 || com.TargetLabel >= k {
				return nil, nil, nil, fmt.Errorf("attacks: targeted attack needs target_label in [0,%d), have %d", k, com.TargetLabel)
			}
			targets = make([]int, n)
			for i := range targets {
				targets[i] = com.TargetLabel
			}
		}
		if len(targets) != n {
			return nil, nil, nil, fmt.Errorf("attacks: %d targets for %d samples", len(targets), n)
		}
		for _, t := range targets {
			if t < 0 || t >= k {
				return nil, nil, nil, fmt.Errorf("attacks: target %d out of range [0,%d)", t, k)
			}
		}
	}
	return labels, targets, clean, nil
}

// isSuccess reports whether predicted label pred meets the attack goal.
func isSuccess(pred, label int, targets []int, i int) bool {
	if targets != nil {
		return pred == targets[i]
	}
	return pred != label
}

// finish evaluates the adversarial batch once more and fills a Result.
func finish(ctx context.Context, c *counter, x, adv Batch, labels, targets, clean []int) (*Result, error) {
	preds, _, err := c.labels(ctx, adv)
	if err != nil {
		return nil, err
	}
	n := x.N()
	r := &Result{
		Adversarial:            adv,
		Labels:                 labels,
		Targets:                targets,
		CleanPredictions:       clean,
		AdversarialPredictions: preds,
		Success:                make([]bool, n),
		LinfNorms:              make([]float32, n),
		L2Norms:                make([]float32, n),
	}
	for i := 0; i < n; i++ {
		r.Success[i] = isSuccess(preds[i], labels[i], targets, i)
		r.LinfNorms[i] = LinfNorm(x.Sample(i), adv.Sample(i))
		r.L2Norms[i] = L2Norm(x.Sample(i), adv.Sample(i))
	}
	r.SuccessRate = SuccessRate(r.Success)
	r.Queries = c.queries.Load()
	r.Gradients = c.gradients.Load()
	return r, nil
}
