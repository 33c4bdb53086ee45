package api

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenlab/warden/jobs"
)

// element is a parsed element of the report: name, attributes, the text
// directly inside it, and its children.
type element struct {
	Name     string
	Attr     map[string]string
	Text     string
	Children []*element
}

// parseHTML parses the report as HTML (void elements, entities) into a
// tree; it fails on mismatched tags.
func parseHTML(t *testing.T, b []byte) *element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	root := &element{Name: "#root"}
	stack := []*element{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
		top := stack[len(stack)-1]
		switch v := tok.(type) {
		case xml.StartElement:
			e := &element{Name: v.Name.Local, Attr: map[string]string{}}
			for _, a := range v.Attr {
				e.Attr[a.Name.Local] = a.Value
			}
			top.Children = append(top.Children, e)
			stack = append(stack, e)
		case xml.EndElement:
			if top.Name != v.Name.Local {
				t.Fatalf("</%s> closes <%s>", v.Name.Local, top.Name)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.Text += string(v)
		}
	}
	if len(stack) != 1 {
		t.Fatalf("%d elements left open", len(stack)-1)
	}
	return root
}

// all lists the elements named name under e.
func (e *element) all(name string) []*element {
	var out []*element
	for _, c := range e.Children {
		if c.Name == name {
			out = append(out, c)
		}
		out = append(out, c.all(name)...)
	}
	return out
}

// text is all the text under e.
func (e *element) text() string {
	s := e.Text
	for _, c := range e.Children {
		s += c.text()
	}
	return s
}

const hostile = `<script>alert("x")</script>`

func reportFixture() jobs.AnalysisResult {
	return jobs.AnalysisResult{
		AISModelID: "aism_1", TaskType: "IC", AnalysisType: "EVA",
		Verdict: jobs.Verdict{Vulnerable: true, Severity: "high", Summary: "50% success at ε=0.02 " + hostile,
			Definition: "vulnerable when ε50 ≤ 0.05"},
		Metrics: []jobs.Metric{{Name: "epsilon_50", Value: 0.02, Help: "smallest ε with half the attacks succeeding"},
			{Name: "queries", Value: 2000, Unit: "queries", Help: "victim queries"}},
		Curves: []jobs.Curve{
			{Name: "Attack success versus ε", XLabel: "ε", YLabel: "success rate", X: []float64{0, 0.01, 0.02, 0.05, 0.1}, Y: []float64{0, 0.2, 0.5, 0.9, 1}},
			{Name: "Loss " + hostile, XLabel: "step", YLabel: "loss", X: []float64{1, 2, 3}, Y: []float64{3.5, 2, math.NaN()}},
			{Name: "Empty", XLabel: "x", YLabel: "y"},
			{Name: "Constant", XLabel: "x", YLabel: "y", X: []float64{5}, Y: []float64{7}},
		},
		Table: &jobs.Table{Title: "Per ε", Columns: []string{"ε", "success"}, Rows: [][]string{{"0.01", "0.2"}, {"0.02", hostile}}},
		Samples: []jobs.Sample{{Caption: "digit 7 → 1 " + hostile, Images: map[string]string{"original": "0_original.png", "adversarial": "0_adversarial.png"}},
			{Caption: "odd name", Images: map[string]string{"original": "javascript:alert(1)"}}},
		Artifacts: []jobs.Download{{Name: "surrogate.pt", ContentType: "application/octet-stream", Description: "the extracted model"}},
		Params:    jobs.AnalysisParams{Epsilons: []float64{0.01, 0.02}, Attack: "pgd", Steps: 10, Seed: 1},
		Notes:     []string{"note " + hostile},
		Device:    "cpu", Seconds: 12.34,
	}
}

