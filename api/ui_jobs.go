package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

const (
	uiListSize      = 50                     // jobs in the list and its event stream
	uiPollInterval  = 500 * time.Millisecond // how often the stream reads the org's jobs
	uiRecheck       = 5 * time.Second        // how often the stream checks its session
	uiHeartbeat     = 15 * time.Second       // a comment line, so proxies keep the stream
	uiStreamMax     = 30 * time.Minute       // then the browser reconnects (and is re-authenticated)
	uiSamplesPage   = 8                      // attack samples whose images one page shows
	uiMaxPerturbPNG = 4 << 20                // the largest PNG decoded to compute a perturbation
)

var uiFuncs = template.FuncMap{
	"pct":  func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + " %" },
	"conf": func(v float32) string { return strconv.FormatFloat(float64(v), 'f', 3, 32) },
	"num":  func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) },
	"norm": func(v *float32) string {
		if v == nil {
			return "–"
		}
		return strconv.FormatFloat(float64(*v), 'g', 4, 32)
	},
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v != nil {
				return v.UTC().Format("2006-01-02 15:04:05 UTC")
			}
		}
		return "–"
	},
	"deref": func(v any) any { // a non-nil pointer's value (the template tests for nil first)
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			return rv.Elem().Interface()
		}
		return v
	},
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}

// uiJobRow is a job as the list shows it and the event stream sends it.
type uiJobRow struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Progress int    `json:"progress"`
	Stage    string `json:"stage"`
	Created  string `json:"created"` // RFC 3339, UTC
	URL      string `json:"url"`
}

func jobRow(j records.Job) uiJobRow {
	return uiJobRow{ID: j.ID, Kind: j.Kind, Status: j.Status, Progress: j.Progress, Stage: j.Stage,
		Created: j.CreatedAt.UTC().Format(time.RFC3339), URL: "/ui/jobs/" + j.ID}
}

// uiJobs is the jobs list; the page's script follows /ui/events.
func (s *Server) uiJobs(c echo.Context) error {
	list, err := s.DB.RecentOrgJobs(c.Request().Context(), orgOf(c), uiListSize)
	if err != nil {
		return err
	}
	rows := make([]uiJobRow, len(list))
	for i, j := range list {
		rows[i] = jobRow(j)
	}
	return s.renderUI(c, http.StatusOK, "jobs.html", uiView{Title: "Jobs", Data: rows})
}

// uiEvents streams the org's job list as server-sent events: on connect
// every listed job, then, polling every uiPollInterval, each job whose
// row changed ("job") and each that left the list ("remove"), as JSON.
// The stream ends when the session does (logout, revoked key), after
// uiStreamMax, when the server shuts down, or when the client goes.
func (s *Server) uiEvents(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), uiStreamMax)
	defer cancel()
	org, sess := orgOf(c), uiSessionOf(c)
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	w.Flush()
	seen := map[string]uiJobRow{}
	poll, checked, beat := time.NewTicker(uiPollInterval), time.Now(), time.Now()
	defer poll.Stop()
	for {
		list, err := s.DB.RecentOrgJobs(ctx, org, uiListSize)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("ui events: listing jobs", "org_id", org, "err", err)
			}
			return nil // the browser reconnects
		}
		var buf bytes.Buffer
		listed := make(map[string]bool, len(list))
		for i := len(list) - 1; i >= 0; i-- { // oldest first, so each new row lands on top
			r := jobRow(list[i])
			listed[r.ID] = true
			if old, ok := seen[r.ID]; ok && old == r {
				continue
			}
			seen[r.ID] = r
			b, _ := json.Marshal(r)
			fmt.Fprintf(&buf, "event: job\ndata: %s\n\n", b)
		}
		for id := range seen {
			if !listed[id] {
				delete(seen, id)
				b, _ := json.Marshal(map[string]string{"id": id})
				fmt.Fprintf(&buf, "event: remove\ndata: %s\n\n", b)
			}
		}
		if time.Since(beat) >= uiHeartbeat {
			buf.WriteString(": keep-alive\n\n")
		}
		if buf.Len() > 0 {
			beat = time.Now()
			if _, err := w.Write(buf.Bytes()); err != nil {
				return nil
			}
			w.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streams.Done(): // shutting down: the browser reconnects to another replica or later
			return nil
		case <-poll.C:
		}
		if time.Since(checked) >= uiRecheck {
			checked = time.Now()
			cur, err := s.sessionByKey(ctx, sess.key)
			if err == nil {
				_, err = s.sessionPrincipal(ctx, cur)
			}
			if err != nil {
				io.WriteString(w, "event: signed-out\ndata: {}\n\n")
				w.Flush()
				return nil
			}
		}
	}
}

// uiJobView is a job's page.
type uiJobView struct {
	Job      uiJobRow
	Error    string
	Started  *time.Time
	Finished *time.Time
	Attack   *uiAttackView
	Verify   *jobs.VerifyResult
	Analysis bool   // the report is framed from /ui/jobs/{id}/report
	Raw      string // any other completed kind: its result document
}

