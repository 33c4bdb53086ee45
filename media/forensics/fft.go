package forensics

import (
	"math"
	"math/bits"
)

// fft computes an in-place radix-2 decimation-in-time FFT of a, whose
// length must be a power of two.
func fft(a []complex128) {
	n := len(a)
	shift := 64 - bits.Len(uint(n-1))
	for i := range a { // bit-reversal permutation
		j := int(bits.Reverse64(uint64(i)) >> shift)
		if n == 1 {
			j = 0
		}
		if j > i {
			a[i], a[j] = a[j], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half := size >> 1
		step := -2 * math.Pi / float64(size)
		for k := 0; k < half; k++ {
			w := complex(math.Cos(step*float64(k)), math.Sin(step*float64(k)))
			for start := 0; start < n; start += size {
				u, v := a[start+k], w*a[start+k+half]
				a[start+k], a[start+k+half] = u+v, u-v
			}
		}
	}
}

// fft2 computes the 2D FFT of an n×n row-major array in place (rows, then
// columns).
func fft2(a []complex128, n int) {
	for y := 0; y < n; y++ {
		fft(a[y*n : (y+1)*n])
	}
	col := make([]complex128, n)
	for x := 0; x < n; x++ {
		for y := 0; y < n; y++ {
			col[y] = a[y*n+x]
		}
		fft(col)
		for y := 0; y < n; y++ {
			a[y*n+x] = col[y]
		}
	}
}
