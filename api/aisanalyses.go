package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// aisBase is the canonical prefix of AISpectra's URLs.
const aisBase = "/api/ais/v1.5"

// routesAISAnalyses registers the analysis lifecycle under prefix:
// start, status, report (JSON and HTML), artifacts, cancel, and a
// registration's analyses.
func (s *Server) routesAISAnalyses(g *routeGroup, prefix string) {
	general := bucket{"ip", s.Config.RateGeneral}
	developer, viewer := require(records.RoleDeveloper), require(records.RoleViewer)
	base := prefix + "/v1.5"
	g.add(route{Method: "POST", Path: base + "/analyses", Tag: "aispectra",
		Summary: "Start an analysis of a registered model on its uploaded files", Role: records.RoleDeveloper, Op: opAISAnalyze},
		s.aisAnalyze, s.guard(general), developer)
	g.add(route{Method: "GET", Path: base + "/analyses/:analysis_id", Tag: "aispectra",
		Summary: "An analysis's status, progress and stage", Role: records.RoleViewer, Op: opAISAnalysisStatus},
		s.aisAnalysisStatus, s.guard(general), viewer)
	g.add(route{Method: "GET", Path: base + "/analyses/:analysis_id/report", Tag: "aispectra",
		Summary: "A completed analysis's report (JSON)", Role: records.RoleViewer, Op: opAISReport},
		s.aisReport, s.guard(general), viewer)
	g.add(route{Method: "GET", Path: base + "/analyses/:analysis_id/report.html", Tag: "aispectra",
		Summary: "A completed analysis's report as a self-contained HTML page with its plots", Role: records.RoleViewer, Op: opAISReportHTML},
		s.aisReportHTML, s.guard(general), viewer)
	g.add(route{Method: "GET", Path: base + "/analyses/:analysis_id/artifacts/:name", Tag: "aispectra",
		Summary: "A file of a report (sample PNGs, the surrogate model)", Role: records.RoleViewer, Op: opAISArtifact},
		s.aisArtifact, s.guard(general), viewer)
	g.add(route{Method: "POST", Path: base + "/analyses/:analysis_id/cancel", Tag: "aispectra",
		Summary: "Cancel a queued or running analysis", Role: records.RoleDeveloper, Op: opAISCancel},
		s.aisCancel, s.guard(general), developer)
	g.add(route{Method: "DELETE", Path: base + "/model_registration/:model_id", Tag: "aispectra",
		Summary: "Delete a registration with its files and every analysis of it", Role: records.RoleDeveloper, Op: opAISDelete},
		s.aisDelete, s.guard(general), developer)
	g.add(route{Method: "GET", Path: base + "/model_registration/:model_id/analyses", Tag: "aispectra",
		Summary: "A registration's analyses, newest first", Role: records.RoleViewer, Op: opAISAnalyses},
		s.aisAnalyses, s.guard(general), viewer)
}

// aisAnalysisRequest starts an analysis: POST …/analyses, and a
// registration call that names an existing model_id. Parameters may come
// in "parameters" or at the top level.
type aisAnalysisRequest struct {
	ModelID      string               `json:"model_id"`
	AnalysisType string               `json:"analysis_type"`
	TaskType     string               `json:"task_type"` // optional; must be the registration's
	CallbackURL  string               `json:"callback_url"`
	Parameters   *jobs.AnalysisParams `json:"parameters"`
	jobs.AnalysisParams
}

// params merges the two places parameters may be given ("parameters"
// wins field by field); validateAnalysisParams checks them.
func (r aisAnalysisRequest) params() jobs.AnalysisParams {
	p := r.AnalysisParams
	if q := r.Parameters; q != nil {
		if q.QueryBudget != 0 {
			p.QueryBudget = q.QueryBudget
		}
		if q.CurvePoints != nil {
			p.CurvePoints = q.CurvePoints
		}
		if q.Epsilons != nil {
			p.Epsilons = q.Epsilons
		}
		if q.Attack != "" {
			p.Attack = q.Attack
		}
		if q.Steps != 0 {
			p.Steps = q.Steps
		}
		if q.Samples != 0 {
			p.Samples = q.Samples
		}
		if q.TriggerSteps != 0 {
			p.TriggerSteps = q.TriggerSteps
		}
		if q.TargetFPR != 0 {
			p.TargetFPR = q.TargetFPR
		}
		if q.Mode != "" {
			p.Mode = q.Mode
		}
		if q.Seed != 0 {
			p.Seed = q.Seed
		}
	}
	return p
}

