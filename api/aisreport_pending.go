package api

import (
	"errors"
	"io"

	"github.com/wardenlab/warden/jobs"
)

// Temporary until the report renderer lands.
func renderAnalysisHTML(w io.Writer, r jobs.AnalysisResult, artifactURL func(name string) string, title string) error {
	return errors.New("the HTML report is not available yet")
}
