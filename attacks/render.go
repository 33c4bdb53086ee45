package attacks

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// imageDims interprets a sample shape as channels, height, width. Accepted
// sample shapes: [C,H,W] with C of 1 or 3 (NCHW), [H,W] (grayscale) and [F]
// (rendered as a 1×F strip, or a square when F is a perfect square).
func imageDims(shape []int) (c, h, w int, err error) {
	s := shape[1:]
	switch len(s) {
	case 3:
		c, h, w = s[0], s[1], s[2]
	case 2:
		c, h, w = 1, s[0], s[1]
	case 1:
		c, h, w = 1, 1, s[0]
		for r := 1; r*r <= s[0]; r++ {
			if r*r == s[0] {
				h, w = r, r
			}
		}
	default:
		return 0, 0, 0, fmt.Errorf("attacks: cannot render sample shape %v", s)
	}
	if c != 1 && c != 3 {
		return 0, 0, 0, fmt.Errorf("attacks: cannot render %d channels (need 1 or 3)", c)
	}
	return c, h, w, nil
}

// RenderPNG encodes sample i of x as a PNG, mapping [lo, hi] to [0, 255]:
// grayscale for one channel, RGB for three.
func RenderPNG(x Batch, i int, lo, hi float32) ([]byte, error) {
	if err := x.Validate(); err != nil {
		return nil, err
	}
	if i < 0 || i >= x.N() {
		return nil, fmt.Errorf("attacks: sample %d out of range", i)
	}
	if !(hi > lo) {
		return nil, fmt.Errorf("attacks: render range [%g,%g] is empty", lo, hi)
	}
	scale := func(v float32) uint8 {
		f := (v - lo) / (hi - lo) * 255
		return uint8(clip(f+0.5, 0, 255))
	}
	return encode(x, i, scale)
}

// RenderPerturbationPNG renders |adv − orig| amplified to the full range:
// zero change is mid-grey (128), the largest change in the sample maps to 0
// or 255 depending on its sign.
func RenderPerturbationPNG(orig, adv Batch, i int) ([]byte, error) {
	if err := orig.Validate(); err != nil {
		return nil, err
	}
	if len(orig.Data) != len(adv.Data) {
		return nil, fmt.Errorf("attacks: original and adversarial batches differ in size")
	}
	if i < 0 || i >= orig.N() {
		return nil, fmt.Errorf("attacks: sample %d out of range", i)
	}
	a, b := orig.Sample(i), adv.Sample(i)
	m := LinfNorm(a, b)
	d := Batch{Data: make([]float32, len(a)), Shape: append([]int{1}, orig.Shape[1:]...)}
	for j := range a {
		if m > 0 {
			d.Data[j] = (b[j] - a[j]) / m
		}
	}
	scale := func(v float32) uint8 { return uint8(clip(128+v*127+0.5, 0, 255)) }
	return encode(d, 0, scale)
}

func encode(x Batch, i int, scale func(float32) uint8) ([]byte, error) {
	c, h, w, err := imageDims(x.Shape)
	if err != nil {
		return nil, err
	}
	s := x.Sample(i)
	var img image.Image
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				g.SetGray(xx, y, color.Gray{Y: scale(s[y*w+xx])})
			}
		}
		img = g
	} else {
		rgb := image.NewNRGBA(image.Rect(0, 0, w, h))
		plane := h * w
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				p := y*w + xx
				rgb.SetNRGBA(xx, y, color.NRGBA{R: scale(s[p]), G: scale(s[plane+p]), B: scale(s[2*plane+p]), A: 255})
			}
		}
		img = rgb
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
