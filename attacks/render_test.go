package attacks

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRenderPNG(t *testing.T) {
	gray := Batch{Shape: []int{2, 1, 2, 3}, Data: []float32{0, 0.5, 1, 0.25, 0.75, 2, 9, 9, 9, 9, 9, 9}}
	b, err := RenderPNG(gray, 0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, b)
	if img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("bounds %v", img.Bounds())
	}
	want := []uint8{0, 128, 255, 64, 191, 255}
	for i, w := range want {
		g := color.GrayModel.Convert(img.At(i%3, i/3)).(color.Gray).Y
		if g != w {
			t.Errorf("pixel %d = %d, want %d", i, g, w)
		}
	}
	rgb := Batch{Shape: []int{1, 3, 1, 2}, Data: []float32{1, 0, 0, 1, 0, 0}}
	b, err = RenderPNG(rgb, 0, 0, 1)
	img = decodePNG(t, mustPNG(t, b, err))
	r, g, bb, _ := img.At(0, 0).RGBA()
	if r>>8 != 255 || g>>8 != 0 || bb>>8 != 0 {
		t.Errorf("pixel (0,0) = %d,%d,%d, want red", r>>8, g>>8, bb>>8)
	}
	r, g, bb, _ = img.At(1, 0).RGBA()
	if r>>8 != 0 || g>>8 != 255 || bb>>8 != 0 {
		t.Errorf("pixel (1,0) = %d,%d,%d, want green", r>>8, g>>8, bb>>8)
	}
	// Perturbation: zero is mid-grey, the extremes use the full range.
	orig := Batch{Shape: []int{1, 4}, Data: []float32{0.5, 0.5, 0.5, 0.5}}
	adv := Batch{Shape: []int{1, 4}, Data: []float32{0.5, 0.52, 0.48, 0.51}}
	b, err = RenderPerturbationPNG(orig, adv, 0)
	img = decodePNG(t, mustPNG(t, b, err))
	if img.Bounds().Dx() != 2 || img.Bounds().Dy() != 2 {
		t.Fatalf("4 features should render 2×2, got %v", img.Bounds())
	}
	got := []uint8{}
	for i := 0; i < 4; i++ {
		got = append(got, color.GrayModel.Convert(img.At(i%2, i/2)).(color.Gray).Y)
	}
	if got[0] != 128 || got[1] != 255 || got[2] != 1 || got[3] < 190 || got[3] > 192 {
		t.Errorf("perturbation pixels %v, want [128 255 1 ~191]", got)
	}
	if _, err := RenderPNG(Batch{Shape: []int{1, 2, 2, 2}, Data: make([]float32, 8)}, 0, 0, 1); err == nil {
		t.Error("2-channel image accepted")
	}
	if _, err := RenderPNG(gray, 5, 0, 1); err == nil {
		t.Error("out-of-range sample accepted")
	}
}

func mustPNG(t *testing.T, b []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
