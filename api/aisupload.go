package api

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// uploadTokenContext separates the upload URLs' HMAC key from the access
// tokens' (both derive from the same signing keys).
const uploadTokenContext = "warden ais upload url v1"

// uploadMAC is the HMAC-SHA256, under a key derived from secret, of the
// upload id and its expiry.
func uploadMAC(secret []byte, uploadID string, exp int64) []byte {
	k := hmac.New(sha256.New, secret)
	k.Write([]byte(uploadTokenContext))
	m := hmac.New(sha256.New, k.Sum(nil))
	fmt.Fprintf(m, "%s\x00%d", uploadID, exp)
	return m.Sum(nil)
}

// signUpload returns the token of an upload URL: "<kid>.<exp>.<mac>", the
// signing key's id, the expiry in Unix seconds and the base64url MAC.
func (t *tokens) signUpload(ctx context.Context, uploadID string, exp time.Time) (string, error) {
	keys, err := t.keyring(ctx, false)
	if err != nil {
		return "", fmt.Errorf("signing keys: %w", err)
	}
	e := exp.Unix()
	return keys[0].ID + "." + strconv.FormatInt(e, 10) + "." +
		base64.RawURLEncoding.EncodeToString(uploadMAC(keys[0].Secret, uploadID, e)), nil
}

// verifyUpload checks an upload URL's token: 401 when it is malformed,
// names no current key or does not match, 403 once it has expired.
func (t *tokens) verifyUpload(ctx context.Context, uploadID, token string, now time.Time) error {
	bad := &warden.Error{Code: warden.EUNAUTHORIZED, Message: "invalid upload URL token"}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return bad
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	mac, merr := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || merr != nil {
		return bad
	}
	for _, force := range []bool{false, true} {
		keys, err := t.keyring(ctx, force)
		if err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		for _, k := range keys {
			if k.ID != parts[0] {
				continue
			}
			if !hmac.Equal(mac, uploadMAC(k.Secret, uploadID, exp)) {
				return bad
			}
			if now.Unix() >= exp {
				return &warden.Error{Code: warden.EFORBIDDEN, Message: "this upload URL has expired (URLs last ten minutes from registration)"}
			}
			return nil
		}
	}
	return bad
}

// aisUploadResponse is the 200 of an upload.
type aisUploadResponse struct {
	ModelID string      `json:"model_id"`
	File    string      `json:"file"`
	Status  string      `json:"status"`
	Size    int64       `json:"size"`
	Summary ais.Summary `json:"summary"`
	// RegistrationStatus is the registration's after this upload.
	RegistrationStatus string `json:"registration_status"`
	// AnalysisID is the registration's analysis, started by the upload
	// that completed its files.
	AnalysisID string `json:"analysis_id,omitempty"`
}

// aisUpload receives one file at its signed URL: the raw zip as the body
// (PUT or POST, any content type but a form) or the first file part of a
// multipart form. It checks the token, claims the URL (single use, in
// the database), stores the body in a temporary file (size cap), checks
// the zip and, when valid, stores it. A file that is not valid is
// answered 400 with every problem and gives the URL back for a retry
// until it expires.
func (s *Server) aisUpload(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("upload_id")
	if err := s.tokens.verifyUpload(ctx, id, c.QueryParam("token"), time.Now()); err != nil {
		return err
	}
	max := s.Config.MaxModelBytes
	if c.Request().ContentLength > max+multipartOverhead {
		return aisTooLarge(max)
	}
	m, files, err := s.DB.AISModelByFile(ctx, id)
	if err != nil {
		return err
	}
	f, err := s.DB.ClaimAISFile(ctx, id, time.Now().UTC())
	if err != nil {
		return err
	}
	res, problems, err := s.receiveAISFile(c, m, files, &f, max)
	if err != nil || len(problems) > 0 {
		if err != nil && isDomain(err) {
			problems = append(problems, warden.ErrorMessage(err))
		}
		return s.rejectAISFile(c, f, problems, err)
	}
	return c.JSON(http.StatusOK, res)
}

