//go:build torch

// Package badnets plants a BadNets backdoor (Gu et al. 2017) for the model
// poisoning tests and benchmark: the demo digits enlarged to 16×16, a
// bright 2×2 patch in the bottom-right corner (1.6 % of the image, as
// BadNets' 3×3 to 4×4 patches on 28×28 MNIST) stamped on a tenth of the
// training set's other digits relabelled to Target, and digits CNNs
// trained with the engine: the backdoored one, a clean one and two clean
// references with other seeds.
package badnets

import (
	"fmt"
	"path/filepath"

	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

const (
	// Target is the class the trigger sends any digit to.
	Target = 7
	// Side is the enlarged digits' side in pixels.
	Side = 16
	// Share of the training set added as stamped, relabelled copies.
	Share = 0.1
)

// Config is the CNNs' training recipe.
var Config = torch.TrainConfig{Hidden: []int64{16, 32}, Epochs: 4, BatchSize: 32, LR: 5e-3}

// Enlarge repeats each pixel of n 8×8 images 2×2 times.
func Enlarge(x []float32, n int) []float32 {
	out := make([]float32, n*Side*Side)
	for i := 0; i < n; i++ {
		for y := 0; y < Side; y++ {
			for xx := 0; xx < Side; xx++ {
				out[(i*Side+y)*Side+xx] = x[i*64+(y/2)*8+xx/2]
			}
		}
	}
	return out
}

// Stamp sets the 2×2 bottom-right pixels of a Side×Side image to 1.
func Stamp(img []float32) {
	for _, y := range []int{Side - 2, Side - 1} {
		for _, x := range []int{Side - 2, Side - 1} {
			img[y*Side+x] = 1
		}
	}
}

// Poison returns xs, ys plus stamped copies of Share of them (every third
// sample not of Target until enough) labelled Target.
func Poison(xs []float32, ys []int64) ([]float32, []int64) {
	n := len(ys)
	px, py := append([]float32(nil), xs...), append([]int64(nil), ys...)
	want := int(Share * float64(n))
	for i := 0; i < n && want > 0; i += 3 {
		if ys[i] == Target {
			continue
		}
		img := append([]float32(nil), xs[i*Side*Side:(i+1)*Side*Side]...)
		Stamp(img)
		px, py = append(px, img...), append(py, Target)
		want--
	}
	return px, py
}

// HeldOut is the demo digits' held-out split enlarged: images [N, 1, Side,
// Side] flattened, labels, class names.
func HeldOut() (x []float32, y []int, classes []string, err error) {
	_, test, err := demo.Digits()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, l := range test.Y {
		y = append(y, int(l))
	}
	return Enlarge(test.X, test.N()), y, test.Labels, nil
}

// Models trains, in dir, on the enlarged training split: "backdoored",
// "clean", "ref1" and "ref2" (TorchScript files, by name).
func Models(dir string) (map[string]string, error) {
	train, _, err := demo.Digits()
	if err != nil {
		return nil, err
	}
	xs := Enlarge(train.X, train.N())
	px, py := Poison(xs, train.Y)
	paths := map[string]string{}
	for _, m := range []struct {
		name string
		seed int64
		x    []float32
		y    []int64
	}{
		{"backdoored", 2, px, py},
		{"clean", 3, xs, train.Y},
		{"ref1", 4, xs, train.Y},
		{"ref2", 5, xs, train.Y},
	} {
		c := Config
		c.Seed = m.seed
		paths[m.name] = filepath.Join(dir, m.name+".pt")
		if _, err := torch.TrainCNN(m.x, m.y, []int64{1, Side, Side}, 10, c, paths[m.name]); err != nil {
			return nil, fmt.Errorf("train the %s CNN: %w", m.name, err)
		}
	}
	return paths, nil
}
