package analysis

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
)

// boxLayer is a set of boxes drawn in one colour.
type boxLayer struct {
	boxes []ais.Box
	col   color.NRGBA
}

// drawBoxes renders a one-sample [1, C, H, W] batch in [0, 1] (C of 1 or
// 3), enlarged f times, with the layers' boxes (in the image's pixels)
// outlined, as a PNG.
func drawBoxes(x attacks.Batch, f int, layers ...boxLayer) ([]byte, error) {
	if len(x.Shape) != 4 || (x.Shape[1] != 1 && x.Shape[1] != 3) {
		return nil, fmt.Errorf("cannot draw an image of shape %v (need [1, 1 or 3, H, W])", x.Shape)
	}
	c, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	img := image.NewNRGBA(image.Rect(0, 0, w*f, h*f))
	level := func(v float32) uint8 { return uint8(clampf(v*255+0.5, 0, 255)) }
	for y := 0; y < h*f; y++ {
		for xx := 0; xx < w*f; xx++ {
			p := (y/f)*w + xx/f
			r := level(x.Data[p])
			g, b := r, r
			if c == 3 {
				g, b = level(x.Data[h*w+p]), level(x.Data[2*h*w+p])
			}
			img.SetNRGBA(xx, y, color.NRGBA{r, g, b, 255})
		}
	}
	for _, l := range layers {
		for _, b := range l.boxes {
			outline(img, b, f, l.col)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// outline draws a box's one-pixel border, scaled f times and clipped to
// the image.
func outline(img *image.NRGBA, b ais.Box, f int, col color.NRGBA) {
	bounds := img.Bounds()
	x0, y0 := int(b.XMin*float32(f)), int(b.YMin*float32(f))
	x1, y1 := int(b.XMax*float32(f))-1, int(b.YMax*float32(f))-1
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, bounds.Max.X-1), min(y1, bounds.Max.Y-1)
	if x1 < x0 || y1 < y0 {
		return
	}
	for x := x0; x <= x1; x++ {
		img.SetNRGBA(x, y0, col)
		img.SetNRGBA(x, y1, col)
	}
	for y := y0; y <= y1; y++ {
		img.SetNRGBA(x0, y, col)
		img.SetNRGBA(x1, y, col)
	}
}
