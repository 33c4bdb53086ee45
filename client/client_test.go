package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestDecodeError reads each error shape the API answers, and a proxy's
// HTML page, into one line.
func TestDecodeError(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"spec 002", 400, `{"code":"invalid","message":"Invalid attack launch","details":{"model_id":"required","attack_method_id":"unknown"}}`,
			"HTTP 400 invalid: Invalid attack launch (attack_method_id: unknown; model_id: required)"},
		{"spec 002, field named once", 400, `{"code":"invalid","message":"limit must be an integer","details":{"limit":"limit must be an integer"}}`,
			"HTTP 400 invalid: limit: limit must be an integer"},
		{"spec 003", 413, `{"error":"File exceeds 100MB limit","detail":"limit_bytes: 104857600","job_id":"x"}`,
			"HTTP 413: File exceeds 100MB limit (limit_bytes: 104857600)"},
		{"AISpectra", 412, `{"code":"precondition_failed","message":"not offered","details":{},"errors":["not offered"]}`,
			"HTTP 412 precondition_failed: not offered"},
		{"RFC 6749", 401, `{"error":"invalid_client","error_description":"client authentication failed"}`,
			"HTTP 401 invalid_client: client authentication failed"},
		{"HTML from a proxy", 502, "<html>\n<body>Bad gateway\n</body></html>", "HTTP 502: Bad Gateway: <html> <body>Bad gateway </body></html>"},
		{"empty", 503, "", "HTTP 503: Service Unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decodeError(c.status, []byte(c.body)).Error()
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestWaitRetriesTransient polls a job through a 503 and a 429 (retried)
// to completion, reporting each change once; a 404 ends the wait at once;
// ten network failures in a row end it too.
func TestWaitRetriesTransient(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Write([]byte(`{"job_id":"j","status":"queued","progress_percentage":0}`))
		case 2:
			w.WriteHeader(503)
		case 3:
			w.WriteHeader(429)
		case 4, 5:
			w.Write([]byte(`{"job_id":"j","status":"in_progress","progress_percentage":40,"current_stage":"x"}`))
		default:
			w.Write([]byte(`{"job_id":"j","status":"completed","progress_percentage":100,"result":{"label":"ok"}}`))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, OrgID: "o", APIKey: "k"}
	var seen []string
	b := Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	j, raw, err := Wait(context.Background(), func(ctx context.Context) (Job, Raw, error) { return c.GetJob(ctx, "j") }, b,
		func(j Job) { seen = append(seen, j.Status) })
	if err != nil || j.Status != StatusCompleted || !strings.Contains(string(raw), `"label":"ok"`) {
		t.Fatalf("Wait: %v %+v %s", err, j, raw)
	}
	if strings.Join(seen, ",") != "queued,in_progress,completed" || n.Load() != 6 {
		t.Fatalf("progress %v after %d polls, want queued,in_progress,completed after 6", seen, n.Load())
	}

	notFound := func(ctx context.Context) (Job, Raw, error) { return Job{}, nil, &Error{Status: 404} }
	if _, _, err := Wait(context.Background(), notFound, b, nil); err == nil {
		t.Fatal("Wait went on after a 404")
	}
	var polls int
	down := func(ctx context.Context) (Job, Raw, error) {
		polls++
		return Job{}, nil, errors.New("connection refused")
	}
	if _, _, err := Wait(context.Background(), down, b, nil); err == nil || polls != maxPollFailures {
		t.Fatalf("Wait on a down server: %v after %d polls, want an error after %d", err, polls, maxPollFailures)
	}
}

// TestUploadRebasesURL sends an upload URL's path and signed query to the
// client's base URL, with the file's exact length.
func TestUploadRebasesURL(t *testing.T) {
	var got string
	var length int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, length = r.Method+" "+r.URL.RequestURI(), r.ContentLength
		w.Write([]byte(`{"status":"valid"}`))
	}))
	defer srv.Close()
	path := t.TempDir() + "/m.zip"
	if err := writeFile(path, "PK\x03\x04zip"); err != nil {
		t.Fatal(err)
	}
	c := &Client{BaseURL: srv.URL + "/"}
	if _, err := c.Upload(context.Background(), "https://public.example.com/api/ais/v1.5/uploads/upl_1?token=a.b.c", path); err != nil {
		t.Fatal(err)
	}
	if got != "PUT /api/ais/v1.5/uploads/upl_1?token=a.b.c" || length != 7 {
		t.Fatalf("got %q length %d", got, length)
	}
	if _, err := c.Upload(context.Background(), "https://elsewhere.example.com/steal", path); err == nil {
		t.Fatal("an upload URL outside /api/ais/ was followed")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
