package analysis

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// Data poisoning looks for training rows planted to install a backdoor:
// within a class, such rows reach the label through another feature (the
// trigger) than the class's genuine rows, so the model's penultimate
// activations of that class fall into two groups. Activation clustering
// (Chen et al. 2018) splits each class's activations in two and asks
// whether one group is small and clearly apart; the spectral signature
// (Tran et al. 2018) ranks rows by their projection on the top singular
// vector of the class's centred activations, where a planted group shows.

// Settings of the clustering, and the verdict's thresholds. The thresholds
// were measured on the tests (dpois_torch_test.go): BadNets on the digits
// CNN (a 2×2 trigger on 53 sevens relabelled 4) and the clean digits CNN,
// and a feature trigger on the wine MLP; see the README. The clean digits
// have natural small, separated subgroups too (27 "1"s, Fisher ratio 32):
// size and separation alone do not tell them from planted rows, the
// reclassification vote does.
const (
	// dpDims is how many whitened principal components a class's
	// activations keep before clustering (Chen et al. use 10), and
	// dpRowsPerDim how many rows each component needs: a small class
	// keeps fewer (at least 2), since whitening a direction few rows
	// span lets single outliers take the split.
	dpDims       = 10
	dpRowsPerDim = 20
	// dpRestarts is how many seeded k-means++ starts each 2-means keeps
	// the best of.
	dpRestarts = 10
	// dpMinClass is the fewest rows a class needs to be clustered.
	dpMinClass = 20
	// dpMinRows is the fewest rows a small cluster needs to be a planted
	// group rather than a handful of outliers.
	dpMinRows = 5
	// dpMaxFraction: a class is suspicious when its smaller cluster
	// holds at most this share of its rows.
	dpMaxFraction = 0.35
	// dpMinFisher: … and the two clusters lie apart: the Fisher ratio
	// (squared distance of the cluster means over the summed variances
	// along the line through them) in the whitened components; a 2-means
	// split of one Gaussian scores about 4.
	dpMinFisher = 10.0
	// dpMinRelabel: … and the small cluster's inputs look like one other
	// class: exclusionary reclassification (Chen et al. 2018), here with
	// a k-nearest-neighbour vote in input space among the rows outside
	// the cluster instead of a retrained network, requiring that at least
	// this share of the cluster is voted into the same other class.
	// Planted rows (a "7" with a trigger labelled "4") are voted into
	// their source class nearly all; a natural subgroup of a class (the
	// digits' "1"s with a base) scatters (67 % into class 2, measured).
	dpMinRelabel = 0.8
	dpNeighbours = 5
	// dpRelabelRows and dpReferenceRows bound the rows the vote runs for
	// and against (seeded samples).
	dpRelabelRows   = 300
	dpReferenceRows = 10000
	// dpHighFisher: a flagged class this far apart rates high.
	dpHighFisher = 25.0
	// dpSilhouetteRows bounds the rows the silhouette is computed on
	// (a seeded sample), since it costs O(n²).
	dpSilhouetteRows = 2000
	// dpScatterPoints bounds the points of a cluster plot; dpPlots how
	// many classes are plotted; dpShown how many suspected rows of images
	// the report shows.
	dpScatterPoints = 1500
	dpPlots         = 3
	dpShown         = 6
)

// dpClass is the clustering of one class's activations.
type dpClass struct {
	class     int
	rows      []int // dataset rows of the class
	skipped   string
	small     int       // the smaller cluster's id (0 or 1)
	assign    []int     // cluster per row
	smallN    int       // rows in the smaller cluster
	fraction  float64   // smallN / len(rows)
	sil       float64   // silhouette
	fisher    float64   // Fisher ratio
	dims      int       // whitened components of the kept split
	relabel   float64   // share of the small cluster voted into relabelTo
	relabelTo int       // the other class most of the small cluster is voted into (-1: none)
	relabelN  int       // rows the vote ran for
	spectral  []float64 // spectral score per row, over the class's mean
	pc        [][]float64
	flagged   bool
}

// dpSuspect is a suspected training row.
type dpSuspect struct {
	row, class int
	score      float64 // spectral score over its class's mean
}

