//go:build !torch

package torch

import "context"

// Available reports whether this build has the libtorch engine. It is false
// here: the worker was built without the "torch" tag.
func Available() bool { return false }

// Reason says why the engine is (un)available.
func Reason() string { return unavailableReason }

// TorchVersion is the libtorch version compiled in ("" without libtorch).
func TorchVersion() string { return "" }

// SelectDevice returns the CPU: there is no engine to ask.
func SelectDevice() (Device, string) { return CPU, unavailableReason }

// SetThreads does nothing without libtorch.
func SetThreads(n int) {}

// Threads returns 0 without libtorch.
func Threads() int { return 0 }

// Module is a TorchScript module; without libtorch none can be loaded.
type Module struct{}

// LoadModule fails with ErrUnavailable.
func LoadModule(path string, dev Device) (*Module, error) { return nil, ErrUnavailable }

// Device of a nil module is the CPU.
func (m *Module) Device() Device { return CPU }

// Forward fails with ErrUnavailable.
func (m *Module) Forward(xs ...*Tensor) (*Tensor, error) { return nil, ErrUnavailable }

// Operators fails with ErrUnavailable.
func (m *Module) Operators() ([]string, error) { return nil, ErrUnavailable }

// Parameters fails with ErrUnavailable.
func (m *Module) Parameters() ([]Param, error) { return nil, ErrUnavailable }

// ForwardInputTypes fails with ErrUnavailable.
func (m *Module) ForwardInputTypes() ([]string, error) { return nil, ErrUnavailable }

// ForwardStrings fails with ErrUnavailable.
func (m *Module) ForwardStrings(texts []string) (*Tensor, error) { return nil, ErrUnavailable }

// Features fails with ErrUnavailable.
func (m *Module) Features(x *Tensor) (*Tensor, string, error) { return nil, "", ErrUnavailable }

// Close does nothing.
func (m *Module) Close() error { return nil }

// InputGradient fails with ErrUnavailable.
func InputGradient(m *Module, x []float32, shape []int64, labels []int64) (loss float64, grad []float32, logits []float32, err error) {
	return 0, nil, nil, ErrUnavailable
}

// TrainMLP fails with ErrUnavailable.
func TrainMLP(xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	return nil, ErrUnavailable
}

// TrainCNN fails with ErrUnavailable.
func TrainCNN(xs []float32, ys []int64, inShape []int64, classes int64, cfg TrainConfig, outPath string) (*TrainResult, error) {
	return nil, ErrUnavailable
}

func OutputGradient(m *Module, x []float32, shape []int64, weights []float32, weightShape []int64) (grad []float32, out *Tensor, err error) {
	return nil, nil, ErrUnavailable
}

// Fit fails with ErrUnavailable.
func Fit(ctx context.Context, spec FitSpec, d FitData, outPath string) (*TrainResult, error) {
	return nil, ErrUnavailable
}
