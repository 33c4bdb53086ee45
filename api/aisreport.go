package api

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/wardenlab/warden/jobs"
)

// reportPage is what the report template draws.
type reportPage struct {
	Title     string
	R         jobs.AnalysisResult
	Severity  string // none, low, medium, high, or unknown
	Metrics   []reportMetric
	Charts    []chart
	Samples   []reportSample
	Artifacts []reportLink
	Params    [][2]string
	Seconds   string
}

type reportMetric struct{ Name, Value, Help string }

type reportSample struct {
	Caption string
	Images  []reportImage
}

type reportImage struct {
	Kind, Name string
	URL        any // a string html/template checks, or a trusted PNG data: URI (see imageURL)
}

// pngDataURI is the prefix of the data: URIs inlineArtifact makes.
const pngDataURI = "data:image/png;base64,"

// imageURL passes a PNG data: URI as a trusted URL, since html/template
// replaces every data: URL with #ZgotmplZ, and anything else as a string
// for html/template to check. Only base64 may follow the prefix, so the
// URI cannot leave the attribute or carry another media type.
func imageURL(u string) any {
	b64, ok := strings.CutPrefix(u, pngDataURI)
	if !ok || b64 == "" {
		return u
	}
	for _, r := range b64 {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '+' || r == '/' || r == '=') {
			return u
		}
	}
	return template.URL(u)
}

type reportLink struct{ Name, URL, ContentType, Description string }

// severities are the verdict colours by severity.
var severities = map[string]bool{"none": true, "low": true, "medium": true, "high": true}

// renderAnalysisHTML writes r as one self-contained HTML page (inline
// CSS and SVG, no script, nothing fetched but the report's own artifacts):
// the verdict, the metrics, each curve as a line chart (or a scatter plot
// with a legend, for jobs.CurveScatter), the table, the
// sample images and the artifacts as links (artifactURL maps an artifact
// name to its URL), the parameters and notes. Every string of r is
// escaped.
func renderAnalysisHTML(w io.Writer, r jobs.AnalysisResult, artifactURL func(name string) string, title string) error {
	p := reportPage{Title: title, R: r, Severity: r.Summary(), Seconds: strconv.FormatFloat(r.Seconds, 'f', 1, 64)}
	if !severities[p.Severity] {
		p.Severity = "unknown"
	}
	for _, m := range r.Metrics {
		v := formatValue(m.Value)
		if m.Unit != "" && m.Unit != "ratio" {
			v += " " + m.Unit
		}
		p.Metrics = append(p.Metrics, reportMetric{m.Name, v, m.Help})
	}
	for _, c := range r.Curves {
		p.Charts = append(p.Charts, layoutCurve(c))
	}
	for _, s := range r.Samples {
		rs := reportSample{Caption: s.Caption}
		kinds := make([]string, 0, len(s.Images))
		for k := range s.Images {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			rs.Images = append(rs.Images, reportImage{k, s.Images[k], imageURL(artifactURL(s.Images[k]))})
		}
		p.Samples = append(p.Samples, rs)
	}
	for _, a := range r.Artifacts {
		p.Artifacts = append(p.Artifacts, reportLink{a.Name, artifactURL(a.Name), a.ContentType, a.Description})
	}
	params, err := paramRows(r.Params)
	if err != nil {
		return err
	}
	p.Params = params
	return reportTemplate.Execute(w, p)
}

