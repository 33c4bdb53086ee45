package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Accepted is the answer of a submission: the job's id and first status.
type Accepted struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
}

// VerifyFile uploads a local file for verification (POST /api/verify,
// spec 003), streamed with its exact Content-Length.
func (c *Client) VerifyFile(ctx context.Context, path, callbackURL string) (Accepted, Raw, error) {
	f, err := os.Open(path)
	if err != nil {
		return Accepted{}, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Accepted{}, nil, err
	}
	if !st.Mode().IsRegular() {
		return Accepted{}, nil, fmt.Errorf("%s is not a regular file", path)
	}
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	if callbackURL != "" {
		if err := w.WriteField("callback_url", callbackURL); err != nil {
			return Accepted{}, nil, err
		}
	}
	if _, err := w.CreateFormFile("file", filepath.Base(path)); err != nil {
		return Accepted{}, nil, err
	}
	headLen := head.Len()
	if err := w.Close(); err != nil { // the closing boundary, after the file
		return Accepted{}, nil, err
	}
	tail := bytes.Clone(head.Bytes()[headLen:])
	head.Truncate(headLen)
	body := io.MultiReader(&head, io.LimitReader(f, st.Size()), bytes.NewReader(tail))
	var out Accepted
	raw, err := c.call(ctx, request{method: http.MethodPost, path: "/api/verify", body: body,
		contentType: w.FormDataContentType(), length: int64(headLen) + st.Size() + int64(len(tail))}, &out)
	return out, raw, err
}

// VerifyURL has Warden fetch a file and verify it (POST /api/verify-url).
func (c *Client) VerifyURL(ctx context.Context, fileURL, callbackURL string) (Accepted, Raw, error) {
	var out Accepted
	raw, err := c.postJSON(ctx, "/api/verify-url", map[string]string{"url": fileURL, "callback_url": callbackURL}, &out)
	return out, raw, err
}

// Verification is GET /api/verify/{job_id} (spec 003).
type Verification struct {
	JobID       string          `json:"job_id"`
	Status      string          `json:"status"` // pending, processing, completed, failed
	Label       string          `json:"label"`
	Confidence  *float64        `json:"confidence"`
	Reasons     []string        `json:"reasons"`
	Details     json.RawMessage `json:"details"`
	Progress    int             `json:"progress_percentage"`
	Stage       string          `json:"current_stage"`
	Error       string          `json:"error"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	CompletedAt *time.Time      `json:"completed_at"`
}

// GetVerification reads a verification the way spec 003 shows it, which
// works for anonymous callers too.
func (c *Client) GetVerification(ctx context.Context, id string) (Verification, Raw, error) {
	var v Verification
	raw, err := c.call(ctx, request{method: http.MethodGet, path: "/api/verify/" + url.PathEscape(id)}, &v)
	return v, raw, err
}

// VerificationJob reads a verification as a Job for Wait: spec 003's
// statuses mapped back (its "failed" covers cancelled jobs too).
func (c *Client) VerificationJob(ctx context.Context, id string) (Job, Raw, error) {
	v, raw, err := c.GetVerification(ctx, id)
	if err != nil {
		return Job{}, nil, err
	}
	j := Job{JobID: v.JobID, Kind: "verify_media", Progress: v.Progress, Stage: v.Stage, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, CompletedAt: v.CompletedAt}
	switch v.Status {
	case "pending":
		j.Status = StatusQueued
	case "processing":
		j.Status = StatusInProgress
	case "completed":
		j.Status = StatusCompleted
		j.Result = raw
	default:
		j.Status = StatusFailed
	}
	if v.Error != "" {
		j.Error = &v.Error
	}
	return j, raw, nil
}

// AttackRequest launches an attack (POST /v1/attacks/launch, spec 002).
type AttackRequest struct {
	ModelID          string            `json:"model_id"`
	AttackMethodID   string            `json:"attack_method_id"`
	InputData        json.RawMessage   `json:"input_data,omitempty"` // a base64 image, a text, an array of numbers, or a list of those
	TrueLabels       []json.RawMessage `json:"true_labels,omitempty"`
	TargetLabel      json.RawMessage   `json:"target_label,omitempty"`
	AttackParameters map[string]any    `json:"attack_parameters,omitempty"`
	CallbackURL      string            `json:"callback_url,omitempty"`
}

// AttackAccepted is the 202 of a launch.
type AttackAccepted struct {
	AttackID         string `json:"attack_id"`
	Status           string `json:"status"`
	Message          string `json:"message"`
	EstimatedSeconds int    `json:"estimated_completion_time_seconds"`
}

// LaunchAttack launches an attack; its attack_id is its job id.
func (c *Client) LaunchAttack(ctx context.Context, r AttackRequest) (AttackAccepted, Raw, error) {
	var out AttackAccepted
	raw, err := c.postJSON(ctx, "/v1/attacks/launch", r, &out)
	return out, raw, err
}

// AnalysisRequest starts an AISpectra analysis of a registration
// (POST /api/ais/v1.5/analyses, spec 000).
type AnalysisRequest struct {
	ModelID      string         `json:"model_id"`
	AnalysisType string         `json:"analysis_type,omitempty"`
	TaskType     string         `json:"task_type,omitempty"`
	CallbackURL  string         `json:"callback_url,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
}

