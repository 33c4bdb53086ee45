package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/predict"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

func (s *Server) routesModels(g *routeGroup) {
	general := bucket{"ip", s.Config.RateGeneral}
	viewer, developer, admin := require(records.RoleViewer), require(records.RoleDeveloper), require(records.RoleAdmin)
	g.add(route{Method: "GET", Path: "/v1/models", Tag: "models", Summary: "List models", Role: records.RoleViewer, Op: opModelList}, s.listModels, s.guard(general), viewer)
	g.add(route{Method: "POST", Path: "/v1/models", Tag: "models", Summary: "Register a model (TorchScript file by URL or upload); validated asynchronously", Role: records.RoleDeveloper, Op: opModelCreate}, s.postModel, s.guard(general), developer)
	g.add(route{Method: "GET", Path: "/v1/models/:model_id", Tag: "models", Summary: "Model details with input/output schema and metrics", Role: records.RoleViewer, Op: opModelGet}, s.getModel, s.guard(general), viewer)
	g.add(route{Method: "DELETE", Path: "/v1/models/:model_id", Tag: "models", Summary: "Delete a model and its file", Role: records.RoleAdmin, Op: opModelDelete}, s.deleteModel, s.guard(general), admin)
	g.add(route{Method: "POST", Path: "/v1/models/:model_id/predict", Tag: "models", Summary: "Get a prediction (answered synchronously)", Role: records.RoleDeveloper, Op: opPredict}, s.postPredict, s.guard(general), developer)
}

// modelRequest is POST /v1/models (JSON, or the same fields as multipart
// form values with the TorchScript file in "file" and metadata as JSON text).
type modelRequest struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Version      string `json:"version"`
	Description  string `json:"description"`
	ModelFileURL string `json:"model_file_url"`
	// ModelEndpointURL registers a model served elsewhere instead of a
	// file: Warden POSTs {"inputs": [[…]]} (CV) or {"texts": […]} (NLP)
	// and reads {"probabilities": [[…]]}. Only black-box attacks apply.
	ModelEndpointURL string          `json:"model_endpoint_url"`
	Metadata         json.RawMessage `json:"metadata"`
}

func (s *Server) validateModelRequest(org string, r *modelRequest, upload bool) error {
	d := map[string]string{}
	r.Name, r.Type = strings.TrimSpace(r.Name), strings.ToUpper(strings.TrimSpace(r.Type))
	if r.Name == "" || len(r.Name) > 200 {
		d["name"] = "required, at most 200 characters"
	}
	if len(r.Version) > 64 {
		d["version"] = "at most 64 characters"
	}
	if len(r.Description) > 4000 {
		d["description"] = "at most 4000 characters"
	}
	if cfg, details := modelspec.ParseConfig(r.Type, r.Metadata); details != nil {
		for k, v := range details {
			d[k] = v
		}
	} else if k := cfg.Incomplete(); k != "" && r.ModelEndpointURL != "" {
		// A file's validation infers it from the graph; an endpoint has none.
		d["metadata."+k] = "required for a model registered by model_endpoint_url"
	}
	switch {
	case r.ModelEndpointURL != "":
		if upload || r.ModelFileURL != "" {
			d["model_endpoint_url"] = "give a file (upload or model_file_url) or model_endpoint_url, not both"
		} else if _, err := s.Outbound.Model.ValidateURL(r.ModelEndpointURL); err != nil {
			d["model_endpoint_url"] = err.Error()
		}
	case upload && r.ModelFileURL != "":
		d["model_file_url"] = "give either a file upload or model_file_url, not both"
	case !upload && r.ModelFileURL == "":
		d["model_file_url"] = "required (https:// URL of a TorchScript file) unless the file is uploaded as multipart field 'file'"
	case !upload:
		u, err := url.Parse(r.ModelFileURL)
		switch {
		case err != nil:
			d["model_file_url"] = "not a URL"
		case u.Scheme == "s3":
			// Only an S3 blob store reads them, and only from the org's own
			// import folder (storage.ImportKey).
			if _, err := storage.ImportKey(s.Blobs, org, r.ModelFileURL); err != nil {
				d["model_file_url"] = warden.ErrorMessage(err)
			}
		default:
			if _, err := s.Outbound.Model.ValidateURL(r.ModelFileURL); err != nil {
				d["model_file_url"] = err.Error()
			}
		}
	}
	if len(d) > 0 {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid model registration", Details: d}
	}
	return nil
}

