package defence

import (
	"math"
	"testing"
)

// The expected values are scipy 1.10.1's scipy.stats.shapiro (swilk.c,
// Royston's AS R94 in single precision) on the same data.
func TestShapiroWilkKnownValues(t *testing.T) {
	expq := make([]float64, 200)
	for i := range expq {
		expq[i] = -math.Log(1 - (float64(i)+0.5)/200) // exponential quantiles
	}
	unif := make([]float64, 1000)
	for i := range unif {
		unif[i] = float64(i*7919%1000) / 1000
	}
	for _, c := range []struct {
		name string
		x    []float64
		w, p float64
	}{
		{"shapiro-wilk 1965 weights", []float64{148, 154, 158, 160, 161, 162, 166, 170, 182, 195, 236}, 0.7888147831, 0.006703833118},
		{"n=3", []float64{1, 2, 4}, 0.9642857313, 0.636885643},
		{"n=5", []float64{2.1, 3.4, 1.9, 5.6, 4.4}, 0.9320847988, 0.6106548309},
		{"n=8", []float64{0.3, -1.2, 2.2, 0.7, 0.1, -0.4, 1.9, 0.8}, 0.9688670039, 0.8889716864},
		{"normal n=50", []float64{0.0012, 0.2987, -0.2741, -0.8906, -0.4547, -0.9916, 0.0601, 1.3402, -0.4922, -0.6205, 0.4898, 0.3569, 0.1054, -0.9305, -0.0293, 0.6953, -1.3442, -0.4576, -1.9012, -1.2895, -1.8417, -0.2351, -1.2674, 0.2713, 0.1568, -0.1869, -2.5168, -0.5387, -0.0485, 0.1133, -1.5301, -0.4778, -0.9785, -0.8088, 1.0609, -0.8075, -0.0325, 0.8844, -0.5836, -0.1117, 0.1105, 0.0638, -1.2251, 0.0761, 1.3588, -1.5471, 0.8594, 0.1194, -0.6415, 2.0004}, 0.9897313714, 0.9397069216},
		{"exponential quantiles n=200", expq, 0.8237522840, 2.692317093e-14},
		{"uniform n=1000", unif, 0.9548079371, 5.385915243e-17},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, p, err := ShapiroWilk(c.x)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(w-c.w) > 2e-6 {
				t.Errorf("W = %.10f, scipy %.10f", w, c.w)
			}
			if math.Abs(p-c.p) > 1e-4*c.p+1e-6 {
				t.Errorf("p = %.10g, scipy %.10g", p, c.p)
			}
		})
	}
}

func TestShapiroWilkRejects(t *testing.T) {
	for _, x := range [][]float64{{1, 2}, {3, 3, 3, 3}, make([]float64, 5001)} {
		if _, _, err := ShapiroWilk(x); err == nil {
			t.Errorf("%d values: want an error", len(x))
		}
	}
}
