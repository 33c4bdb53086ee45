package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// aisUploadTTL is how long a registration's upload URLs stay usable (the
// spec's ten minutes).
const aisUploadTTL = 10 * time.Minute

// aisUploadPath is the route of the signed upload URLs.
const aisUploadPath = "/api/ais/v1.5/uploads/:upload_id"

// routesAIS registers AISpectra (spec 000): registration and its status
// under /api/ais and, as the spec also shows, under /ais; the upload
// endpoint the signed URLs point at.
func (s *Server) routesAIS() {
	general := bucket{"ip", s.Config.RateGeneral}
	developer, viewer := require(records.RoleDeveloper), require(records.RoleViewer)
	for _, prefix := range []string{"/api/ais", "/ais"} {
		g := s.group(prefix, renderAISError)
		g.add(route{Method: "POST", Path: prefix + "/v1.5/model_registration/upload", Tag: "aispectra",
			Summary: "Register a model for analysis: a model_id and one signed upload URL per required file", Role: records.RoleDeveloper, Op: opAISRegister},
			s.aisRegister, s.guard(general), developer)
		g.add(route{Method: "GET", Path: prefix + "/v1.5/model_registration/:model_id", Tag: "aispectra",
			Summary: "A registration's files: uploaded, valid, and why not", Role: records.RoleViewer, Op: opAISStatus},
			s.aisStatus, s.guard(general), viewer)
		s.routesAISAnalyses(g, prefix)
		s.routesAISDefence(g, prefix)
		if prefix == "/api/ais" {
			for _, m := range []string{"PUT", "POST"} {
				g.add(route{Method: m, Path: aisUploadPath, Tag: "aispectra",
					Summary: "Upload one file of a registration (a zip) to its signed URL; no other credentials", Op: opAISUpload},
					s.aisUpload, s.limit(general))
			}
			s.routesAISExamples(g, general)
		}
	}
}

// aisErrorsKey is the context key under which a handler lists every reason
// an AISpectra request failed (an upload's validation problems).
const aisErrorsKey = "warden.ais_errors"

// renderAISError is AISpectra's one error shape: {code, message,
// details, errors}: errors lists every reason as text (a rejected
// upload's problems; an invalid request's details as "field: reason";
// else the message).
func renderAISError(c echo.Context, e apiError) error {
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	reasons, _ := c.Get(aisErrorsKey).([]string)
	if reasons == nil {
		reasons = []string{e.Message}
		if d := detailString(details); d != "" && (e.Code == warden.EINVALID || e.Code == warden.EPRECONDITION) {
			reasons = strings.Split(d, "; ")
		}
	}
	return c.JSON(e.Status, map[string]any{"code": e.Code, "message": e.Message, "details": details, "errors": reasons})
}

// aisRegisterRequest is the registration body (JSON or form).
type aisRegisterRequest struct {
	TaskType     string `json:"task_type"`
	AnalysisType string `json:"analysis_type"`
	// ModelID names an existing registration: its files are uploaded once,
	// and this call starts another analysis on them.
	ModelID     string               `json:"model_id"`
	CallbackURL string               `json:"callback_url"`
	Parameters  *jobs.AnalysisParams `json:"parameters"`
	jobs.AnalysisParams
}