// Parameter bounds.
const (
	maxQueryBudget = 100_000
	maxEpsilons    = 20
	maxSteps       = 200
	maxEVASamples  = 5000
	// maxTriggerSteps bounds model poisoning's optimisation steps per class.
	maxTriggerSteps = 5000
)

// validateAnalysisParams checks an analysis's parameters before defaults
// apply; it lower-cases the defence's mode. Parameters of the defence
// alone (target_fpr, mode) are refused on other analyses rather than
// ignored.
func validateAnalysisParams(analysis string, p *jobs.AnalysisParams) error {
	d := map[string]string{}
	if analysis == ais.AnalysisDefence {
		// The worker's range (worker/analysis.defend).
		if p.TargetFPR != 0 && !(p.TargetFPR > 0 && p.TargetFPR < 0.5) {
			d["target_fpr"] = "must be above 0 and below 0.5"
		}
		p.Mode = strings.ToLower(strings.TrimSpace(p.Mode))
		if p.Mode != "" && p.Mode != defence.ModeFlag && p.Mode != defence.ModeBlock {
			d["mode"] = "one of flag, block"
		}
	} else {
		if p.TargetFPR != 0 {
			d["target_fpr"] = "only for the defence analysis (POST " + aisBase + "/model_registration/{model_id}/defence), not " + analysis
		}
		if p.Mode != "" {
			d["mode"] = "only for the defence analysis (POST " + aisBase + "/model_registration/{model_id}/defence), not " + analysis
		}
	}
	if p.QueryBudget != 0 && (p.QueryBudget < 10 || p.QueryBudget > maxQueryBudget) {
		d["query_budget"] = fmt.Sprintf("must be between 10 and %d", maxQueryBudget)
	}
	budget := p.QueryBudget
	if budget == 0 {
		budget = jobs.DefaultQueryBudget
	}
	if len(p.CurvePoints) > maxEpsilons {
		d["curve_points"] = fmt.Sprintf("at most %d points", maxEpsilons)
	}
	for _, n := range p.CurvePoints {
		if n < 1 || n > budget {
			d["curve_points"] = fmt.Sprintf("each point must be between 1 and the query budget (%d)", budget)
		}
	}
	if len(p.Epsilons) > maxEpsilons {
		d["epsilons"] = fmt.Sprintf("at most %d values", maxEpsilons)
	}
	for _, e := range p.Epsilons {
		if e < 0 || e > 1 || e != e {
			d["epsilons"] = "each value must be between 0 and 1"
		}
	}
	if a := strings.ToLower(p.Attack); a != "" && a != "fgsm" && a != "pgd" {
		d["attack"] = "one of fgsm, pgd"
	}
	if p.Steps < 0 || p.Steps > maxSteps {
		d["steps"] = fmt.Sprintf("must be between 1 and %d", maxSteps)
	}
	if p.Samples < 0 || p.Samples > maxEVASamples {
		d["samples"] = fmt.Sprintf("must be between 1 and %d", maxEVASamples)
	}
	if p.TriggerSteps < 0 || p.TriggerSteps > maxTriggerSteps {
		d["trigger_steps"] = fmt.Sprintf("must be between 1 and %d", maxTriggerSteps)
	}
	if len(d) > 0 {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid analysis parameters", Details: d}
	}
	return nil
}

