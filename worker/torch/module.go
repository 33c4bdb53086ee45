//go:build torch

package torch

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// Module is a TorchScript module loaded into libtorch. It is safe for
// concurrent use (calls are serialised); Close frees it.
type Module struct {
	mu  sync.Mutex
	cm  *ts.CModule
	dev Device
}

var errClosed = errors.New("torch: module is closed")

// LoadModule loads a TorchScript file (torch.jit.save / torch.jit.trace
// output) onto dev and puts it in eval mode.
func LoadModule(path string, dev Device) (*Module, error) {
	defer pin()()
	cm, err := ts.ModuleLoadOnDevice(path, dev.gotch())
	if err != nil {
		return nil, fmt.Errorf("torch: load %s: %w", path, err)
	}
	cm.SetEval()
	return &Module{cm: cm, dev: dev}, nil
}

// Operators lists every operator the module's TorchScript graphs use
// (all methods and functions, submodules included), sorted.
func (m *Module) Operators() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, errClosed
	}
	defer pin()()
	return lib.WardenModuleOperators(m.cm.Cmodule)
}

// Parameters lists the module's parameters (submodules included) in
// registration order, which for ordinary modules is the order of their
// layers.
func (m *Module) Parameters() ([]Param, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, errClosed
	}
	defer pin()()
	named, err := m.cm.NamedParameters()
	if err != nil {
		return nil, fmt.Errorf("torch: parameters: %w", err)
	}
	out := make([]Param, 0, len(named))
	for _, p := range named {
		shape, err := p.Tensor.Size()
		p.Tensor.MustDrop()
		if err != nil {
			return nil, fmt.Errorf("torch: size of parameter %s: %w", p.Name, err)
		}
		out = append(out, Param{Name: p.Name, Shape: shape})
	}
	return out, nil
}

// ForwardInputTypes lists the TorchScript types of forward's arguments
// after self ("Tensor", "List[str]").
func (m *Module) ForwardInputTypes() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, errClosed
	}
	defer pin()()
	_, types, err := lib.WardenModuleMethodArgs(m.cm.Cmodule, "forward")
	if err != nil {
		return nil, fmt.Errorf("torch: forward's schema: %w", err)
	}
	if len(types) == 0 {
		return nil, errors.New("torch: forward has no self argument")
	}
	return types[1:], nil
}

// ForwardStrings runs forward on a list of texts (a method typed
// List[str]) without autograd and returns its 2-D output.
func (m *Module) ForwardStrings(texts []string) (*Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, errClosed
	}
	defer pin()()
	data, rows, cols, err := lib.WardenModuleForwardStrings(m.cm.Cmodule, texts)
	if err != nil {
		return nil, fmt.Errorf("torch: forward: %w", err)
	}
	return &Tensor{Data: data, Shape: []int64{rows, cols}}, nil
}

// Features runs the module on x (float32, shape) up to its last linear
// layer, without autograd, and returns that layer's input, one row per
// sample ([batch, features], anything after the batch flattened), and a
// description of the layer. It finds the layer by graph surgery on a copy
// of forward's graph (scripts/torch/ext: wext_module_features), so it works
// on any TorchScript module, and fails when forward has no linear layer
// outside control flow.
func (m *Module) Features(x *Tensor) (*Tensor, string, error) {
	if x == nil {
		return nil, "", errors.New("torch: Features needs an input")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, "", errClosed
	}
	defer pin()()
	defer gradEnabled(false)()
	var s scope
	defer s.close()
	xt, err := s.fromGo(x.Data, x.Shape, m.dev)
	if err != nil {
		return nil, "", err
	}
	data, rows, cols, desc, err := lib.WardenModuleFeatures(m.cm.Cmodule, xt.Ctensor())
	if err != nil {
		return nil, "", fmt.Errorf("torch: features: %w", err)
	}
	return &Tensor{Data: data, Shape: []int64{rows, cols}}, desc, nil
}

// Device is where the module's parameters live.
func (m *Module) Device() Device { return m.dev }

// Close frees the module. It is idempotent.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil
	}
	defer pin()()
	m.cm.Drop()
	m.cm = nil
	return nil
}

// Forward runs the module's forward method on float32 inputs without
// building an autograd graph and returns its (single tensor) output, e.g.
// logits of shape [batch, classes].
func (m *Module) Forward(xs ...*Tensor) (*Tensor, error) {
	if len(xs) == 0 {
		return nil, errors.New("torch: Forward needs at least one input")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, errClosed
	}
	defer pin()()
	defer gradEnabled(false)()
	var s scope
	defer s.close()
	in := make([]ts.Tensor, len(xs))
	for i, x := range xs {
		if x == nil {
			return nil, fmt.Errorf("torch: Forward input %d is nil", i)
		}
		t, err := s.fromGo(x.Data, x.Shape, m.dev)
		if err != nil {
			return nil, err
		}
		in[i] = *t
	}
	out, err := s.add(m.cm.ForwardTs(in))
	if err != nil {
		return nil, fmt.Errorf("torch: forward: %w", err)
	}
	return s.toGo(out)
}