// dpoison runs data poisoning on image (IC) and table (TC) classifiers.
func dpoison(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	switch ds.Task {
	case ais.TaskIC, ais.TaskTC:
	default:
		return r, fmt.Errorf("data poisoning is implemented for IC and TC, not %q", ds.Task)
	}
	if ds.N() == 0 || ds.X.Validate() != nil {
		return r, fmt.Errorf("%w: data poisoning needs input samples", ais.ErrUserData)
	}
	if len(ds.Labels) != ds.N() {
		return r, fmt.Errorf("%w: %d labels for %d samples", ais.ErrUserData, len(ds.Labels), ds.N())
	}
	k := numClasses(v)
	for i, l := range ds.Labels {
		if l < 0 || l >= k {
			return r, fmt.Errorf("%w: label %d of sample %d outside the model's %d classes", ais.ErrUserData, l, i, k)
		}
	}
	env.progress(5, "reading_activations")
	acts, layer, err := dpActivations(ctx, v, ds.X, env)
	if err != nil {
		return r, err
	}
	byClass := make([][]int, k)
	for i, l := range ds.Labels {
		byClass[l] = append(byClass[l], i)
	}
	var classes []*dpClass
	for c, rows := range byClass {
		if len(rows) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		env.progress(40+50*c/k, "clustering class "+className(ds, c))
		cl := clusterClass(c, rows, acts, uint64(p.Seed))
		if cl.smallSplit() {
			reclassify(cl, ds, uint64(p.Seed))
			cl.flagged = cl.fisher >= dpMinFisher && cl.relabel >= dpMinRelabel
		}
		classes = append(classes, cl)
	}
	largest := 0
	for _, rows := range byClass {
		largest = max(largest, len(rows))
	}
	if largest < dpMinClass {
		return r, fmt.Errorf("%w: data poisoning clusters each class's rows and needs at least %d rows in a class; the largest has %d", ais.ErrUserData, dpMinClass, largest)
	}
	var suspects []dpSuspect
	for _, cl := range classes {
		if !cl.flagged {
			continue
		}
		for i, row := range cl.rows {
			if cl.assign[i] == cl.small {
				suspects = append(suspects, dpSuspect{row: row, class: cl.class, score: cl.spectral[i]})
			}
		}
	}
	sort.SliceStable(suspects, func(a, b int) bool { return suspects[a].score > suspects[b].score })

	env.progress(92, "rendering_report")
	dpReport(&r, ds, classes, suspects, layer, len(acts[0]))
	if err := dpSuspectsCSV(ctx, &r, ds, classes, suspects, env); err != nil {
		return r, err
	}
	if ds.Task == ais.TaskIC {
		if err := dpSamples(ctx, &r, ds, suspects, env); err != nil {
			return r, err
		}
	}
	env.progress(100, "completed")
	return r, nil
}

// dpActivations reads every sample's penultimate activations, in chunks
// so that progress moves and a cancellation stops it.
func dpActivations(ctx context.Context, v Victim, x attacks.Batch, env Env) ([][]float64, string, error) {
	const chunk = 512
	n := x.N()
	out := make([][]float64, 0, n)
	var layer string
	for lo := 0; lo < n; lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		hi := min(lo+chunk, n)
		f, desc, err := v.Features(ctx, subsetRange(x, lo, hi))
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", ais.ErrUserData, err)
		}
		if len(f) != hi-lo {
			return nil, "", fmt.Errorf("the model gave activations for %d of %d samples", len(f), hi-lo)
		}
		for _, row := range f {
			o := make([]float64, len(row))
			for j, a := range row {
				o[j] = float64(a)
			}
			out = append(out, o)
		}
		layer = desc
		env.progress(5+35*hi/n, "reading_activations")
	}
	return out, layer, nil
}

// subsetRange is the samples [lo, hi) of x, sharing its data.
func subsetRange(x attacks.Batch, lo, hi int) attacks.Batch {
	size := x.SampleSize()
	return attacks.Batch{Data: x.Data[lo*size : hi*size], Shape: append([]int{hi - lo}, x.Shape[1:]...)}
}

// clusterClass runs activation clustering and the spectral signature on
// one class.
func clusterClass(c int, rows []int, acts [][]float64, seed uint64) *dpClass {
	cl := &dpClass{class: c, rows: rows}
	if len(rows) < dpMinClass {
		cl.skipped = fmt.Sprintf("%d rows, fewer than the %d clustering needs", len(rows), dpMinClass)
		return cl
	}
	raw := make([][]float64, len(rows))
	for i, row := range rows {
		raw[i] = acts[row]
	}
	z := zscores(raw)
	if len(z[0]) == 0 {
		cl.skipped = "the activations do not vary within the class"
		return cl
	}
	top := min(dpDims, max(2, len(rows)/dpRowsPerDim))
	pc := principal(z, top, seed+uint64(c))
	if len(pc.dirs) == 0 {
		cl.skipped = "the activations do not vary within the class"
		return cl
	}
	w := pc.whiten(z)
	cl.pc = w
	// 2-means on the first d whitened components for a few d: a planted
	// group spans one direction, which more components dilute and fewer
	// may miss, so the most separated small split is kept (the largest
	// d's split when none is small).
	var best *dpSplit
	for _, d := range dpSplitDims(len(pc.dirs)) {
		sp := split2(w, d, seed+uint64(c))
		if best == nil || sp.better(best) {
			best = sp
		}
	}
	cl.assign, cl.small, cl.smallN, cl.fisher, cl.dims = best.assign, best.small, best.smallN, best.fisher, best.dims
	cl.fraction = float64(cl.smallN) / float64(len(rows))
	cl.sil = silhouette(best.w, cl.assign, dpSilhouetteRows, seed+uint64(c))
	cl.spectral = spectralScores(raw, seed+uint64(c))
	var mean float64
	for _, s := range cl.spectral {
		mean += s / float64(len(rows))
	}
	if mean > 0 {
		for i := range cl.spectral {
			cl.spectral[i] /= mean
		}
	}
	return cl
}

// dpSplit is one 2-means split of a class's whitened activations.
type dpSplit struct {
	dims          int
	w             [][]float64 // the components it clustered
	assign        []int
	small, smallN int
	fisher        float64
}

// dpSplitDims are the numbers of whitened components the splits use:
// 2, 3, 5 and 10, up to top, and top itself.
func dpSplitDims(top int) []int {
	var out []int
	for _, d := range []int{2, 3, 5, 10} {
		if d < top {
			out = append(out, d)
		}
	}
	return append(out, top)
}

// split2 runs 2-means on the first d columns of w.
func split2(w [][]float64, d int, seed uint64) *dpSplit {
	sp := &dpSplit{dims: d, w: make([][]float64, len(w))}
	for i, r := range w {
		sp.w[i] = r[:min(d, len(r))]
	}
	sp.assign, _ = kmeans2(sp.w, dpRestarts, seed)
	for _, a := range sp.assign {
		sp.smallN += a
	}
	sp.small = 1
	if sp.smallN > len(w)-sp.smallN {
		sp.small, sp.smallN = 0, len(w)-sp.smallN
	}
	sp.fisher = fisherRatio(sp.w, sp.assign)
	return sp
}

// isSmall reports whether the split's smaller cluster may be a planted
// group by its size.
func (sp *dpSplit) isSmall() bool {
	return sp.smallN >= dpMinRows && float64(sp.smallN) <= dpMaxFraction*float64(len(sp.assign))
}

// better prefers a small split to one that is not, then the more
// separated; among splits that are not small, the later (more
// components) one.
func (sp *dpSplit) better(o *dpSplit) bool {
	switch {
	case sp.isSmall() != o.isSmall():
		return sp.isSmall()
	case sp.isSmall():
		return sp.fisher > o.fisher
	}
	return true
}

// smallSplit reports whether the class was clustered and its smaller
// cluster is small enough to be a planted group.
func (cl *dpClass) smallSplit() bool {
	return cl.skipped == "" && cl.smallN >= dpMinRows && cl.fraction <= dpMaxFraction
}

// reclassify votes each row of the class's small cluster (a seeded sample
// of at most dpRelabelRows) into a class by its dpNeighbours nearest rows
// of the data outside that cluster (at most dpReferenceRows of them), in
// input space: pixels as they are for images, z-scored columns for
// tables. It sets the share voted into another class than the label.
func reclassify(cl *dpClass, ds *ais.Dataset, seed uint64) {
	inSmall := map[int]bool{}
	var small []int
	for i, row := range cl.rows {
		if cl.assign[i] == cl.small {
			inSmall[row] = true
			small = append(small, row)
		}
	}
	var ref []int
	for i := 0; i < ds.N(); i++ {
		if !inSmall[i] {
			ref = append(ref, i)
		}
	}
	small = pick(small, dpRelabelRows, int64(seed)+int64(cl.class))
	ref = pick(ref, dpReferenceRows, int64(seed)+int64(cl.class)+1)
	scale := inputScale(ds)
	k := len(ds.Classes)
	for _, l := range ds.Labels {
		k = max(k, l+1)
	}
	type nb struct {
		d     float64
		label int
	}
	to := make([]int, k) // rows voted into each other class
	for _, i := range small {
		xi := ds.X.Sample(i)
		best := make([]nb, 0, dpNeighbours+1)
		for _, j := range ref {
			xj := ds.X.Sample(j)
			var d float64
			for f := range xi {
				t := float64(xi[f]-xj[f]) * scale[f]
				d += t * t
			}
			if len(best) == dpNeighbours && d >= best[len(best)-1].d {
				continue
			}
			best = append(best, nb{d, ds.Labels[j]})
			for a := len(best) - 1; a > 0 && best[a].d < best[a-1].d; a-- {
				best[a], best[a-1] = best[a-1], best[a]
			}
			best = best[:min(len(best), dpNeighbours)]
		}
		votes := make([]int, k)
		for _, b := range best {
			votes[b.label]++
		}
		// Ties go to the row's own label.
		win := ds.Labels[i]
		for c, n := range votes {
			if n > votes[win] {
				win = c
			}
		}
		if win != ds.Labels[i] {
			to[win]++
		}
	}
	cl.relabelN, cl.relabelTo = len(small), -1
	for c, n := range to {
		if n > 0 && (cl.relabelTo < 0 || n > to[cl.relabelTo]) {
			cl.relabelTo = c
		}
	}
	if cl.relabelTo >= 0 && len(small) > 0 {
		cl.relabel = float64(to[cl.relabelTo]) / float64(len(small))
	}
}

// inputScale weights each input feature in the reclassification's
// distance: 1 for images (pixels share a scale), 1/σ of the column for
// tables.
func inputScale(ds *ais.Dataset) []float64 {
	f := ds.X.SampleSize()
	scale := make([]float64, f)
	for j := range scale {
		scale[j] = 1
	}
	if ds.Task != ais.TaskTC {
		return scale
	}
	n := ds.N()
	for j := 0; j < f; j++ {
		var s, ss float64
		for i := 0; i < n; i++ {
			v := float64(ds.X.Data[i*f+j])
			s, ss = s+v, ss+v*v
		}
		mu := s / float64(n)
		if sd := math.Sqrt(math.Max(ss/float64(n)-mu*mu, 0)); sd > 1e-12 {
			scale[j] = 1 / sd
		}
	}
	return scale
}

// dpDefinition is the verdict's rule, in words.
var dpDefinition = fmt.Sprintf("Per class (by the given labels), the model's penultimate activations are standardised, reduced to whitened principal components (one per %d rows, between 2 and %d) and split by 2-means (%d seeded k-means++ starts) on the first 2, 3, 5 and 10 of them (up to that number), keeping the most separated split whose smaller cluster is small. A class is flagged as poisoned when its smaller cluster holds at least %d rows and at most %.0f %% of the class, lies apart from the rest (Fisher ratio ≥ %g: squared distance of the cluster means over their summed variances along the line through them), and at least %.0f %% of its rows are voted into one same other class by their %d nearest rows outside the cluster in input space (exclusionary reclassification: planted rows look like their source class). Vulnerable when any class is flagged; severity high when a flagged class's Fisher ratio is ≥ %g, medium otherwise; low when a small cluster is voted into one other class but does not lie apart; none otherwise.",
	dpRowsPerDim, dpDims, dpRestarts, dpMinRows, dpMaxFraction*100, dpMinFisher, dpMinRelabel*100, dpNeighbours, dpHighFisher)

// dpReport fills the verdict, metrics, table and cluster plots.
func dpReport(r *jobs.AnalysisResult, ds *ais.Dataset, classes []*dpClass, suspects []dpSuspect, layer string, width int) {
	var flagged []*dpClass
	var analysed int
	maxFisher, low := 0.0, false
	var top *dpClass // the most suspicious class: flagged, else the best-separated small split
	for _, cl := range classes {
		if cl.skipped != "" {
			continue
		}
		analysed++
		if cl.flagged {
			flagged = append(flagged, cl)
			maxFisher = math.Max(maxFisher, cl.fisher)
		} else if cl.smallSplit() && cl.relabel >= dpMinRelabel {
			low = true
		}
		if top == nil || suspicion(cl) > suspicion(top) {
			top = cl
		}
	}
	v := jobs.Verdict{Definition: dpDefinition}
	switch {
	case len(flagged) > 0 && maxFisher >= dpHighFisher:
		v.Vulnerable, v.Severity = true, "high"
	case len(flagged) > 0:
		v.Vulnerable, v.Severity = true, "medium"
	case low:
		v.Severity = "low"
	default:
		v.Severity = "none"
	}
	if len(flagged) > 0 {
		names := ""
		for i, cl := range flagged {
			if i > 0 {
				names += ", "
			}
			names += fmt.Sprintf("%s (%d of %d rows apart, Fisher ratio %.1f, %.0f %% of them look like class %s)", className(ds, cl.class), cl.smallN, len(cl.rows), cl.fisher, cl.relabel*100, className(ds, cl.relabelTo))
		}
		v.Summary = fmt.Sprintf("%d of %d classes look poisoned: %s; %d training rows are suspected.", len(flagged), analysed, names, len(suspects))
	} else {
		v.Summary = fmt.Sprintf("No class of the %d analysed splits into a small, separated group of rows that looks like one other class; no training row is suspected.", analysed)
	}
	r.Verdict = v

	frac := 0.0
	if ds.N() > 0 {
		frac = float64(len(suspects)) / float64(ds.N())
	}
	var maxF, minFrac float64 = 0, 1
	for _, cl := range classes {
		if cl.skipped == "" {
			maxF, minFrac = math.Max(maxF, cl.fisher), math.Min(minFrac, cl.fraction)
		}
	}
	r.Metrics = []jobs.Metric{
		{Name: "classes_analysed", Value: float64(analysed), Unit: "classes", Help: fmt.Sprintf("Classes with at least %d rows, whose activations were clustered.", dpMinClass)},
		{Name: "classes_flagged", Value: float64(len(flagged)), Unit: "classes", Help: "Classes whose activations split into a small, clearly separated cluster (the verdict's rule)."},
		{Name: "suspected_rows", Value: float64(len(suspects)), Unit: "rows", Help: "Rows in the small cluster of a flagged class: the suspected poisoned training rows."},
		{Name: "suspected_fraction", Value: frac, Unit: "ratio", Help: "Suspected rows over all rows of the data."},
		{Name: "max_fisher_ratio", Value: maxF, Unit: "ratio", Help: "Largest Fisher ratio between the two clusters of a class (a 2-means split of a single Gaussian scores about 4)."},
		{Name: "min_small_cluster_fraction", Value: minFrac, Unit: "ratio", Help: "Smallest share of a class held by its smaller cluster."},
		{Name: "activation_features", Value: float64(width), Unit: "features", Help: "Width of the penultimate activations clustered: " + layer + "."},
	}
	t := &jobs.Table{Title: "Activation clustering per class", Columns: []string{"class", "rows", "components", "small_cluster_rows", "small_cluster_fraction", "silhouette", "fisher_ratio", "looks_like", "relabel_rate", "flagged"}}
	for _, cl := range classes {
		if cl.skipped != "" {
			t.Rows = append(t.Rows, []string{className(ds, cl.class), strconv.Itoa(len(cl.rows)), "", "", "", "", "", "", "", "skipped: " + cl.skipped})
			continue
		}
		relabel, like := "", "" // not voted: the small cluster is not small
		if cl.relabelN > 0 {
			relabel = f4(cl.relabel)
		}
		if cl.relabelN > 0 && cl.relabelTo >= 0 {
			like = className(ds, cl.relabelTo)
		}
		t.Rows = append(t.Rows, []string{className(ds, cl.class), strconv.Itoa(len(cl.rows)), strconv.Itoa(cl.dims), strconv.Itoa(cl.smallN),
			f4(cl.fraction), f4(cl.sil), strconv.FormatFloat(cl.fisher, 'f', 2, 64), like, relabel, strconv.FormatBool(cl.flagged)})
	}
	r.Table = t

	plotted := flagged
	if len(plotted) == 0 && top != nil {
		plotted = []*dpClass{top}
	}
	for i, cl := range plotted {
		if i == dpPlots {
			break
		}
		r.Curves = append(r.Curves, dpScatter(ds, cl))
	}
	r.Notes = append(r.Notes,
		"Activations: the "+layer+", read by cutting the model's TorchScript graph there.",
		"Silhouette (−1…1) is reported for each split but not used by the verdict: in whitened components it stays low even for planted groups (about 0.1–0.2 for the BadNets rows of the tests).",
		"A poisoning from several source classes into one target (all-to-one) scatters the reclassification vote and is not flagged by this rule; the per-class table still shows the split.",
		"Suspected rows are ranked by their spectral signature (Tran et al. 2018): the squared projection of a row's centred activations on the top singular vector of its class's activations, over the class's mean, so that 1 is an average row.",
		"The analysis assumes the labels given are the ones the model was trained on; a class the model never learned to tell apart from another clusters by the model's confusion, not by poisoning.")
	for _, cl := range classes {
		if cl.skipped != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("Class %s not clustered: %s.", className(ds, cl.class), cl.skipped))
		}
	}
}

