package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wardenlab/warden/jobs"
)

// Chart geometry of a report's curves, in SVG user units.
const (
	chartW, chartH           = 560, 300
	chartLeft, chartRight    = 64, 16
	chartTop, chartBottom    = 16, 48
	chartTicks               = 5
	chartPlotW, chartPlotH   = chartW - chartLeft - chartRight, chartH - chartTop - chartBottom
	chartMaxPointsWithMarker = 200
	chartMaxDots             = 5000 // points a scatter plot draws at most
	chartGroups              = 6    // colours of a scatter plot's groups (then they repeat)
)

// chart is one curve laid out for the template: everything in plot
// coordinates, text left to the template to escape.
type chart struct {
	Name, XLabel, YLabel string
	W, H                 int
	Left, Top            float64 // plot area's corner
	Right, Bottom        float64
	MidX, MidY           float64 // where the axis labels centre
	TickY                float64 // lower end of the x ticks
	Points               string  // polyline points, "x,y x,y …"
	Markers              []point // drawn as circles (none past chartMaxPointsWithMarker)
	XTicks, YTicks       []tick
	Ref                  *float64 // y of the 50% line when y is a rate
	Empty                bool     // no finite point: no polyline
	N                    int      // points plotted
	// Scatter: the curve is a point cloud (jobs.CurveScatter), drawn as
	// Dots coloured by group, with a Legend, and no line.
	Scatter bool
	Dots    []dot
	Legend  []legendEntry
}

type point struct{ X, Y float64 }

// dot is a scatter plot's point; G is its group's colour index.
type dot struct {
	X, Y float64
	G    int
}

// legendEntry names a group at its place in the plot.
type legendEntry struct {
	Label string
	G     int
	X, Y  float64
}

// tick is an axis tick at position At (x or y) with its label.
type tick struct {
	At    float64
	Label string
}

// layoutCurve lays a curve out: the axes span the finite points (y is
// [0, 1] with a 50% reference line when every y lies there, for lines);
// points with a non-finite coordinate, or past the shorter of X and Y, are
// skipped. A scatter curve's points become dots coloured by their group
// (groups in order of first appearance), at most chartMaxDots of them.
func layoutCurve(c jobs.Curve) chart {
	ch := chart{Name: c.Name, XLabel: c.XLabel, YLabel: c.YLabel, W: chartW, H: chartH,
		Left: chartLeft, Top: chartTop, Right: chartLeft + chartPlotW, Bottom: chartTop + chartPlotH,
		MidX: chartLeft + chartPlotW/2, MidY: chartTop + chartPlotH/2, TickY: chartTop + chartPlotH + 5,
		Scatter: c.Kind == jobs.CurveScatter}
	var pts []point
	var groups []int
	groupOf := map[string]int{}
	for i := 0; i < len(c.X) && i < len(c.Y); i++ {
		if !finite(c.X[i]) || !finite(c.Y[i]) || (ch.Scatter && len(pts) == chartMaxDots) {
			continue
		}
		pts = append(pts, point{c.X[i], c.Y[i]})
		if ch.Scatter {
			name := ""
			if i < len(c.Groups) {
				name = c.Groups[i]
			}
			g, ok := groupOf[name]
			if !ok {
				g = len(groupOf)
				groupOf[name] = g
				if name != "" {
					ch.Legend = append(ch.Legend, legendEntry{Label: name, G: g % chartGroups,
						X: chartLeft + chartPlotW - 170, Y: chartTop + 12 + 16*float64(len(ch.Legend))})
				}
			}
			groups = append(groups, g%chartGroups)
		}
	}
	ch.N = len(pts)
	if len(pts) == 0 {
		ch.Empty = true
		return ch
	}
	xmin, xmax, ymin, ymax := pts[0].X, pts[0].X, pts[0].Y, pts[0].Y
	for _, p := range pts {
		xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
		ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
	}
	rate := ymin >= 0 && ymax <= 1 && !ch.Scatter
	if rate {
		ymin, ymax = 0, 1
	}
	var xt, yt []float64
	xmin, xmax, xt = niceAxis(xmin, xmax)
	ymin, ymax, yt = niceAxis(ymin, ymax)
	sx := func(x float64) float64 { return chartLeft + (x-xmin)/(xmax-xmin)*chartPlotW }
	sy := func(y float64) float64 { return chartTop + (ymax-y)/(ymax-ymin)*chartPlotH }
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		q := point{round2(sx(p.X)), round2(sy(p.Y))}
		if ch.Scatter {
			ch.Dots = append(ch.Dots, dot{q.X, q.Y, groups[i]})
			continue
		}
		fmt.Fprintf(&b, "%g,%g", q.X, q.Y)
		if len(pts) <= chartMaxPointsWithMarker {
			ch.Markers = append(ch.Markers, q)
		}
	}
	ch.Points = b.String()
	for _, v := range xt {
		ch.XTicks = append(ch.XTicks, tick{round2(sx(v)), tickLabel(v)})
	}
	for _, v := range yt {
		ch.YTicks = append(ch.YTicks, tick{round2(sy(v)), tickLabel(v)})
	}
	if rate {
		y := round2(sy(0.5))
		ch.Ref = &y
	}
	return ch
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// niceAxis widens [lo, hi] to round tick values about chartTicks apart
// and returns the new bounds and the ticks.
func niceAxis(lo, hi float64) (float64, float64, []float64) {
	if hi-lo < 1e-12*math.Max(1, math.Abs(hi)) {
		d := math.Max(math.Abs(lo)*0.1, 0.5)
		lo, hi = lo-d, hi+d
	}
	step := niceStep((hi - lo) / chartTicks)
	lo, hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	var ticks []float64
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi+step*1e-9 || i > 4*chartTicks {
			break
		}
		ticks = append(ticks, v)
	}
	return lo, hi, ticks
}

// niceStep is 1, 2 or 5 times a power of ten, at least raw.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel prints a tick value briefly (no float noise).
func tickLabel(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
