package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gaussianRows draws n rows of d independent N(0, σ²) values around mean.
func gaussianRows(rng *rand.Rand, n int, mean []float64, sigma float64) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		r := make([]float64, len(mean))
		for j := range r {
			r[j] = mean[j] + sigma*rng.NormFloat64()
		}
		out[i] = r
	}
	return out
}

// PCA finds a planted direction and its variance, sorted, and agrees
// with a direct eigendecomposition of the covariance.
func TestPrincipal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 2000, 30
	// Variance 25 along u, 4 along w (orthogonal to u), 1 elsewhere.
	u, w := make([]float64, d), make([]float64, d)
	for j := range u {
		u[j] = rng.NormFloat64()
	}
	for j := range w {
		w[j] = rng.NormFloat64()
	}
	orthonormalise([][]float64{u, w})
	rows := make([][]float64, n)
	for i := range rows {
		r := make([]float64, d)
		for j := range r {
			r[j] = rng.NormFloat64()
		}
		axpy(4*rng.NormFloat64(), u, r) // 1 + 16 + …
		axpy(math.Sqrt(3)*rng.NormFloat64(), w, r)
		rows[i] = r
	}
	p := principal(centre(rows), 5, 7)
	if len(p.dirs) != 5 {
		t.Fatalf("%d directions", len(p.dirs))
	}
	if c := math.Abs(dot(p.dirs[0], u)); c < 0.99 {
		t.Errorf("first direction · u = %.4f", c)
	}
	if c := math.Abs(dot(p.dirs[1], w)); c < 0.95 {
		t.Errorf("second direction · w = %.4f", c)
	}
	if math.Abs(p.variance[0]-17) > 1.5 || math.Abs(p.variance[1]-4) > 0.5 {
		t.Errorf("variances %.3f, %.3f, want about 17 and 4", p.variance[0], p.variance[1])
	}
	for c := 1; c < len(p.variance); c++ {
		if p.variance[c] > p.variance[c-1] {
			t.Errorf("variances not sorted: %v", p.variance)
		}
	}
	// Against Jacobi on the full covariance.
	cov := make([][]float64, d)
	cr := centre(rows)
	for a := range cov {
		cov[a] = make([]float64, d)
		for b := range cov[a] {
			for _, r := range cr {
				cov[a][b] += r[a] * r[b]
			}
			cov[a][b] /= n - 1
		}
	}
	vals, _ := symEigen(cov)
	order := orderDesc(vals)
	for c := 0; c < 5; c++ {
		if math.Abs(vals[order[c]]-p.variance[c]) > 1e-6*vals[order[0]] {
			t.Errorf("variance %d: subspace iteration %.6f, Jacobi %.6f", c, p.variance[c], vals[order[c]])
		}
	}
	z := p.whiten(cr)
	for c := 0; c < 5; c++ {
		var s float64
		for _, r := range z {
			s += r[c] * r[c]
		}
		if v := s / (n - 1); math.Abs(v-1) > 1e-9 {
			t.Errorf("whitened component %d has variance %g", c, v)
		}
	}
}

// zscores drops constant columns and leaves mean 0, σ 1.
func TestZscores(t *testing.T) {
	rows := [][]float64{{1, 5, 10}, {2, 5, 20}, {3, 5, 60}}
	z := zscores(rows)
	if len(z[0]) != 2 {
		t.Fatalf("kept %d columns, want 2 (the constant one dropped)", len(z[0]))
	}
	for j := 0; j < 2; j++ {
		var s, ss float64
		for _, r := range z {
			s += r[j]
			ss += r[j] * r[j]
		}
		if math.Abs(s) > 1e-12 || math.Abs(ss/3-1) > 1e-12 {
			t.Errorf("column %d: sum %g, mean square %g", j, s, ss/3)
		}
	}
}

// 2-means recovers two separated blobs of unequal size; on one Gaussian
// it splits about in half. The silhouette and Fisher ratio tell the two
// apart, and a bad split scores worse than the good one.
func TestKMeansSilhouetteFisher(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d = 10
	far := make([]float64, d)
	far[0], far[1] = 6, 6
	big, small := gaussianRows(rng, 300, make([]float64, d), 1), gaussianRows(rng, 60, far, 1)
	rows := append(append([][]float64{}, big...), small...)
	assign, inertia := kmeans2(rows, 5, 1)
	// Every row of the small blob in one cluster, every row of the big
	// one in the other, up to a few rows of overlap.
	var wrong int
	for i, a := range assign {
		if (i < 300) != (a == assign[0]) {
			wrong++
		}
	}
	if wrong > 3 {
		t.Fatalf("2-means misplaces %d of 360 rows", wrong)
	}
	s, f := silhouette(rows, assign, 0, 1), fisherRatio(rows, assign)
	t.Logf("two blobs: inertia %.1f, silhouette %.3f, Fisher ratio %.1f", inertia, s, f)
	if s < 0.4 || f < 20 {
		t.Errorf("two blobs: silhouette %.3f, Fisher %.1f", s, f)
	}
	// A sampled silhouette is close to the exact one.
	if ss := silhouette(rows, assign, 100, 2); math.Abs(ss-s) > 0.05 {
		t.Errorf("sampled silhouette %.3f, exact %.3f", ss, s)
	}
	// A random split is worse on every count.
	bad := make([]int, len(rows))
	for i := range bad {
		bad[i] = rng.IntN(2)
	}
	if sb, fb := silhouette(rows, bad, 0, 1), fisherRatio(rows, bad); sb >= s || fb >= f {
		t.Errorf("random split: silhouette %.3f, Fisher %.2f", sb, fb)
	}

	one := gaussianRows(rng, 400, make([]float64, d), 1)
	a1, _ := kmeans2(one, 5, 1)
	var n1 int
	for _, a := range a1 {
		n1 += a
	}
	s1, f1 := silhouette(one, a1, 0, 1), fisherRatio(one, a1)
	t.Logf("one Gaussian: cluster sizes %d/%d, silhouette %.3f, Fisher ratio %.2f", n1, 400-n1, s1, f1)
	if n1 < 120 || n1 > 280 {
		t.Errorf("one Gaussian split %d/%d", n1, 400-n1)
	}
	if s1 > 0.2 || f1 > 6 {
		t.Errorf("one Gaussian: silhouette %.3f, Fisher %.2f", s1, f1)
	}
	// Seeded: the same seed gives the same split.
	a2, _ := kmeans2(one, 5, 1)
	for i := range a1 {
		if a1[i] != a2[i] {
			t.Fatal("kmeans2 is not deterministic for a seed")
		}
	}
}

// The spectral signature scores rows shifted along one direction above
// the others.
func TestSpectralScores(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d = 20
	shift := make([]float64, d)
	shift[3] = 5
	rows := append(gaussianRows(rng, 200, make([]float64, d), 1), gaussianRows(rng, 20, shift, 1)...)
	s := spectralScores(rows, 1)
	var clean, planted float64
	for i, v := range s {
		if i < 200 {
			clean += v / 200
		} else {
			planted += v / 20
		}
	}
	t.Logf("mean spectral score: clean %.2f, shifted %.2f", clean, planted)
	if planted < 5*clean {
		t.Errorf("shifted rows score %.2f, clean %.2f", planted, clean)
	}
}
