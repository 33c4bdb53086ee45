package defence

import (
	"fmt"
	"math"
	"sort"
)

// ShapiroWilk tests x for normality with Royston's algorithm (AS R94,
// 1995: the W statistic with Royston's approximation of the coefficients,
// and its p-value from Royston's normalising transformations, 1992). It
// needs 3 ≤ len(x) ≤ 5000 values that are not all equal. A small W (and
// p-value) says the values are not normally distributed.
func ShapiroWilk(x []float64) (w, p float64, err error) {
	n := len(x)
	if n < 3 || n > 5000 {
		return 0, 0, fmt.Errorf("shapiro-wilk needs 3 to 5000 values, have %d", n)
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if s[n-1]-s[0] < 1e-19*math.Max(1, math.Abs(s[0])) {
		return 0, 0, fmt.Errorf("shapiro-wilk: all %d values are equal", n)
	}
	a := swCoefficients(n)
	var mean float64
	for _, v := range s {
		mean += v
	}
	mean /= float64(n)
	var num, den float64
	for i, v := range s {
		num += a[i] * v
		den += (v - mean) * (v - mean)
	}
	w = num * num / den
	w = math.Min(w, 1)
	return w, swPValue(w, n), nil
}

// swCoefficients are Royston's approximations of the n coefficients a_i
// (antisymmetric: a_i = -a_{n+1-i}), for sorted values.
func swCoefficients(n int) []float64 {
	a := make([]float64, n)
	if n == 3 {
		a[0], a[2] = -math.Sqrt(0.5), math.Sqrt(0.5)
		return a
	}
	an := float64(n)
	m := make([]float64, n)
	var mm float64
	for i := range m {
		m[i] = normQuantile((float64(i+1) - 0.375) / (an + 0.25))
		mm += m[i] * m[i]
	}
	u := 1 / math.Sqrt(an)
	c := func(i int) float64 { return m[i] / math.Sqrt(mm) }
	an1 := c(n-1) + poly([]float64{0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056}, u)
	if n <= 5 {
		eps := (mm - 2*m[n-1]*m[n-1]) / (1 - 2*an1*an1)
		for i := 1; i < n-1; i++ {
			a[i] = m[i] / math.Sqrt(eps)
		}
		a[0], a[n-1] = -an1, an1
		return a
	}
	an2 := c(n-2) + poly([]float64{0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633}, u)
	eps := (mm - 2*m[n-1]*m[n-1] - 2*m[n-2]*m[n-2]) / (1 - 2*an1*an1 - 2*an2*an2)
	for i := 2; i < n-2; i++ {
		a[i] = m[i] / math.Sqrt(eps)
	}
	a[0], a[1], a[n-2], a[n-1] = -an1, -an2, an2, an1
	return a
}

// swPValue is the p-value of W for n values (Royston 1992).
func swPValue(w float64, n int) float64 {
	an := float64(n)
	if n == 3 {
		p := 6 / math.Pi * (math.Asin(math.Sqrt(w)) - math.Asin(math.Sqrt(0.75)))
		return math.Max(p, 0)
	}
	y := math.Log(1 - w)
	var mu, sigma float64
	if n <= 11 {
		gamma := poly([]float64{-2.273, 0.459}, an)
		if y >= gamma {
			return 1e-99
		}
		y = -math.Log(gamma - y)
		mu = poly([]float64{0.5440, -0.39978, 0.025054, -6.714e-4}, an)
		sigma = math.Exp(poly([]float64{1.3822, -0.77857, 0.062767, -0.0020322}, an))
	} else {
		ln := math.Log(an)
		mu = poly([]float64{-1.5861, -0.31082, -0.083751, 0.0038915}, ln)
		sigma = math.Exp(poly([]float64{-0.4803, -0.082676, 0.0030302}, ln))
	}
	return 0.5 * math.Erfc((y-mu)/sigma/math.Sqrt2)
}

// poly is c[0] + c[1]·x + c[2]·x² + …
func poly(c []float64, x float64) float64 {
	var r float64
	for i := len(c) - 1; i >= 0; i-- {
		r = r*x + c[i]
	}
	return r
}

// normQuantile is the standard normal distribution's inverse CDF.
func normQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }
