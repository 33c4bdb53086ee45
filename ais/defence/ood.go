package defence

import (
	"fmt"
	"math"
)

// Feature spaces of the OOD scorer.
const (
	SpaceInput  = "input"  // the input values (block-averaged to at most MaxFeatures)
	SpaceOutput = "output" // the log-probabilities the model answers
)

// MaxFeatures bounds the OOD scorer's and the monitor's feature vector:
// larger inputs are averaged over consecutive blocks down to this size.
const MaxFeatures = 256

// OOD is a class-conditional Mahalanobis scorer (Lee et al., NeurIPS
// 2018): class means and one shared covariance (shrunk towards a multiple
// of the identity) fitted on clean data; a sample's score is its smallest
// Mahalanobis distance to a class mean. Inputs far from every class of
// the clean data (adversarial perturbations, synthetic queries) score high.
type OOD struct {
	Space string `json:"space"`
	Dim   int    `json:"dim"`
	// Means are the class means (classes with no sample are left out).
	Means [][]float64 `json:"means"`
	// Chol is the lower Cholesky factor of the shrunk covariance, row-major.
	Chol      []float64 `json:"chol"`
	Shrinkage float64   `json:"shrinkage"`
	Threshold float64   `json:"threshold"`
}

// shrinkage is the share of the mean variance added to the covariance's
// diagonal (so that constant features do not make it singular).
const shrinkage = 0.01

// Reduce averages x over consecutive blocks so that it has at most max
// values (x itself when it is small enough).
func Reduce(x []float32, max int) []float64 {
	n := len(x)
	k := (n + max - 1) / max
	if k < 1 {
		k = 1
	}
	out := make([]float64, (n+k-1)/k)
	for i := range out {
		lo, hi := i*k, min((i+1)*k, n)
		var s float64
		for _, v := range x[lo:hi] {
			s += float64(v)
		}
		out[i] = s / float64(hi-lo)
	}
	return out
}

// Features is a sample's vector in the scorer's space.
func Features(space string, input []float32, output []float32) []float64 {
	if space == SpaceOutput {
		p := Probabilities(output)
		out := make([]float64, len(p))
		for i, v := range p {
			out[i] = math.Log(math.Max(float64(v), 1e-9))
		}
		return out
	}
	return Reduce(input, MaxFeatures)
}

// FitOOD fits the scorer on clean feature vectors and their labels.
func FitOOD(space string, feats [][]float64, labels []int, classes int) (*OOD, error) {
	if len(feats) == 0 || len(feats) != len(labels) {
		return nil, fmt.Errorf("fit the OOD scorer: %d samples with %d labels", len(feats), len(labels))
	}
	d := len(feats[0])
	sums := make([][]float64, classes)
	counts := make([]int, classes)
	for i, f := range feats {
		if len(f) != d {
			return nil, fmt.Errorf("fit the OOD scorer: sample %d has %d features, want %d", i, len(f), d)
		}
		c := labels[i]
		if c < 0 || c >= classes {
			return nil, fmt.Errorf("fit the OOD scorer: label %d outside %d classes", c, classes)
		}
		if sums[c] == nil {
			sums[c] = make([]float64, d)
		}
		for j, v := range f {
			sums[c][j] += v
		}
		counts[c]++
	}
	for c := range sums {
		if counts[c] > 0 {
			for j := range sums[c] {
				sums[c][j] /= float64(counts[c])
			}
		}
	}
	cov := make([]float64, d*d)
	for i, f := range feats {
		mu := sums[labels[i]]
		for a := 0; a < d; a++ {
			da := f[a] - mu[a]
			if da == 0 {
				continue
			}
			row := cov[a*d:]
			for b := 0; b <= a; b++ {
				row[b] += da * (f[b] - mu[b])
			}
		}
	}
	var trace float64
	for a := 0; a < d; a++ {
		for b := 0; b <= a; b++ {
			cov[a*d+b] /= float64(len(feats))
			cov[b*d+a] = cov[a*d+b]
		}
		trace += cov[a*d+a]
	}
	ridge := shrinkage * trace / float64(d)
	if ridge <= 0 {
		ridge = 1e-6
	}
	for a := 0; a < d; a++ {
		cov[a*d+a] += ridge
	}
	l, err := cholesky(cov, d)
	if err != nil {
		return nil, fmt.Errorf("fit the OOD scorer: %w", err)
	}
	o := &OOD{Space: space, Dim: d, Chol: l, Shrinkage: shrinkage}
	for c := range sums {
		if counts[c] > 0 {
			o.Means = append(o.Means, sums[c])
		}
	}
	return o, nil
}

// Score is the smallest Mahalanobis distance of f to a class mean.
func (o *OOD) Score(f []float64) (float64, error) {
	if len(f) != o.Dim || len(o.Chol) != o.Dim*o.Dim {
		return 0, fmt.Errorf("OOD scorer: %d features, want %d", len(f), o.Dim)
	}
	best := math.Inf(1)
	z := make([]float64, o.Dim)
	for _, mu := range o.Means {
		// Solve L z = f − μ; the squared distance is |z|².
		var d2 float64
		for a := 0; a < o.Dim; a++ {
			s := f[a] - mu[a]
			row := o.Chol[a*o.Dim:]
			for b := 0; b < a; b++ {
				s -= row[b] * z[b]
			}
			z[a] = s / row[a]
			d2 += z[a] * z[a]
			if d2 >= best*best {
				break
			}
		}
		best = math.Min(best, math.Sqrt(d2))
	}
	return best, nil
}

// cholesky factors the symmetric positive definite d×d matrix m (row-major).
func cholesky(m []float64, d int) ([]float64, error) {
	l := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j <= i; j++ {
			s := m[i*d+j]
			for k := 0; k < j; k++ {
				s -= l[i*d+k] * l[j*d+k]
			}
			if i == j {
				if s <= 0 {
					return nil, fmt.Errorf("covariance is not positive definite")
				}
				l[i*d+i] = math.Sqrt(s)
			} else {
				l[i*d+j] = s / l[j*d+j]
			}
		}
	}
	return l, nil
}