// suspicion orders classes for the plot when none is flagged: a small
// cluster first, then one voted into another class, then separation.
func suspicion(cl *dpClass) float64 {
	if cl.skipped != "" {
		return -1
	}
	s := cl.fisher * (1 + cl.relabel)
	if !cl.smallSplit() {
		s /= 10
	}
	return s
}

// dpScatter plots a class's rows on its first two whitened principal
// components, grouped by cluster.
func dpScatter(ds *ais.Dataset, cl *dpClass) jobs.Curve {
	c := jobs.Curve{Name: "clusters of class " + className(ds, cl.class), Kind: jobs.CurveScatter,
		XLabel: "principal component 1 (whitened)", YLabel: "principal component 2 (whitened)"}
	idx := make([]int, len(cl.rows))
	for i := range idx {
		idx[i] = i
	}
	if len(idx) > dpScatterPoints {
		idx = pick(idx, dpScatterPoints, int64(cl.class)+1)
	}
	for _, i := range idx {
		x, y := cl.pc[i][0], 0.0
		if len(cl.pc[i]) > 1 {
			y = cl.pc[i][1]
		}
		g := "large cluster"
		if cl.assign[i] == cl.small {
			g = "small cluster"
			if cl.flagged {
				g = "small cluster (suspected)"
			}
		}
		c.X, c.Y, c.Groups = append(c.X, x), append(c.Y, y), append(c.Groups, g)
	}
	return c
}

// dpSuspectsCSV stores the ranked suspected rows.
func dpSuspectsCSV(ctx context.Context, r *jobs.AnalysisResult, ds *ais.Dataset, classes []*dpClass, suspects []dpSuspect, env Env) error {
	if env.Artifact == nil {
		r.Notes = append(r.Notes, "No suspected-rows file: this run has no artifact store.")
		return nil
	}
	fraction := map[int]float64{}
	for _, cl := range classes {
		fraction[cl.class] = cl.fraction
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"rank", "row", "name", "class", "spectral_score", "small_cluster_fraction"})
	for i, s := range suspects {
		_ = w.Write([]string{strconv.Itoa(i + 1), strconv.Itoa(s.row), sampleName(ds, s.row), className(ds, s.class),
			f4(s.score), f4(fraction[s.class])})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	name, err := env.Artifact(ctx, "dpois_suspected_rows.csv", "text/csv", buf.Bytes())
	if err != nil {
		return fmt.Errorf("store the suspected rows: %w", err)
	}
	r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "text/csv",
		Description: fmt.Sprintf("The %d suspected poisoned rows, most suspicious first: rank, row index (0-based, in the data's order), name, class, spectral score (1 = the class's average row), the flagged class's small-cluster fraction.", len(suspects))})
	return nil
}

// dpSamples renders the most suspicious rows' images.
func dpSamples(ctx context.Context, r *jobs.AnalysisResult, ds *ais.Dataset, suspects []dpSuspect, env Env) error {
	if len(suspects) == 0 || env.Artifact == nil || len(ds.X.Shape) != 4 {
		return nil
	}
	f := enlargeFactor(ds.X.Shape)
	for k, s := range suspects[:min(dpShown, len(suspects))] {
		img := enlarge(attacks.Batch{Data: ds.X.Sample(s.row), Shape: append([]int{1}, ds.X.Shape[1:]...)}, f)
		b, err := attacks.RenderPNG(img, 0, 0, 1)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("No sample images: %v.", err))
			return nil
		}
		name, err := env.Artifact(ctx, fmt.Sprintf("dpois_suspect_%d.png", k+1), "image/png", b)
		if err != nil {
			return fmt.Errorf("store a sample image: %w", err)
		}
		r.Samples = append(r.Samples, jobs.Sample{Images: map[string]string{"suspected": name},
			Caption: fmt.Sprintf("#%d suspected: %s, labelled %s, spectral score %.2f", k+1, sampleName(ds, s.row), className(ds, s.class), s.score)})
	}
	return nil
}