// receiveAISFile reads, checks and stores a claimed file; problems are
// what makes it invalid; err is what stopped the upload.
func (s *Server) receiveAISFile(c echo.Context, m records.AISModel, files []records.AISFile, f *records.AISFile, max int64) (aisUploadResponse, []string, error) {
	ctx := c.Request().Context()
	tmp, err := os.CreateTemp("", "warden-ais-*.zip")
	if err != nil {
		return aisUploadResponse{}, nil, fmt.Errorf("temp file: %w", err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	n, err := readUploadBody(c, tmp, max)
	if err != nil {
		return aisUploadResponse{}, nil, err
	}
	sum, problems := ais.Check(tmp, n, m.TaskType, f.Name, ais.DefaultLimits)
	summary, _ := json.Marshal(sum)
	f.Summary, f.Size = string(summary), n
	if len(problems) == 0 {
		if msg := aisMismatch(files, f); msg != "" {
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		return aisUploadResponse{}, problems, nil
	}
	f.BlobKey, f.Status, f.Errors = storage.AISBlobKey(m.ID, f.Name), records.AISFileValid, "[]"
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return aisUploadResponse{}, nil, fmt.Errorf("rewind upload: %w", err)
	}
	if _, err := s.Blobs.Put(ctx, f.BlobKey, tmp); err != nil {
		return aisUploadResponse{}, nil, fmt.Errorf("store upload: %w", err)
	}
	if err := s.DB.FinishAISFile(ctx, *f, storage.Quota{MaxStoredBytes: s.Config.OrgMaxStoredBytes}); err != nil {
		s.discardUpload(ctx, f.BlobKey)
		return aisUploadResponse{}, nil, err
	}
	// Read the files again: another upload may have completed beside this one.
	if _, fresh, err := s.DB.GetAISModel(ctx, m.OrgID, m.ID); err == nil {
		files = fresh
	}
	res := aisUploadResponse{ModelID: m.ID, File: f.Name, Status: f.Status, Size: n, Summary: sum,
		RegistrationStatus: aisStatusOf(m, files, time.Now()).Status}
	if res.RegistrationStatus == records.AISReady {
		id, err := s.startInitialAnalysis(context.WithoutCancel(ctx), m, files)
		if err != nil {
			// The file is stored: the analysis can be started with POST …/analyses.
			slog.Warn("starting a registration's analysis", "model_id", m.ID, "err", err)
		}
		res.AnalysisID = id
	}
	return res, nil, nil
}

// rejectAISFile records a failed upload (giving its URL back) and answers
// 400 with every problem, or the error that stopped it.
func (s *Server) rejectAISFile(c echo.Context, f records.AISFile, problems []string, cause error) error {
	if len(problems) == 0 {
		problems = []string{"the upload did not complete"}
	}
	b, _ := json.Marshal(problems)
	f.Status, f.Errors, f.BlobKey = records.AISFileInvalid, string(b), ""
	if err := s.DB.FinishAISFile(context.WithoutCancel(c.Request().Context()), f, storage.Quota{}); err != nil {
		slog.Warn("recording a failed AISpectra upload", "upload_id", f.ID, "err", err)
	}
	if cause != nil {
		return cause
	}
	c.Set(aisErrorsKey, problems)
	return &warden.Error{Code: warden.EINVALID, Message: fmt.Sprintf("The %s file is not valid", f.Name),
		Details: map[string]string{"file": f.Name, "model_id": f.ModelID}}
}

// readUploadBody copies the upload into w: the raw body, or the first file
// part of a multipart form. It refuses url-encoded forms, empty bodies
// and more than max bytes.
func readUploadBody(c echo.Context, w io.Writer, max int64) (int64, error) {
	req := c.Request()
	req.Body = http.MaxBytesReader(c.Response(), req.Body, max+multipartOverhead)
	var body io.Reader = req.Body
	mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	switch mt {
	case mimeForm:
		return 0, unsupportedBody(req)
	case mimeMultipart:
		part, err := firstFilePart(req)
		if err != nil {
			return 0, err
		}
		body = part
	}
	n, err := io.Copy(w, &capReader{r: bufio.NewReader(body), left: max})
	if err != nil {
		if err = bodyError(err, max); warden.ErrorCode(err) == warden.ETOOLARGE {
			err = aisTooLarge(max)
		}
		return n, err
	}
	if n == 0 {
		return 0, invalid("file", "the upload is empty: send the zip as the request body")
	}
	return n, nil
}

// firstFilePart returns the multipart form's first part that carries a
// file name.
func firstFilePart(req *http.Request) (io.Reader, error) {
	mr, err := req.MultipartReader()
	if err != nil {
		return nil, invalid("file", "malformed multipart body")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, invalid("file", "the multipart body has no file part")
		}
		if err != nil {
			return nil, bodyError(err, 0)
		}
		if part.FileName() != "" {
			return part, nil
		}
	}
}

// aisTooLarge answers an upload over the size cap.
func aisTooLarge(max int64) error {
	return &warden.Error{Code: warden.ETOOLARGE, Message: fmt.Sprintf("The file exceeds %d bytes", max),
		Details: map[string]string{"limit_bytes": strconv.FormatInt(max, 10)}}
}