// formatValue prints a metric briefly.
func formatValue(v float64) string {
	if !finite(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// paramRows lists the applied parameters as name, JSON value.
func paramRows(p jobs.AnalysisParams) ([][2]string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("report params: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("report params: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([][2]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, [2]string{k, string(m[k])})
	}
	return rows, nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>{{.Title}}</title>
<style>
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; max-width: 980px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #d8dde3; }
.meta { color: #5b6673; }
.verdict { border-left: 8px solid; border-radius: 4px; padding: .8em 1em; margin: 1.2em 0; }
.verdict .label { font-weight: 700; text-transform: uppercase; letter-spacing: .04em; }
.sev-none { border-color: #2e7d32; background: #edf7ee; } .sev-low { border-color: #f9a825; background: #fff8e1; }
.sev-medium { border-color: #ef6c00; background: #fff0e0; } .sev-high { border-color: #c62828; background: #fdecea; }
.sev-unknown { border-color: #78909c; background: #eceff1; }
.definition { color: #44505c; font-size: .92em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { border: 1px solid #d8dde3; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: .4em .8em .8em 0; vertical-align: top; }
figure img { image-rendering: pixelated; min-width: 96px; max-width: 256px; border: 1px solid #d8dde3; }
figcaption { font-size: .85em; color: #44505c; max-width: 256px; }
.sample { margin: .6em 0 1em; } .sample > p { margin: .2em 0; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; background: #fff; border: 1px solid #d8dde3; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #44505c; }
svg.chart .axis { stroke: #44505c; stroke-width: 1; } svg.chart .grid { stroke: #eceff1; stroke-width: 1; }
svg.chart .ref { stroke: #c62828; stroke-width: 1; stroke-dasharray: 5 4; }
svg.chart .line { fill: none; stroke: #1565c0; stroke-width: 2; } svg.chart .pt { fill: #1565c0; }
svg.chart .dot { fill-opacity: 0.7; } svg.chart .g0 { fill: #1565c0; } svg.chart .g1 { fill: #c62828; } svg.chart .g2 { fill: #2e7d32; }
svg.chart .g3 { fill: #ef6c00; } svg.chart .g4 { fill: #6a1b9a; } svg.chart .g5 { fill: #00838f; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">Model {{.R.AISModelID}} · task {{.R.TaskType}} · analysis {{.R.AnalysisType}}{{if .R.Device}} · {{.R.Device}}{{end}} · {{.Seconds}} s</p>

<div class="verdict sev-{{.Severity}}">
<p><span class="label">{{if .R.Verdict.Vulnerable}}Vulnerable{{else}}Not found vulnerable{{end}}</span> · severity {{.Severity}}</p>
<p>{{.R.Verdict.Summary}}</p>
{{if .R.Verdict.Definition}}<p class="definition">Rule: {{.R.Verdict.Definition}}</p>{{end}}
</div>

{{if .Metrics}}<h2>Metrics</h2>
<table>
<thead><tr><th>Metric</th><th>Value</th><th>What it measures</th></tr></thead>
<tbody>
{{range .Metrics}}<tr><td><code>{{.Name}}</code></td><td class="num">{{.Value}}</td><td>{{.Help}}</td></tr>
{{end}}</tbody>
</table>{{end}}

{{range .Charts}}<h2>{{.Name}}</h2>
<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Name}}">
{{if .Empty}}<text x="{{.Left}}" y="{{.Top}}" dy="1.5em">No data points.</text>
{{else}}{{$c := .}}{{range .YTicks}}<line class="grid" x1="{{$c.Left}}" x2="{{$c.Right}}" y1="{{.At}}" y2="{{.At}}"></line>
<text x="{{$c.Left}}" y="{{.At}}" dx="-6" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .XTicks}}<line class="axis" x1="{{.At}}" x2="{{.At}}" y1="{{$c.Bottom}}" y2="{{$c.TickY}}"></line>
<text x="{{.At}}" y="{{$c.Bottom}}" dy="16" text-anchor="middle">{{.Label}}</text>
{{end}}<line class="axis" x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bottom}}" y2="{{.Bottom}}"></line>
<line class="axis" x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bottom}}"></line>
{{with .Ref}}<line class="ref" x1="{{$c.Left}}" x2="{{$c.Right}}" y1="{{.}}" y2="{{.}}"></line>
<text x="{{$c.Right}}" y="{{.}}" dy="-4" text-anchor="end">50%</text>
{{end}}{{if .Scatter}}{{range .Dots}}<circle class="dot g{{.G}}" cx="{{.X}}" cy="{{.Y}}" r="2.5"></circle>
{{end}}{{range .Legend}}<circle class="dot g{{.G}}" cx="{{.X}}" cy="{{.Y}}" r="4"></circle>
<text x="{{.X}}" y="{{.Y}}" dx="9" dy="4">{{.Label}}</text>
{{end}}{{else}}<polyline class="line" points="{{.Points}}"></polyline>
{{range .Markers}}<circle class="pt" cx="{{.X}}" cy="{{.Y}}" r="3"></circle>
{{end}}{{end}}{{end}}<text x="{{.MidX}}" y="{{.H}}" dy="-10" text-anchor="middle">{{.XLabel}}</text>
<text transform="translate(14 {{.MidY}}) rotate(-90)" text-anchor="middle">{{.YLabel}}</text>
</svg>
{{end}}

{{with .R.Table}}<h2>{{.Title}}</h2>
<table>
<thead><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>{{end}}

{{if .Samples}}<h2>Samples</h2>
{{range .Samples}}<div class="sample">
<p>{{.Caption}}</p>
{{range .Images}}<figure><img src="{{.URL}}" alt="{{.Kind}}: {{.Name}}" /><figcaption>{{.Kind}}</figcaption></figure>
{{end}}</div>
{{end}}{{end}}

{{if .Artifacts}}<h2>Downloads</h2>
<ul>
{{range .Artifacts}}<li><a href="{{.URL}}" download="{{.Name}}">{{.Name}}</a>{{if .ContentType}} ({{.ContentType}}){{end}}{{if .Description}}: {{.Description}}{{end}}</li>
{{end}}</ul>{{end}}

<h2>Parameters</h2>
<table>
<tbody>
{{range .Params}}<tr><th>{{index . 0}}</th><td><code>{{index . 1}}</code></td></tr>
{{end}}</tbody>
</table>

{{if .R.Notes}}<h2>Notes</h2>
<ul>
{{range .R.Notes}}<li>{{.}}</li>
{{end}}</ul>{{end}}
</body>
</html>
`))
