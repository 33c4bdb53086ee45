package analysis

import (
	"math"
	"math/rand/v2"
)

// The statistics data poisoning uses, on small dense matrices held as one
// []float64 row per sample: standardisation, PCA by subspace iteration,
// seeded 2-means, the silhouette score, the Fisher ratio of two clusters
// and the spectral signature of Tran et al. (2018).

// zscores returns the rows with each column shifted to mean 0 and
// scaled to standard deviation 1; columns that do not vary (σ below 1e-8
// of the largest σ, or 0) are dropped, since they carry nothing and would
// divide by zero.
func zscores(rows [][]float64) [][]float64 {
	n := len(rows)
	if n == 0 {
		return nil
	}
	d := len(rows[0])
	mean, sd := make([]float64, d), make([]float64, d)
	for _, r := range rows {
		for j, v := range r {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for _, r := range rows {
		for j, v := range r {
			sd[j] += (v - mean[j]) * (v - mean[j])
		}
	}
	var top float64
	for j := range sd {
		sd[j] = math.Sqrt(sd[j] / float64(n))
		top = math.Max(top, sd[j])
	}
	var keep []int
	for j := range sd {
		if sd[j] > 0 && sd[j] > 1e-8*top {
			keep = append(keep, j)
		}
	}
	out := make([][]float64, n)
	for i, r := range rows {
		o := make([]float64, len(keep))
		for k, j := range keep {
			o[k] = (r[j] - mean[j]) / sd[j]
		}
		out[i] = o
	}
	return out
}

// centre returns the rows minus their mean.
func centre(rows [][]float64) [][]float64 {
	if len(rows) == 0 {
		return nil
	}
	mean := make([]float64, len(rows[0]))
	for _, r := range rows {
		for j, v := range r {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(len(rows))
	}
	out := make([][]float64, len(rows))
	for i, r := range rows {
		o := make([]float64, len(r))
		for j, v := range r {
			o[j] = v - mean[j]
		}
		out[i] = o
	}
	return out
}

// pca holds the top principal directions of centred rows.
type pca struct {
	dirs     [][]float64 // unit vectors, by decreasing variance
	variance []float64   // the variance along each (divided by n-1)
}

// principal finds the k leading principal directions of centred rows by
// subspace (block power) iteration on XᵀX with Gram–Schmidt and a final
// Rayleigh–Ritz rotation, seeded; k is capped by the rank the data can have
// (min(n-1, d)). It iterates on a few more vectors than it returns, so
// that the kept ones converge fast, and never forms the d×d covariance:
// wide activations cost O(n·d·k) per iteration.
func principal(rows [][]float64, k int, seed uint64) pca {
	n := len(rows)
	if n < 2 {
		return pca{}
	}
	d := len(rows[0])
	k = min(k, d, n-1)
	if k <= 0 {
		return pca{}
	}
	b := min(k+4, d, n-1)
	rng := rand.New(rand.NewPCG(seed, 0x9ca))
	v := make([][]float64, b)
	for i := range v {
		v[i] = make([]float64, d)
		for j := range v[i] {
			v[i][j] = rng.NormFloat64()
		}
	}
	orthonormalise(v)
	xv := make([]float64, n)
	for it := 0; it < 200; it++ {
		next := make([][]float64, b)
		for c := range v {
			// next = Xᵀ(X v)
			for i, r := range rows {
				xv[i] = dot(r, v[c])
			}
			w := make([]float64, d)
			for i, r := range rows {
				if xv[i] != 0 {
					axpy(xv[i], r, w)
				}
			}
			next[c] = w
		}
		orthonormalise(next)
		// Converged when the first k new directions lie in the old
		// subspace (the rotation within it is undone below).
		var resid float64
		for c := 0; c < k; c++ {
			var in float64
			for a := range v {
				t := dot(next[c], v[a])
				in += t * t
			}
			resid = math.Max(resid, 1-in)
		}
		v = next
		if resid < 1e-12 {
			break
		}
	}
	// Rayleigh–Ritz: rotate the subspace to its eigenvectors so that the
	// directions come sorted with their own variances.
	proj := project(rows, v)
	s := make([][]float64, b)
	for a := range s {
		s[a] = make([]float64, b)
		for c := range s[a] {
			for _, p := range proj {
				s[a][c] += p[a] * p[c]
			}
		}
	}
	vals, vecs := symEigen(s)
	order := orderDesc(vals)
	out := pca{}
	for _, c := range order[:k] {
		if vals[c] <= 1e-12*math.Max(vals[order[0]], 1e-300) {
			break
		}
		dir := make([]float64, d)
		for a := range v {
			axpy(vecs[a][c], v[a], dir)
		}
		out.dirs = append(out.dirs, dir)
		out.variance = append(out.variance, vals[c]/float64(n-1))
	}
	return out
}

// whiten projects rows onto the directions and divides by their standard
// deviations, so that every component has variance 1.
func (p pca) whiten(rows [][]float64) [][]float64 {
	z := project(rows, p.dirs)
	for _, r := range z {
		for c := range r {
			r[c] /= math.Sqrt(p.variance[c])
		}
	}
	return z
}

// project returns each row's coordinates along the directions.
func project(rows, dirs [][]float64) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		o := make([]float64, len(dirs))
		for c, d := range dirs {
			o[c] = dot(r, d)
		}
		out[i] = o
	}
	return out
}

// orthonormalise applies modified Gram–Schmidt to the vectors in place; a
// vector that vanishes is replaced by a unit vector orthogonal to the rest
// when one can be found among the coordinate axes.
func orthonormalise(v [][]float64) {
	for i := range v {
		for j := 0; j < i; j++ {
			axpy(-dot(v[i], v[j]), v[j], v[i])
		}
		nrm := math.Sqrt(dot(v[i], v[i]))
		if nrm < 1e-12 {
			for axis := 0; axis < len(v[i]); axis++ {
				e := make([]float64, len(v[i]))
				e[axis] = 1
				for j := 0; j < i; j++ {
					axpy(-dot(e, v[j]), v[j], e)
				}
				if n := math.Sqrt(dot(e, e)); n > 1e-6 {
					for k := range e {
						e[k] /= n
					}
					v[i] = e
					break
				}
			}
			continue
		}
		for k := range v[i] {
			v[i][k] /= nrm
		}
	}
}

// symEigen diagonalises a small symmetric matrix by cyclic Jacobi
// rotations: eigenvalues and eigenvectors as the columns of vecs.
func symEigen(a [][]float64) (vals []float64, vecs [][]float64) {
	n := len(a)
	m := make([][]float64, n)
	vecs = make([][]float64, n)
	for i := range m {
		m[i] = append([]float64(nil), a[i]...)
		vecs[i] = make([]float64, n)
		vecs[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, all float64
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				all += m[i][j] * m[i][j]
				if i != j {
					off += m[i][j] * m[i][j]
				}
			}
		}
		if off <= 1e-24*math.Max(all, 1e-300) {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				if m[p][q] == 0 {
					continue
				}
				theta := (m[q][q] - m[p][p]) / (2 * m[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ {
					mkp, mkq := m[k][p], m[k][q]
					m[k][p], m[k][q] = c*mkp-s*mkq, s*mkp+c*mkq
				}
				for k := 0; k < n; k++ {
					mpk, mqk := m[p][k], m[q][k]
					m[p][k], m[q][k] = c*mpk-s*mqk, s*mpk+c*mqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := vecs[k][p], vecs[k][q]
					vecs[k][p], vecs[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	vals = make([]float64, n)
	for i := range vals {
		vals[i] = m[i][i]
	}
	return vals, vecs
}

// orderDesc returns the indices of vals by decreasing value.
func orderDesc(vals []float64) []int {
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && vals[idx[j]] > vals[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}

// kmeans2 splits rows into two clusters: k-means++ seeding and Lloyd's
// iterations, restarted `restarts` times from a seeded generator, keeping
// the split of least within-cluster sum of squares. It returns each row's
// cluster (0 or 1) and that sum.
func kmeans2(rows [][]float64, restarts int, seed uint64) (assign []int, inertia float64) {
	n := len(rows)
	if n < 2 {
		return make([]int, n), 0
	}
	rng := rand.New(rand.NewPCG(seed, 0x2_3ea5))
	inertia = math.Inf(1)
	for r := 0; r < max(restarts, 1); r++ {
		a, in := lloyd2(rows, rng)
		if in < inertia {
			assign, inertia = a, in
		}
	}
	return assign, inertia
}

// lloyd2 is one seeded 2-means run.
func lloyd2(rows [][]float64, rng *rand.Rand) ([]int, float64) {
	n, d := len(rows), len(rows[0])
	// k-means++: the first centre uniformly, the second with probability
	// proportional to the squared distance from it.
	c := [2][]float64{append([]float64(nil), rows[rng.IntN(n)]...), nil}
	var total float64
	dist := make([]float64, n)
	for i, r := range rows {
		dist[i] = sqDist(r, c[0])
		total += dist[i]
	}
	if total == 0 {
		return make([]int, n), 0
	}
	u := rng.Float64() * total
	second := n - 1
	for i, w := range dist {
		if u < w {
			second = i
			break
		}
		u -= w
	}
	c[1] = append([]float64(nil), rows[second]...)
	assign := make([]int, n)
	var in float64
	for it := 0; it < 300; it++ {
		changed := it == 0
		in = 0
		for i, r := range rows {
			d0, d1 := sqDist(r, c[0]), sqDist(r, c[1])
			k := 0
			if d1 < d0 {
				k = 1
			}
			if assign[i] != k {
				assign[i], changed = k, true
			}
			in += math.Min(d0, d1)
		}
		if !changed {
			break
		}
		var cnt [2]int
		sum := [2][]float64{make([]float64, d), make([]float64, d)}
		for i, r := range rows {
			cnt[assign[i]]++
			axpy(1, r, sum[assign[i]])
		}
		for k := range c {
			if cnt[k] == 0 {
				// An emptied cluster restarts at the row farthest
				// from the other centre.
				far, best := 0, -1.0
				for i, r := range rows {
					if dd := sqDist(r, c[1-k]); dd > best {
						far, best = i, dd
					}
				}
				c[k] = append([]float64(nil), rows[far]...)
				continue
			}
			for j := range sum[k] {
				sum[k][j] /= float64(cnt[k])
			}
			c[k] = sum[k]
		}
	}
	return assign, in
}

// silhouette is the mean silhouette coefficient of a two-cluster split
// (Rousseeuw 1987): per row (b − a) / max(a, b) with a its mean distance
// to its own cluster and b to the other; rows alone in their cluster count
// 0. Above maxRows rows, a seeded sample of maxRows rows is scored against
// every row. It is 0 when a cluster is empty.
func silhouette(rows [][]float64, assign []int, maxRows int, seed uint64) float64 {
	n := len(rows)
	var cnt [2]int
	for _, a := range assign {
		cnt[a]++
	}
	if cnt[0] == 0 || cnt[1] == 0 {
		return 0
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if maxRows > 0 && n > maxRows {
		rng := rand.New(rand.NewPCG(seed, 0x5116))
		rng.Shuffle(n, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:maxRows]
	}
	var s float64
	for _, i := range idx {
		var sum [2]float64
		for j, r := range rows {
			if j != i {
				sum[assign[j]] += math.Sqrt(sqDist(rows[i], r))
			}
		}
		own := assign[i]
		if cnt[own] == 1 {
			continue
		}
		a := sum[own] / float64(cnt[own]-1)
		b := sum[1-own] / float64(cnt[1-own])
		if m := math.Max(a, b); m > 0 {
			s += (b - a) / m
		}
	}
	return s / float64(len(idx))
}

// fisherRatio measures how far apart two clusters lie: along the line
// through their centroids, the squared distance of the projected means
// over the sum of the projected variances. A 2-means split of one
// Gaussian scores about 3.6; two clusters as far apart as their spread
// allows no overlap score far more. It is 0 when a cluster is empty and
// +Inf when both are single points.
func fisherRatio(rows [][]float64, assign []int) float64 {
	if len(rows) == 0 {
		return 0
	}
	d := len(rows[0])
	var cnt [2]int
	mean := [2][]float64{make([]float64, d), make([]float64, d)}
	for i, r := range rows {
		cnt[assign[i]]++
		axpy(1, r, mean[assign[i]])
	}
	if cnt[0] == 0 || cnt[1] == 0 {
		return 0
	}
	for k := range mean {
		for j := range mean[k] {
			mean[k][j] /= float64(cnt[k])
		}
	}
	w := make([]float64, d)
	for j := range w {
		w[j] = mean[1][j] - mean[0][j]
	}
	nrm := math.Sqrt(dot(w, w))
	if nrm == 0 {
		return 0
	}
	for j := range w {
		w[j] /= nrm
	}
	var m, v [2]float64
	for k := range m {
		m[k] = dot(mean[k], w)
	}
	for i, r := range rows {
		t := dot(r, w) - m[assign[i]]
		v[assign[i]] += t * t
	}
	within := v[0]/float64(cnt[0]) + v[1]/float64(cnt[1])
	if within == 0 {
		return math.Inf(1)
	}
	return (m[1] - m[0]) * (m[1] - m[0]) / within
}

// spectralScores is Tran et al.'s spectral signature: each row's squared
// projection on the top right singular vector of the centred rows (found by
// power iteration, seeded).
func spectralScores(rows [][]float64, seed uint64) []float64 {
	c := centre(rows)
	p := principal(c, 1, seed)
	out := make([]float64, len(rows))
	if len(p.dirs) == 0 {
		return out
	}
	for i, r := range c {
		t := dot(r, p.dirs[0])
		out[i] = t * t
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// axpy: y += a·x.
func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i := range a {
		t := a[i] - b[i]
		s += t * t
	}
	return s
}