// aisAnalyze is POST …/analyses.
func (s *Server) aisAnalyze(c echo.Context) error {
	var req aisAnalysisRequest
	if err := decodeBody(c, &req, 64<<10); err != nil {
		return err
	}
	if strings.TrimSpace(req.ModelID) == "" {
		return invalid("model_id", "required: the model_id the registration returned")
	}
	job, err := s.startAnalysis(c, req, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.analysisDoc(job))
}

// startAnalysis checks a request for an analysis of an existing
// registration and submits it (with id, or a fresh one when id is "").
func (s *Server) startAnalysis(c echo.Context, req aisAnalysisRequest, id string) (records.Job, error) {
	ctx := c.Request().Context()
	m, files, err := s.DB.GetAISModel(ctx, orgOf(c), req.ModelID)
	if err != nil {
		return records.Job{}, notFoundAs(err, "model registration not found")
	}
	analysis := m.AnalysisType
	if strings.TrimSpace(req.AnalysisType) != "" {
		a, ok := ais.ParseAnalysis(req.AnalysisType)
		if !ok {
			return records.Job{}, invalid("analysis_type", "unknown analysis type "+quote(req.AnalysisType)+"; one of MEA, EVA, data-poisoning (or poisoning), model-poisoning")
		}
		analysis = a
	}
	if t := strings.TrimSpace(req.TaskType); t != "" {
		if task, ok := ais.ParseTask(t); !ok || task != m.TaskType {
			return records.Job{}, &warden.Error{Code: warden.EPRECONDITION, Message: "model " + m.ID + " was registered for task type " + m.TaskType,
				Details: map[string]string{"task_type": "must be " + m.TaskType + " (or left out)"}}
		}
	}
	p := req.params()
	if err := validateAnalysisParams(analysis, &p); err != nil {
		return records.Job{}, err
	}
	if err := s.checkCallback(c, req.CallbackURL); err != nil {
		return records.Job{}, err
	}
	return s.submitAnalysis(ctx, m, files, analysis, p, req.CallbackURL, id)
}

// submitAnalysis submits an analysis of a registration: 412 when the pair
// is not offered, the analysis is not available, or the files are not all
// uploaded and valid.
func (s *Server) submitAnalysis(ctx context.Context, m records.AISModel, files []records.AISFile, analysis string, p jobs.AnalysisParams, callback, id string) (records.Job, error) {
	if !ais.Allowed(m.TaskType, analysis) {
		return records.Job{}, &warden.Error{Code: warden.EPRECONDITION,
			Message: m.TaskType + "-" + analysis + " is not an offered analysis; offered: " + ais.AllowedPairs(),
			Details: map[string]string{"analysis_type": analysis + " is not offered for task type " + m.TaskType}}
	}
	if !ais.Runnable(analysis) {
		return records.Job{}, &warden.Error{Code: warden.EPRECONDITION, Message: analysis + " analyses cannot be started in this version of Warden",
			Details: map[string]string{"analysis_type": analysis + " is registered but not yet available"}}
	}
	keys := map[string]string{}
	missing := map[string]string{}
	for _, f := range files {
		if f.Status == records.AISFileValid {
			keys[f.Name] = f.BlobKey
		}
	}
	for _, name := range ais.RequiredFiles(m.TaskType, analysis) {
		if keys[name] == "" {
			missing[name] = "not uploaded and valid yet"
			if !aisHasFile(files, name) {
				missing[name] = "required by " + analysis + " but not part of this registration (register the model for " + analysis + " to upload it)"
			}
		}
	}
	if msg := aisMismatch(files, nil); msg != "" {
		missing["files"] = msg
	}
	if len(missing) > 0 {
		return records.Job{}, &warden.Error{Code: warden.EPRECONDITION, Message: "The registration's files are not all uploaded and valid", Details: missing}
	}
	sub, err := jobs.Analysis.Submission(jobs.AnalysisInput{AISModelID: m.ID, TaskType: m.TaskType, AnalysisType: analysis,
		Files: keys, Params: p})
	if err != nil {
		return records.Job{}, err
	}
	sub.ID, sub.OrgID, sub.CallbackURL, sub.Subject = id, m.OrgID, callback, m.ID
	return s.Jobs.Submit(ctx, sub)
}

