package api

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
)

// docsFS holds the Swagger UI and ReDoc assets that `make assets` copies
// from npm packages; no CDN is used. A binary built without them still
// serves /openapi.json and explains how to add the UIs.
//
//go:embed all:docs
var docsFS embed.FS

var docAssets = map[string]string{
	"swagger-ui/swagger-ui-bundle.js":            "application/javascript",
	"swagger-ui/swagger-ui-standalone-preset.js": "application/javascript",
	"swagger-ui/swagger-ui.css":                  "text/css",
	"redoc/redoc.standalone.js":                  "application/javascript",
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

func assetsBuilt(name string) bool {
	_, err := fs.Stat(docsFS, "docs/"+name)
	return err == nil
}

func (s *Server) getDocs(c echo.Context) error {
	if !assetsBuilt("swagger-ui/swagger-ui-bundle.js") {
		return &warden.Error{Code: warden.EUNAVAILABLE, Message: "Swagger UI assets were not built into this binary; run `make assets` and rebuild. The OpenAPI document is at /openapi.json."}
	}
	return c.HTML(http.StatusOK, swaggerPage)
}

func (s *Server) getRedoc(c echo.Context) error {
	if !assetsBuilt("redoc/redoc.standalone.js") {
		return &warden.Error{Code: warden.EUNAVAILABLE, Message: "ReDoc assets were not built into this binary; run `make assets` and rebuild. The OpenAPI document is at /openapi.json."}
	}
	return c.HTML(http.StatusOK, redocPage)
}

// getDocsAsset serves only the listed files, never arbitrary embedded paths.
func (s *Server) getDocsAsset(c echo.Context) error {
	name := path.Clean(strings.TrimPrefix(c.Param("*"), "/"))
	ct, ok := docAssets[name]
	if !ok {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	}
	b, err := docsFS.ReadFile("docs/" + name)
	if err != nil {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	}
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=86400")
	return c.Blob(http.StatusOK, ct, b)
}