// postModel registers a model: 201 with status processing; a validation
// job loads the file and fills schemas and metrics.
func (s *Server) postModel(c echo.Context) error {
	ctx := c.Request().Context()
	id := storage.NewModelID()
	var (
		req   modelRequest
		blobs []records.Blob
		key   string
		size  int64
	)
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt == "multipart/form-data" {
		key = storage.ModelBlobKey(id)
		n, err := s.readModelMultipart(c, &req, key)
		if err != nil {
			if n > 0 {
				s.discardUpload(ctx, key)
			}
			return err
		}
		blobs, size = []records.Blob{{Key: key, ContentType: "application/zip", Size: n}}, n
	} else if err := decodeBody(c, &req, 1<<20); err != nil {
		return err
	}
	org := orgOf(c)
	if err := s.validateModelRequest(org, &req, key != ""); err != nil {
		if key != "" {
			s.discardUpload(ctx, key)
		}
		return err
	}
	source := req.ModelFileURL
	if key != "" {
		source = "upload"
	} else if req.ModelEndpointURL != "" {
		source = "endpoint"
	}
	md := string(req.Metadata)
	if md == "" {
		md = "{}"
	}
	m := &records.Model{ID: id, OrgID: org, Name: req.Name, Type: req.Type, Version: req.Version, Description: req.Description,
		SourceURL: source, EndpointURL: req.ModelEndpointURL, BlobKey: key, FileSize: size, Metadata: md}
	job, err := s.Jobs.RegisterModel(ctx, m, blobs)
	if err != nil {
		if key != "" {
			s.discardUpload(ctx, key)
		}
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": m.ID, "name": m.Name, "type": m.Type, "status": m.Status,
		"created_at": Timestamp(m.CreatedAt), "validation_job_id": job.ID})
}

// readModelMultipart streams the "file" part into the blob store (size cap,
// TorchScript files are zip archives) and reads the other fields.
func (s *Server) readModelMultipart(c echo.Context, req *modelRequest, key string) (int64, error) {
	r := c.Request()
	max := s.Config.MaxModelBytes
	if r.ContentLength > max+multipartOverhead {
		return 0, &warden.Error{Code: warden.ETOOLARGE, Message: fmt.Sprintf("Model file exceeds %d bytes", max)}
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, max+multipartOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		return 0, invalid("file", "malformed multipart body")
	}
	var n int64
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, modelBodyError(err, max)
		}
		name := part.FormName()
		if name == "file" {
			if n > 0 {
				return n, invalid("file", "exactly one file is accepted")
			}
			br := bufio.NewReader(part)
			head, _ := br.Peek(4)
			if !bytes.Equal(head, []byte("PK\x03\x04")) {
				return n, invalid("file", "not a TorchScript archive (expected a zip file saved by torch.jit.save)")
			}
			if n, err = s.Blobs.Put(r.Context(), key, &capReader{r: br, left: max}); err != nil {
				return n, modelBodyError(err, max)
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, 1<<20+1))
		if err != nil {
			return n, modelBodyError(err, max)
		}
		if len(b) > 1<<20 {
			return n, invalid(name, "field larger than 1 MiB")
		}
		v := string(b)
		switch name {
		case "name":
			req.Name = v
		case "type":
			req.Type = v
		case "version":
			req.Version = v
		case "description":
			req.Description = v
		case "model_file_url":
			req.ModelFileURL = v
		case "metadata":
			if !json.Valid(b) {
				return n, invalid("metadata", "must be a JSON object")
			}
			req.Metadata = json.RawMessage(b)
		default:
			return n, invalid(name, "unknown field")
		}
	}
	if n == 0 {
		return 0, invalid("file", "the multipart field 'file' is required (or send JSON with model_file_url)")
	}
	return n, nil
}

