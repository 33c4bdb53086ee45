package outbound

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRefusedWithEmptyAllowList checks that blocked targets are refused
// quickly and before any connection attempt, through every entry point:
// Download, the HTTP() client, and the dialer itself.
func TestRefusedWithEmptyAllowList(t *testing.T) {
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "should never be served")
	})
	c, log := newTestClient(t, Config{}, nil)
	targets := []string{
		srv.addr, // a live loopback server
		"[::1]:" + srv.port,
		"localhost:" + srv.port,
		"169.254.169.254:80",
		"10.0.0.1:80",
		"0.0.0.0:" + srv.port,
		"[::ffff:127.0.0.1]:" + srv.port,
		"100.64.0.1:80",
		"metadata.google.internal:80",
	}
	for _, target := range targets {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()

		_, _, err := c.Download(ctx, "http://"+target+"/", io.Discard, 1<<20)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Download(%s) = %v, want ErrForbiddenAddress", target, err)
		}
		resp, err := c.HTTP().Post("http://"+target+"/hook", "application/json", strings.NewReader("{}"))
		if resp != nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("HTTP().Post(%s) = %v, want ErrForbiddenAddress", target, err)
		}
		conn, err := c.dialContext(ctx, "tcp", target)
		if conn != nil {
			conn.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dialContext(%s) = %v, want ErrForbiddenAddress", target, err)
		}

		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: refusal took %v", target, d)
		}
		cancel()
	}
	if got := log.list(); len(got) != 0 {
		t.Errorf("connection attempts: %q, want none", got)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

// TestControlRefusesSocket checks the last line of defence, the dialer's
// Control hook, on its own (dialContext refuses the same addresses earlier).
func TestControlRefusesSocket(t *testing.T) {
	c, _ := newTestClient(t, Config{Allow: []string{"127.0.0.1:8080"}}, nil)
	ctrl := c.control("example.com")
	for addr, want := range map[string]error{
		"10.0.0.1:80":          ErrForbiddenAddress,
		"169.254.169.254:80":   ErrForbiddenAddress,
		"[::ffff:127.0.0.1]:1": ErrForbiddenAddress,
		"[fe80::1%lo]:80":      ErrForbiddenAddress,
		"127.0.0.1:8080":       nil,
		"8.8.8.8:443":          nil,
	} {
		if err := ctrl("tcp", addr, nil); !errors.Is(err, want) {
			t.Errorf("control(%s) = %v, want %v", addr, err, want)
		}
	}
}

// TestResolvedAddressChecked checks that a public-looking name that resolves
// to a blocked address is refused after resolution, before connecting.
func TestResolvedAddressChecked(t *testing.T) {
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "should never be served")
	})
	res := mapResolver{
		"public.example":   {"127.0.0.1"},
		"private.example":  {"10.0.0.1"},
		"mapped.example":   {"::ffff:127.0.0.1"},
		"metadata.example": {"169.254.169.254"},
		"mixed.example":    {"93.184.215.14", "10.0.0.1"},
	}
	c, log := newTestClient(t, Config{}, res)
	for host := range res {
		url := "http://" + host + ":" + srv.port + "/"
		if _, err := c.ValidateURL(url); err != nil {
			t.Errorf("ValidateURL(%s) = %v; the name alone is fine", url, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := c.Download(ctx, url, io.Discard, 1<<20)
		cancel()
		var be *BlockedError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), "refusing to connect to ") {
			t.Errorf("Download(%s) = %v, want *BlockedError", url, err)
		}
	}
	if got := log.list(); len(got) != 0 {
		t.Errorf("connection attempts: %q, want none", got)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestAllowListedServer(t *testing.T) {
	var gotUA string
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		gotUA = r.Header.Get("User-Agent")
		w.Header().Set("Content-Type", "application/octet-stream") // not trusted
		io.WriteString(w, "<html><body>hello</body></html>")
	})
	res := mapResolver{"models.dev": {"127.0.0.1"}}
	for _, tt := range []struct {
		name  string
		allow []string
		url   string
	}{
		{"exact host:port", []string{srv.addr}, srv.URL + "/m"},
		{"CIDR", []string{"127.0.0.0/8"}, srv.URL + "/m"},
		{"bare IP", []string{"127.0.0.1"}, srv.URL + "/m"},
		{"name:port", []string{"models.dev:" + srv.port}, "http://models.dev:" + srv.port + "/m"},
		{"IP allows any name resolving to it", []string{srv.addr}, "http://models.dev:" + srv.port + "/m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, Config{Allow: tt.allow}, res)
			var buf bytes.Buffer
			n, ct, err := c.Download(context.Background(), tt.url, &buf, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(buf.Len()) || buf.String() != "<html><body>hello</body></html>" {
				t.Errorf("n = %d, body = %q", n, buf.String())
			}
			if ct != "text/html; charset=utf-8" {
				t.Errorf("content type = %q, want sniffed text/html", ct)
			}
			if gotUA != "Warden/1" {
				t.Errorf("User-Agent = %q", gotUA)
			}
		})
	}
}

