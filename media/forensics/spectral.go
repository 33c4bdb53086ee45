package forensics

import (
	"context"
	"fmt"
	"math"
)

// Spectral analysis bounds.
const (
	maxFFTSize = 512 // side of the centre crop transformed
	minFFTSize = 64  // smaller images are not analysed spectrally
)

// spectralPeak is the strongest periodic peak found for one period.
type spectralPeak struct {
	Period int     // pixels: 2, 4 or 8
	Ratio  float64 // peak energy over the local spectral median
	OfAbs  bool    // found in the spectrum of |residual| (periodic variance) rather than the residual itself
}

// spectralPeaks looks for periodic up-sampling and tiling artifacts in the
// noise residual. It transforms the centre n×n crop (n a power of two, at
// most maxFFTSize) of both the residual and its magnitude |r| — additive
// periodic patterns show in the former, the periodic variance left by
// interpolation (Popescu & Farid; Kirchner) in the latter — after a Hann
// window. The 2D power spectrum is reduced to its row and column marginals
// and, at the frequencies n/2, n/4, n/8 and 3n/8 (periods 2, 4 and 8), the
// marginal is divided by the median of its neighbours 2…8 bins away. It
// returns the strongest ratio per period, or nil when the image is smaller
// than minFFTSize.
func spectralPeaks(ctx context.Context, r *plane) ([]spectralPeak, error) {
	n := maxFFTSize
	for n > r.w-2 || n > r.h-2 {
		n >>= 1
	}
	if n < minFFTSize {
		return nil, nil
	}
	x0, y0 := (r.w-n)/2, (r.h-n)/2
	hann := make([]float64, n)
	for i := range hann {
		hann[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	var peaks []spectralPeak
	for _, useAbs := range []bool{false, true} {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("spectral analysis: %w", err)
		}
		a := make([]complex128, n*n)
		var mean float64
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				v := r.at(x0+x, y0+y)
				if useAbs {
					v = math.Abs(v)
				}
				mean += v
			}
		}
		mean /= float64(n * n)
		for y := 0; y < n; y++ {
			for x := 0; x < n; x++ {
				v := r.at(x0+x, y0+y)
				if useAbs {
					v = math.Abs(v)
				}
				a[y*n+x] = complex((v-mean)*hann[x]*hann[y], 0)
			}
		}
		fft2(a, n)
		colMarg := make([]float64, n) // Σ over v, per horizontal frequency u
		rowMarg := make([]float64, n)
		for v := 0; v < n; v++ {
			for u := 0; u < n; u++ {
				c := a[v*n+u]
				p := real(c)*real(c) + imag(c)*imag(c)
				colMarg[u] += p
				rowMarg[v] += p
			}
		}
		for _, period := range []int{2, 4, 8} {
			best := spectralPeak{Period: period, OfAbs: useAbs}
			freqs := []int{n / period}
			if period == 8 {
				freqs = append(freqs, 3*n/8)
			}
			for _, f := range freqs {
				for _, m := range [][]float64{colMarg, rowMarg} {
					if r := peakRatio(m, f); r > best.Ratio {
						best.Ratio = r
					}
				}
			}
			peaks = mergePeak(peaks, best)
		}
	}
	return peaks, nil
}

// peakRatio is m[f] over the median of m at f±2…f±8 (indices wrap).
func peakRatio(m []float64, f int) float64 {
	n := len(m)
	nb := make([]float64, 0, 14)
	for d := 2; d <= 8; d++ {
		nb = append(nb, m[((f+d)%n+n)%n], m[((f-d)%n+n)%n])
	}
	med := median(nb)
	if med <= 0 {
		if m[f] > 0 {
			return 1e6
		}
		return 1
	}
	return m[f] / med
}

// mergePeak keeps the stronger of the existing peak for p.Period and p.
func mergePeak(peaks []spectralPeak, p spectralPeak) []spectralPeak {
	for i := range peaks {
		if peaks[i].Period == p.Period {
			if p.Ratio > peaks[i].Ratio {
				peaks[i] = p
			}
			return peaks
		}
	}
	return append(peaks, p)
}