// TestRenderAnalysisHTML: the page is well-formed HTML with one polyline
// per curve that has points (one point per finite (x, y)), a 50% line on
// rate curves only, the table, the samples' images through artifactURL,
// the downloads, and every hostile string escaped.
func TestRenderAnalysisHTML(t *testing.T) {
	var buf bytes.Buffer
	url := func(name string) string { return "/artifacts/" + name }
	if err := renderAnalysisHTML(&buf, reportFixture(), url, "Report "+hostile); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "<script") {
		t.Fatal("a hostile string reached the page unescaped")
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Error("hostile strings not shown escaped")
	}
	doc := parseHTML(t, buf.Bytes())
	svgs := doc.all("svg")
	if len(svgs) != 4 {
		t.Fatalf("%d charts, want 4", len(svgs))
	}
	for i, want := range []struct {
		points int
		ref    bool
	}{{5, true}, {2, false}, {0, false}, {1, false}} {
		lines := svgs[i].all("polyline")
		if want.points == 0 {
			if len(lines) != 0 || !strings.Contains(svgs[i].text(), "No data points") {
				t.Errorf("chart %d: %d polylines for an empty curve", i, len(lines))
			}
			continue
		}
		if len(lines) != 1 {
			t.Fatalf("chart %d: %d polylines, want 1", i, len(lines))
		}
		pts := strings.Fields(lines[0].Attr["points"])
		if len(pts) != want.points || len(svgs[i].all("circle")) != want.points {
			t.Errorf("chart %d: %d points, %d markers; want %d", i, len(pts), len(svgs[i].all("circle")), want.points)
		}
		for _, p := range pts {
			var x, y float64
			if n, _ := fmt.Sscanf(p, "%g,%g", &x, &y); n != 2 || x < chartLeft || x > chartW-chartRight || y < chartTop || y > chartTop+chartPlotH {
				t.Errorf("chart %d: point %q outside the plot", i, p)
			}
		}
		refs := 0
		for _, l := range svgs[i].all("line") {
			if l.Attr["class"] == "ref" {
				refs++
				if want.ref && l.Attr["y1"] != "134" { // the plot spans y 16 (1) to 252 (0)
					t.Errorf("chart %d: 50%% line at y %s", i, l.Attr["y1"])
				}
			}
		}
		if (refs == 1) != want.ref {
			t.Errorf("chart %d: %d reference lines", i, refs)
		}
		if len(svgs[i].all("text")) < 4 {
			t.Errorf("chart %d: no tick labels", i)
		}
	}
	// The rate chart's first point is (0, 0): the plot's lower left corner.
	if p := strings.Fields(svgs[0].all("polyline")[0].Attr["points"])[0]; p != "64,252" {
		t.Errorf("first point %s, want 64,252", p)
	}

	imgs := doc.all("img")
	if len(imgs) != 3 || imgs[0].Attr["src"] != "/artifacts/0_adversarial.png" || imgs[1].Attr["src"] != "/artifacts/0_original.png" {
		t.Errorf("images: %+v", imgs)
	}
	var links []string
	for _, a := range doc.all("a") {
		links = append(links, a.Attr["href"])
	}
	if strings.Join(links, " ") != "/artifacts/surrogate.pt" {
		t.Errorf("links %v", links)
	}
	var cells []string
	for _, td := range doc.all("td") {
		cells = append(cells, td.text())
	}
	all := strings.Join(cells, "|")
	for _, want := range []string{"epsilon_50|0.02|", "2000 queries", "0.02|" + hostile, `[0.01,0.02]`, `"pgd"`} {
		if !strings.Contains(all, want) {
			t.Errorf("cells lack %q: %s", want, all)
		}
	}
	if title := doc.all("title")[0].text(); title != "Report "+hostile {
		t.Errorf("title %q", title)
	}
	if !strings.Contains(doc.text(), "digit 7 → 1 "+hostile) || !strings.Contains(doc.text(), "note "+hostile) {
		t.Error("caption or note lost")
	}
	if div := doc.all("div")[0]; div.Attr["class"] != "verdict sev-high" {
		t.Errorf("verdict box class %q", div.Attr["class"])
	}
}

// TestRenderAnalysisHTMLMinimal: a result with nothing but a verdict (and
// an unknown severity) renders.
func TestRenderAnalysisHTMLMinimal(t *testing.T) {
	var buf bytes.Buffer
	r := jobs.AnalysisResult{Verdict: jobs.Verdict{Severity: `x" onmouseover="alert(1)`},
		Curves: []jobs.Curve{{Name: "mismatched", X: []float64{1, 2, 3}, Y: []float64{1}}, {Name: "inf", X: []float64{math.Inf(1)}, Y: []float64{1}}}}
	r.Samples = []jobs.Sample{{Caption: "unsafe URL", Images: map[string]string{"original": "javascript:alert(1)"}}}
	if err := renderAnalysisHTML(&buf, r, func(name string) string { return name }, ""); err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, buf.Bytes())
	if div := doc.all("div")[0]; div.Attr["class"] != "verdict sev-unknown" {
		t.Errorf("class %q", div.Attr["class"])
	}
	if src := doc.all("img")[0].Attr["src"]; src != "#ZgotmplZ" {
		t.Errorf("unsafe image URL kept: %q", src)
	}
	svgs := doc.all("svg")
	if len(svgs) != 2 || len(svgs[0].all("circle")) != 1 || len(svgs[1].all("polyline")) != 0 {
		t.Errorf("charts: %d", len(svgs))
	}
}

