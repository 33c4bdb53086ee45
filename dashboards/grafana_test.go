package dashboards

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboard checks that the dashboard parses and that every
// metric it queries is one this package exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana.json: %v", err)
	}
	exported := map[string]bool{"warden_http_request_duration_seconds": true, "warden_jobs_finished_total": true,
		"warden_job_duration_seconds": true, "warden_queue_depth": true, "warden_jobs": true}
	name := regexp.MustCompile(`warden_[a-z_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !exported[base] {
					t.Errorf("panel %q queries %s, which Warden does not export", p.Title, m)
				}
			}
		}
	}
}
