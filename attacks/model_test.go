package attacks

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// mlp is a real 1-hidden-layer ReLU network with softmax output and analytic
// input gradients, used as the model under attack. It is not a mock: Predict
// and LossGradient compute the actual forward and backward passes.
type mlp struct {
	in, hid, out int
	w1           []float64 // hid×in
	b1           []float64
	w2           []float64 // out×hid
	b2           []float64
	calls        atomic.Int64 // Predict calls, for cancellation tests
}

func newMLP(in, hid, out int, seed uint64) *mlp {
	r := rand.New(rand.NewPCG(seed, 1))
	m := &mlp{in: in, hid: hid, out: out, w1: make([]float64, hid*in), b1: make([]float64, hid), w2: make([]float64, out*hid), b2: make([]float64, out)}
	for i := range m.w1 {
		m.w1[i] = r.NormFloat64() * math.Sqrt(2/float64(in))
	}
	for i := range m.w2 {
		m.w2[i] = r.NormFloat64() * math.Sqrt(1/float64(hid))
	}
	return m
}

func (m *mlp) NumClasses() int { return m.out }

func (m *mlp) forward(x []float32, a1, hdn, p []float64) {
	for j := 0; j < m.hid; j++ {
		s := m.b1[j]
		row := m.w1[j*m.in : (j+1)*m.in]
		for k, v := range x {
			s += row[k] * float64(v)
		}
		a1[j] = s
		hdn[j] = math.Max(0, s)
	}
	mx := math.Inf(-1)
	for o := 0; o < m.out; o++ {
		s := m.b2[o]
		row := m.w2[o*m.hid : (o+1)*m.hid]
		for j, v := range hdn {
			s += row[j] * v
		}
		p[o] = s
		mx = math.Max(mx, s)
	}
	var z float64
	for o := range p {
		p[o] = math.Exp(p[o] - mx)
		z += p[o]
	}
	for o := range p {
		p[o] /= z
	}
}

func (m *mlp) Predict(ctx context.Context, x Batch) ([][]float32, error) {
	m.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := x.N()
	out := make([][]float32, n)
	a1, h, p := make([]float64, m.hid), make([]float64, m.hid), make([]float64, m.out)
	for i := 0; i < n; i++ {
		m.forward(x.Sample(i), a1, h, p)
		out[i] = make([]float32, m.out)
		for o := range p {
			out[i][o] = float32(p[o])
		}
	}
	return out, nil
}

// backward returns dL/dx for cross-entropy against y and accumulates
// parameter gradients into g (when non-nil).
func (m *mlp) backward(x []float32, y int, a1, h, p []float64, dx []float64, g *mlp) float64 {
	dz := make([]float64, m.out)
	copy(dz, p)
	dz[y]--
	dh := make([]float64, m.hid)
	for o := 0; o < m.out; o++ {
		row := m.w2[o*m.hid : (o+1)*m.hid]
		for j := range dh {
			dh[j] += row[j] * dz[o]
		}
		if g != nil {
			g.b2[o] += dz[o]
			grow := g.w2[o*m.hid : (o+1)*m.hid]
			for j := range grow {
				grow[j] += dz[o] * h[j]
			}
		}
	}
	for j := range dh {
		if a1[j] <= 0 {
			dh[j] = 0
		}
	}
	for j := 0; j < m.hid; j++ {
		if dh[j] == 0 {
			continue
		}
		row := m.w1[j*m.in : (j+1)*m.in]
		if dx != nil {
			for k := range dx {
				dx[k] += row[k] * dh[j]
			}
		}
		if g != nil {
			g.b1[j] += dh[j]
			grow := g.w1[j*m.in : (j+1)*m.in]
			for k, v := range x {
				grow[k] += dh[j] * float64(v)
			}
		}
	}
	return -math.Log(p[y] + 1e-300)
}

func (m *mlp) LossGradient(ctx context.Context, x Batch, labels []int) (Batch, []float32, error) {
	if err := ctx.Err(); err != nil {
		return Batch{}, nil, err
	}
	n := x.N()
	grad := Batch{Data: make([]float32, len(x.Data)), Shape: append([]int(nil), x.Shape...)}
	loss := make([]float32, n)
	a1, h, p := make([]float64, m.hid), make([]float64, m.hid), make([]float64, m.out)
	dx := make([]float64, m.in)
	for i := 0; i < n; i++ {
		m.forward(x.Sample(i), a1, h, p)
		clear(dx)
		loss[i] = float32(m.backward(x.Sample(i), labels[i], a1, h, p, dx, nil))
		gs := grad.Sample(i)
		for k := range dx {
			gs[k] = float32(dx[k])
		}
	}
	return grad, loss, nil
}

