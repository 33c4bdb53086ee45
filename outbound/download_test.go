package outbound

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingReader counts the body bytes Download reads.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countBody makes c count the response body bytes it reads into n.
func countBody(c *Client, n *atomic.Int64) {
	c.wrapBody = func(r io.Reader) io.Reader { return countingReader{r, n} }
}

func TestContentLengthTooLarge(t *testing.T) {
	srv := newServer(t, func(s *testServer, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		w.WriteHeader(http.StatusOK)
		w.Write(bytes.Repeat([]byte("x"), 100))
		w.(http.Flusher).Flush()
		s.block(r) // a client that read the body would hang here
	})
	c, _ := newTestClient(t, Config{Allow: []string{srv.addr}}, nil)
	var read atomic.Int64
	countBody(c, &read)
	var buf bytes.Buffer
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, _, err := c.Download(ctx, srv.URL, &buf, 1000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if n != 0 || buf.Len() != 0 || read.Load() != 0 {
		t.Errorf("n = %d, written %d, read %d; want nothing", n, buf.Len(), read.Load())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v; should fail without reading", d)
	}
}

func TestBodyCap(t *testing.T) {
	const chunk = 4096
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		p := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, chunk-8)...)
		for size > 0 { // chunked: no Content-Length, flushed piecewise
			k := min(size, chunk)
			if _, err := w.Write(p[:k]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			size -= k
		}
	})
	for _, tt := range []struct {
		size, max int64
		want      error
	}{
		{0, 1000, nil},
		{1, 1000, nil},
		{999, 1000, nil},
		{1000, 1000, nil},
		{1001, 1000, ErrTooLarge},
		{1 << 20, 1000, ErrTooLarge},
		{100, 100, nil},
		{101, 100, ErrTooLarge},
		{512, 512, nil},
		{513, 512, ErrTooLarge},
		{1 << 20, 10000, ErrTooLarge},
		{5 * chunk, 5 * chunk, nil},
		{5*chunk + 1, 5 * chunk, ErrTooLarge},
	} {
		c, _ := newTestClient(t, Config{Allow: []string{srv.addr}}, nil)
		var read atomic.Int64
		countBody(c, &read)
		var buf bytes.Buffer
		url := srv.URL + "/?size=" + strconv.FormatInt(tt.size, 10)
		n, ct, err := c.Download(context.Background(), url, &buf, tt.max)
		if !errors.Is(err, tt.want) {
			t.Errorf("size %d, cap %d: err = %v, want %v", tt.size, tt.max, err, tt.want)
			continue
		}
		if n != int64(buf.Len()) || n > tt.max {
			t.Errorf("size %d, cap %d: n = %d, written %d", tt.size, tt.max, n, buf.Len())
		}
		if r := read.Load(); r > tt.max+1 {
			t.Errorf("size %d, cap %d: read %d bytes, want at most cap+1", tt.size, tt.max, r)
		}
		if tt.want == nil && n != tt.size {
			t.Errorf("size %d: n = %d", tt.size, n)
		}
		wantCT := "image/png"
		switch {
		case tt.size == 0:
			wantCT = ""
		case tt.size < 8: // a truncated PNG signature sniffs as something else
			wantCT = ct
		}
		if ct != wantCT {
			t.Errorf("size %d: content type %q, want %q", tt.size, ct, wantCT)
		}
	}
}

func TestBadMaxBytes(t *testing.T) {
	c, log := newTestClient(t, Config{}, nil)
	if _, _, err := c.Download(context.Background(), "http://example.com/", io.Discard, 0); err == nil {
		t.Error("maxBytes 0 accepted")
	}
	if len(log.list()) != 0 {
		t.Error("dialled despite bad maxBytes")
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
		io.WriteString(w, "body of a status page")
	})
	c, _ := newTestClient(t, Config{Allow: []string{srv.addr}}, nil)
	for _, tt := range []struct {
		code int
		ok   bool
	}{
		{200, true}, {201, true}, {204, true}, {299, true},
		{302, false}, // no Location: not followed
		{304, false}, {400, false}, {401, false}, {403, false}, {404, false},
		{500, false}, {502, false},
	} {
		var buf bytes.Buffer
		n, _, err := c.Download(context.Background(), srv.URL+"/"+strconv.Itoa(tt.code), &buf, 1000)
		if tt.ok {
			if err != nil {
				t.Errorf("%d: %v", tt.code, err)
			}
			continue
		}
		var se *StatusError
		if !errors.Is(err, ErrHTTPStatus) || !errors.As(err, &se) || se.Code != tt.code {
			t.Errorf("%d: err = %v, want ErrHTTPStatus with code", tt.code, err)
		}
		if n != 0 || buf.Len() != 0 {
			t.Errorf("%d: wrote %d bytes of an error page", tt.code, buf.Len())
		}
	}
}

func TestDownloadHonoursContext(t *testing.T) {
	srv := newServer(t, func(s *testServer, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			io.WriteString(w, strings.Repeat("a", 600))
			w.(http.Flusher).Flush()
		}
		s.block(r)
	})
	for _, tt := range []struct {
		name    string
		path    string
		timeout time.Duration // Config.Timeout; 0: use a context deadline
		cancel  bool          // cancel the context instead
	}{
		{"deadline before headers", "/slow-headers", 0, false},
		{"deadline mid-body", "/slow-body", 0, false},
		{"cancel mid-body", "/slow-body", 0, true},
		{"Config.Timeout mid-body", "/slow-body", 200 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, Config{Allow: []string{srv.addr}, Timeout: tt.timeout}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			want := context.DeadlineExceeded
			switch {
			case tt.cancel:
				time.AfterFunc(200*time.Millisecond, cancel)
				want = context.Canceled
			case tt.timeout == 0:
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			start := time.Now()
			_, _, err := c.Download(ctx, srv.URL+tt.path, io.Discard, 1<<20)
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want %v", err, want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestErrorsDoNotLeakUserinfo(t *testing.T) {
	srv := newServer(t, func(_ *testServer, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://10.0.0.1/", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	c, _ := newTestClient(t, Config{Allow: []string{srv.addr}}, nil)
	authed := "http://user:secret@" + srv.addr
	for _, url := range []string{authed + "/missing", authed + "/redirect", "http://user:secret@10.0.0.1/", "ftp://user:secret@x/"} {
		_, _, err := c.Download(context.Background(), url, io.Discard, 100)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Download(%s) error = %v; want an error without the password", url, err)
		}
	}
}
