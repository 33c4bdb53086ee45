package forensics

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // register decoders
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Decode limits.
const (
	// MaxPixels is the largest width×height decoded; bigger images are
	// rejected from their header before any pixel memory is allocated.
	MaxPixels = 100_000_000
	// MaxSide is the longest side analysed; larger images are box-averaged
	// down by an integer factor so that work stays bounded.
	MaxSide = 2048
)

// plane is a luminance image, values in [0, 255], row-major.
type plane struct {
	w, h int
	pix  []float64
}

func (p *plane) at(x, y int) float64 { return p.pix[y*p.w+x] }

// decodeLuma decodes data after checking its header dimensions, converts it
// to luminance (BT.601 weights; the Y channel as-is for YCbCr images) and
// downscales it so neither side exceeds MaxSide. It returns the luminance,
// the original dimensions and the format name.
func decodeLuma(ctx context.Context, data []byte) (*plane, int, int, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, "", fmt.Errorf("decode image header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, 0, 0, format, fmt.Errorf("image is %d×%d: %w", cfg.Width, cfg.Height, ErrTooLarge)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, format, fmt.Errorf("decode %s image: %w", format, err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	f := 1
	for (w+f-1)/f > MaxSide || (h+f-1)/f > MaxSide {
		f++
	}
	p := &plane{w: w / f, h: h / f}
	if p.w < 1 || p.h < 1 {
		return nil, 0, 0, format, fmt.Errorf("image %d×%d is too small", w, h)
	}
	p.pix = make([]float64, p.w*p.h)
	luma := lumaFunc(img)
	inv := 1 / float64(f*f)
	for y := 0; y < p.h; y++ {
		if y%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, 0, format, fmt.Errorf("decode: %w", err)
			}
		}
		for x := 0; x < p.w; x++ {
			var s float64
			for dy := 0; dy < f; dy++ {
				for dx := 0; dx < f; dx++ {
					s += luma(b.Min.X+x*f+dx, b.Min.Y+y*f+dy)
				}
			}
			p.pix[y*p.w+x] = s * inv
		}
	}
	return p, w, h, format, nil
}

// lumaFunc returns a per-pixel luminance reader, fast for the common types.
func lumaFunc(img image.Image) func(x, y int) float64 {
	switch m := img.(type) {
	case *image.YCbCr:
		return func(x, y int) float64 { return float64(m.Y[m.YOffset(x, y)]) }
	case *image.Gray:
		return func(x, y int) float64 { return float64(m.Pix[m.PixOffset(x, y)]) }
	case *image.RGBA:
		return func(x, y int) float64 {
			i := m.PixOffset(x, y)
			return 0.299*float64(m.Pix[i]) + 0.587*float64(m.Pix[i+1]) + 0.114*float64(m.Pix[i+2])
		}
	case *image.NRGBA:
		return func(x, y int) float64 {
			i := m.PixOffset(x, y)
			return 0.299*float64(m.Pix[i]) + 0.587*float64(m.Pix[i+1]) + 0.114*float64(m.Pix[i+2])
		}
	}
	return func(x, y int) float64 {
		r, g, b, _ := img.At(x, y).RGBA()
		return (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 257
	}
}
