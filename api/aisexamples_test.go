package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/config"
)

// TestAISExamples: every task type's example zips download without
// credentials and pass ais.Check (data and label agreeing); FORMAT.md is
// markdown naming the model's shapes; unknown task types and files are
// 404 in AISpectra's error shape.
func TestAISExamples(t *testing.T) {
	h := newAPIHarness(t)
	for _, task := range []string{"IC", "IS", "TC", "TSF", "TS", "NLP", "OD"} {
		t.Run(task, func(t *testing.T) {
			sums := map[string]ais.Summary{}
			for _, file := range []string{ais.FileData, ais.FileLabel} {
				r := h.do("GET", "/api/ais/v1.5/examples/"+task+"/"+file+".zip", nil)
				if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "application/zip" {
					t.Fatalf("%s.zip: %d %s %.200s", file, r.Code, r.Header.Get("Content-Type"), r.Raw)
				}
				if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, task+"_"+file+".zip") {
					t.Errorf("%s.zip: Content-Disposition %q", file, cd)
				}
				sum, problems := ais.Check(bytes.NewReader(r.Raw), int64(len(r.Raw)), task, file, ais.DefaultLimits)
				if len(problems) > 0 || sum.Samples == 0 {
					t.Fatalf("%s.zip: %+v %v", file, sum, problems)
				}
				sums[file] = sum
			}
			if msg := ais.SampleMismatch(sums[ais.FileData], sums[ais.FileLabel]); msg != "" {
				t.Error(msg)
			}
			r := h.do("GET", "/api/ais/v1.5/examples/"+task+"/FORMAT.md", nil)
			if r.Code != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/markdown") ||
				!strings.Contains(string(r.Raw), "torch.jit.save") || !strings.Contains(string(r.Raw), "- input: ") {
				t.Errorf("FORMAT.md: %d %s %.300s", r.Code, r.Header.Get("Content-Type"), r.Raw)
			}
		})
	}
	for _, path := range []string{"/api/ais/v1.5/examples/XX/data.zip", "/api/ais/v1.5/examples/IC/model.zip", "/api/ais/v1.5/examples/IC/data"} {
		r := h.do("GET", path, nil)
		if r.Code != http.StatusNotFound || r.Body["code"] != "not_found" || r.Body["errors"] == nil {
			t.Errorf("%s: %d %s", path, r.Code, r.Raw)
		}
	}
	// "Text" is NLP's alias.
	if r := h.do("GET", "/api/ais/v1.5/examples/Text/label.zip", nil); r.Code != http.StatusOK {
		t.Errorf("Text: %d", r.Code)
	}
}

// TestAISExamplesRateLimited: the downloads spend the client IP's general
// budget; beyond it, 429 with Retry-After in AISpectra's shape.
func TestAISExamplesRateLimited(t *testing.T) {
	h := newAPIHarness(t, func(c *config.Config) { c.RateGeneral = 1 })
	if r := h.do("GET", "/api/ais/v1.5/examples/TC/data.zip", nil, fromIP("192.0.2.40")); r.Code != http.StatusOK {
		t.Fatalf("first: %d", r.Code)
	}
	r := h.do("GET", "/api/ais/v1.5/examples/TC/data.zip", nil, fromIP("192.0.2.40"))
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Body["errors"] == nil {
		t.Fatalf("second: %d %v %s", r.Code, r.Header, r.Raw)
	}
}