func TestHTTPClientPOST(t *testing.T) {
	var got, ua string
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, ua = string(b), r.Header.Get("User-Agent")
		w.WriteHeader(http.StatusNoContent)
	})
	c, _ := newTestClient(t, Config{Allow: []string{srv.addr}, UserAgent: "Warden-test"}, nil)
	hc := c.HTTP()
	hc.Timeout = time.Second // a copy: must not affect the client
	resp, err := hc.Post(srv.URL+"/hook", "application/json", strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || got != `{"ok":true}` || ua != "Warden-test" {
		t.Errorf("status %d, body %q, UA %q", resp.StatusCode, got, ua)
	}
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("HTTP() copy changed the shared client's timeout")
	}
}

func TestRedirectToBlockedTarget(t *testing.T) {
	other := newServer(t, func(_ *testServer, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "should never be served")
	})
	var target string
	first := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	})
	res := mapResolver{"rebind.example": {"127.0.0.1"}}
	// Only the first server's exact host:port is allowed.
	c, log := newTestClient(t, Config{Allow: []string{first.addr}}, res)
	for _, tt := range []struct {
		target string
		want   error
	}{
		{"http://127.0.0.2:" + other.port + "/", ErrForbiddenAddress},
		{other.URL + "/", ErrForbiddenAddress},
		{"http://10.0.0.1/", ErrForbiddenAddress},
		{"http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"http://metadata.google.internal/", ErrForbiddenAddress},
		{"http://localhost:" + other.port + "/", ErrForbiddenAddress},
		{"http://[::1]:" + other.port + "/", ErrForbiddenAddress},
		{"http://rebind.example:" + other.port + "/", ErrForbiddenAddress}, // refused after resolution
		{"ftp://example.com/x", ErrBadURL},
		{"file:///etc/passwd", ErrBadURL},
	} {
		target = tt.target
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := c.Download(ctx, first.URL+"/start", io.Discard, 1<<20)
		cancel()
		if !errors.Is(err, tt.want) {
			t.Errorf("redirect to %s: err = %v, want %v", tt.target, err, tt.want)
		}
		// The webhook client is guarded the same way.
		resp, err := c.HTTP().Get(first.URL + "/start")
		if resp != nil {
			resp.Body.Close()
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("HTTP() redirect to %s: err = %v, want %v", tt.target, err, tt.want)
		}
	}
	for _, a := range log.list() {
		if a != first.addr {
			t.Errorf("connection attempt to %s; only %s is allowed", a, first.addr)
		}
	}
	if n := other.hits.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

func TestRedirectLimit(t *testing.T) {
	// /hop/N redirects to /hop/N-1; /hop/0 answers.
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		n := strings.TrimPrefix(r.URL.Path, "/hop/")
		if n == "0" {
			io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/hop/"+string(n[0]-1), http.StatusFound)
	})
	for _, tt := range []struct {
		max  int
		hops int
		want error
	}{
		{0, 3, nil}, // default 3
		{0, 4, ErrTooManyRedirects},
		{-1, 0, nil},
		{-1, 1, ErrTooManyRedirects},
		{1, 1, nil},
		{1, 2, ErrTooManyRedirects},
		{5, 5, nil},
		{5, 6, ErrTooManyRedirects},
	} {
		c, _ := newTestClient(t, Config{Allow: []string{srv.addr}, MaxRedirects: tt.max}, nil)
		url := srv.URL + "/hop/" + string(rune('0'+tt.hops))
		var buf bytes.Buffer
		_, _, err := c.Download(context.Background(), url, &buf, 100)
		if !errors.Is(err, tt.want) || tt.want == nil && buf.String() != "done" {
			t.Errorf("MaxRedirects %d, %d hops: err = %v, body %q; want %v", tt.max, tt.hops, err, buf.String(), tt.want)
		}
	}
}

// Each use has its own allow-list: a private target allowed for webhooks is
// still refused to verify-url and model downloads.
func TestUsesKeepAllowListsApart(t *testing.T) {
	u, err := NewUses(UseAllows{Webhook: "10.1.2.3", Model: "minio:9000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		client  *Client
		url     string
		allowed bool
	}{
		{"webhook allowed", u.Webhook, "http://10.1.2.3/hook", true},
		{"verify refused", u.Verify, "http://10.1.2.3/hook", false},
		{"model refused", u.Model, "http://10.1.2.3/hook", false},
		{"model name allowed", u.Model, "http://minio:9000/bucket/m.pt", true},
		{"verify public", u.Verify, "http://8.8.8.8/photo.jpg", true},
	} {
		_, err := c.client.ValidateURL(c.url)
		if (err == nil) != c.allowed {
			t.Errorf("%s: ValidateURL(%s) = %v", c.name, c.url, err)
		}
	}
	if _, err := NewUses(UseAllows{Model: "10.0.0.0/99"}); err == nil || !strings.Contains(err.Error(), "WARDEN_MODEL_URL_ALLOW") {
		t.Errorf("bad model allow-list: %v", err)
	}
}
