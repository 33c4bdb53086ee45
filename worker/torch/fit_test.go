//go:build torch

package torch

import (
	"context"
	"errors"
	"math/rand"
	"path/filepath"
	"testing"
)

// TestFitLosses trains each architecture with each loss on a small task
// and checks that the loss falls and the exported module's output has the
// right shape (and, with affine maps, the targets' scale).
func TestFitLosses(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n = 64
	img := make([]float32, n*4*4)
	for i := range img {
		img[i] = rng.Float32()
	}
	// Class of an image: is its left half brighter than its right half?
	// Pixel class: above 0.5.
	labels, pix := make([]int64, n), make([]int64, n*16)
	soft, reg := make([]float32, n*2), make([]float32, n)
	for i := 0; i < n; i++ {
		var l, r float32
		for p := 0; p < 16; p++ {
			v := img[i*16+p]
			if p%4 < 2 {
				l += v
			} else {
				r += v
			}
			if v > 0.5 {
				pix[i*16+p] = 1
			}
		}
		if l > r {
			labels[i] = 1
		}
		soft[i*2+int(labels[i])] = 0.9
		soft[i*2+1-int(labels[i])] = 0.1
		reg[i] = 1000 + 50*(l-r)
	}
	cases := []struct {
		name  string
		spec  FitSpec
		data  FitData
		shape []int64
	}{
		{"mlp ce", FitSpec{Arch: ArchMLP, InShape: []int64{16}, Out: 2, Loss: LossCE}, FitData{X: img, N: n, Labels: labels}, []int64{n, 2}},
		{"cnn soft ce", FitSpec{Arch: ArchCNN, InShape: []int64{1, 4, 4}, Out: 2, Loss: LossSoftCE}, FitData{X: img, N: n, Targets: soft}, []int64{n, 2}},
		{"mlp mse affine", FitSpec{Arch: ArchMLP, InShape: []int64{16}, Out: 1, Loss: LossMSE,
			Output: &Affine{Scale: []float32{50}, Shift: []float32{1000}}}, FitData{X: img, N: n, Targets: reg}, []int64{n, 1}},
		{"fcn pixel ce", FitSpec{Arch: ArchFCN, InShape: []int64{1, 4, 4}, Out: 2, Loss: LossPixelCE}, FitData{X: img, N: n, Labels: pix}, []int64{n, 2, 4, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Config = TrainConfig{Epochs: 30, BatchSize: 16}
			path := filepath.Join(t.TempDir(), "m.pt")
			res, err := Fit(context.Background(), tc.spec, tc.data, path)
			if err != nil {
				t.Fatal(err)
			}
			if first, last := res.Losses[0], res.Losses[len(res.Losses)-1]; last >= first {
				t.Errorf("loss %v → %v", first, last)
			}
			m, err := LoadModule(path, CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			out, err := m.Forward(&Tensor{Data: tc.data.X, Shape: append([]int64{n}, tc.spec.InShape...)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Shape) != len(tc.shape) || out.Shape[len(out.Shape)-1] != tc.shape[len(tc.shape)-1] || out.Shape[1] != tc.shape[1] {
				t.Fatalf("output shape %v, want %v", out.Shape, tc.shape)
			}
			if tc.spec.Loss == LossMSE {
				var mean float64
				for _, v := range out.Data {
					mean += float64(v) / n
				}
				if mean < 900 || mean > 1100 {
					t.Errorf("mean forecast %.1f, want about 1000 (the output map)", mean)
				}
			} else if res.Accuracy < 0.75 {
				t.Errorf("training accuracy %.3f", res.Accuracy)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fit(ctx, cases[0].spec, cases[0].data, filepath.Join(t.TempDir(), "x.pt")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Fit: %v", err)
	}
}
