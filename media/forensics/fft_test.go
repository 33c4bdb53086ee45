package forensics

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// TestFFTMatchesDFT compares the radix-2 FFT with a direct DFT.
func TestFFTMatchesDFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 8, 64} {
		in := make([]complex128, n)
		for i := range in {
			in[i] = complex(rng.NormFloat64(), rng.NormFloat64())
		}
		got := append([]complex128{}, in...)
		fft(got)
		for k := 0; k < n; k++ {
			var want complex128
			for j := 0; j < n; j++ {
				want += in[j] * cmplx.Exp(complex(0, -2*math.Pi*float64(j*k)/float64(n)))
			}
			if cmplx.Abs(got[k]-want) > 1e-9*float64(n) {
				t.Fatalf("n=%d k=%d: got %v want %v", n, k, got[k], want)
			}
		}
	}
}

// TestFFT2Sinusoid checks a 2D cosine lands in its two conjugate bins.
func TestFFT2Sinusoid(t *testing.T) {
	const n = 32
	a := make([]complex128, n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			a[y*n+x] = complex(math.Cos(2*math.Pi*(4*float64(x)+2*float64(y))/n), 0)
		}
	}
	fft2(a, n)
	for i, v := range a {
		x, y := i%n, i/n
		peak := (x == 4 && y == 2) || (x == n-4 && y == n-2)
		if peak && math.Abs(cmplx.Abs(v)-n*n/2) > 1e-6 || !peak && cmplx.Abs(v) > 1e-6 {
			t.Fatalf("bin (%d,%d) = %v", x, y, v)
		}
	}
}
