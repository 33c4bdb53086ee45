package api

import (
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// artifactType decides, from an artifact's stored content type, the type
// it is served as and whether it is served as an attachment (downloaded
// rather than shown).
type artifactType func(stored string) (ct string, attachment bool)

// asPNGOrDownload serves PNGs as images and anything else as an
// octet-stream attachment (the UI's rule: a browser shows only PNGs).
func asPNGOrDownload(stored string) (string, bool) {
	if stored == "image/png" {
		return stored, false
	}
	return "application/octet-stream", true
}

// asStored serves the stored type (octet-stream where none is stored),
// as an attachment unless it is an image (AISpectra's rule).
func asStored(stored string) (string, bool) {
	if stored == "" {
		stored = "application/octet-stream"
	}
	return stored, !strings.HasPrefix(stored, "image/")
}

// asPNG serves every artifact as a PNG (attack artifacts are all images).
func asPNG(string) (string, bool) { return "image/png", false }

// serveJobArtifact streams artifact name of job jobID, typed by as.
// A missing artifact is the database's not-found error.
func (s *Server) serveJobArtifact(c echo.Context, jobID, name string, as artifactType) error {
	ctx := c.Request().Context()
	b, err := s.DB.JobArtifact(ctx, jobID, name)
	if err != nil {
		return err
	}
	rc, err := s.Blobs.Open(ctx, b.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	ct, attachment := as(b.ContentType)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ct)
	if attachment {
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), rc)
	return err
}
