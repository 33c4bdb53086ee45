package defence

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wardenlab/warden/attacks"
)

func TestReduceBitDepth(t *testing.T) {
	x := attacks.Batch{Data: []float32{0, 0.1, 0.2, 0.49, 0.51, 0.9, 1, 1.3, -0.2}, Shape: []int{1, 9}}
	got := ReduceBitDepth(x, 1, 0, 1).Data
	want := []float32{0, 0, 0, 0, 1, 1, 1, 1, 0}
	if !slices.Equal(got, want) {
		t.Errorf("1 bit: %v, want %v", got, want)
	}
	got = ReduceBitDepth(x, 2, 0, 1).Data // levels 0, 1/3, 2/3, 1
	for i, v := range got {
		k := math.Round(float64(v) * 3)
		if math.Abs(float64(v)-k/3) > 1e-6 {
			t.Errorf("2 bits: value %d = %g is not a level", i, v)
		}
	}
	if got[2] != float32(1.0/3) || got[5] != 1 {
		t.Errorf("2 bits: %v", got)
	}
}

func TestMedianFilter(t *testing.T) {
	// One 3×3 channel with a salt pixel: a 3×3 median removes it.
	x := attacks.Batch{Data: []float32{0, 0, 0, 0, 1, 0, 0, 0, 0}, Shape: []int{1, 1, 3, 3}}
	m, err := MedianFilter(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Data, make([]float32, 9)) {
		t.Errorf("3×3 median: %v", m.Data)
	}
	// 2×2: the window is the pixel, right, below, below-right (edges
	// repeat); the median of 4 is the mean of the middle two.
	x = attacks.Batch{Data: []float32{1, 2, 3, 4}, Shape: []int{1, 1, 2, 2}}
	m, _ = MedianFilter(x, 2)
	want := []float32{2.5, 3, 3.5, 4} // {1,2,3,4}, {2,2,4,4}, {3,4,3,4}, {4,4,4,4}
	if !slices.Equal(m.Data, want) {
		t.Errorf("2×2 median: %v, want %v", m.Data, want)
	}
	if _, err := MedianFilter(attacks.Batch{Data: []float32{1, 2}, Shape: []int{1, 2}}, 2); err == nil {
		t.Error("a table: want an error")
	}
}

func TestSqueezeScore(t *testing.T) {
	same := [][]float32{{0.9, 0.1}, {0.9, 0.1}, {0.9, 0.1}}
	if s := SqueezeScore(same); s != 0 {
		t.Errorf("unchanged answers: %g", s)
	}
	moved := [][]float32{{0.9, 0.1}, {0.8, 0.2}, {0.1, 0.9}}
	if s := SqueezeScore(moved); math.Abs(s-1.6) > 1e-6 {
		t.Errorf("score %g, want the larger L1 1.6", s)
	}
	// Logits are soft-maxed: equal logits shifted are the same distribution.
	if s := SqueezeScore([][]float32{{1, 2}, {11, 12}}); s > 1e-6 {
		t.Errorf("shifted logits: %g", s)
	}
}

// clusters draws n samples of dim features around k class centres.
func clusters(rng *rand.Rand, n, dim, k int, sd float64) ([][]float64, []int, [][]float64) {
	centres := make([][]float64, k)
	for c := range centres {
		centres[c] = make([]float64, dim)
		for j := range centres[c] {
			centres[c][j] = rng.Float64() * 4
		}
	}
	var xs [][]float64
	var ys []int
	for i := 0; i < n; i++ {
		c := i % k
		x := make([]float64, dim)
		for j := range x {
			x[j] = centres[c][j] + rng.NormFloat64()*sd
		}
		xs, ys = append(xs, x), append(ys, c)
	}
	return xs, ys, centres
}

func TestOODScoresFarSamplesHigh(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs, ys, centres := clusters(rng, 600, 8, 3, 0.2)
	o, err := FitOOD(SpaceInput, xs, ys, 3)
	if err != nil {
		t.Fatal(err)
	}
	// A class mean scores ≈ 0; a clean sample ≈ √8 (χ with 8 degrees of
	// freedom); a point midway between two centres far more.
	if s, _ := o.Score(centres[1]); s > 0.5 {
		t.Errorf("a class centre scores %g", s)
	}
	fresh, _, _ := clusters(rand.New(rand.NewPCG(1, 2)), 30, 8, 3, 0.2)
	var mean float64
	for _, f := range fresh {
		s, _ := o.Score(f)
		mean += s / 30
	}
	if mean < 1.5 || mean > 4.5 {
		t.Errorf("clean samples score %g on average, want about √8", mean)
	}
	mid := make([]float64, 8)
	for j := range mid {
		mid[j] = (centres[0][j] + centres[1][j]) / 2
	}
	if s, _ := o.Score(mid); s < 3*mean {
		t.Errorf("a point between two classes scores %g, clean %g", s, mean)
	}
	if _, err := o.Score(make([]float64, 7)); err == nil {
		t.Error("7 features: want an error")
	}
	// Constant features (always-zero pixels) keep the covariance invertible.
	for _, x := range xs {
		x[0] = 0
	}
	if _, err := FitOOD(SpaceInput, xs, ys, 3); err != nil {
		t.Errorf("a constant feature: %v", err)
	}
}

