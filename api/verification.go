package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/media"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/records"
)

// verifyPath is where a verification's result is read.
func verifyPath(jobID string) string { return "/api/verify/" + jobID }

func (s *Server) routesVerify() {
	general := bucket{"ip", s.Config.RateGeneral}
	upload := bucket{"upload", s.Config.RateUpload}
	g := s.group("/api", renderVerifyError)
	// Anonymous callers may verify (spec 003); a caller with credentials
	// needs a role that may submit (POST) or delete (DELETE).
	submitter := requireIfAuthenticated(records.RoleDeveloper)
	g.add(route{Method: "POST", Path: "/api/verify", Tag: "verification", Summary: "Upload a file for authenticity verification", Op: opVerifyUpload}, s.postVerify, s.guard(general, upload), submitter)
	g.add(route{Method: "POST", Path: "/api/verify-url", Tag: "verification", Summary: "Verify a file fetched from a URL", Op: opVerifyURL}, s.postVerifyURL, s.guard(general, upload), submitter)
	g.add(route{Method: "GET", Path: "/api/verify/:job_id", Tag: "verification", Summary: "Get a verification result", Op: opVerifyGet}, s.getVerify, s.guard(general))
	g.add(route{Method: "DELETE", Path: "/api/verify/:job_id", Tag: "verification", Summary: "Cancel and delete a verification job and its data", Op: opVerifyDelete}, s.deleteVerify, s.guard(general), submitter)
	g.add(route{Method: "GET", Path: "/api/metrics", Tag: "verification", Summary: "Aggregated verification metrics", Op: opVerifyMetrics}, s.getVerifyMetrics, s.limit(general))
	s.add(route{Method: "GET", Path: "/health", Tag: "platform", Summary: "Service health", Op: opHealth}, s.getHealth)
}

func tooLarge(max int64) error {
	return &warden.Error{Code: warden.ETOOLARGE, Message: "File exceeds 100MB limit",
		Details: map[string]string{"limit_bytes": strconv.FormatInt(max, 10)}}
}

// postVerify streams a multipart upload straight into the blob store: the
// body is never buffered whole, the cap is enforced while reading, and the
// type is sniffed from the first bytes before anything is stored.
func (s *Server) postVerify(c echo.Context) error {
	req := c.Request()
	max := s.Config.MaxUploadBytes
	if req.ContentLength > max+multipartOverhead {
		return tooLarge(max)
	}
	req.Body = http.MaxBytesReader(c.Response(), req.Body, max+multipartOverhead)
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != "multipart/form-data" {
		return invalid("file", "Content-Type must be multipart/form-data with a file field")
	}
	mr, err := req.MultipartReader()
	if err != nil {
		return invalid("file", "malformed multipart body")
	}
	ctx := req.Context()
	jobID := uuid.NewString()
	key := "jobs/" + jobID + "/input"
	var (
		in       *jobs.VerifyInput
		callback string
		ok       bool
	)
	defer func() {
		if !ok && in != nil {
			s.discardUpload(ctx, key)
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bodyError(err, max)
		}
		switch part.FormName() {
		case "file":
			if in != nil {
				return invalid("file", "exactly one file is accepted")
			}
			ct, n, err := s.storeSniffed(ctx, key, part, max)
			if ct != "" && n > 0 {
				in = &jobs.VerifyInput{Source: "upload", Filename: sanitizeName(part.FileName()), ContentType: ct, Size: n, BlobKey: key}
			}
			if err != nil {
				return bodyError(err, max)
			}
		case "callback_url":
			b, err := io.ReadAll(io.LimitReader(part, 2049))
			if err != nil {
				return bodyError(err, max)
			}
			if len(b) > 2048 {
				return invalid("callback_url", "callback_url is longer than 2048 characters")
			}
			callback = strings.TrimSpace(string(b))
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return bodyError(err, max)
			}
		}
	}
	if in == nil {
		return invalid("file", "the multipart field 'file' is required")
	}
	if err := s.checkCallback(c, callback); err != nil {
		return err
	}
	if err := s.submitVerification(c, jobID, *in, callback); err != nil {
		return err
	}
	ok = true
	return c.JSON(http.StatusOK, map[string]string{"job_id": jobID, "status": "pending"})
}

