//go:build torch

package torch

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// Available reports whether this build has the libtorch engine.
func Available() bool { return true }

// Reason says which libtorch the engine was built against.
func Reason() string {
	return "libtorch " + TorchVersion() + " via gotch (built with -tags torch)"
}

// TorchVersion is the version of the libtorch headers libtch was compiled
// against, e.g. "1.13.0".
func TorchVersion() string { return lib.WardenTorchVersion() }

// SelectDevice returns CUDA device 0 when libtorch sees a GPU, else the CPU,
// with a line saying why.
func SelectDevice() (Device, string) {
	if gotch.CUDA.IsAvailable() {
		n := gotch.CUDA.DeviceCount()
		return CUDA(0), fmt.Sprintf("%d CUDA device(s) visible to libtorch %s; using cuda:0", n, TorchVersion())
	}
	return CPU, fmt.Sprintf("no CUDA device visible to libtorch %s; using the CPU", TorchVersion())
}

// SetThreads sets libtorch's intra-op thread pool size
// (at::set_num_threads). n <= 0 leaves it unchanged.
func SetThreads(n int) {
	if n > 0 {
		lib.WardenSetNumThreads(n)
	}
}

// Threads returns libtorch's intra-op thread count (at::get_num_threads).
func Threads() int { return lib.WardenGetNumThreads() }

// ThreadsFromEnv applies TORCH_THREADS (if set to a positive integer) and
// returns the resulting thread count.
func ThreadsFromEnv() int {
	if n, err := strconv.Atoi(os.Getenv("TORCH_THREADS")); err == nil && n > 0 {
		SetThreads(n)
	}
	return Threads()
}

func (d Device) gotch() gotch.Device {
	if d.Kind == KindCUDA {
		return gotch.CudaBuilder(uint(d.Index))
	}
	return gotch.CPU
}

// pin locks the calling goroutine to its OS thread for the duration of an
// engine call: gotch reports libtorch errors through a thread-local slot,
// and libtorch's grad mode is thread-local too, so a goroutine that moved
// between two cgo calls could lose an error or run with the wrong grad mode.
func pin() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// scope owns the libtorch tensors created during one engine call and frees
// them deterministically (gotch v0.7.0 sets no finalizers).
type scope struct{ ts []*ts.Tensor }

func (s *scope) add(t *ts.Tensor, err error) (*ts.Tensor, error) {
	if err != nil {
		return nil, err
	}
	s.ts = append(s.ts, t)
	return t, nil
}

func (s *scope) close() {
	for i := len(s.ts) - 1; i >= 0; i-- {
		_ = s.ts[i].Drop()
	}
	s.ts = nil
}

// fromGo copies a Go float32 slice into a libtorch tensor of the given shape
// on dev.
func (s *scope) fromGo(data []float32, shape []int64, dev Device) (*ts.Tensor, error) {
	n, err := numel(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("torch: %d values for shape %v (want %d)", len(data), shape, n)
	}
	flat, err := s.add(ts.OfSlice(data))
	if err != nil {
		return nil, err
	}
	t, err := s.add(flat.View(shape, false))
	if err != nil {
		return nil, err
	}
	if dev.IsCUDA() {
		return s.add(t.To(dev.gotch(), false))
	}
	return t, nil
}

func (s *scope) int64s(data []int64, dev Device) (*ts.Tensor, error) {
	t, err := s.add(ts.OfSlice(data))
	if err != nil {
		return nil, err
	}
	if dev.IsCUDA() {
		return s.add(t.To(dev.gotch(), false))
	}
	return t, nil
}

// toGo copies a float tensor (any device) into Go memory.
func (s *scope) toGo(t *ts.Tensor) (*Tensor, error) {
	shape, err := t.Size()
	if err != nil {
		return nil, err
	}
	c, err := s.add(t.ToDevice(gotch.CPU, gotch.Float, false, false, false))
	if err != nil {
		return nil, err
	}
	c, err = s.add(c.Contiguous(false))
	if err != nil {
		return nil, err
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	out := make([]float32, n)
	if n > 0 {
		// c is a contiguous float32 CPU tensor: copy its n values straight
		// into out. (gotch's CopyData first walks the destination with
		// reflection, one allocation per element: 8 % of a PGD step.)
		lib.AtCopyData(lib.Ctensor(c.Ctensor()), unsafe.Pointer(&out[0]), uint(n), 4)
		if err := ts.TorchErr(); err != nil {
			return nil, err
		}
	}
	return &Tensor{Data: out, Shape: shape}, nil
}

func gradEnabled(on bool) (restore func()) {
	prev := ts.MustGradSetEnabled(on)
	return func() { ts.MustGradSetEnabled(prev) }
}

var (
	gotchFloat = gotch.Float
	gotchCPU   = gotch.CPU
)
