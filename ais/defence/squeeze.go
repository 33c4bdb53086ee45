package defence

import (
	"fmt"
	"math"
	"sort"

	"github.com/wardenlab/warden/attacks"
)

// Squeezer is feature squeezing (Xu, Evans and Qi, NDSS 2018): the model
// answers an input and its squeezed copies; an adversarial input's answers
// move far more under squeezing than a clean one's. Score is the largest
// L1 distance between the probabilities of the input and of a squeezed copy.
type Squeezer struct {
	// BitDepth reduces each value to 2^BitDepth levels over [Lo, Hi]
	// (0: no bit-depth squeezer).
	BitDepth int `json:"bit_depth"`
	// Median is the side of the median filter over each image channel
	// (0: none; images [C, H, W] only).
	Median int     `json:"median"`
	Lo     float32 `json:"lo"`
	Hi     float32 `json:"hi"`
	// Threshold on the score, calibrated on clean data.
	Threshold float64 `json:"threshold"`
}

// Count is how many squeezed copies Squeeze makes of each sample.
func (s Squeezer) Count(sample []int) int {
	n := 0
	if s.BitDepth > 0 {
		n++
	}
	if s.Median > 1 && len(sample) == 3 {
		n++
	}
	return n
}

// Squeeze returns the squeezed copies of x, one batch per squeezer in a
// fixed order (bit depth, median).
func (s Squeezer) Squeeze(x attacks.Batch) ([]attacks.Batch, error) {
	if err := x.Validate(); err != nil {
		return nil, err
	}
	var out []attacks.Batch
	if s.BitDepth > 0 {
		out = append(out, ReduceBitDepth(x, s.BitDepth, s.Lo, s.Hi))
	}
	if s.Median > 1 && len(x.Shape) == 4 {
		m, err := MedianFilter(x, s.Median)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ReduceBitDepth rounds every value of x to one of 2^bits levels evenly
// spaced over [lo, hi] (values outside are clipped first).
func ReduceBitDepth(x attacks.Batch, bits int, lo, hi float32) attacks.Batch {
	out := x.Clone()
	levels := float64(int(1)<<bits - 1)
	span := float64(hi - lo)
	if span <= 0 {
		return out
	}
	for i, v := range out.Data {
		f := (float64(v) - float64(lo)) / span
		f = math.Min(math.Max(f, 0), 1)
		out.Data[i] = float32(math.Round(f*levels)/levels*span) + lo
	}
	return out
}

// MedianFilter replaces each pixel of an [N, C, H, W] batch by the median
// of the size×size window over its channel (for an even size the window
// reaches one pixel further right and down, as scipy's median_filter
// does; edges repeat the border pixel). The median of an even count is
// the mean of the two middle values.
func MedianFilter(x attacks.Batch, size int) (attacks.Batch, error) {
	if len(x.Shape) != 4 {
		return attacks.Batch{}, fmt.Errorf("median filter needs images [N, C, H, W], have %v", x.Shape)
	}
	if size < 1 {
		return attacks.Batch{}, fmt.Errorf("median filter size %d", size)
	}
	out := x.Clone()
	h, w := x.Shape[2], x.Shape[3]
	planes := x.Shape[0] * x.Shape[1]
	win := make([]float32, 0, size*size)
	before := (size - 1) / 2
	for pl := 0; pl < planes; pl++ {
		in := x.Data[pl*h*w : (pl+1)*h*w]
		dst := out.Data[pl*h*w : (pl+1)*h*w]
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				win = win[:0]
				for dy := -before; dy < size-before; dy++ {
					yy := min(max(y+dy, 0), h-1)
					for dx := -before; dx < size-before; dx++ {
						xc := min(max(xx+dx, 0), w-1)
						win = append(win, in[yy*w+xc])
					}
				}
				sort.Slice(win, func(a, b int) bool { return win[a] < win[b] })
				k := len(win)
				if k%2 == 1 {
					dst[y*w+xx] = win[k/2]
				} else {
					dst[y*w+xx] = (win[k/2-1] + win[k/2]) / 2
				}
			}
		}
	}
	return out, nil
}

// SqueezeScore is the largest L1 distance between the probabilities of
// outs[0] (the answer on the input) and of each squeezed answer outs[1:].
func SqueezeScore(outs [][]float32) float64 {
	if len(outs) < 2 {
		return 0
	}
	p0 := Probabilities(outs[0])
	var best float64
	for _, o := range outs[1:] {
		p := Probabilities(o)
		var d float64
		for i := range p0 {
			if i < len(p) {
				d += math.Abs(float64(p0[i] - p[i]))
			}
		}
		best = math.Max(best, d)
	}
	return best
}

// Probabilities is an output row as probabilities: the row itself when
// it already is a distribution, else its softmax.
func Probabilities(row []float32) []float32 {
	var s float64
	dist := len(row) > 0
	for _, v := range row {
		s += float64(v)
		dist = dist && v >= 0 && v <= 1
	}
	if dist && math.Abs(s-1) < 1e-3 {
		return row
	}
	m := float32(math.Inf(-1))
	for _, v := range row {
		m = max(m, v)
	}
	out := make([]float32, len(row))
	s = 0
	for i, v := range row {
		e := math.Exp(float64(v - m))
		out[i] = float32(e)
		s += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / s)
	}
	return out
}
