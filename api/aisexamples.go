package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
)

// aisExamplesPath serves a task type's example data and label zips and
// its FORMAT.md (ais.Example): public, rate-limited by client IP.
const aisExamplesPath = "/api/ais/v1.5/examples/:task_type/:file"

// routesAISExamples registers the example downloads.
func (s *Server) routesAISExamples(g *routeGroup, general bucket) {
	g.add(route{Method: "GET", Path: aisExamplesPath, Tag: "aispectra",
		Summary: "A task type's example data.zip or label.zip, or FORMAT.md: what the model, data and label zips must hold; no credentials",
		Op:      opAISExample},
		s.aisExample, s.limit(general))
}

// aisExampleFiles maps the {file} path segment to the ais.Example file
// and the answer's content type.
var aisExampleFiles = map[string][2]string{
	"data.zip":        {ais.FileData, "application/zip"},
	"label.zip":       {ais.FileLabel, "application/zip"},
	ais.ExampleFormat: {ais.ExampleFormat, "text/markdown; charset=utf-8"},
}

func (s *Server) aisExample(c echo.Context) error {
	task, ok := ais.ParseTask(c.Param("task_type"))
	if !ok {
		return &warden.Error{Code: warden.ENOTFOUND, Message: "No example for task type " + quote(c.Param("task_type")) + "; one of IC, IS, TC, TSF, TS, NLP, OD"}
	}
	f, ok := aisExampleFiles[c.Param("file")]
	if !ok {
		return &warden.Error{Code: warden.ENOTFOUND, Message: "No example file " + quote(c.Param("file")) + "; one of data.zip, label.zip, FORMAT.md"}
	}
	b, err := ais.Example(task, f[0])
	if errors.Is(err, ais.ErrNoExample) {
		return &warden.Error{Code: warden.ENOTFOUND, Message: err.Error()}
	}
	if err != nil {
		return err
	}
	if strings.HasSuffix(c.Param("file"), ".zip") {
		c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+task+"_"+c.Param("file")+`"`)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, f[1], b)
}