// parse canonicalises the types: 400 for missing or unknown values, 412
// for a pair the spec does not list.
func (r *aisRegisterRequest) parse() (task, analysis string, err error) {
	d := map[string]string{}
	task, okT := ais.ParseTask(r.TaskType)
	analysis, okA := ais.ParseAnalysis(r.AnalysisType)
	switch {
	case strings.TrimSpace(r.TaskType) == "":
		d["task_type"] = "required"
	case !okT:
		d["task_type"] = "unknown task type " + quote(r.TaskType) + "; one of IC, IS, TC, TSF, TS, NLP (or Text), OD"
	}
	switch {
	case strings.TrimSpace(r.AnalysisType) == "":
		d["analysis_type"] = "required"
	case !okA:
		d["analysis_type"] = "unknown analysis type " + quote(r.AnalysisType) + "; one of MEA, EVA, data-poisoning (or poisoning), model-poisoning"
	}
	if len(d) > 0 {
		return "", "", &warden.Error{Code: warden.EINVALID, Message: "Invalid model registration", Details: d}
	}
	if !ais.Allowed(task, analysis) {
		return "", "", &warden.Error{Code: warden.EPRECONDITION,
			Message: task + "-" + analysis + " is not an offered analysis; offered: " + ais.AllowedPairs(),
			Details: map[string]string{"analysis_type": analysis + " is not offered for task type " + task}}
	}
	return task, analysis, nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// aisRegistration is the 200 of a registration.
type aisRegistration struct {
	ModelID      string            `json:"model_id"`
	TaskType     string            `json:"task_type"`
	AnalysisType string            `json:"analysis_type"`
	UploadURLs   map[string]string `json:"upload_urls"`
	ExpiresAt    Timestamp         `json:"expires_at"`
	StatusURL    string            `json:"status_url"`
	// AnalysisID is the analysis that starts when the last file is
	// uploaded (absent for analyses this version cannot run yet).
	AnalysisID string `json:"analysis_id,omitempty"`
}

// aisRegister registers a model: its rows, then one signed URL per file.
func (s *Server) aisRegister(c echo.Context) error {
	var req aisRegisterRequest
	if err := decodeBody(c, &req, 64<<10); err != nil {
		return err
	}
	if strings.TrimSpace(req.ModelID) != "" {
		return s.aisReanalyze(c, req)
	}
	task, analysis, err := req.parse()
	if err != nil {
		return err
	}
	ap := aisAnalysisRequest{Parameters: req.Parameters, AnalysisParams: req.AnalysisParams}.params()
	if err := validateAnalysisParams(analysis, &ap); err != nil {
		return err
	}
	if err := s.checkCallback(c, req.CallbackURL); err != nil {
		return err
	}
	params, _ := json.Marshal(ap)
	ctx := c.Request().Context()
	p := principal(c)
	now := time.Now().UTC()
	m := records.AISModel{ID: storage.NewAISModelID(), OrgID: p.OrgID, CredentialID: p.CredentialID,
		TaskType: task, AnalysisType: analysis, Params: string(params), CallbackURL: req.CallbackURL,
		UploadsExpireAt: now.Add(aisUploadTTL), CreatedAt: now}
	var files []records.AISFile
	for _, name := range ais.RequiredFiles(task, analysis) {
		files = append(files, records.AISFile{ID: storage.NewAISFileID(), ModelID: m.ID, OrgID: m.OrgID, Name: name,
			Status: records.AISFilePending, ExpiresAt: m.UploadsExpireAt, Errors: "[]", Summary: "{}"})
	}
	urls := map[string]string{}
	for _, f := range files {
		token, err := s.tokens.signUpload(ctx, f.ID, f.ExpiresAt)
		if err != nil {
			return err
		}
		urls[f.Name] = s.Config.PublicURL + strings.Replace(aisUploadPath, ":upload_id", f.ID, 1) + "?token=" + token
	}
	if err := s.DB.CreateAISModel(ctx, &m, files); err != nil {
		return err
	}
	doc := aisRegistration{ModelID: m.ID, TaskType: task, AnalysisType: analysis, UploadURLs: urls,
		ExpiresAt: Timestamp(m.UploadsExpireAt), StatusURL: s.Config.PublicURL + "/api/ais/v1.5/model_registration/" + m.ID}
	if ais.Runnable(analysis) {
		doc.AnalysisID = initialAnalysisID(m.ID)
	}
	return c.JSON(http.StatusOK, doc)
}

// aisReanalyze is a registration call naming an existing model_id: it
// starts the analysis_type on the files already uploaded (200 with the
// analysis, as the registration answers).
func (s *Server) aisReanalyze(c echo.Context, req aisRegisterRequest) error {
	if strings.TrimSpace(req.AnalysisType) == "" {
		return invalid("analysis_type", "required")
	}
	job, err := s.startAnalysis(c, aisAnalysisRequest{ModelID: req.ModelID, AnalysisType: req.AnalysisType, TaskType: req.TaskType,
		CallbackURL: req.CallbackURL, Parameters: req.Parameters, AnalysisParams: req.AnalysisParams}, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.analysisDoc(job))
}

// aisFileStatus is one file in a registration's status.
type aisFileStatus struct {
	Status     string          `json:"status"`
	Size       int64           `json:"size,omitempty"`
	Summary    json.RawMessage `json:"summary,omitempty"`
	Errors     []string        `json:"errors"`
	UploadedAt *Timestamp      `json:"uploaded_at"`
}

// aisStatusDoc is GET …/model_registration/{model_id}.
type aisStatusDoc struct {
	ModelID      string                   `json:"model_id"`
	TaskType     string                   `json:"task_type"`
	AnalysisType string                   `json:"analysis_type"`
	Status       string                   `json:"status"` // awaiting_uploads, ready, expired
	CreatedAt    Timestamp                `json:"created_at"`
	ExpiresAt    Timestamp                `json:"expires_at"`
	Files        map[string]aisFileStatus `json:"files"`
	Errors       []string                 `json:"errors"` // problems between files (sample counts)
}

func (s *Server) aisStatus(c echo.Context) error {
	m, files, err := s.DB.GetAISModel(c.Request().Context(), orgOf(c), c.Param("model_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, aisStatusOf(m, files, time.Now()))
}

// aisStatusOf renders a registration: ready once every file is valid and
// the files agree; expired when the URLs expired before that.
func aisStatusOf(m records.AISModel, files []records.AISFile, now time.Time) aisStatusDoc {
	doc := aisStatusDoc{ModelID: m.ID, TaskType: m.TaskType, AnalysisType: m.AnalysisType, CreatedAt: Timestamp(m.CreatedAt),
		ExpiresAt: Timestamp(m.UploadsExpireAt), Files: map[string]aisFileStatus{}, Errors: []string{}}
	ready := true
	for _, f := range files {
		fs := aisFileStatus{Status: f.Status, Size: f.Size, Errors: []string{}}
		_ = json.Unmarshal([]byte(f.Errors), &fs.Errors)
		if f.Status == records.AISFileValid {
			fs.Summary = json.RawMessage(f.Summary)
			t := Timestamp(f.UpdatedAt)
			fs.UploadedAt = &t
		}
		ready = ready && f.Status == records.AISFileValid
		doc.Files[f.Name] = fs
	}
	if msg := aisMismatch(files, nil); msg != "" {
		doc.Errors = append(doc.Errors, msg)
		ready = false
	}
	switch {
	case ready:
		doc.Status = records.AISReady
	case now.After(m.UploadsExpireAt):
		doc.Status = "expired"
	default:
		doc.Status = records.AISAwaitingUploads
	}
	return doc
}

// aisMismatch compares the sample counts of the valid data and label
// files (with extra standing in for the file of its name, not yet
// stored); "" when they agree or one is missing.
func aisMismatch(files []records.AISFile, extra *records.AISFile) string {
	sums := map[string]ais.Summary{}
	for _, f := range files {
		if f.Status == records.AISFileValid && (f.Name == ais.FileData || f.Name == ais.FileLabel) {
			var sum ais.Summary
			if json.Unmarshal([]byte(f.Summary), &sum) == nil {
				sums[f.Name] = sum
			}
		}
	}
	if extra != nil {
		var sum ais.Summary
		if json.Unmarshal([]byte(extra.Summary), &sum) == nil {
			sums[extra.Name] = sum
		}
	}
	return ais.SampleMismatch(sums[ais.FileData], sums[ais.FileLabel])
}