func modelBodyError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.Is(err, errFileTooLarge) || errors.As(err, &mbe) {
		return &warden.Error{Code: warden.ETOOLARGE, Message: fmt.Sprintf("Model file exceeds %d bytes", max)}
	}
	var we *warden.Error
	if errors.As(err, &we) {
		return err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errBodyTimeout
	}
	return invalid("file", "malformed multipart body: "+err.Error())
}

// ModelSummary is one entry of GET /v1/models.
type ModelSummary struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Version     string    `json:"version"`
	Description string    `json:"description"`
	Status      string    `json:"status"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// ModelDetails is GET /v1/models/{id}.
type ModelDetails struct {
	ModelSummary
	InputSchema  map[string]any  `json:"input_schema"` // null until the model is validated
	OutputSchema map[string]any  `json:"output_schema"`
	Metrics      json.RawMessage `json:"metrics"`
	Metadata     json.RawMessage `json:"metadata"`
	Error        *string         `json:"error"`
	Device       string          `json:"device,omitempty"`
	EndpointURL  string          `json:"model_endpoint_url,omitempty"`
}

func summary(m records.Model) ModelSummary {
	return ModelSummary{ID: m.ID, Name: m.Name, Type: m.Type, Version: m.Version, Description: m.Description, Status: m.Status, CreatedAt: Timestamp(m.CreatedAt), UpdatedAt: Timestamp(m.UpdatedAt)}
}

func rawOrNull(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

func (s *Server) listModels(c echo.Context) error {
	limit, offset, err := pagination(c)
	if err != nil {
		return err
	}
	f := storage.ModelFilter{Type: strings.ToUpper(c.QueryParam("type")), Status: c.QueryParam("status"), Limit: limit, Offset: offset,
		SortBy: c.QueryParam("sort_by"), SortOrder: strings.ToLower(c.QueryParam("sort_order"))}
	if f.SortBy != "" && !storage.ModelSortColumns[f.SortBy] {
		return invalid("sort_by", "one of id, name, type, status, created_at, updated_at")
	}
	if f.SortOrder != "" && f.SortOrder != "asc" && f.SortOrder != "desc" {
		return invalid("sort_order", "asc or desc")
	}
	if f.Type != "" && f.Type != modelspec.TypeCV && f.Type != modelspec.TypeNLP {
		return invalid("type", "CV or NLP")
	}
	if f.Status != "" && f.Status != records.ModelActive && f.Status != records.ModelProcessing && f.Status != records.ModelFailed && f.Status != records.ModelDeprecated {
		return invalid("status", "one of active, processing, failed, deprecated")
	}
	ms, total, err := s.DB.ListModels(c.Request().Context(), orgOf(c), f)
	if err != nil {
		return err
	}
	data := make([]ModelSummary, 0, len(ms))
	for _, m := range ms {
		data = append(data, summary(m))
	}
	return c.JSON(http.StatusOK, map[string]any{"total": total, "limit": limit, "offset": offset, "data": data})
}

func (s *Server) getModel(c echo.Context) error {
	m, err := s.DB.GetModel(c.Request().Context(), orgOf(c), c.Param("model_id"))
	if err != nil {
		return err
	}
	d := ModelDetails{ModelSummary: summary(m), Metrics: rawOrNull(m.Metrics), Metadata: rawOrNull(m.Metadata), Device: m.Device, EndpointURL: m.EndpointURL}
	if cfg, ok := modelConfig(m); ok {
		d.InputSchema, d.OutputSchema = modelSchemas(cfg)
	}
	if m.Error != "" {
		d.Error = &m.Error
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) deleteModel(c echo.Context) error {
	ctx := c.Request().Context()
	m, keys, err := s.DB.DeleteModel(ctx, orgOf(c), c.Param("model_id"))
	if err != nil {
		return err
	}
	s.models.Forget(m.OrgID, m.ID)
	// The model is deleted: a file the blob store refuses to delete now
	// stays queued and the reconciler deletes it later.
	s.DB.PurgeBlobs(context.WithoutCancel(ctx), s.Blobs, keys)
	return c.JSON(http.StatusOK, map[string]any{"id": m.ID, "deleted": true})
}

// activeModel loads an org's model for use; 409 while it is not active.
func (s *Server) activeModel(ctx context.Context, org, id string) (records.Model, modelspec.Config, error) {
	m, err := s.DB.GetModel(ctx, org, id)
	if err != nil {
		return m, modelspec.Config{}, err
	}
	if m.Status != records.ModelActive {
		msg := fmt.Sprintf("model is %s", m.Status)
		if m.Error != "" {
			msg += ": " + m.Error
		}
		return m, modelspec.Config{}, &warden.Error{Code: warden.ECONFLICT, Message: msg, Details: map[string]string{"model_id": m.Status}}
	}
	cfg, ok := modelConfig(m)
	if !ok {
		return m, cfg, fmt.Errorf("stored metadata of model %s no longer parses", m.ID)
	}
	return m, cfg, nil
}

// modelConfig is how a validated model is fed, with a label for each of
// the classes validation counted (named by metadata.labels, else by index).
func modelConfig(m records.Model) (modelspec.Config, bool) {
	if m.Status != records.ModelActive {
		return modelspec.Config{}, false
	}
	cfg, details := modelspec.ParseConfig(m.Type, json.RawMessage(m.Metadata))
	if details != nil || cfg.Incomplete() != "" {
		return cfg, false
	}
	var metrics struct {
		NumClasses int `json:"num_classes"`
	}
	json.Unmarshal([]byte(m.Metrics), &metrics)
	if len(cfg.Labels) == 0 {
		cfg.Labels = cfg.LabelNames(metrics.NumClasses)
	}
	return cfg, true
}

// predictInput picks the model input out of a predict body: "input_data"
// (text or numbers) or "image" (base64).
func predictInput(body map[string]json.RawMessage) (json.RawMessage, error) {
	img, hasImg := body["image"]
	data, hasData := body["input_data"]
	for k := range body {
		if k != "image" && k != "input_data" {
			return nil, invalid(k, "unknown field; send input_data or image")
		}
	}
	switch {
	case hasImg && hasData:
		return nil, invalid("input_data", "send input_data or image, not both")
	case hasImg:
		return img, nil
	case hasData:
		return data, nil
	}
	return nil, invalid("input_data", "required (or image for CV models)")
}

// postPredict answers a prediction synchronously: the request goes
// straight to a worker that holds the model warm (package predict) and the
// reply comes back the same way; nothing polls. Each prediction leaves an
// audit record.
func (s *Server) postPredict(c echo.Context) error {
	start := time.Now()
	ctx := c.Request().Context()
	var body map[string]json.RawMessage
	if err := decodeBody(c, &body, 16<<20); err != nil {
		return err
	}
	raw, err := predictInput(body)
	if err != nil {
		return err
	}
	org := orgOf(c)
	m, cfg, err := s.activeModelCached(ctx, org, c.Param("model_id"))
	if err != nil {
		return err
	}
	if err := cfg.Check(raw); err != nil {
		return err
	}
	release, err := s.inflight.acquire(org, int(s.Config.OrgMaxActiveJobs))
	if err != nil {
		return err
	}
	defer release()
	req := predict.Request{ID: newPredictionID(), Input: raw, Deadline: start.Add(s.Config.PredictTimeout),
		Model: predict.Model{ID: m.ID, OrgID: m.OrgID, Type: m.Type, Metadata: json.RawMessage(m.Metadata),
			BlobKey: m.BlobKey, EndpointURL: m.EndpointURL, Version: m.UpdatedAt.UnixNano()}}
	rep, err := s.predictions.Do(ctx, req)
	if answer := s.predictAnswer(c, rep, err); answer != nil {
		s.recordPrediction(c, req.ID, m.ID, raw, start, rep, warden.ErrorCode(answer), answer)
		return answer
	}
	s.recordPrediction(c, req.ID, m.ID, raw, start, rep, "ok", nil)
	return c.JSON(http.StatusOK, map[string]any{"prediction": rep.Prediction, "confidence": rep.Confidence,
		"model_id": m.ID, "input_hash": rep.InputHash, "probabilities": rep.Probabilities})
}

// newPredictionID is a fresh prediction id (prd_ and 32 hex digits).
func newPredictionID() string { return "prd_" + strings.ReplaceAll(uuid.NewString(), "-", "") }

// recordPrediction leaves a prediction's audit record (table predictions,
// written in batches off the request path) and its latency by stage in
// warden_predict_duration_seconds, under status: ok (guarded or flagged on
// the guarded endpoint) with the reply's answer, or, with failure, the
// refusal or error the client got (blocked, or its code).
func (s *Server) recordPrediction(c echo.Context, id, modelID string, raw []byte, start time.Time, rep predict.Reply, status string, failure error) {
	total := time.Since(start)
	audit := records.Prediction{ID: id, OrgID: orgOf(c), ModelID: modelID, InputHash: modelspec.InputHash(raw), Status: status,
		Worker: rep.Worker, Batch: rep.Batch, LatencyMS: float64(total.Microseconds()) / 1000, CreatedAt: start.UTC()}
	if p := principal(c); p != nil {
		audit.CredentialID = p.CredentialID
	}
	if failure != nil {
		audit.Error = failure.Error()
	} else {
		audit.Prediction, audit.Confidence = rep.Prediction, rep.Confidence
	}
	s.audit.record(context.WithoutCancel(c.Request().Context()), audit)
	s.Metrics.ObservePredict(status, predictStages(total, rep))
}

// predictStages splits a prediction's total latency by stage; the worker's
// stages are left out when no reply came.
func predictStages(total time.Duration, rep predict.Reply) dashboards.PredictStages {
	st := dashboards.PredictStages{Total: total}
	if rep.ID != "" {
		ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
		st.Queue, st.Handoff, st.Runner, st.Forward = total-ms(rep.WorkerMS), ms(rep.HandoffMS), ms(rep.RunnerMS), ms(rep.ForwardMS)
	}
	return st
}

// predictAnswer maps a prediction's failure to the error the client gets
// (nil for a prediction): 503 with Retry-After when no worker could serve
// it, 504 past WARDEN_PREDICT_TIMEOUT, 400 for an input the model refused.
func (s *Server) predictAnswer(c echo.Context, rep predict.Reply, err error) error {
	unavailable := func(msg string) error {
		return &warden.Error{Code: warden.EUNAVAILABLE, Message: msg, Details: map[string]string{"retry_after_seconds": retryAfter(c, time.Second)}}
	}
	timeout := &warden.Error{Code: warden.ETIMEOUT, Message: fmt.Sprintf("no prediction within %s", s.Config.PredictTimeout)}
	switch {
	case errors.Is(err, predict.ErrNoWorker):
		return unavailable("no worker serves predictions right now")
	case errors.Is(err, predict.ErrWorkerLost):
		return unavailable("the worker serving this prediction stopped; retry")
	case errors.Is(err, predict.ErrTimeout):
		return timeout
	case err != nil:
		if c.Request().Context().Err() != nil {
			return err
		}
		slog.Warn("prediction not sent", "err", err)
		return unavailable("predictions are unavailable right now")
	}
	switch rep.Code {
	case "":
		return nil
	case predict.CodeInvalidInput:
		return invalid("input_data", rep.Error)
	case predict.CodeTimeout:
		return timeout
	case predict.CodeUnavailable:
		return unavailable(rep.Error)
	}
	return &warden.Error{Code: warden.EINTERNAL, Message: "prediction failed: " + rep.Error}
}

// inflightPredictions counts each org's predictions in flight on this API
// replica: an org may have at most WARDEN_ORG_MAX_ACTIVE_JOBS waiting at
// once (as it may have that many jobs queued or running), so one tenant's
// flood of slow predictions cannot hold every worker.
type inflightPredictions struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *inflightPredictions) acquire(org string, limit int) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if limit > 0 && f.n[org] >= limit {
		return nil, &warden.Error{Code: warden.EQUOTAJOBS, Message: "too many predictions in flight for this org",
			Details: map[string]string{"in_flight": strconv.Itoa(f.n[org]), "max": strconv.Itoa(limit)}}
	}
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[org]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[org]--; f.n[org] == 0 {
			delete(f.n, org)
		}
	}, nil
}