// aisHasFile reports whether the registration asked for a file of that name.
func aisHasFile(files []records.AISFile, name string) bool {
	for _, f := range files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// initialAnalysisID is the id of the analysis a registration asked for,
// derived from the registration so that two uploads completing it at once
// start it once.
func initialAnalysisID(modelID string) string {
	h := sha256.Sum256([]byte("warden initial analysis\x00" + modelID))
	return "ana_" + hex.EncodeToString(h[:])[:24]
}

// startInitialAnalysis submits the registration's own analysis once its
// files are complete (the upload that completes them calls it). A second
// call finds it already submitted.
func (s *Server) startInitialAnalysis(ctx context.Context, m records.AISModel, files []records.AISFile) (string, error) {
	id := initialAnalysisID(m.ID)
	scope := jobs.Scope{OrgID: m.OrgID, Kind: jobs.Analysis.Name}
	if _, err := s.Jobs.Get(ctx, scope, id); err == nil {
		return id, nil
	}
	if !ais.Runnable(m.AnalysisType) {
		return "", nil
	}
	var p jobs.AnalysisParams
	if m.Params != "" {
		if err := json.Unmarshal([]byte(m.Params), &p); err != nil {
			return "", fmt.Errorf("registration %s parameters: %w", m.ID, err)
		}
	}
	if _, err := s.submitAnalysis(ctx, m, files, m.AnalysisType, p, m.CallbackURL, id); err != nil {
		if _, gerr := s.Jobs.Get(ctx, scope, id); gerr == nil {
			return id, nil // the other upload submitted it
		}
		return "", err
	}
	return id, nil
}

// analysisScope is what a caller may see of analyses: their org's.
func analysisScope(c echo.Context) jobs.Scope {
	return jobs.Scope{OrgID: orgOf(c), Kind: jobs.Analysis.Name}
}

func (s *Server) loadAnalysis(c echo.Context) (records.Job, jobs.AnalysisInput, error) {
	j, err := s.Jobs.Get(c.Request().Context(), analysisScope(c), c.Param("analysis_id"))
	if err != nil {
		return j, jobs.AnalysisInput{}, notFoundAs(err, "analysis not found")
	}
	in, err := jobs.Analysis.Input(j.Input)
	if err != nil {
		return j, in, fmt.Errorf("analysis %s input: %w", j.ID, err)
	}
	if in.AnalysisType == ais.AnalysisDefence && j.Status == records.JobCompleted {
		// A client that waited for its new profile predicts with it next.
		sawProfile(&s.guards, orgOf(c), in.AISModelID, j, false)
	}
	return j, in, nil
}

// aisAnalysisDoc is an analysis's status.
type aisAnalysisDoc struct {
	AnalysisID    string     `json:"analysis_id"`
	ModelID       string     `json:"model_id"`
	TaskType      string     `json:"task_type"`
	AnalysisType  string     `json:"analysis_type"`
	Status        string     `json:"status"`
	Progress      int        `json:"progress_percentage"`
	Stage         string     `json:"current_stage"`
	Error         *string    `json:"error"`
	CreatedAt     Timestamp  `json:"created_at"`
	StartedAt     *Timestamp `json:"started_at"`
	FinishedAt    *Timestamp `json:"finished_at"`
	StatusURL     string     `json:"status_url"`
	ReportURL     *string    `json:"report_url"`
	ReportHTMLURL *string    `json:"report_html_url"`
}

func (s *Server) analysisDoc(j records.Job) aisAnalysisDoc {
	in, _ := jobs.Analysis.Input(j.Input)
	base := s.Config.PublicURL + aisBase + "/analyses/" + j.ID
	d := aisAnalysisDoc{AnalysisID: j.ID, ModelID: in.AISModelID, TaskType: in.TaskType, AnalysisType: in.AnalysisType,
		Status: j.Status, Progress: j.Progress, Stage: j.Stage, CreatedAt: Timestamp(j.CreatedAt),
		StartedAt: (*Timestamp)(j.StartedAt), FinishedAt: (*Timestamp)(j.FinishedAt), StatusURL: base}
	if j.Error != "" {
		d.Error = &j.Error
	}
	if j.Status == records.JobCompleted {
		r, h := base+"/report", base+"/report.html"
		d.ReportURL, d.ReportHTMLURL = &r, &h
	}
	return d
}

func (s *Server) aisAnalysisStatus(c echo.Context) error {
	j, _, err := s.loadAnalysis(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.analysisDoc(j))
}

// aisAnalyses lists a registration's analyses.
func (s *Server) aisAnalyses(c echo.Context) error {
	ctx := c.Request().Context()
	m, _, err := s.DB.GetAISModel(ctx, orgOf(c), c.Param("model_id"))
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	list, err := s.DB.SubjectJobs(ctx, m.OrgID, jobs.Analysis.Name, m.ID, 500)
	if err != nil {
		return err
	}
	out := make([]aisAnalysisDoc, len(list))
	for i, j := range list {
		out[i] = s.analysisDoc(j)
	}
	return c.JSON(http.StatusOK, map[string]any{"model_id": m.ID, "total": len(out), "analyses": out})
}

func (s *Server) aisCancel(c echo.Context) error {
	j, done, err := s.Jobs.Cancel(c.Request().Context(), analysisScope(c), c.Param("analysis_id"))
	if err != nil {
		return notFoundAs(err, "analysis not found")
	}
	if !done {
		return &warden.Error{Code: warden.ECONFLICT, Message: "analysis already " + j.Status, Details: map[string]string{"status": j.Status}}
	}
	j.Status = records.JobCancelled
	return c.JSON(http.StatusOK, s.analysisDoc(j))
}

// completedAnalysis loads a completed analysis's report; 409 before.
func (s *Server) completedAnalysis(c echo.Context) (records.Job, jobs.AnalysisResult, records.Result, error) {
	j, _, err := s.loadAnalysis(c)
	if err != nil {
		return j, jobs.AnalysisResult{}, records.Result{}, err
	}
	if j.Status != records.JobCompleted {
		msg := "analysis is " + j.Status
		if j.Error != "" {
			msg += ": " + j.Error
		}
		return j, jobs.AnalysisResult{}, records.Result{}, &warden.Error{Code: warden.ECONFLICT, Message: msg, Details: map[string]string{"status": j.Status}}
	}
	r, err := s.Jobs.Result(c.Request().Context(), j)
	if err != nil {
		return j, jobs.AnalysisResult{}, r, err
	}
	res, err := jobs.Analysis.Result(r.Data)
	if err != nil {
		return j, res, r, fmt.Errorf("analysis result %s: %w", j.ID, err)
	}
	return j, res, r, nil
}

// aisReportDoc is GET …/report: the analysis's result with the files of
// the report as URLs.
type aisReportDoc struct {
	AnalysisID  string    `json:"analysis_id"`
	Status      string    `json:"status"`
	GeneratedAt Timestamp `json:"generated_at"`
	jobs.AnalysisResult
	Files map[string]string `json:"files"` // artifact name → URL
}

func (s *Server) aisReport(c echo.Context) error {
	j, res, r, err := s.completedAnalysis(c)
	if err != nil {
		return err
	}
	doc := aisReportDoc{AnalysisID: j.ID, Status: j.Status, GeneratedAt: Timestamp(r.CreatedAt), AnalysisResult: res, Files: map[string]string{}}
	for _, name := range reportFiles(res) {
		doc.Files[name] = s.Config.PublicURL + aisBase + "/analyses/" + j.ID + "/artifacts/" + name
	}
	return c.JSON(http.StatusOK, doc)
}

// reportFiles lists the artifact names a report refers to.
func reportFiles(r jobs.AnalysisResult) []string {
	var out []string
	for _, smp := range r.Samples {
		for _, name := range smp.Images {
			out = append(out, name)
		}
	}
	for _, d := range r.Artifacts {
		out = append(out, d.Name)
	}
	return out
}

var aisArtifactName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *Server) aisArtifact(c echo.Context) error {
	j, _, err := s.loadAnalysis(c)
	if err != nil {
		return err
	}
	name := c.Param("name")
	if !aisArtifactName.MatchString(name) {
		return warden.Errorf(warden.ENOTFOUND, "artifact not found")
	}
	return s.serveJobArtifact(c, j.ID, name, asStored)
}