// uiLoadJob loads a job of the caller's org; another org's job is not
// found, like one that does not exist.
func (s *Server) uiLoadJob(c echo.Context) (records.Job, error) {
	j, err := s.Jobs.Get(c.Request().Context(), jobs.Scope{OrgID: orgOf(c)}, c.Param("id"))
	return j, notFoundAs(err, "job not found")
}

// uiJob shows a job: its status, and once completed its result by kind.
func (s *Server) uiJob(c echo.Context) error {
	ctx := c.Request().Context()
	j, err := s.uiLoadJob(c)
	if err != nil {
		return err
	}
	v := uiJobView{Job: jobRow(j), Error: j.Error, Started: j.StartedAt, Finished: j.FinishedAt}
	if j.Status == records.JobCompleted {
		r, err := s.Jobs.Result(ctx, j)
		if err != nil {
			return err
		}
		switch j.Kind {
		case jobs.Attack.Name:
			res, err := jobs.Attack.Result(r.Data)
			if err != nil {
				return fmt.Errorf("attack result %s: %w", j.ID, err)
			}
			page, _ := strconv.Atoi(c.QueryParam("page"))
			if v.Attack, err = s.attackView(ctx, j, res, page); err != nil {
				return err
			}
		case jobs.VerifyMedia.Name:
			res, err := jobs.VerifyMedia.Result(r.Data)
			if err != nil {
				return fmt.Errorf("verification result %s: %w", j.ID, err)
			}
			v.Verify = &res
		case jobs.Analysis.Name:
			v.Analysis = true
		default:
			var out bytes.Buffer
			if json.Indent(&out, []byte(r.Data), "", "  ") != nil {
				out.Reset()
				out.WriteString(r.Data)
			}
			v.Raw = out.String()
		}
	}
	return s.renderUI(c, http.StatusOK, "job.html", uiView{Title: j.Kind + " " + j.ID, Data: v})
}

// uiAttackView is an attack's result: the summary, one table row per
// sample, and the images of one page of samples.
type uiAttackView struct {
	R     jobs.AttackResult
	Rows  []uiSampleRow
	Shown []uiSampleShown
	Page  int // 1-based
	Pages int
	Prev  string
	Next  string
}

type uiSampleRow struct {
	Index int
	jobs.AttackSample
	Page int // the page that shows the sample's images
}

// uiSampleShown is one sample side by side: images (data: URIs) for an
// image attack, texts for a text attack.
type uiSampleShown struct {
	Index                    int
	Original, Adversarial    any
	Perturbation             any
	PerturbationComputed     bool // rendered here from the original and adversarial PNGs
	OriginalText, AdversText string
	Missing                  string // why images are absent
}

// attackView builds an attack's page. The amplified perturbation is the
// worker's (rendered from the float tensors) where it stored one, else it
// is computed here from the stored original and adversarial PNGs.
func (s *Server) attackView(ctx context.Context, j records.Job, res jobs.AttackResult, page int) (*uiAttackView, error) {
	samples := res.BatchResults
	if len(samples) == 0 {
		samples = []jobs.AttackSample{res.AttackSample}
	}
	v := &uiAttackView{R: res, Pages: (len(samples) + uiSamplesPage - 1) / uiSamplesPage}
	v.Page = min(max(page, 1), v.Pages)
	for i, smp := range samples {
		v.Rows = append(v.Rows, uiSampleRow{Index: i, AttackSample: smp, Page: i/uiSamplesPage + 1})
	}
	if v.Page > 1 {
		v.Prev = fmt.Sprintf("/ui/jobs/%s?page=%d", j.ID, v.Page-1)
	}
	if v.Page < v.Pages {
		v.Next = fmt.Sprintf("/ui/jobs/%s?page=%d", j.ID, v.Page+1)
	}
	for i := (v.Page - 1) * uiSamplesPage; i < min(len(samples), v.Page*uiSamplesPage); i++ {
		smp := samples[i]
		sh := uiSampleShown{Index: i}
		if smp.OriginalInput != nil && smp.OriginalInput.IsText && smp.InputFormat != jobs.FormatImage {
			sh.OriginalText = smp.OriginalInput.Text
		}
		if smp.AdversarialExample != nil && smp.AdversarialExample.IsText && smp.InputFormat != jobs.FormatImage {
			sh.AdversText = smp.AdversarialExample.Text
		}
		arts := smp.Perturbation.Artifacts
		if len(arts) == 0 {
			if sh.OriginalText == "" {
				sh.Missing = "No images were stored for this sample."
			}
			v.Shown = append(v.Shown, sh)
			continue
		}
		var err error
		if sh.Original, err = s.uiInline(ctx, j.ID, arts["original"]); err != nil {
			return nil, err
		}
		if sh.Adversarial, err = s.uiInline(ctx, j.ID, arts["adversarial"]); err != nil {
			return nil, err
		}
		if name := arts["perturbation"]; name != "" {
			if sh.Perturbation, err = s.uiInline(ctx, j.ID, name); err != nil {
				return nil, err
			}
		} else if arts["original"] != "" && arts["adversarial"] != "" {
			b, err := s.amplifiedPerturbation(ctx, j.ID, arts["original"], arts["adversarial"])
			if err != nil {
				slog.Warn("ui: computing a perturbation", "job_id", j.ID, "sample", i, "err", err)
				sh.Missing = "The perturbation could not be computed from the stored images."
			} else {
				sh.Perturbation, sh.PerturbationComputed = imageURL(pngDataURI+base64.StdEncoding.EncodeToString(b)), true
			}
		}
		v.Shown = append(v.Shown, sh)
	}
	return v, nil
}

