//go:build torch

package torch

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// layer is one step of a small feed-forward net. The same description
// drives the Go forward pass used for training and the TorchScript source
// of the exported module, so both compute the same function.
type layer struct {
	kind string // "linear", "conv", "relu", "pool", "flatten"
	name string // parameter prefix for linear/conv
}

type net struct {
	vs     *nn.VarStore
	params map[string]*ts.Tensor
	layers []layer
	class  string // TorchScript class name
}

func newNet(class string) *net {
	return &net{vs: nn.NewVarStore(gotch.CPU), params: map[string]*ts.Tensor{}, class: class}
}

// addParam creates a trainable parameter initialised like PyTorch's default
// Linear/Conv2d init: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
func (n *net) addParam(name string, dims []int64, fanIn int64) error {
	b := 1 / math.Sqrt(float64(fanIn))
	t, err := n.vs.Root().NewVar(name, dims, nn.NewUniformInit(-b, b))
	if err != nil {
		return err
	}
	n.params[name] = t
	return nil
}

func (n *net) linear(name string, in, out int64) error {
	if err := n.addParam(name+"_weight", []int64{out, in}, in); err != nil {
		return err
	}
	if err := n.addParam(name+"_bias", []int64{out}, in); err != nil {
		return err
	}
	n.layers = append(n.layers, layer{kind: "linear", name: name})
	return nil
}

func (n *net) conv(name string, in, out, k int64) error {
	if err := n.addParam(name+"_weight", []int64{out, in, k, k}, in*k*k); err != nil {
		return err
	}
	if err := n.addParam(name+"_bias", []int64{out}, in*k*k); err != nil {
		return err
	}
	n.layers = append(n.layers, layer{kind: "conv", name: name})
	return nil
}

// free drops the parameter tensors held by the VarStore (gotch v0.7.0 has
// no VarStore destructor; NewVar returns the stored handle itself).
func (n *net) free() {
	for k, t := range n.params {
		_ = t.Drop()
		delete(n.params, k)
	}
}

func (n *net) op(kind string) { n.layers = append(n.layers, layer{kind: kind}) }

func (n *net) forward(s *scope, x *ts.Tensor) (*ts.Tensor, error) {
	h := x
	var err error
	for _, l := range n.layers {
		switch l.kind {
		case "linear":
			h, err = s.add(ts.Linear(h, n.params[l.name+"_weight"], n.params[l.name+"_bias"]))
		case "conv":
			h, err = s.add(ts.Conv2d(h, n.params[l.name+"_weight"], n.params[l.name+"_bias"],
				[]int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1))
		case "relu":
			h, err = s.add(h.Relu(false))
		case "pool":
			h, err = s.add(h.MaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, false))
		case "flatten":
			h, err = s.add(h.Flatten(1, -1, false))
		}
		if err != nil {
			return nil, fmt.Errorf("torch: %s: %w", l.kind, err)
		}
	}
	return h, nil
}

// script is the TorchScript source of forward; the native resolver maps
// torch.<op> to aten::<op>.
func (n *net) script() string {
	var b strings.Builder
	b.WriteString("def forward(self, x):\n    h = x\n")
	for _, l := range n.layers {
		switch l.kind {
		case "linear":
			fmt.Fprintf(&b, "    h = torch.linear(h, self.%s_weight, self.%s_bias)\n", l.name, l.name)
		case "conv":
			fmt.Fprintf(&b, "    h = torch.conv2d(h, self.%s_weight, self.%s_bias, [1, 1], [1, 1], [1, 1], 1)\n", l.name, l.name)
		case "relu":
			b.WriteString("    h = torch.relu(h)\n")
		case "pool":
			b.WriteString("    h = torch.max_pool2d(h, [2, 2], [2, 2], [0, 0], [1, 1], False)\n")
		case "flatten":
			b.WriteString("    h = torch.flatten(h, 1)\n")
		}
	}
	b.WriteString("    return h\n")
	return b.String()
}

// export writes the trained parameters as a TorchScript module whose
// forward is n.script(), built in C++ (torch::jit::Module::define) through
// Warden's libtch extension, and saves it with torch::jit::Module::save.
func (n *net) export(path string) error {
	cm, err := lib.WardenModuleNew("__torch__.warden." + n.class)
	if err != nil {
		return err
	}
	mod := &ts.CModule{Cmodule: cm}
	defer mod.Drop()
	names := make([]string, 0, len(n.params))
	for k := range n.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := lib.WardenModuleRegister(cm, k, n.params[k].Ctensor(), false); err != nil {
			return fmt.Errorf("torch: register %s: %w", k, err)
		}
	}
	if err := lib.WardenModuleDefine(cm, n.script()); err != nil {
		return fmt.Errorf("torch: define forward: %w", err)
	}
	mod.SetEval()
	return mod.Save(path)
}

// TrainMLP trains a small multi-layer perceptron (ReLU hidden layers of
// cfg.Hidden widths) with Adam on the CPU, on samples xs (row-major,
// len(ys) samples of shape inShape, flattened by the model) and labels ys
// in [0, classes). It writes a TorchScript module to outPath and the raw
// VarStore weights next to it (.ot).
func TrainMLP(xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	cfg = cfg.withDefaults([]int64{64}, 1e-2)
	in, err := numel(inShape)
	if err != nil {
		return nil, err
	}
	defer pin()()
	lib.WardenManualSeed(cfg.Seed)
	n := newNet("MLP")
	n.op("flatten")
	prev := in
	for i, h := range cfg.Hidden {
		if err := n.linear(fmt.Sprintf("fc%d", i), prev, h); err != nil {
			return nil, err
		}
		n.op("relu")
		prev = h
	}
	if err := n.linear("out", prev, classes); err != nil {
		return nil, err
	}
	return train(n, xs, ys, inShape, classes, cfg, outPath)
}

