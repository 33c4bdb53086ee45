package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsServedInEveryBuild: /docs serves Swagger UI from assets embedded
// from a Go module (no `make assets`, no CDN), gzipped to clients that
// accept it and plain to others; /redoc serves ReDoc where `make assets`
// built it in, else redirects to /docs; nothing else is served.
func TestDocsServedInEveryBuild(t *testing.T) {
	h := newAPIHarness(t)
	r := h.do("GET", "/docs", nil)
	if r.Code != http.StatusOK || strings.Contains(string(r.Raw), "//cdn") || strings.Contains(string(r.Raw), "https://") {
		t.Fatalf("/docs: %d %s", r.Code, r.Raw)
	}
	for _, asset := range []string{"/docs/assets/swagger-ui/swagger-ui-bundle.js", "/docs/assets/swagger-ui/swagger-ui-standalone-preset.js", "/docs/assets/swagger-ui/swagger-ui.css"} {
		if !strings.Contains(string(r.Raw), asset) {
			t.Errorf("/docs does not load %s", asset)
		}
		plain := h.do("GET", asset, nil)
		if plain.Code != http.StatusOK || plain.Header.Get("Content-Encoding") != "" || len(plain.Raw) < 10000 {
			t.Fatalf("%s: %d %q, %d bytes", asset, plain.Code, plain.Header.Get("Content-Encoding"), len(plain.Raw))
		}
		if strings.HasSuffix(asset, ".js") && !bytes.Contains(plain.Raw, []byte("SwaggerUI")) {
			t.Errorf("%s is not Swagger UI", asset)
		}
		gz := h.do("GET", asset, nil, withHeader("Accept-Encoding", "br, gzip;q=0.8"))
		if gz.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(gz.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("%s with gzip accepted: %v", asset, gz.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(zr); err != nil || !bytes.Equal(b, plain.Raw) {
			t.Errorf("%s: gzipped and plain bodies differ (%v)", asset, err)
		}
		if no := h.do("GET", asset, nil, withHeader("Accept-Encoding", "gzip;q=0")); no.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip sent to a client that refuses it", asset)
		}
	}
	r = h.do("GET", "/redoc", nil)
	if _, err := os.Stat(filepath.Join("docs", "redoc", "redoc.standalone.js")); err == nil {
		if r.Code != http.StatusOK || !strings.Contains(string(r.Raw), "/docs/assets/redoc/redoc.standalone.js") {
			t.Errorf("/redoc with ReDoc built in: %d %s", r.Code, r.Raw)
		}
		if a := h.do("GET", "/docs/assets/redoc/redoc.standalone.js", nil); a.Code != http.StatusOK || len(a.Raw) < 100000 {
			t.Errorf("ReDoc asset: %d, %d bytes", a.Code, len(a.Raw))
		}
	} else if r.Code != http.StatusFound || r.Header.Get("Location") != "/docs" {
		t.Errorf("/redoc without ReDoc: %d %v, want a redirect to /docs", r.Code, r.Header)
	}
	for _, bad := range []string{"/docs/assets/../../go.mod", "/docs/assets/swagger-ui/swagger-ui-bundle.js.gz", "/docs/assets/swagger-ui/favicon-32x32.png", "/docs/assets/README.md"} {
		if r := h.do("GET", bad, nil); r.Code != http.StatusNotFound {
			t.Errorf("%s: %d", bad, r.Code)
		}
	}
}

// TestOpenAPIListsFormBodies: the document lists the form types beside
// JSON where the route reads them, and the token endpoint's JSON body and
// combined error shape.
func TestOpenAPIListsFormBodies(t *testing.T) {
	h := newAPIHarness(t)
	doc := h.do("GET", "/openapi.json", nil).Body
	content := func(path, method string) map[string]any {
		op := doc["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
		return op["requestBody"].(map[string]any)["content"].(map[string]any)
	}
	probe := content("/v1/diagnostics/probe", "post")
	for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"} {
		if probe[ct] == nil {
			t.Errorf("probe body lacks %s", ct)
		}
	}
	token := content("/v1/auth/token", "post")
	if token["application/json"] == nil || token["application/x-www-form-urlencoded"] == nil || token["multipart/form-data"] != nil {
		t.Errorf("token body types: %v", keys(token))
	}
	oauth := doc["components"].(map[string]any)["schemas"].(map[string]any)["OAuthError"].(map[string]any)
	if got := strings.Join(keys(oauth["properties"].(map[string]any)), ","); got != "code,details,error,error_description,message" {
		t.Errorf("OAuthError properties %s", got)
	}
}
