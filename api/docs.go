package api

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
	swaggerui "github.com/swaggest/swgui/v5/static"
	"github.com/wardenlab/warden"
)

// Swagger UI comes from the Go module github.com/swaggest/swgui, whose
// v5/static package embeds its files (gzipped), so every build serves
// /docs, `go install` included. No Go module on the proxy ships ReDoc:
// `make assets` copies it from npm into docs/ and it is embedded only
// then; without it /redoc sends the reader to /docs. No CDN is used.
//
//go:embed all:docs
var docsFS embed.FS

// docAsset is a file served under /docs/assets/: where it is embedded and
// its type. A name ending in .gz is stored gzipped.
type docAsset struct {
	fs          fs.FS
	name, ctype string
}

var docAssets = map[string]docAsset{
	"swagger-ui/swagger-ui-bundle.js":            {swaggerui.FS, "swagger-ui-bundle.js.gz", "application/javascript"},
	"swagger-ui/swagger-ui-standalone-preset.js": {swaggerui.FS, "swagger-ui-standalone-preset.js.gz", "application/javascript"},
	"swagger-ui/swagger-ui.css":                  {swaggerui.FS, "swagger-ui.css.gz", "text/css; charset=utf-8"},
	"redoc/redoc.standalone.js":                  {docsFS, "docs/redoc/redoc.standalone.js", "application/javascript"},
}

const swaggerPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden API – Swagger UI</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui/swagger-ui-standalone-preset.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});</script>
</body></html>`

const redocPage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden API – ReDoc</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc/redoc.standalone.js"></script>
</body></html>`

func assetBuilt(name string) bool {
	a := docAssets[name]
	_, err := fs.Stat(a.fs, a.name)
	return err == nil
}

func (s *Server) getDocs(c echo.Context) error {
	return c.HTML(http.StatusOK, swaggerPage)
}

// getRedoc serves ReDoc where `make assets` built it in, else redirects to
// Swagger UI.
func (s *Server) getRedoc(c echo.Context) error {
	if !assetBuilt("redoc/redoc.standalone.js") {
		return c.Redirect(http.StatusFound, "/docs")
	}
	return c.HTML(http.StatusOK, redocPage)
}

// getDocsAsset serves only the listed files, never arbitrary embedded
// paths; gzipped ones as they are to clients that accept gzip.
func (s *Server) getDocsAsset(c echo.Context) error {
	a, ok := docAssets[path.Clean(strings.TrimPrefix(c.Param("*"), "/"))]
	if !ok {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	}
	b, err := fs.ReadFile(a.fs, a.name)
	if err != nil {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=86400")
	if strings.HasSuffix(a.name, ".gz") {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if acceptsGzip(c.Request()) {
			h.Set(echo.HeaderContentEncoding, "gzip")
		} else if b, err = gunzip(b); err != nil {
			return fmt.Errorf("docs asset %s: %w", a.name, err)
		}
	}
	return c.Blob(http.StatusOK, a.ctype, b)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get(echo.HeaderAcceptEncoding), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