// Analysis is an analysis's status document.
type Analysis struct {
	AnalysisID    string  `json:"analysis_id"`
	ModelID       string  `json:"model_id"`
	TaskType      string  `json:"task_type"`
	AnalysisType  string  `json:"analysis_type"`
	Status        string  `json:"status"`
	Progress      int     `json:"progress_percentage"`
	Stage         string  `json:"current_stage"`
	Error         *string `json:"error"`
	StatusURL     string  `json:"status_url"`
	ReportURL     *string `json:"report_url"`
	ReportHTMLURL *string `json:"report_html_url"`
}

// StartAnalysis starts an analysis of an existing registration; its
// analysis_id is its job id.
func (c *Client) StartAnalysis(ctx context.Context, r AnalysisRequest) (Analysis, Raw, error) {
	var out Analysis
	raw, err := c.postJSON(ctx, "/api/ais/v1.5/analyses", r, &out)
	return out, raw, err
}

// Registration is the answer of a model registration.
type Registration struct {
	ModelID      string            `json:"model_id"`
	TaskType     string            `json:"task_type"`
	AnalysisType string            `json:"analysis_type"`
	UploadURLs   map[string]string `json:"upload_urls"`
	StatusURL    string            `json:"status_url"`
	AnalysisID   string            `json:"analysis_id"`
}

// RegisterRequest registers a model for an analysis
// (POST /api/ais/v1.5/model_registration/upload).
type RegisterRequest struct {
	TaskType     string         `json:"task_type"`
	AnalysisType string         `json:"analysis_type"`
	CallbackURL  string         `json:"callback_url,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
}

// Register registers a model; its files go to the returned upload URLs
// (Upload), and the analysis starts when the last one is in.
func (c *Client) Register(ctx context.Context, r RegisterRequest) (Registration, Raw, error) {
	var out Registration
	raw, err := c.postJSON(ctx, "/api/ais/v1.5/model_registration/upload", r, &out)
	return out, raw, err
}

// Upload PUTs a local zip to a registration's upload URL. The URL's path
// and signed query are sent to the client's BaseURL (the URL's host is
// the server's public URL, which may not be the one this client reaches).
func (c *Client) Upload(ctx context.Context, uploadURL, path string) (Raw, error) {
	u, err := url.Parse(uploadURL)
	if err != nil {
		return nil, fmt.Errorf("upload URL: %w", err)
	}
	i := strings.Index(u.Path, "/api/ais/")
	if i < 0 {
		return nil, errors.New("upload URL " + uploadURL + " is not an AISpectra upload URL")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return c.call(ctx, request{method: http.MethodPut, path: u.Path[i:], query: u.Query(), body: io.LimitReader(f, st.Size()),
		contentType: "application/zip", length: st.Size()}, nil)
}
