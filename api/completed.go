package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden/internal/tenantcache"
	"github.com/wardenlab/warden/records"
)

// completedDocs keeps, for a while, the JSON documents rendered for
// completed jobs (an attack's results, a verification), keyed by org and by
// route and job: a completed job's document never changes, so a client
// polling it, or many reading it, costs the job row's query and no result
// query, decoding or encoding. Every read loads the job row first,
// org-scoped, so a deleted job or another org's is never answered from
// here.
type completedDocs = tenantcache.Cache[[]byte]

const (
	completedDocTTL      = time.Minute
	completedDocMaxBytes = 64 << 10 // larger documents are rendered each time
	completedDocEntries  = 1024     // so at most 64 MiB
)

// completedJSON answers 200 with the document render makes of job j for
// route, from memory when j is completed and it was rendered in the last
// completedDocTTL. The bytes are what c.JSON writes (a trailing newline);
// ?pretty is rendered each time.
func (s *Server) completedJSON(c echo.Context, j records.Job, route string, render func() (any, error)) error {
	if j.Status != records.JobCompleted || c.QueryParams().Has("pretty") {
		doc, err := render()
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, doc)
	}
	org, key, now := j.Org(), route+" "+j.ID, time.Now()
	if b, ok := s.done.Get(org, key, now); ok {
		return c.JSONBlob(http.StatusOK, b)
	}
	doc, err := render()
	if err != nil {
		return err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if len(b) <= completedDocMaxBytes {
		s.done.Put(org, key, b, now, now.Add(completedDocTTL), nil)
	}
	return c.JSONBlob(http.StatusOK, b)
}
