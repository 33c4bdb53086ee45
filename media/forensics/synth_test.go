package forensics

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// smoothField is a w×h image of a few low-frequency sinusoids plus faint
// noise: the over-smooth content typical of diffusion-model output.
func smoothField(w, h int, seed uint64, noise float64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := make([][]float64, h)
	for y := range f {
		f[y] = make([]float64, w)
		for x := range f[y] {
			v := 128 + 50*math.Sin(float64(x)/23+0.5) + 30*math.Cos(float64(y)/17) + 20*math.Sin(float64(x+y)/41)
			f[y][x] = v + noise*rng.NormFloat64()
		}
	}
	return f
}

// upsample2x enlarges f by two, by nearest neighbour or bilinear
// interpolation (as generator decoders and upscalers do).
func upsample2x(f [][]float64, bilinear bool) [][]float64 {
	h, w := len(f), len(f[0])
	out := make([][]float64, 2*h)
	for y := range out {
		out[y] = make([]float64, 2*w)
		for x := range out[y] {
			if !bilinear {
				out[y][x] = f[y/2][x/2]
				continue
			}
			sx, sy := float64(x)/2, float64(y)/2
			x0, y0 := int(sx), int(sy)
			x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
			fx, fy := sx-float64(x0), sy-float64(y0)
			out[y][x] = (1-fy)*((1-fx)*f[y0][x0]+fx*f[y0][x1]) + fy*((1-fx)*f[y1][x0]+fx*f[y1][x1])
		}
	}
	return out
}

// addPeriodic adds a period-p checkerboard of amplitude a (the grid
// artifact of transposed convolutions).
func addPeriodic(f [][]float64, p int, a float64) {
	for y := range f {
		for x := range f[y] {
			if (x%p < p/2) != (y%p < p/2) {
				f[y][x] += a
			} else {
				f[y][x] -= a
			}
		}
	}
}

// gaussianNoise is a w×h field of i.i.d. N(128, sigma²) values.
func gaussianNoise(w, h int, sigma float64, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	f := make([][]float64, h)
	for y := range f {
		f[y] = make([]float64, w)
		for x := range f[y] {
			f[y][x] = 128 + sigma*rng.NormFloat64()
		}
	}
	return f
}

// toImage quantises f to an RGBA image (grey, with a mild colour tint).
func toImage(f [][]float64) *image.RGBA {
	h, w := len(f), len(f[0])
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	q := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := f[y][x]
			img.SetRGBA(x, y, color.RGBA{q(v + 6), q(v), q(v - 6), 255})
		}
	}
	return img
}
