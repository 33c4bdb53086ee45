//go:build torch

package torch

import (
	"context"
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
	kind string // "linear", "conv", "relu", "pool", "flatten", "affine"
	name string // parameter prefix for linear/conv
}

type net struct {
	vs      *nn.VarStore
	params  map[string]*ts.Tensor
	buffers map[string]*ts.Tensor // fixed tensors (affine maps), not trained
	layers  []layer
	class   string // TorchScript class name
}

func newNet(class string) *net {
	return &net{vs: nn.NewVarStore(gotch.CPU), params: map[string]*ts.Tensor{}, buffers: map[string]*ts.Tensor{}, class: class}
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

// affine adds h·<name>_scale + <name>_shift with fixed per-feature
// vectors of width values (registered as buffers in the export).
func (n *net) affine(name string, a *Affine, width int64) error {
	if a == nil {
		return nil
	}
	if int64(len(a.Scale)) != width || int64(len(a.Shift)) != width {
		return fmt.Errorf("torch: affine %s: %d scales and %d shifts for %d features", name, len(a.Scale), len(a.Shift), width)
	}
	for suffix, v := range map[string][]float32{"_scale": a.Scale, "_shift": a.Shift} {
		t, err := ts.OfSlice(append([]float32(nil), v...))
		if err != nil {
			return err
		}
		n.buffers[name+suffix] = t
	}
	n.layers = append(n.layers, layer{kind: "affine", name: name})
	return nil
}

// free drops the parameter tensors held by the VarStore (gotch v0.7.0 has
// no VarStore destructor; NewVar returns the stored handle itself).
func (n *net) free() {
	for _, m := range []map[string]*ts.Tensor{n.params, n.buffers} {
		for k, t := range m {
			_ = t.Drop()
			delete(m, k)
		}
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
		case "affine":
			if h, err = s.add(h.Mul(n.buffers[l.name+"_scale"], false)); err == nil {
				h, err = s.add(h.Add(n.buffers[l.name+"_shift"], false))
			}
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
		case "affine":
			fmt.Fprintf(&b, "    h = h * self.%s_scale + self.%s_shift\n", l.name, l.name)
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
	names = names[:0]
	for k := range n.buffers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := lib.WardenModuleRegister(cm, k, n.buffers[k].Ctensor(), true); err != nil {
			return fmt.Errorf("torch: register buffer %s: %w", k, err)
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
	spec := FitSpec{Arch: ArchMLP, InShape: inShape, Out: classes, Loss: LossCE, Config: cfg}
	return fit(context.Background(), spec, FitData{X: xs, N: len(ys), Labels: ys}, outPath, true)
}

// TrainCNN trains a small convolutional net on images xs of shape
// inShape = [C, H, W]: per entry of cfg.Hidden a 3x3 convolution with that
// many channels, ReLU and 2x2 max-pooling, then a linear classifier. Output
// as for TrainMLP.
func TrainCNN(xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	spec := FitSpec{Arch: ArchCNN, InShape: inShape, Out: classes, Loss: LossCE, Config: cfg}
	return fit(context.Background(), spec, FitData{X: xs, N: len(ys), Labels: ys}, outPath, true)
}

// Fit trains the network spec describes on d with Adam on the CPU and
// writes it as a TorchScript module to outPath (no .ot weights file). It
// checks ctx between epochs and returns ctx's error when it is done.
// TrainResult.Accuracy is the training-set accuracy for the
// classification losses (per pixel for LossPixelCE; against the argmax of
// the targets for LossSoftCE) and 0 for LossMSE.
func Fit(ctx context.Context, spec FitSpec, d FitData, outPath string) (*TrainResult, error) {
	return fit(ctx, spec, d, outPath, false)
}

// defaults per architecture: hidden widths and learning rate.
func (a Arch) defaults() ([]int64, float64) {
	switch a {
	case ArchCNN:
		return []int64{8, 16}, 3e-3
	case ArchFCN:
		return []int64{16, 16}, 3e-3
	}
	return []int64{64}, 1e-2
}

// build makes the network of spec (cfg with defaults applied). A network
// it returns, even with an error, must be freed.
func build(spec FitSpec, cfg TrainConfig) (*net, error) {
	in, err := numel(spec.InShape)
	if err != nil {
		return nil, err
	}
	if spec.Out <= 0 {
		return nil, fmt.Errorf("torch: %d outputs", spec.Out)
	}
	switch spec.Arch {
	case ArchMLP:
		n := newNet("MLP")
		n.op("flatten")
		if err := n.affine("in", spec.Input, in); err != nil {
			return n, err
		}
		prev := in
		for i, h := range cfg.Hidden {
			if err := n.linear(fmt.Sprintf("fc%d", i), prev, h); err != nil {
				return n, err
			}
			n.op("relu")
			prev = h
		}
		if err := n.linear("out", prev, spec.Out); err != nil {
			return n, err
		}
		return n, n.affine("out", spec.Output, spec.Out)
	case ArchCNN, ArchFCN:
		if len(spec.InShape) != 3 {
			return nil, fmt.Errorf("torch: a convolutional net wants inShape [C,H,W], got %v", spec.InShape)
		}
		if spec.Input != nil || (spec.Arch == ArchFCN && spec.Output != nil) {
			return nil, errors.New("torch: this architecture takes no input (or, fully convolutional, output) affine map")
		}
		pool := spec.Arch == ArchCNN
		n := newNet("CNN")
		if !pool {
			n.class = "FCN"
		}
		c, h, w := spec.InShape[0], spec.InShape[1], spec.InShape[2]
		for i, ch := range cfg.Hidden {
			if pool && (h < 2 || w < 2) {
				return n, fmt.Errorf("torch: input %v too small for %d conv blocks", spec.InShape, len(cfg.Hidden))
			}
			if err := n.conv(fmt.Sprintf("conv%d", i), c, ch, 3); err != nil {
				return n, err
			}
			n.op("relu")
			c = ch
			if pool {
				n.op("pool")
				h, w = h/2, w/2
			}
		}
		if !pool {
			return n, n.conv("out", c, spec.Out, 3)
		}
		n.op("flatten")
		if err := n.linear("out", c*h*w, spec.Out); err != nil {
			return n, err
		}
		return n, n.affine("out", spec.Output, spec.Out)
	}
	return nil, fmt.Errorf("torch: unknown architecture %d", spec.Arch)
}

// perSample is how many label and target values one sample has.
func (spec FitSpec) perSample() (labels, targets int64, err error) {
	switch spec.Loss {
	case LossCE:
		return 1, 0, nil
	case LossSoftCE, LossMSE:
		return 0, spec.Out, nil
	case LossPixelCE:
		if spec.Arch != ArchFCN {
			return 0, 0, errors.New("torch: per-pixel cross-entropy needs ArchFCN")
		}
		return spec.InShape[1] * spec.InShape[2], 0, nil
	}
	return 0, 0, fmt.Errorf("torch: unknown loss %d", spec.Loss)
}

// classes is the number of classes labels index (0 for regression).
func (spec FitSpec) classes() int64 {
	if spec.Loss == LossMSE {
		return 0
	}
	return spec.Out
}

func fit(ctx context.Context, spec FitSpec, d FitData, outPath string, saveWeights bool) (*TrainResult, error) {
	hidden, lr := spec.Arch.defaults()
	cfg := spec.Config.withDefaults(hidden, lr)
	per, err := numel(spec.InShape)
	if err != nil {
		return nil, err
	}
	labPer, tgtPer, err := spec.perSample()
	if err != nil {
		return nil, err
	}
	N := int64(d.N)
	switch {
	case N <= 0 || int64(len(d.X)) != N*per:
		return nil, fmt.Errorf("torch: %d values for %d samples of shape %v", len(d.X), N, spec.InShape)
	case int64(len(d.Labels)) != N*labPer:
		return nil, fmt.Errorf("torch: %d labels for %d samples (want %d each)", len(d.Labels), N, labPer)
	case int64(len(d.Targets)) != N*tgtPer:
		return nil, fmt.Errorf("torch: %d targets for %d samples (want %d each)", len(d.Targets), N, tgtPer)
	}
	for _, y := range d.Labels {
		if y < 0 || y >= spec.Out {
			return nil, fmt.Errorf("torch: label %d outside [0,%d)", y, spec.Out)
		}
	}
	if outPath == "" {
		return nil, errors.New("torch: no output path")
	}
	defer pin()()
	lib.WardenManualSeed(cfg.Seed)
	n, err := build(spec, cfg)
	if n != nil {
		defer n.free()
	}
	if err != nil {
		return nil, err
	}
	defer gradEnabled(true)()
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
	idx := rng.Perm(int(N))
	res := &TrainResult{ModelPath: outPath}
	var b batch
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		var sum float64
		for start := 0; start < len(idx); start += cfg.BatchSize {
			end := min(start+cfg.BatchSize, len(idx))
			b.reset()
			for _, k := range idx[start:end] {
				k := int64(k)
				b.x = append(b.x, d.X[k*per:(k+1)*per]...)
				b.labels = append(b.labels, d.Labels[k*labPer:(k+1)*labPer]...)
				b.targets = append(b.targets, d.Targets[k*tgtPer:(k+1)*tgtPer]...)
			}
			b.n = end - start
			l, err := step(n, opt, spec, &b)
			if err != nil {
				return nil, err
			}
			sum += l * float64(end-start)
		}
		res.Losses = append(res.Losses, sum/float64(N))
	}
	if spec.classes() > 0 {
		if res.Accuracy, err = accuracy(n, spec, d); err != nil {
			return nil, err
		}
	}
	if saveWeights {
		res.WeightsPath = strings.TrimSuffix(outPath, filepath.Ext(outPath)) + ".ot"
		if err := n.vs.Save(res.WeightsPath); err != nil {
			return nil, fmt.Errorf("torch: save weights: %w", err)
		}
	}
	if err := n.export(outPath); err != nil {
		return nil, fmt.Errorf("torch: export TorchScript: %w", err)
	}
	return res, nil
}

// batch is one minibatch, reused across steps.
type batch struct {
	n       int
	x       []float32
	labels  []int64
	targets []float32
}

func (b *batch) reset() { b.n, b.x, b.labels, b.targets = 0, b.x[:0], b.labels[:0], b.targets[:0] }

// loss is spec.Loss of the network's output on a batch.
func loss(s *scope, spec FitSpec, out *ts.Tensor, b *batch) (*ts.Tensor, error) {
	switch spec.Loss {
	case LossCE, LossPixelCE:
		y, err := s.int64s(b.labels, CPU)
		if err != nil {
			return nil, err
		}
		if spec.Loss == LossPixelCE {
			// [N, K, H, W] → [N·H·W, K] rows against the row-major labels.
			p, err := s.add(out.Permute([]int64{0, 2, 3, 1}, false))
			if err != nil {
				return nil, err
			}
			if out, err = s.add(p.Reshape([]int64{-1, spec.Out}, false)); err != nil {
				return nil, err
			}
		}
		return crossEntropy(s, out, y)
	case LossSoftCE:
		t, err := s.fromGo(b.targets, []int64{int64(b.n), spec.Out}, CPU)
		if err != nil {
			return nil, err
		}
		lsm, err := s.add(out.LogSoftmax(-1, gotch.Float, false))
		if err != nil {
			return nil, err
		}
		p, err := s.add(lsm.Mul(t, false))
		if err != nil {
			return nil, err
		}
		row, err := s.add(p.SumDimIntlist([]int64{1}, false, gotch.Float, false))
		if err != nil {
			return nil, err
		}
		m, err := s.add(row.Mean(gotch.Float, false))
		if err != nil {
			return nil, err
		}
		return s.add(m.Neg(false))
	case LossMSE:
		t, err := s.fromGo(b.targets, []int64{int64(b.n), spec.Out}, CPU)
		if err != nil {
			return nil, err
		}
		const reductionMean = 1
		return s.add(out.MseLoss(t, reductionMean, false))
	}
	return nil, fmt.Errorf("torch: unknown loss %d", spec.Loss)
}

func step(n *net, opt *ts.COptimizer, spec FitSpec, b *batch) (float64, error) {
	var s scope
	defer s.close()
	shape := append([]int64{int64(b.n)}, spec.InShape...)
	x, err := s.fromGo(b.x, shape, CPU)
	if err != nil {
		return 0, err
	}
	out, err := n.forward(&s, x)
	if err != nil {
		return 0, err
	}
	l, err := loss(&s, spec, out, b)
	if err != nil {
		return 0, err
	}
	if err := opt.ZeroGrad(); err != nil {
		return 0, err
	}
	if err := l.Backward(); err != nil {
		return 0, err
	}
	if err := opt.Step(); err != nil {
		return 0, err
	}
	return l.Float64Value(nil)
}

// accuracy is the share of training labels (pixels for LossPixelCE; the
// targets' argmax for LossSoftCE) the trained network's argmax matches.
func accuracy(n *net, spec FitSpec, d FitData) (float64, error) {
	defer gradEnabled(false)()
	per, _ := numel(spec.InShape)
	K := int(spec.Out)
	right, total := 0, 0
	const chunk = 512
	for lo := 0; lo < d.N; lo += chunk {
		hi := min(lo+chunk, d.N)
		var s scope
		shape := append([]int64{int64(hi - lo)}, spec.InShape...)
		x, err := s.fromGo(d.X[int64(lo)*per:int64(hi)*per], shape, CPU)
		if err != nil {
			s.close()
			return 0, err
		}
		logits, err := n.forward(&s, x)
		if err != nil {
			s.close()
			return 0, err
		}
		out, err := s.toGo(logits)
		s.close()
		if err != nil {
			return 0, err
		}
		switch spec.Loss {
		case LossCE, LossSoftCE:
			for i := lo; i < hi; i++ {
				best := argmax(out.Data[(i-lo)*K : (i-lo+1)*K])
				want := 0
				if spec.Loss == LossCE {
					want = int(d.Labels[i])
				} else {
					want = argmax(d.Targets[i*K : (i+1)*K])
				}
				if best == want {
					right++
				}
				total++
			}
		case LossPixelCE:
			hw := int(spec.InShape[1] * spec.InShape[2])
			for i := lo; i < hi; i++ {
				o := out.Data[(i-lo)*K*hw : (i-lo+1)*K*hw]
				for p := 0; p < hw; p++ {
					best := 0
					for k := 1; k < K; k++ {
						if o[k*hw+p] > o[best*hw+p] {
							best = k
						}
					}
					if int64(best) == d.Labels[i*hw+p] {
						right++
					}
					total++
				}
			}
		}
	}
	return float64(right) / float64(total), nil
}

func argmax(row []float32) int {
	best := 0
	for j := range row {
		if row[j] > row[best] {
			best = j
		}
	}
	return best
}