// TestRenderAnalysisHTMLScatter: a scatter curve (data poisoning's
// clusters) is drawn as one dot per finite point, coloured by group in
// order of first appearance, with a legend naming each group once, and
// no line or 50% reference even when every y lies in [0, 1].
func TestRenderAnalysisHTMLScatter(t *testing.T) {
	r := jobs.AnalysisResult{Verdict: jobs.Verdict{Severity: "high"}, Curves: []jobs.Curve{{
		Name: "clusters of class 4", Kind: jobs.CurveScatter, XLabel: "pc 1", YLabel: "pc 2",
		X:      []float64{0.1, 0.2, 0.9, math.NaN(), 0.8},
		Y:      []float64{0.1, 0.3, 0.9, 0.5, 0.7},
		Groups: []string{"large cluster", "large cluster", "small cluster " + hostile, "large cluster", "small cluster " + hostile},
	}}}
	var buf bytes.Buffer
	if err := renderAnalysisHTML(&buf, r, func(name string) string { return name }, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script") {
		t.Fatal("a hostile group name reached the page unescaped")
	}
	svg := parseHTML(t, buf.Bytes()).all("svg")[0]
	if n := len(svg.all("polyline")); n != 0 {
		t.Errorf("%d polylines in a scatter plot", n)
	}
	for _, l := range svg.all("line") {
		if l.Attr["class"] == "ref" {
			t.Error("a scatter plot has a 50% line")
		}
	}
	var dots, legend []string
	for _, c := range svg.all("circle") {
		if c.Attr["r"] == "4" {
			legend = append(legend, c.Attr["class"])
			continue
		}
		dots = append(dots, c.Attr["class"])
		x, _ := strconv.ParseFloat(c.Attr["cx"], 64)
		y, _ := strconv.ParseFloat(c.Attr["cy"], 64)
		if x < chartLeft || x > chartW-chartRight || y < chartTop || y > chartTop+chartPlotH {
			t.Errorf("dot (%g, %g) outside the plot", x, y)
		}
	}
	if strings.Join(dots, ",") != "dot g0,dot g0,dot g1,dot g1" {
		t.Errorf("dots %v, want 4 (the NaN skipped) in groups 0, 0, 1, 1", dots)
	}
	if strings.Join(legend, ",") != "dot g0,dot g1" || !strings.Contains(svg.text(), "small cluster "+hostile) || !strings.Contains(svg.text(), "large cluster") {
		t.Errorf("legend %v: %q", legend, svg.text())
	}
}

// TestRenderAnalysisHTMLInlineImages: a PNG data: URI (what the report
// inlines) stays the image's source, where html/template alone would
// write #ZgotmplZ; a data: URI of another type or with other characters
// is still refused.
func TestRenderAnalysisHTMLInlineImages(t *testing.T) {
	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
	urls := map[string]string{"a.png": png, "b.png": "data:text/html;base64,PHNjcmlwdD4=", "c.png": `data:image/png;base64,AA" onerror="x`}
	r := jobs.AnalysisResult{Samples: []jobs.Sample{{Caption: "s", Images: map[string]string{"adversarial": "a.png", "original": "b.png", "perturbation": "c.png"}}}}
	var buf bytes.Buffer
	if err := renderAnalysisHTML(&buf, r, func(name string) string { return urls[name] }, "t"); err != nil {
		t.Fatal(err)
	}
	imgs := parseHTML(t, buf.Bytes()).all("img")
	if len(imgs) != 3 {
		t.Fatalf("%d images", len(imgs))
	}
	if got := imgs[0].Attr["src"]; got != png {
		t.Errorf("PNG data URI rendered as %q", got)
	}
	for _, img := range imgs[1:] {
		if got := img.Attr["src"]; got != "#ZgotmplZ" {
			t.Errorf("unsafe data URI kept: %q", got)
		}
	}
}