// TrainCNN trains a small convolutional net on images xs of shape
// inShape = [C, H, W]: per entry of cfg.Hidden a 3x3 convolution with that
// many channels, ReLU and 2x2 max-pooling, then a linear classifier. Output
// as for TrainMLP.
func TrainCNN(xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	cfg = cfg.withDefaults([]int64{8, 16}, 3e-3)
	if len(inShape) != 3 {
		return nil, fmt.Errorf("torch: TrainCNN wants inShape [C,H,W], got %v", inShape)
	}
	if _, err := numel(inShape); err != nil {
		return nil, err
	}
	defer pin()()
	lib.WardenManualSeed(cfg.Seed)
	n := newNet("CNN")
	c, h, w := inShape[0], inShape[1], inShape[2]
	for i, ch := range cfg.Hidden {
		if h < 2 || w < 2 {
			return nil, fmt.Errorf("torch: input %v too small for %d conv blocks", inShape, len(cfg.Hidden))
		}
		if err := n.conv(fmt.Sprintf("conv%d", i), c, ch, 3); err != nil {
			return nil, err
		}
		n.op("relu")
		n.op("pool")
		c, h, w = ch, h/2, w/2
	}
	n.op("flatten")
	if err := n.linear("out", c*h*w, classes); err != nil {
		return nil, err
	}
	return train(n, xs, ys, inShape, classes, cfg, outPath)
}

func train(n *net, xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	per, _ := numel(inShape)
	N := len(ys)
	if N == 0 || int64(len(xs)) != int64(N)*per {
		return nil, fmt.Errorf("torch: %d values for %d samples of shape %v", len(xs), N, inShape)
	}
	for _, y := range ys {
		if y < 0 || y >= classes {
			return nil, fmt.Errorf("torch: label %d outside [0,%d)", y, classes)
		}
	}
	if outPath == "" {
		return nil, errors.New("torch: no output path")
	}
	defer gradEnabled(true)()
	defer n.free()
	// torch::optim::Adam through gotch's COptimizer rather than nn.Optimizer:
	// the latter keeps its C optimizer in an unexported field that can only
	// be released by a finalizer-less leak; this one is dropped explicitly.
	opt, err := ts.Adam(cfg.LR, 0.9, 0.999, 0)
	if err != nil {
		return nil, err
	}
	defer opt.Drop()
	if err := opt.AddParameters(n.vs.TrainableVariables()); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	idx := rng.Perm(N)
	res := &TrainResult{ModelPath: outPath}
	batchX := make([]float32, 0, int64(cfg.BatchSize)*per)
	batchY := make([]int64, 0, cfg.BatchSize)
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		rng.Shuffle(N, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		var sum float64
		for start := 0; start < N; start += cfg.BatchSize {
			end := min(start+cfg.BatchSize, N)
			batchX, batchY = batchX[:0], batchY[:0]
			for _, k := range idx[start:end] {
				batchX = append(batchX, xs[int64(k)*per:int64(k+1)*per]...)
				batchY = append(batchY, ys[k])
			}
			l, err := step(n, opt, batchX, batchY, inShape)
			if err != nil {
				return nil, err
			}
			sum += l * float64(end-start)
		}
		res.Losses = append(res.Losses, sum/float64(N))
	}
	acc, err := accuracy(n, xs, ys, inShape)
	if err != nil {
		return nil, err
	}
	res.Accuracy = acc
	res.WeightsPath = strings.TrimSuffix(outPath, filepath.Ext(outPath)) + ".ot"
	if err := n.vs.Save(res.WeightsPath); err != nil {
		return nil, fmt.Errorf("torch: save weights: %w", err)
	}
	if err := n.export(outPath); err != nil {
		return nil, fmt.Errorf("torch: export TorchScript: %w", err)
	}
	return res, nil
}

func step(n *net, opt *ts.COptimizer, bx []float32, by []int64, inShape []int64) (float64, error) {
	var s scope
	defer s.close()
	shape := append([]int64{int64(len(by))}, inShape...)
	x, err := s.fromGo(bx, shape, CPU)
	if err != nil {
		return 0, err
	}
	y, err := s.int64s(by, CPU)
	if err != nil {
		return 0, err
	}
	logits, err := n.forward(&s, x)
	if err != nil {
		return 0, err
	}
	loss, err := crossEntropy(&s, logits, y)
	if err != nil {
		return 0, err
	}
	if err := opt.ZeroGrad(); err != nil {
		return 0, err
	}
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	if err := opt.Step(); err != nil {
		return 0, err
	}
	return loss.Float64Value(nil)
}

func accuracy(n *net, xs []float32, ys []int64, inShape []int64) (float64, error) {
	defer gradEnabled(false)()
	var s scope
	defer s.close()
	shape := append([]int64{int64(len(ys))}, inShape...)
	x, err := s.fromGo(xs, shape, CPU)
	if err != nil {
		return 0, err
	}
	logits, err := n.forward(&s, x)
	if err != nil {
		return 0, err
	}
	out, err := s.toGo(logits)
	if err != nil {
		return 0, err
	}
	c := int(out.Shape[1])
	right := 0
	for i, y := range ys {
		row := out.Data[i*c : (i+1)*c]
		best := 0
		for j := range row {
			if row[j] > row[best] {
				best = j
			}
		}
		if int64(best) == y {
			right++
		}
	}
	return float64(right) / float64(len(ys)), nil
}
