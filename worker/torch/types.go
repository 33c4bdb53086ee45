// Package torch is Warden's tensor engine: the only package that talks to
// libtorch (through github.com/sugarme/gotch). Everything it exports is
// plain Go (slices, shapes, errors), so the rest of Warden never sees gotch.
//
// The real engine is compiled only with the build tag "torch" and the module
// file prepared by scripts/torch/setup:
//
//	go build -modfile=.build/go.torch.mod -tags torch ./...
//
// Without the tag the same API exists but Available() reports false and
// every operation returns ErrUnavailable, so CGO_ENABLED=0 builds of Warden
// keep working on machines without libtorch.
package torch

import (
	"errors"
	"fmt"
)

// ErrUnavailable is returned by every operation of a build without libtorch.
var ErrUnavailable = errors.New("torch: " + unavailableReason)

const unavailableReason = "worker built without libtorch (run make torch-setup)"

// DeviceKind says where tensors live.
type DeviceKind int

const (
	KindCPU DeviceKind = iota
	KindCUDA
)

// Device is a libtorch device: the CPU or one CUDA GPU.
type Device struct {
	Kind  DeviceKind
	Index int // CUDA ordinal; 0 for the CPU
}

// CPU is the host device.
var CPU = Device{Kind: KindCPU}

// CUDA returns the CUDA device with the given ordinal.
func CUDA(index int) Device { return Device{Kind: KindCUDA, Index: index} }

// IsCUDA reports whether d is a GPU.
func (d Device) IsCUDA() bool { return d.Kind == KindCUDA }

func (d Device) String() string {
	if d.Kind == KindCUDA {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}

// Tensor is a dense float32 tensor held in Go memory, row-major.
type Tensor struct {
	Data  []float32
	Shape []int64
}

// NewTensor checks that len(data) matches shape.
func NewTensor(data []float32, shape ...int64) (*Tensor, error) {
	n, err := numel(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("torch: %d values for shape %v (want %d)", len(data), shape, n)
	}
	return &Tensor{Data: data, Shape: append([]int64(nil), shape...)}, nil
}

func numel(shape []int64) (int64, error) {
	if len(shape) == 0 {
		return 0, errors.New("torch: empty shape")
	}
	n := int64(1)
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("torch: bad shape %v", shape)
		}
		n *= d
	}
	return n, nil
}

// Param is one of a module's parameters: its qualified name and shape.
type Param struct {
	Name  string
	Shape []int64
}

// TrainConfig controls TrainMLP and TrainCNN. Zero values take defaults.
type TrainConfig struct {
	Hidden    []int64 // MLP hidden widths (default [64]); CNN: conv channels (default [8, 16])
	Epochs    int     // default 20
	BatchSize int     // default 32
	LR        float64 // Adam learning rate, default 1e-2 (MLP) / 3e-3 (CNN)
	Seed      int64   // torch.manual_seed, default 1
}

// TrainResult describes a trained model written by TrainMLP/TrainCNN.
type TrainResult struct {
	ModelPath   string    // TorchScript module, loadable with LoadModule and torch.jit.load
	WeightsPath string    // gotch VarStore file (.ot), see README
	Losses      []float64 // mean training loss per epoch
	Accuracy    float64   // accuracy on the training set after the last epoch
}

func (c TrainConfig) withDefaults(hidden []int64, lr float64) TrainConfig {
	if len(c.Hidden) == 0 {
		c.Hidden = hidden
	}
	if c.Epochs <= 0 {
		c.Epochs = 20
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 32
	}
	if c.LR <= 0 {
		c.LR = lr
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Arch is the family of network Fit builds.
type Arch int

const (
	// ArchMLP flattens the input and applies ReLU hidden layers of
	// TrainConfig.Hidden widths, then a linear layer of Out units.
	ArchMLP Arch = iota
	// ArchCNN is per entry of Hidden a 3x3 convolution with that many
	// channels, ReLU and 2x2 max-pooling, then a linear layer of Out units;
	// the input is [C, H, W].
	ArchCNN
	// ArchFCN is fully convolutional: per entry of Hidden a 3x3
	// convolution (padding 1) and ReLU, then a 3x3 convolution to Out
	// channels, no pooling, so [C, H, W] maps to [Out, H, W] (a per-pixel
	// classifier).
	ArchFCN
)

// Loss is what Fit minimises.
type Loss int

const (
	// LossCE is cross-entropy against class indices, FitData.Labels one
	// per sample.
	LossCE Loss = iota
	// LossSoftCE is cross-entropy against class probabilities,
	// FitData.Targets Out per sample: mean over samples of
	// -Σ_k t_k·log_softmax(z)_k.
	LossSoftCE
	// LossMSE is the mean squared error against FitData.Targets, Out per
	// sample (regression).
	LossMSE
	// LossPixelCE is per-pixel cross-entropy for an ArchFCN output
	// [N, Out, H, W] against FitData.Labels, H·W class indices per sample
	// (row-major), averaged over every pixel.
	LossPixelCE
)

// FitSpec is a network and how Fit trains it.
type FitSpec struct {
	Arch    Arch
	InShape []int64 // one sample, e.g. [F] or [C, H, W]
	Out     int64   // classes, regression outputs, or per-pixel classes
	Loss    Loss
	Config  TrainConfig
	// Input and Output are fixed (untrained) per-feature maps x·Scale+Shift
	// built into the network, so the exported module takes raw inputs and
	// gives outputs in the targets' units: Input (ArchMLP only) applies to
	// the flattened input, Output (ArchMLP, ArchCNN) to the last layer's
	// Out values. Nil is the identity.
	Input, Output *Affine
}

// Affine is a fixed per-feature x·Scale+Shift, e.g. a standardisation
// (Scale = 1/σ, Shift = -μ/σ). Scale and Shift have one value per feature.
type Affine struct {
	Scale, Shift []float32
}

// FitData is what Fit trains on: N samples of FitSpec.InShape, row-major,
// with Labels or Targets as the loss wants (see Loss).
type FitData struct {
	X       []float32
	N       int
	Labels  []int64
	Targets []float32
}
