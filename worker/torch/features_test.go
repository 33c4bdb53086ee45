//go:build torch

package torch

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// scripted builds, saves and loads a module with the given parameters
// (name → values and shape) and TorchScript source.
func scripted(t *testing.T, params map[string]*Tensor, src string) *Module {
	t.Helper()
	cm, err := lib.WardenModuleNew("__torch__.warden.Test")
	if err != nil {
		t.Fatal(err)
	}
	mod := &ts.CModule{Cmodule: cm}
	defer mod.Drop()
	for name, p := range params {
		var s scope
		pt, err := s.fromGo(p.Data, p.Shape, CPU)
		if err != nil {
			t.Fatal(err)
		}
		if err := lib.WardenModuleRegister(cm, name, pt.Ctensor(), false); err != nil {
			t.Fatal(err)
		}
		s.close()
	}
	if err := lib.WardenModuleDefine(cm, src); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.pt")
	if err := mod.Save(path); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModule(path, CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// affineRelu is relu(x·Wᵀ + b) for x [n, in], W [out, in], by hand.
func affineRelu(x []float32, n int, w []float32, out int, b []float32, relu bool) []float32 {
	in := len(x) / n
	y := make([]float32, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			s := float64(b[o])
			for k := 0; k < in; k++ {
				s += float64(x[i*in+k]) * float64(w[o*in+k])
			}
			if relu {
				s = math.Max(s, 0)
			}
			y[i*out+o] = float32(s)
		}
	}
	return y
}

// Features returns the input of the last linear layer of a two-layer MLP,
// written with torch.linear, torch.addmm and torch.matmul, equal to the
// hidden layer computed by hand; a module without a linear layer fails
// with a clear error.
func TestFeaturesOfKnownModules(t *testing.T) {
	const n, in, hid, out = 4, 3, 5, 2
	x := &Tensor{Data: []float32{1, -2, 0.5, 0, 1, 2, -1, -1, 3, 0.25, 0.5, -0.75}, Shape: []int64{n, in}}
	w1 := &Tensor{Shape: []int64{hid, in}}
	for i := 0; i < hid*in; i++ {
		w1.Data = append(w1.Data, float32(math.Sin(float64(i+1))))
	}
	b1 := &Tensor{Data: []float32{0.1, -0.2, 0.3, 0, 0.05}, Shape: []int64{hid}}
	w2 := &Tensor{Data: []float32{1, 0, -1, 2, 0.5, -0.5, 1, 1, 0, 3}, Shape: []int64{out, hid}}
	b2 := &Tensor{Data: []float32{0.5, -0.5}, Shape: []int64{out}}
	params := map[string]*Tensor{"w1": w1, "b1": b1, "w2": w2, "b2": b2}
	want := affineRelu(x.Data, n, w1.Data, hid, b1.Data, true)
	for _, c := range []struct{ name, last, layer string }{
		{"linear", "torch.linear(h, self.w2, self.b2)", "aten::linear on w2"},
		{"addmm", "torch.addmm(self.b2, h, self.w2.t())", "aten::addmm on w2"},
		{"matmul", "torch.matmul(h, self.w2.t()) + self.b2", "aten::matmul on w2"},
		// A product of activations after the layer is not a layer.
		{"linear then activation product", "torch.matmul(torch.linear(h, self.w2, self.b2), torch.ones(2, 2))", "aten::linear on w2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := scripted(t, params, "def forward(self, x):\n    h = torch.relu(torch.linear(x, self.w1, self.b1))\n    return "+c.last+"\n")
			f, desc, err := m.Features(x)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", c.name, desc)
			if !strings.Contains(desc, c.layer) || !strings.Contains(desc, "5 features") {
				t.Errorf("description %q, want it to name %q and 5 features", desc, c.layer)
			}
			if len(f.Shape) != 2 || f.Shape[0] != n || f.Shape[1] != hid {
				t.Fatalf("features of shape %v, want [%d %d]", f.Shape, n, hid)
			}
			for i := range want {
				if math.Abs(float64(f.Data[i]-want[i])) > 1e-5 {
					t.Fatalf("feature %d = %g, by hand %g", i, f.Data[i], want[i])
				}
			}
			// The module itself is untouched: forward still gives the logits.
			y, err := m.Forward(x)
			if err != nil || len(y.Data) != n*out {
				t.Fatalf("forward after Features: %v, %v", y, err)
			}
		})
	}
	t.Run("no linear layer", func(t *testing.T) {
		m := scripted(t, map[string]*Tensor{"s": {Data: []float32{2}, Shape: []int64{1}}}, "def forward(self, x):\n    return torch.relu(x * self.s)\n")
		_, _, err := m.Features(x)
		if err == nil || !strings.Contains(err.Error(), "no linear layer") {
			t.Fatalf("err = %v, want no linear layer", err)
		}
	})
}

// On a scripted PyTorch CNN whose layers are submodules (calls inlined by
// the graph surgery), the features times fc's weight plus its bias are the
// logits forward returns.
func TestFeaturesOfPythonCNN(t *testing.T) {
	path, r := pythonModel(t)
	m, err := LoadModule(path, CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x := &Tensor{Data: r.X, Shape: r.Shape}
	f, desc, err := m.Features(x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", desc)
	if !strings.Contains(desc, "fc.weight") || f.Shape[1] != 64 {
		t.Fatalf("%s, shape %v: want fc's 64 inputs", desc, f.Shape)
	}
	named, err := m.cm.NamedParameters()
	if err != nil {
		t.Fatal(err)
	}
	var s scope
	defer s.close()
	vals := map[string]*Tensor{}
	for _, p := range named {
		s.ts = append(s.ts, p.Tensor)
		v, err := s.toGo(p.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		vals[p.Name] = v
	}
	w, b := vals["fc.weight"], vals["fc.bias"]
	if w == nil || b == nil {
		t.Fatalf("parameters %v", vals)
	}
	logits := affineRelu(f.Data, int(f.Shape[0]), w.Data, int(w.Shape[0]), b.Data, false)
	maxDiff(t, "features·fcᵀ + b vs logits", logits, r.Logits)
}
