package attacks

import (
	"context"
	"fmt"
)

// FGSMParams configures the Fast Gradient Sign Method (Goodfellow, Shlens,
// Szegedy 2015).
type FGSMParams struct {
	Common
	Epsilon float32 `json:"epsilon"`
}

// DefaultFGSMParams mirrors the catalog defaults.
func DefaultFGSMParams() FGSMParams {
	return FGSMParams{Common: Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1}, Epsilon: 0.01}
}

// FGSM computes x' = clip(x + ε·sign(∇x L(x, y))) for untargeted attacks and
// x' = clip(x − ε·sign(∇x L(x, t))) towards target t. It costs one gradient
// evaluation per sample plus two Predict passes (clean and adversarial).
func FGSM(ctx context.Context, clf GradientClassifier, in Input, p FGSMParams, progress Progress) (*Result, error) {
	if !(p.Epsilon >= 0) {
		return nil, fmt.Errorf("attacks: epsilon must be >= 0, have %g", p.Epsilon)
	}
	c := &counter{clf: clf}
	labels, targets, clean, err := resolveLabels(ctx, c, in, p.Common)
	if err != nil {
		return nil, err
	}
	progress.report(0, "computing_gradients")
	goal, dir := labels, float32(1)
	if targets != nil {
		goal, dir = targets, -1
	}
	grad, _, err := c.gradient(ctx, in.X, goal)
	if err != nil {
		return nil, err
	}
	adv := in.X.Clone()
	for j, g := range grad.Data {
		adv.Data[j] = clip(adv.Data[j]+dir*p.Epsilon*sign(g), p.ClipMin, p.ClipMax)
	}
	progress.report(90, "evaluating")
	r, err := finish(ctx, c, in.X, adv, labels, targets, clean)
	if err != nil {
		return nil, err
	}
	progress.report(100, "completed")
	return r, nil
}

func sign(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