// InputGradient runs m on the batch x (float32, shape) and returns the mean
// cross-entropy loss against labels (one class index per batch row), its
// gradient with respect to x (same layout as x), and the logits.
// Parameter gradients are not accumulated (torch::autograd::grad on x only),
// so it can be called repeatedly, e.g. by FGSM/PGD loops.
func InputGradient(m *Module, x []float32, shape []int64, labels []int64) (loss float64, grad []float32, logits []float32, err error) {
	if m == nil {
		return 0, nil, nil, errors.New("torch: nil module")
	}
	if len(shape) == 0 || int64(len(labels)) != shape[0] {
		return 0, nil, nil, fmt.Errorf("torch: %d labels for batch shape %v", len(labels), shape)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return 0, nil, nil, errClosed
	}
	defer pin()()
	defer gradEnabled(true)()
	var s scope
	defer s.close()

	xt, err := s.fromGo(x, shape, m.dev)
	if err != nil {
		return 0, nil, nil, err
	}
	// A fresh leaf that requires grad (xt may be a view of the Go copy).
	leaf, err := s.add(xt.Detach(false))
	if err != nil {
		return 0, nil, nil, err
	}
	leaf, err = s.add(leaf.SetRequiresGrad(true, false))
	if err != nil {
		return 0, nil, nil, err
	}
	yt, err := s.int64s(labels, m.dev)
	if err != nil {
		return 0, nil, nil, err
	}
	out, err := s.add(m.cm.ForwardTs([]ts.Tensor{*leaf}))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("torch: forward: %w", err)
	}
	l, err := crossEntropy(&s, out, yt)
	if err != nil {
		return 0, nil, nil, err
	}
	grads, err := ts.RunBackward([]ts.Tensor{*l}, []ts.Tensor{*leaf}, false, false)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("torch: backward: %w", err)
	}
	for i := range grads {
		s.ts = append(s.ts, &grads[i])
	}
	g, err := s.toGo(&grads[0])
	if err != nil {
		return 0, nil, nil, err
	}
	lo, err := s.toGo(out)
	if err != nil {
		return 0, nil, nil, err
	}
	lv, err := s.toGo(l)
	if err != nil {
		return 0, nil, nil, err
	}
	return float64(lv.Data[0]), g.Data, lo.Data, nil
}

// crossEntropy = mean over the batch of -log_softmax(logits)[label],
// like torch.nn.functional.cross_entropy with default arguments.
func crossEntropy(s *scope, logits, labels *ts.Tensor) (*ts.Tensor, error) {
	lsm, err := s.add(logits.LogSoftmax(-1, gotch.Float, false))
	if err != nil {
		return nil, err
	}
	w, err := s.add(ts.NewTensor(), nil) // undefined tensor = no class weights
	if err != nil {
		return nil, err
	}
	const reductionMean, ignoreIndex = 1, -100
	return s.add(lsm.NllLoss(labels, w, reductionMean, ignoreIndex, false))
}

// OutputGradient runs m on the batch x (float32, shape) and returns the
// gradient with respect to x of sum(output ⊙ weights), a vector-Jacobian
// product: weights has the output's layout (weightShape), and a caller
// builds any differentiable loss of the output by choosing them (e.g. the
// scores of the detections an attack suppresses). It also returns the
// output. Parameter gradients are not accumulated.
func OutputGradient(m *Module, x []float32, shape []int64, weights []float32, weightShape []int64) (grad []float32, out *Tensor, err error) {
	if m == nil {
		return nil, nil, errors.New("torch: nil module")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cm == nil {
		return nil, nil, errClosed
	}
	defer pin()()
	defer gradEnabled(true)()
	var s scope
	defer s.close()
	xt, err := s.fromGo(x, shape, m.dev)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := s.add(xt.Detach(false))
	if err != nil {
		return nil, nil, err
	}
	if leaf, err = s.add(leaf.SetRequiresGrad(true, false)); err != nil {
		return nil, nil, err
	}
	y, err := s.add(m.cm.ForwardTs([]ts.Tensor{*leaf}))
	if err != nil {
		return nil, nil, fmt.Errorf("torch: forward: %w", err)
	}
	got, err := y.Size()
	if err != nil {
		return nil, nil, err
	}
	if !slices.Equal(got, weightShape) {
		return nil, nil, fmt.Errorf("torch: output shape %v, weights for %v", got, weightShape)
	}
	w, err := s.fromGo(weights, weightShape, m.dev)
	if err != nil {
		return nil, nil, err
	}
	prod, err := s.add(y.Mul(w, false))
	if err != nil {
		return nil, nil, err
	}
	total, err := s.add(prod.Sum(gotch.Float, false))
	if err != nil {
		return nil, nil, err
	}
	grads, err := ts.RunBackward([]ts.Tensor{*total}, []ts.Tensor{*leaf}, false, false)
	if err != nil {
		return nil, nil, fmt.Errorf("torch: backward: %w", err)
	}
	for i := range grads {
		s.ts = append(s.ts, &grads[i])
	}
	g, err := s.toGo(&grads[0])
	if err != nil {
		return nil, nil, err
	}
	o, err := s.toGo(y)
	if err != nil {
		return nil, nil, err
	}
	return g.Data, o, nil
}
