package forensics

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// residualStats are the noise-residual features of an image.
type residualStats struct {
	Std      float64 // standard deviation of the residual (luminance levels)
	Kurtosis float64 // E[(r−μ)⁴]/σ⁴; 3 for Gaussian noise
	// Corr1, Corr2 and Corr8 are the residual's autocorrelation at lags 1,
	// 2 and 8, averaged over horizontal and vertical. Sensor noise is close
	// to white; interpolation (up-sampling) correlates neighbours and
	// periodic generator patterns correlate their period.
	Corr1, Corr2, Corr8 float64
	// QuadrantCV is the coefficient of variation of the residual standard
	// deviation across the four image quadrants: a sensor's noise floor is
	// similar everywhere, pasted or generated regions often are not.
	QuadrantCV float64
}

// residual returns the noise residual of p: luminance minus its 3×3 median,
// zero on the one-pixel border (which is excluded from all statistics).
func residual(ctx context.Context, p *plane) (*plane, error) {
	r := &plane{w: p.w, h: p.h, pix: make([]float64, len(p.pix))}
	var win [9]float64
	for y := 1; y < p.h-1; y++ {
		if y%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("noise residual: %w", err)
			}
		}
		for x := 1; x < p.w-1; x++ {
			k := 0
			for dy := -1; dy <= 1; dy++ {
				row := (y + dy) * p.w
				for dx := -1; dx <= 1; dx++ {
					win[k] = p.pix[row+x+dx]
					k++
				}
			}
			r.pix[y*p.w+x] = p.pix[y*p.w+x] - median9(&win)
		}
	}
	return r, nil
}

// median9 returns the median of nine values by partial insertion sort.
func median9(v *[9]float64) float64 {
	for i := 1; i < 9; i++ {
		x := v[i]
		j := i - 1
		for j >= 0 && v[j] > x {
			v[j+1] = v[j]
			j--
		}
		v[j+1] = x
	}
	return v[4]
}

// measureResidual computes residualStats over the interior of r.
func measureResidual(r *plane) residualStats {
	var st residualStats
	if r.w < 4 || r.h < 4 {
		return st
	}
	var n, sum, sum2 float64
	for y := 1; y < r.h-1; y++ {
		for x := 1; x < r.w-1; x++ {
			v := r.at(x, y)
			sum += v
			sum2 += v * v
			n++
		}
	}
	mean := sum / n
	variance := sum2/n - mean*mean
	if variance <= 1e-12 {
		return st // a perfectly flat image has no residual to measure
	}
	st.Std = math.Sqrt(variance)
	var m4 float64
	for y := 1; y < r.h-1; y++ {
		for x := 1; x < r.w-1; x++ {
			d := r.at(x, y) - mean
			m4 += d * d * d * d
		}
	}
	st.Kurtosis = m4 / n / (variance * variance)
	st.Corr1 = autocorr(r, 1, mean, variance)
	st.Corr2 = autocorr(r, 2, mean, variance)
	st.Corr8 = autocorr(r, 8, mean, variance)
	st.QuadrantCV = quadrantCV(r)
	return st
}

// autocorr is the residual's normalised autocorrelation at lag, averaged
// over the horizontal and vertical directions.
func autocorr(r *plane, lag int, mean, variance float64) float64 {
	var h, v, nh, nv float64
	for y := 1; y < r.h-1; y++ {
		for x := 1; x < r.w-1; x++ {
			a := r.at(x, y) - mean
			if x+lag < r.w-1 {
				h += a * (r.at(x+lag, y) - mean)
				nh++
			}
			if y+lag < r.h-1 {
				v += a * (r.at(x, y+lag) - mean)
				nv++
			}
		}
	}
	if nh == 0 || nv == 0 {
		return 0
	}
	return (h/nh + v/nv) / 2 / variance
}

// quadrantCV is the coefficient of variation of the residual's standard
// deviation over the four quadrants.
func quadrantCV(r *plane) float64 {
	stds := make([]float64, 0, 4)
	for q := 0; q < 4; q++ {
		x0, y0 := (q%2)*r.w/2, (q/2)*r.h/2
		x1, y1 := x0+r.w/2, y0+r.h/2
		var n, s, s2 float64
		for y := max(y0, 1); y < min(y1, r.h-1); y++ {
			for x := max(x0, 1); x < min(x1, r.w-1); x++ {
				v := r.at(x, y)
				s += v
				s2 += v * v
				n++
			}
		}
		if n > 0 {
			stds = append(stds, math.Sqrt(math.Max(s2/n-(s/n)*(s/n), 0)))
		}
	}
	return cv(stds)
}

// cv is the coefficient of variation (std/mean) of xs, 0 for a zero mean.
func cv(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s, s2 float64
	for _, x := range xs {
		s += x
		s2 += x * x
	}
	m := s / float64(len(xs))
	if m <= 0 {
		return 0
	}
	return math.Sqrt(math.Max(s2/float64(len(xs))-m*m, 0)) / m
}

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}