// imageSamples are n noisy images [1, 4, 4] of two classes with answers
// that do not move under squeezing.
func imageSamples(rng *rand.Rand, n int, noise float32) ([]Sample, []int) {
	var out []Sample
	var labels []int
	for i := 0; i < n; i++ {
		c := i % 2
		x := make([]float32, 16)
		for j := range x {
			base := float32(0.2)
			if (j%4 < 2) == (c == 0) {
				base = 0.8
			}
			x[j] = min(max(base+noise*float32(rng.NormFloat64()), 0), 1)
		}
		ans := []float32{0.9, 0.1}
		if c == 1 {
			ans = []float32{0.1, 0.9}
		}
		out = append(out, Sample{Shape: []int{1, 4, 4}, X: x, Outs: [][]float32{ans, ans, ans}})
		labels = append(labels, c)
	}
	return out, labels
}

func testProfile(t *testing.T, fit []Sample, labels []int) *Profile {
	t.Helper()
	p := &Profile{Version: ProfileVersion, InputShape: []int{1, 4, 4}, Classes: 2, Mode: ModeFlag,
		Squeezer: &Squeezer{BitDepth: 3, Median: 2, Lo: 0, Hi: 1}}
	var data []float32
	var feats [][]float64
	for _, s := range fit {
		data = append(data, s.X...)
		feats = append(feats, Features(SpaceInput, s.X, nil))
	}
	p.Range = FitRange(data, 16)
	o, err := FitOOD(SpaceInput, feats, labels, 2)
	if err != nil {
		t.Fatal(err)
	}
	p.OOD = o
	return p
}

func TestCalibrateAndCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fit, labels := imageSamples(rng, 400, 0.05)
	p := testProfile(t, fit, labels)
	tune, _ := imageSamples(rng, 400, 0.05)
	if err := p.Calibrate(tune, 0.05); err != nil {
		t.Fatal(err)
	}
	held, _ := imageSamples(rng, 2000, 0.05)
	r, _, err := p.Evaluate(held)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean false positives %.4f, per check %v", r.Any, r.ByCheck)
	if r.Any > 0.08 || r.Any < 0.01 {
		t.Errorf("clean false-positive rate %.4f, want about the 0.05 target", r.Any)
	}
	// Perturbed inputs (±0.3 noise) are out of distribution.
	adv, _ := imageSamples(rng, 200, 0.3)
	r, _, _ = p.Evaluate(adv)
	if r.Any < 0.9 {
		t.Errorf("noisy inputs flagged at %.3f", r.Any)
	}
	// Answers that move under squeezing fire feature squeezing.
	s := held[0]
	s.Outs = [][]float32{{0.9, 0.1}, {0.9, 0.1}, {0.1, 0.9}}
	d, err := p.Check(s)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Flagged || !slices.Contains(d.Fired(), CheckSqueeze) {
		t.Errorf("moved answers: %+v", d)
	}
	// A wrong shape fires alone.
	d, _ = p.Check(Sample{Shape: []int{1, 4, 3}, X: make([]float32, 12)})
	if !d.Flagged || !slices.Equal(d.Fired(), []string{CheckShape}) || len(d.Checks) != 1 {
		t.Errorf("wrong shape: %+v", d)
	}
	// Feature squeezing needs the squeezed answers.
	s.Outs = s.Outs[:1]
	if _, err := p.Check(s); err == nil {
		t.Error("one answer: want an error")
	}
	// The profile survives JSON.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Profile
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	d1, _ := p.Check(held[1])
	d2, _ := q.Check(held[1])
	if !slices.Equal(d1.Checks, d2.Checks) {
		t.Errorf("after JSON: %+v, before %+v", d2, d1)
	}
}

func TestQuantileAndWilson(t *testing.T) {
	if q := Quantile([]float64{4, 1, 3, 2, 5}, 0.5); q != 3 {
		t.Errorf("median %g", q)
	}
	if q := Quantile([]float64{0, 10}, 0.95); math.Abs(q-9.5) > 1e-12 {
		t.Errorf("0.95 quantile %g", q)
	}
	// Wilson upper bounds, one-sided 95 %: scipy 1.10.1's
	// binomtest(k, n).proportion_ci(0.90, "wilson").high.
	for _, c := range []struct {
		k, n int
		want float64
	}{{0, 100, 0.026343}, {5, 100, 0.099161}, {50, 100, 0.581152}} {
		if got := WilsonUpper(c.k, c.n, normQuantile(0.95)); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("WilsonUpper(%d, %d) = %.6f, want %.6f", c.k, c.n, got, c.want)
		}
	}
}

