package e2e

import (
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
)

// TestPostgresRestart: the API and the worker keep running across a
// PostgreSQL restart; health reports the outage, and jobs submitted after
// the restart complete on the same processes.
func TestPostgresRestart(t *testing.T) {
	pg := testenv.StartPostgresServer(t)
	s := newStack(t, true, func(c *config.Config) { c.DatabaseURL = pg.URL() })
	jpeg := fixture(t, "media/c2pa/testdata/no_manifest.jpg")
	code, m := s.upload("a.jpg", jpeg, nil)
	if code != 200 {
		t.Fatal(code, m)
	}
	s.waitVerify(m["job_id"].(string))

	pg.Stop(t)
	testenv.Eventually(t, 20*time.Second, "health to report the database down", func() bool {
		code, m := s.getJSON("/health")
		return code == 503 && m["database"] == "disconnected"
	})
	if code, _ := s.upload("a.jpg", jpeg, nil); code != 500 {
		t.Errorf("upload with the database down answered %d, want 500", code)
	}
	pg.Start(t)
	testenv.Eventually(t, 30*time.Second, "health to recover", func() bool {
		code, _ := s.getJSON("/health")
		return code == 200
	})
	code, m = s.upload("a.jpg", jpeg, nil)
	if code != 200 {
		t.Fatalf("upload after restart: %d %v", code, m)
	}
	if done := s.waitVerify(m["job_id"].(string)); done["status"] != "completed" {
		t.Fatalf("job after restart: %v", done)
	}
}