// train runs minibatch SGD with momentum-free updates.
func (m *mlp) train(x [][]float32, y []int, epochs, batch int, lr float64, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	g := &mlp{in: m.in, hid: m.hid, out: m.out, w1: make([]float64, len(m.w1)), b1: make([]float64, len(m.b1)), w2: make([]float64, len(m.w2)), b2: make([]float64, len(m.b2))}
	a1, h, p := make([]float64, m.hid), make([]float64, m.hid), make([]float64, m.out)
	idx := r.Perm(len(x))
	for e := 0; e < epochs; e++ {
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for s := 0; s < len(idx); s += batch {
			for _, v := range [][]float64{g.w1, g.b1, g.w2, g.b2} {
				clear(v)
			}
			end := min(s+batch, len(idx))
			for _, i := range idx[s:end] {
				m.forward(x[i], a1, h, p)
				m.backward(x[i], y[i], a1, h, p, nil, g)
			}
			f := lr / float64(end-s)
			for k, v := range [][]float64{m.w1, m.b1, m.w2, m.b2} {
				gv := [][]float64{g.w1, g.b1, g.w2, g.b2}[k]
				for q := range v {
					v[q] -= f * gv[q]
				}
			}
		}
	}
}

type digitsData struct {
	trainX, testX [][]float32
	trainY, testY []int
	model         *mlp
	testAcc       float64
}

var (
	digitsOnce sync.Once
	digitsVal  *digitsData
	digitsErr  error
)

// digits loads the scikit-learn digits (pixels scaled to [0,1]) and trains
// the MLP once per test binary: 1,400 training rows, 397 held out.
func digits(t testing.TB) *digitsData {
	t.Helper()
	digitsOnce.Do(func() {
		f, err := os.Open("testdata/digits.csv.gz")
		if err != nil {
			digitsErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			digitsErr = err
			return
		}
		rows, err := csv.NewReader(zr).ReadAll()
		if err != nil {
			digitsErr = err
			return
		}
		d := &digitsData{}
		for i, row := range rows {
			x := make([]float32, 64)
			for k := 0; k < 64; k++ {
				v, _ := strconv.ParseFloat(row[k], 64)
				x[k] = float32(v / 16)
			}
			y, _ := strconv.Atoi(row[64])
			if i < 1400 {
				d.trainX, d.trainY = append(d.trainX, x), append(d.trainY, y)
			} else {
				d.testX, d.testY = append(d.testX, x), append(d.testY, y)
			}
		}
		d.model = newMLP(64, 32, 10, 7)
		d.model.train(d.trainX, d.trainY, 40, 16, 0.1, 7)
		b := toBatch(d.testX)
		p, _ := d.model.Predict(context.Background(), b)
		ok := 0
		for i := range p {
			if argmax(p[i]) == d.testY[i] {
				ok++
			}
		}
		d.testAcc = float64(ok) / float64(len(p))
		digitsVal = d
	})
	if digitsErr != nil {
		t.Fatalf("loading digits: %v", digitsErr)
	}
	return digitsVal
}

// toBatch stacks samples as an NCHW batch of 1×8×8 images.
func toBatch(xs [][]float32) Batch {
	b := Batch{Shape: []int{len(xs), 1, 8, 8}}
	for _, x := range xs {
		b.Data = append(b.Data, x...)
	}
	return b
}

// correct returns up to n held-out samples the model classifies correctly.
func (d *digitsData) correct(n int) (Batch, []int) {
	var xs [][]float32
	var ys []int
	a1, h, p := make([]float64, d.model.hid), make([]float64, d.model.hid), make([]float64, d.model.out)
	for i, x := range d.testX {
		d.model.forward(x, a1, h, p)
		pp := make([]float32, len(p))
		for o := range p {
			pp[o] = float32(p[o])
		}
		if argmax(pp) == d.testY[i] {
			xs, ys = append(xs, x), append(ys, d.testY[i])
		}
		if len(xs) == n {
			break
		}
	}
	return toBatch(xs), ys
}

func accuracy(t *testing.T, m Classifier, x Batch, y []int) float64 {
	t.Helper()
	p, err := m.Predict(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i := range p {
		if argmax(p[i]) == y[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(y))
}

func TestModelTrains(t *testing.T) {
	d := digits(t)
	t.Logf("MLP 64-32-10 held-out accuracy: %.3f", d.testAcc)
	if d.testAcc < 0.9 {
		t.Fatalf("test model accuracy %.3f < 0.9; attacks would be tested against a broken model", d.testAcc)
	}
}

// TestModelGradient checks the analytic input gradient against central
// finite differences, so the white-box tests attack the true gradient.
func TestModelGradient(t *testing.T) {
	d := digits(t)
	x := toBatch(d.testX[:3])
	y := d.testY[:3]
	g, _, err := d.model.LossGradient(context.Background(), x, y)
	if err != nil {
		t.Fatal(err)
	}
	a1, h, p := make([]float64, 32), make([]float64, 32), make([]float64, 10)
	lossAt := func(s []float32, yy int) float64 {
		d.model.forward(s, a1, h, p)
		return -math.Log(p[yy])
	}
	for i := 0; i < 3; i++ {
		for _, k := range []int{5, 20, 36, 43} {
			s := append([]float32(nil), x.Sample(i)...)
			const e = 1e-3
			s[k] += e
			lp := lossAt(s, y[i])
			s[k] -= 2 * e
			lm := lossAt(s, y[i])
			fd := (lp - lm) / (2 * e)
			if an := float64(g.Sample(i)[k]); math.Abs(fd-an) > 1e-3+1e-2*math.Abs(fd) {
				t.Errorf("sample %d pixel %d: analytic %g, finite difference %g", i, k, an, fd)
			}
		}
	}
}