// stream feeds the monitor n queries from next and returns when it flagged.
func stream(m *Monitor, st *State, n int, next func(i int) ([]float32, int, bool)) {
	for i := 0; i < n; i++ {
		x, c, ood := next(i)
		m.Observe(st, x, c, ood)
	}
}

func TestMonitorOODRate(t *testing.T) {
	// PRADA off (it never gets enough distances): this tests the OOD rate.
	m := &Monitor{MinQueries: math.MaxInt32, Window: 3, History: 1}
	m.SetOODRates(2, 200, 2000, 0.01, 1) // clean rate 1 %
	t.Logf("clean %.4f alert %.4f limit %.3f", m.CleanOODRate, m.AlertOODRate, m.CUSUMLimit)
	rng := rand.New(rand.NewPCG(5, 6))
	natural := func(rate float64) func(int) ([]float32, int, bool) {
		return func(int) ([]float32, int, bool) {
			x := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64())}
			return x, 0, rng.Float64() < rate
		}
	}
	// Clean streams at the clean rate are flagged rarely (≤ about 1 %).
	flagged := 0
	for s := 0; s < 100; s++ {
		var st State
		stream(m, &st, 2000, natural(0.01))
		if st.FlaggedBy == CheckOODRate {
			flagged++
		}
	}
	if flagged > 5 {
		t.Errorf("%d of 100 clean streams flagged", flagged)
	}
	// A stream that turns out of distribution after 300 queries is
	// flagged within a few queries of the turn.
	var st State
	stream(m, &st, 300, natural(0.01))
	stream(m, &st, 200, natural(0.6))
	if st.FlaggedBy != CheckOODRate || st.FlaggedAt < 300 || st.FlaggedAt > 330 {
		t.Errorf("flagged at %d by %q, want soon after query 300", st.FlaggedAt, st.FlaggedBy)
	}
	// The state survives JSON (it lives in Redis).
	b, _ := json.Marshal(&st)
	var back State
	if err := json.Unmarshal(b, &back); err != nil || back.Queries != st.Queries || back.CUSUM != st.CUSUM || len(back.Growing[0]) != len(st.Growing[0]) {
		t.Errorf("state after JSON: %v %+v", err, back.Queries)
	}
}

func TestMonitorPRADA(t *testing.T) {
	m := &Monitor{MinQueries: DefaultMinQueries, Window: DefaultWindow, History: DefaultHistory, PRADAThreshold: 0.9,
		CleanOODRate: 0.01, AlertOODRate: 0.5, CUSUMLimit: math.Inf(1)}
	rng := rand.New(rand.NewPCG(7, 8))
	// Natural queries: Gaussian points in 16 dimensions.
	var nat State
	stream(m, &nat, 600, func(int) ([]float32, int, bool) {
		x := make([]float32, 16)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		return x, rng.IntN(3), false
	})
	t.Logf("natural stream: W %.4f, flagged at %d", nat.LastW, nat.FlaggedAt)
	if nat.FlaggedAt != 0 {
		t.Errorf("natural stream flagged at %d (W %.4f)", nat.FlaggedAt, nat.LastW)
	}
	// Crafted queries (Papernot-style): small steps from a few seeds give
	// a mixture of tiny and large distances.
	var adv State
	seed := make([]float32, 16)
	stream(m, &adv, 600, func(i int) ([]float32, int, bool) {
		if i%20 == 0 {
			for j := range seed {
				seed[j] = float32(rng.NormFloat64())
			}
		} else {
			seed[rng.IntN(16)] += 0.05
		}
		return append([]float32(nil), seed...), 0, false
	})
	t.Logf("crafted stream: W %.4f, flagged at %d", adv.LastW, adv.FlaggedAt)
	if adv.FlaggedBy != CheckPRADA {
		t.Errorf("crafted stream not flagged by PRADA (W %.4f)", adv.LastW)
	}
}

func TestProbabilities(t *testing.T) {
	p := []float32{0.2, 0.8}
	if got := Probabilities(p); &got[0] != &p[0] {
		t.Error("a distribution was changed")
	}
	got := Probabilities([]float32{0, math.Float32frombits(0x3f317218)}) // ln 2
	if math.Abs(float64(got[1])-2.0/3) > 1e-6 {
		t.Errorf("softmax = %v", got)
	}
	if got := Probabilities(nil); len(got) != 0 {
		t.Errorf("empty row: %v", got)
	}
}
