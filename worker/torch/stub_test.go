//go:build !torch

package torch

import (
	"errors"
	"testing"
)

func TestStubUnavailable(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true without the torch tag")
	}
	if got, want := Reason(), "worker built without libtorch (run make torch-setup)"; got != want {
		t.Fatalf("Reason() = %q, want %q", got, want)
	}
	if _, err := LoadModule("x.pt", CPU); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("LoadModule err = %v", err)
	}
	if _, _, _, err := InputGradient(nil, nil, nil, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("InputGradient err = %v", err)
	}
	if d, _ := SelectDevice(); d != CPU {
		t.Fatalf("SelectDevice() = %v", d)
	}
}

func TestNewTensorChecksShape(t *testing.T) {
	if _, err := NewTensor(make([]float32, 6), 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTensor(make([]float32, 5), 2, 3); err == nil {
		t.Fatal("want error for 5 values in [2 3]")
	}
	if _, err := NewTensor(nil, 0); err == nil {
		t.Fatal("want error for zero dimension")
	}
}