// storeSniffed sniffs r's first bytes, refuses anything but image or video
// before storing a byte, then streams the rest into the blob store up to max.
func (s *Server) storeSniffed(ctx context.Context, key string, r io.Reader, max int64) (string, int64, error) {
	br := bufio.NewReaderSize(r, media.SniffLen)
	head, err := br.Peek(media.SniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", 0, err
	}
	if len(head) == 0 {
		return "", 0, invalid("file", "the file is empty")
	}
	ct := media.Sniff(head)
	if !media.IsImageOrVideo(ct) {
		return "", 0, &warden.Error{Code: warden.EINVALID, Message: "Invalid file type",
			Details: map[string]string{"file": "detected " + ct + "; only image and video files are accepted"}}
	}
	n, err := s.Blobs.Put(ctx, key, &capReader{r: br, left: max})
	return ct, n, err
}

// submitVerification submits the verification job that owns the stored
// file (jobs.Service.Submit: accepted even while Redis is down).
func (s *Server) submitVerification(c echo.Context, jobID string, in jobs.VerifyInput, callback string) error {
	sub, err := jobs.VerifyMedia.Submission(in)
	if err != nil {
		return err
	}
	sub.ID, sub.OrgID, sub.CallbackURL = jobID, orgOf(c), callback
	sub.Blobs = []records.Blob{{Key: in.BlobKey, ContentType: in.ContentType, Size: in.Size}}
	_, err = s.Jobs.Submit(c.Request().Context(), sub)
	return err
}

type verifyURLRequest struct {
	URL         string `json:"url"`
	CallbackURL string `json:"callback_url,omitempty"`
}

// postVerifyURL downloads the file through the SSRF-guarded client, under
// the same cap and sniffing rules as uploads.
func (s *Server) postVerifyURL(c echo.Context) error {
	var body verifyURLRequest
	if err := decodeBody(c, &body, 16<<10); err != nil {
		return err
	}
	if strings.TrimSpace(body.URL) == "" {
		return invalid("url", "url is required")
	}
	if _, err := s.Outbound.Verify.ValidateURL(body.URL); err != nil {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid URL", Details: map[string]string{"url": err.Error()}}
	}
	if err := s.checkCallback(c, body.CallbackURL); err != nil {
		return err
	}
	max := s.Config.MaxUploadBytes
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Minute)
	defer cancel()
	jobID := uuid.NewString()
	key := "jobs/" + jobID + "/input"
	pr, pw := io.Pipe()
	dl := make(chan error, 1)
	go func() {
		_, _, err := s.Outbound.Verify.Download(ctx, body.URL, pw, max)
		pw.CloseWithError(err)
		dl <- err
	}()
	ct, n, err := s.storeSniffed(ctx, key, pr, max)
	pr.CloseWithError(errors.New("download aborted"))
	derr := <-dl
	if derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		s.discardUpload(ctx, key)
		return downloadError(err, max)
	}
	in := jobs.VerifyInput{Source: "url", URL: body.URL, ContentType: ct, Size: n, BlobKey: key}
	if err := s.submitVerification(c, jobID, in, body.CallbackURL); err != nil {
		s.discardUpload(ctx, key)
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"job_id": jobID, "status": "pending"})
}

// downloadError maps a failed download to the caller's error. What the
// client learns is generic where the cause would describe Warden's own
// network (a host that resolves to a private address, a connection refused
// inside the perimeter); the log keeps the cause.
func downloadError(err error, max int64) error {
	var (
		we *warden.Error
		se *outbound.StatusError
	)
	switch {
	case errors.Is(err, errFileTooLarge), errors.Is(err, outbound.ErrTooLarge):
		return tooLarge(max)
	case errors.As(err, &we):
		return err
	case errors.As(err, &se):
		return &warden.Error{Code: warden.EINVALID, Message: "Download failed", Details: map[string]string{"url": fmt.Sprintf("the server answered %d", se.Code)}}
	case errors.Is(err, outbound.ErrTooManyRedirects):
		return &warden.Error{Code: warden.EINVALID, Message: "Download failed", Details: map[string]string{"url": "too many redirects"}}
	}
	slog.Info("verify-url download failed", "err", err)
	if errors.Is(err, outbound.ErrForbiddenAddress) {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid URL", Details: map[string]string{"url": "refusing to fetch: the URL leads to an address Warden does not fetch from"}}
	}
	return &warden.Error{Code: warden.EINVALID, Message: "Download failed", Details: map[string]string{"url": "the file could not be downloaded from that URL"}}
}

// verifyStatus maps job statuses to spec 003's VerificationStatus.
func verifyStatus(s string) string {
	switch s {
	case records.JobQueued:
		return "pending"
	case records.JobInProgress:
		return "processing"
	case records.JobCompleted:
		return "completed"
	}
	return "failed"
}