// uiInline is an artifact PNG as a trusted data: URI; nil for no name
// and for a file that is missing or cannot be shown (logged).
func (s *Server) uiInline(ctx context.Context, jobID, name string) (any, error) {
	if name == "" {
		return nil, nil
	}
	uri, err := s.inlineArtifact(ctx, jobID, name)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case warden.ErrorCode(err) == warden.ENOTFOUND:
		return nil, nil
	case err != nil: // not a PNG, too large, unreadable: the page goes on without it
		slog.Warn("ui: an attack image", "job_id", jobID, "name", name, "err", err)
		return nil, nil
	}
	return imageURL(uri), nil
}

// amplifiedPerturbation renders adversarial − original of two stored PNGs
// amplified to the full range (attacks.RenderPerturbationPNG: no change
// is mid-grey, the largest change black or white).
func (s *Server) amplifiedPerturbation(ctx context.Context, jobID, orig, adv string) ([]byte, error) {
	var batches [2]attacks.Batch
	for i, name := range []string{orig, adv} {
		b, err := s.artifactBytes(ctx, jobID, name, "image/png", uiMaxPerturbPNG)
		if err != nil {
			return nil, err
		}
		if batches[i], err = pngBatch(b); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if fmt.Sprint(batches[0].Shape) != fmt.Sprint(batches[1].Shape) {
		return nil, fmt.Errorf("original %v and adversarial %v differ in shape", batches[0].Shape, batches[1].Shape)
	}
	return attacks.RenderPerturbationPNG(batches[0], batches[1], 0)
}

// pngBatch decodes a PNG as a batch of one [1,C,H,W] sample in [0,1]:
// one channel for a grey image, three otherwise (alpha is dropped).
func pngBatch(b []byte) (attacks.Batch, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return attacks.Batch{}, fmt.Errorf("decode png: %w", err)
	}
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w*h == 0 || w*h > 16<<20 {
		return attacks.Batch{}, fmt.Errorf("png of %d×%d pixels", w, h)
	}
	grey := false
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		grey = true
	}
	ch := 3
	if grey {
		ch = 1
	}
	data := make([]float32, ch*h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := y*w + x
			if grey {
				data[p] = float32(color.Gray16Model.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.Gray16).Y) / math.MaxUint16
				continue
			}
			cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			data[p], data[h*w+p], data[2*h*w+p] = float32(cr)/math.MaxUint16, float32(cg)/math.MaxUint16, float32(cb)/math.MaxUint16
		}
	}
	return attacks.Batch{Data: data, Shape: []int{1, ch, h, w}}, nil
}

// uiReport is an analysis's HTML report, framed by its job page.
func (s *Server) uiReport(c echo.Context) error {
	j, err := s.uiLoadJob(c)
	if err != nil {
		return err
	}
	if j.Kind != jobs.Analysis.Name {
		return warden.Errorf(warden.ENOTFOUND, "not an analysis")
	}
	if j.Status != records.JobCompleted {
		return &warden.Error{Code: warden.ECONFLICT, Message: "The analysis is " + j.Status + "."}
	}
	r, err := s.Jobs.Result(c.Request().Context(), j)
	if err != nil {
		return err
	}
	res, err := jobs.Analysis.Result(r.Data)
	if err != nil {
		return fmt.Errorf("analysis result %s: %w", j.ID, err)
	}
	return s.writeAnalysisHTML(c, j, res, "/ui/jobs/"+j.ID+"/artifacts/", uiReportCSP)
}

// uiArtifact serves a file of an attack or analysis of the caller's org
// (the report's downloads); images as images, anything else as an
// attachment.
func (s *Server) uiArtifact(c echo.Context) error {
	j, err := s.uiLoadJob(c)
	if err != nil {
		return err
	}
	name := c.Param("name")
	ok := j.Kind == jobs.Attack.Name && artifactName.MatchString(name) || j.Kind == jobs.Analysis.Name && aisArtifactName.MatchString(name)
	if !ok {
		return warden.Errorf(warden.ENOTFOUND, "artifact not found")
	}
	return s.serveJobArtifact(c, j.ID, name, asPNGOrDownload)
}
