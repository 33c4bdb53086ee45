package analysis

import (
	"math"
	"sort"
)

// madConsistency makes the median absolute deviation a consistent
// estimator of the standard deviation for normal data (Neural Cleanse).
const madConsistency = 1.4826

// maxAnomalyIndex caps the index where the deviation is zero (all norms
// but one equal) so that it stays a finite JSON number.
const maxAnomalyIndex = 1e6

// anomalyIndices is each value's anomaly index |x − median| / (1.4826 ·
// MAD), MAD the median of |x − median|, and the median itself. With a
// zero MAD a value equal to the median scores 0 and any other the cap.
func anomalyIndices(xs []float64) (idx []float64, med float64) {
	if len(xs) == 0 {
		return nil, 0
	}
	med = medianOf(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - med)
	}
	mad := madConsistency * medianOf(dev)
	idx = make([]float64, len(xs))
	for i, d := range dev {
		switch {
		case d == 0:
			idx[i] = 0
		case mad == 0:
			idx[i] = maxAnomalyIndex
		default:
			idx[i] = min(d/mad, maxAnomalyIndex)
		}
	}
	return idx, med
}

// medianOf is the median of xs (the mean of the middle two for an even
// count); xs is not modified.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// adam is the Adam optimiser (Kingma & Ba) on a flat parameter vector,
// with PyTorch's update: p −= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε).
type adam struct {
	lr, beta1, beta2, eps float64
	m, v                  []float64
	t                     int
}

func newAdam(n int, lr, beta1, beta2 float64) *adam {
	return &adam{lr: lr, beta1: beta1, beta2: beta2, eps: 1e-8, m: make([]float64, n), v: make([]float64, n)}
}

// step updates params in place from their gradients.
func (a *adam) step(params, grads []float64) {
	a.t++
	bc1 := 1 - math.Pow(a.beta1, float64(a.t))
	bc2 := math.Sqrt(1 - math.Pow(a.beta2, float64(a.t)))
	for i, g := range grads {
		a.m[i] = a.beta1*a.m[i] + (1-a.beta1)*g
		a.v[i] = a.beta2*a.v[i] + (1-a.beta2)*g*g
		params[i] -= a.lr / bc1 * a.m[i] / (math.Sqrt(a.v[i])/bc2 + a.eps)
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