// VerifyResponse is GET /api/verify/{job_id}.
type VerifyResponse struct {
	JobID       string              `json:"job_id"`
	Status      string              `json:"status"`
	Label       string              `json:"label,omitempty"`
	Confidence  *float64            `json:"confidence,omitempty"`
	Reasons     []string            `json:"reasons"`
	Details     *jobs.VerifyDetails `json:"details,omitempty"`
	Progress    int                 `json:"progress_percentage"`
	Stage       string              `json:"current_stage,omitempty"`
	Error       string              `json:"error,omitempty"`
	CreatedAt   Timestamp           `json:"created_at"`
	UpdatedAt   Timestamp           `json:"updated_at"`
	CompletedAt *Timestamp          `json:"completed_at,omitempty"`
}

// verifyScope is what a caller may see of verifications: their org's and
// anonymous ones (whose ids are unguessable), per spec 003.
func verifyScope(c echo.Context) jobs.Scope {
	return jobs.Scope{OrgID: orgOf(c), Anonymous: true, Kind: jobs.VerifyMedia.Name}
}

// verifyJobID reads the job id of a verification route; a malformed one
// is not found.
func verifyJobID(c echo.Context) (string, error) {
	id := c.Param("job_id")
	c.Set(jobIDKey, id)
	if _, err := uuid.Parse(id); err != nil {
		return "", warden.Errorf(warden.ENOTFOUND, "Job not found")
	}
	return id, nil
}

// notFoundAs renames a not-found error in a surface's words.
func notFoundAs(err error, msg string) error {
	if warden.ErrorCode(err) == warden.ENOTFOUND {
		return warden.Errorf(warden.ENOTFOUND, "%s", msg)
	}
	return err
}

func (s *Server) getVerify(c echo.Context) error {
	id, err := verifyJobID(c)
	if err != nil {
		return err
	}
	j, err := s.Jobs.Get(c.Request().Context(), verifyScope(c), id)
	if err != nil {
		return notFoundAs(err, "Job not found")
	}
	return s.completedJSON(c, j, "verification", func() (any, error) {
		resp := VerifyResponse{JobID: j.ID, Status: verifyStatus(j.Status), Reasons: []string{}, Progress: j.Progress,
			Stage: j.Stage, CreatedAt: Timestamp(j.CreatedAt), UpdatedAt: Timestamp(j.UpdatedAt), CompletedAt: (*Timestamp)(j.FinishedAt)}
		switch j.Status {
		case records.JobCompleted:
			r, err := s.Jobs.Result(c.Request().Context(), j)
			if err != nil {
				return nil, err
			}
			rep, err := jobs.VerifyMedia.Result(r.Data)
			if err != nil {
				return nil, fmt.Errorf("verification result %s: %w", j.ID, err)
			}
			resp.Label, resp.Confidence, resp.Details = rep.Label, &rep.Confidence, &rep.Details
			if rep.Reasons != nil {
				resp.Reasons = rep.Reasons
			}
		case records.JobFailed, records.JobCancelled:
			resp.Label = "error"
			resp.Error = j.Error
			if j.Error != "" {
				resp.Reasons = []string{j.Error}
			}
		}
		return resp, nil
	})
}

// deleteVerify cancels a running job, then removes its row and every blob.
// A worker that finishes afterwards finds the row gone and writes nothing.
func (s *Server) deleteVerify(c echo.Context) error {
	id, err := verifyJobID(c)
	if err != nil {
		return err
	}
	if err := s.Jobs.Delete(c.Request().Context(), verifyScope(c), id); err != nil {
		return notFoundAs(err, "Job not found")
	}
	return c.JSON(http.StatusOK, map[string]any{"job_id": id, "deleted": true, "message": "Job and associated data deleted successfully"})
}

func (s *Server) getVerifyMetrics(c echo.Context) error {
	days := 7
	if v := c.QueryParam("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			return invalid("days", "days must be an integer between 1 and 3650")
		}
		days = n
	}
	since := time.Now().UTC().AddDate(0, 0, -days)
	rows, avg, err := s.DB.ResultStats(c.Request().Context(), jobs.VerifyMedia.Name, since)
	if err != nil {
		return err
	}
	out := map[string]any{"total_verifications": int64(0), "authentic_camera": int64(0), "authentic_c2pa": int64(0),
		"ai_generated": int64(0), "unknown": int64(0), "error": int64(0), "avg_processing_time": avg, "days": days}
	var total int64
	for _, r := range rows {
		key := r.Label
		if key == "likely_ai_generated" {
			key = "ai_generated"
		}
		if _, ok := out[key]; ok {
			out[key] = out[key].(int64) + r.Count
		}
		total += r.Count
	}
	out["total_verifications"] = total
	return c.JSON(http.StatusOK, out)
}
