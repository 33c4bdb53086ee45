package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/outbound"
)

// multipartOverhead is the room the multipart envelope and small form
// fields get on top of the file size cap.
const multipartOverhead = 64 << 10

var errFileTooLarge = errors.New("file exceeds the size limit")

// discardUpload deletes a stored upload whose request failed before any
// row owned it; should the blob store refuse, the reconciler retries.
func (s *Server) discardUpload(ctx context.Context, key string) {
	s.DB.DiscardBlobs(context.WithoutCancel(ctx), s.Blobs, "abandoned upload", key)
}

// capReader fails with errFileTooLarge once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errFileTooLarge
	}
	return n, err
}

// bodyError maps body read failures to 413 or 400.
func bodyError(err error, max int64) error {
	var mbe *http.MaxBytesError
	var we *warden.Error
	switch {
	case errors.Is(err, errFileTooLarge), errors.As(err, &mbe), errors.Is(err, outbound.ErrTooLarge):
		return tooLarge(max)
	case errors.As(err, &we):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errBodyTimeout
	}
	return invalid("file", "malformed multipart body: "+err.Error())
}

func sanitizeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, name)
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// decodeJSON reads a JSON body of at most max bytes, refusing unknown fields.
// The body must be declared application/json (or a +json type): a web page
// can make a visitor's browser send text/plain, form or untyped bodies to
// any origin without a CORS preflight, never application/json, so this
// keeps other sites from driving state-changing routes (anonymous
// verify-url above all) through their visitors.
func decodeJSON(c echo.Context, v any, max int64) error {
	req := c.Request()
	if err := requireJSON(req); err != nil {
		return err
	}
	if req.ContentLength > max {
		return &warden.Error{Code: warden.ETOOLARGE, Message: "Request body too large"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &warden.Error{Code: warden.ETOOLARGE, Message: "Request body too large"}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errBodyTimeout
		}
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid JSON body", Details: map[string]string{"body": err.Error()}}
	}
	if dec.More() {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid JSON body", Details: map[string]string{"body": "trailing data after the JSON object"}}
	}
	return nil
}

// requireJSON refuses a body that is not declared JSON with 415.
func requireJSON(req *http.Request) error {
	ct := req.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == echo.MIMEApplicationJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	got := ct
	if got == "" {
		got = "none"
	}
	return &warden.Error{Code: warden.EUNSUPPORTEDMEDIA, Message: "Request body must be sent as Content-Type: application/json",
		Details: map[string]string{"content_type": got}}
}

// errBodyTimeout answers a request whose body did not arrive within its
// route's read deadline (a slow upload holding a connection).
var errBodyTimeout = &warden.Error{Code: warden.EREQUESTTIMEOUT, Message: "Request body not received in time"}

// bodyDeadline bounds how long a request may take to send its body: the
// upload routes get WARDEN_UPLOAD_TIMEOUT, every other route
// WARDEN_BODY_TIMEOUT. (The server's ReadHeaderTimeout bounds the headers.)
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := s.Config.BodyTimeout
		if r := c.Request(); r.Method == http.MethodPost && (c.Path() == "/api/verify" || c.Path() == "/v1/models") {
			d = s.Config.UploadTimeout
		}
		if d > 0 {
			// Not supported by test recorders; a real connection honours it.
			_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(d))
		}
		return next(c)
	}
}