// maxInlineImage bounds an image the HTML report embeds.
const maxInlineImage = 4 << 20

func (s *Server) aisReportHTML(c echo.Context) error {
	j, res, _, err := s.completedAnalysis(c)
	if err != nil {
		return err
	}
	return s.writeAnalysisHTML(c, j, res, s.Config.PublicURL+aisBase+"/analyses/"+j.ID+"/artifacts/",
		"default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'")
}

// writeAnalysisHTML answers a completed analysis's HTML report with its
// sample images inlined (a browser sends no x-api-key for <img>) and its
// other files linked under linkBase, under the Content-Security-Policy
// csp.
func (s *Server) writeAnalysisHTML(c echo.Context, j records.Job, res jobs.AnalysisResult, linkBase, csp string) error {
	ctx := c.Request().Context()
	images := map[string]string{}
	for _, smp := range res.Samples {
		for _, name := range smp.Images {
			uri, err := s.inlineArtifact(ctx, j.ID, name)
			if err != nil {
				slog.Warn("analysis report image", "analysis_id", j.ID, "name", name, "err", err)
				continue
			}
			images[name] = uri
		}
	}
	url := func(name string) string {
		if u, ok := images[name]; ok {
			return u
		}
		return linkBase + name
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Content-Security-Policy", csp)
	c.Response().WriteHeader(http.StatusOK)
	return renderAnalysisHTML(c.Response(), res, url, "Warden analysis "+j.ID)
}

// inlineArtifact reads a PNG artifact as a data: URI, so the HTML report
// stands alone (a browser sends no x-api-key for <img>).
func (s *Server) inlineArtifact(ctx context.Context, jobID, name string) (string, error) {
	data, err := s.artifactBytes(ctx, jobID, name, "image/png", maxInlineImage)
	if err != nil {
		return "", err
	}
	return pngDataURI + base64.StdEncoding.EncodeToString(data), nil
}

// artifactBytes reads a job's artifact of content type ct and at most
// limit bytes.
func (s *Server) artifactBytes(ctx context.Context, jobID, name, ct string, limit int64) ([]byte, error) {
	b, err := s.DB.JobArtifact(ctx, jobID, name)
	if err != nil {
		return nil, err
	}
	if b.ContentType != ct || b.Size > limit {
		return nil, fmt.Errorf("artifact %s is not a %s of at most %d bytes", name, ct, limit)
	}
	rc, err := s.Blobs.Open(ctx, b.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("read artifact %s: %w", name, err)
	}
	return data, nil
}

// aisDelete deletes a registration: its analyses (cancelled where they
// run, with their reports and files), then its uploads.
func (s *Server) aisDelete(c echo.Context) error {
	ctx := c.Request().Context()
	org := orgOf(c)
	m, _, err := s.DB.GetAISModel(ctx, org, c.Param("model_id"))
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	ctx = context.WithoutCancel(ctx) // once started, finish even if the caller hangs up
	n := 0
	for {
		list, err := s.DB.SubjectJobs(ctx, org, jobs.Analysis.Name, m.ID, 100)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			break
		}
		for _, j := range list {
			if err := s.Jobs.Delete(ctx, analysisScope(c), j.ID); err != nil && warden.ErrorCode(err) != warden.ENOTFOUND {
				return err
			}
			n++
		}
	}
	keys, err := s.DB.DeleteAISModel(ctx, org, m.ID)
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	s.guards.Forget(org, m.ID)
	s.DB.PurgeBlobs(ctx, s.Blobs, keys)
	return c.JSON(http.StatusOK, map[string]any{"model_id": m.ID, "deleted": true, "analyses_deleted": n})
}
