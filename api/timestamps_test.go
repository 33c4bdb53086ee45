package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/config"
)

// instant is the one way the API writes an instant.
var instant = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestTimestampFormat(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	cases := map[time.Time]string{
		time.Date(2026, 1, 2, 3, 4, 5, 729528711, time.UTC): `"2026-01-02T03:04:05.729528Z"`,
		time.Date(2026, 1, 2, 3, 4, 5, 570304000, time.UTC): `"2026-01-02T03:04:05.570304Z"`,
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC):         `"2026-01-02T03:04:05.000000Z"`,
		time.Date(2026, 1, 2, 8, 34, 5, 100, kolkata):       `"2026-01-02T03:04:05.000000Z"`,
	}
	for in, want := range cases {
		b, err := json.Marshal(api.Timestamp(in))
		if err != nil || string(b) != want {
			t.Errorf("%v: %s %v, want %s", in, b, err, want)
		}
		var back api.Timestamp
		if err := json.Unmarshal(b, &back); err != nil || !time.Time(back).Equal(in.Truncate(time.Microsecond)) {
			t.Errorf("%s read back as %v %v", b, time.Time(back), err)
		}
	}
	var none *api.Timestamp
	if b, _ := json.Marshal(map[string]any{"t": none}); string(b) != `{"t":null}` {
		t.Errorf("nil: %s", b)
	}
}

// TestTimestampsUTCOnANonUTCHost: every instant the API writes is UTC with
// six fractional digits, though this process runs in a zone off UTC by a
// fraction of an hour and the PostgreSQL session in another. The test runs
// itself again in such a process.
func TestTimestampsUTCOnANonUTCHost(t *testing.T) {
	if os.Getenv("WARDEN_TEST_TZ_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTimestampsUTCOnANonUTCHost$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WARDEN_TEST_TZ_CHILD=1", "TZ=Asia/Kolkata")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("child run: %v\n%s", err, tail(out, 4000))
		}
		return
	}
	if _, off := time.Now().Zone(); off == 0 {
		t.Fatal("the child process runs in UTC: the test proves nothing")
	}
	h := newAPIHarness(t, func(c *config.Config) {
		sep := "?"
		if strings.Contains(c.DatabaseURL, "?") {
			sep = "&"
		}
		c.DatabaseURL += sep + "TimeZone=America/New_York"
	})
	var zone string
	if err := h.db.Gorm().Raw("SHOW TimeZone").Scan(&zone).Error; err != nil || zone != "America/New_York" {
		t.Fatalf("session TimeZone %q %v", zone, err)
	}
	a := h.org("acme")
	r := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a))
	if r.Code != http.StatusAccepted {
		t.Fatalf("probe: %d %s", r.Code, r.Raw)
	}
	job := h.do("GET", "/v1/jobs/"+r.Body["job_id"].(string), nil, as(a))
	creds := h.do("GET", "/v1/credentials", nil, as(a))
	health := h.do("GET", "/health", nil)
	check := func(what string, v any) {
		t.Helper()
		s, _ := v.(string)
		if !instant.MatchString(s) {
			t.Errorf("%s: %q is not RFC 3339 UTC with microseconds", what, v)
			return
		}
		at, _ := time.Parse(time.RFC3339Nano, s)
		if d := time.Since(at); d < -time.Minute || d > time.Hour {
			t.Errorf("%s: %s is %v away from now", what, s, d)
		}
	}
	check("job created_at", job.Body["created_at"])
	check("job updated_at", job.Body["updated_at"])
	check("health timestamp", health.Body["timestamp"])
	list, _ := creds.Body["data"].([]any)
	if list == nil {
		list, _ = creds.Body["credentials"].([]any)
	}
	if len(list) == 0 {
		t.Fatalf("credentials: %s", creds.Raw)
	}
	for _, c := range list {
		check("credential created_at", c.(map[string]any)["created_at"])
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
