package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// oversized is a 101 MB declared body, over the 100 MB upload cap.
const oversized = 101 << 20

// rawRequest writes a request head by hand on a fresh TCP connection.
func rawRequest(t *testing.T, srv *httptest.Server, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// TestOversizedUploadWithExpectContinue: a client that asks before sending
// (Expect: 100-continue) a body over the cap gets 413 and no 100 Continue,
// on the upload routes and the JSON ones; the body is never sent.
func TestOversizedUploadWithExpectContinue(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	auth := "x-api-key: " + a.APIKey + "\r\nOrg-Id: " + a.OrgID + "\r\n"
	for _, tc := range []struct {
		path, ct, auth string
		size           int64
	}{
		{"/api/verify", "multipart/form-data; boundary=b", "", oversized},
		{"/v1/models", "multipart/form-data; boundary=b", auth, h.cfg.MaxModelBytes + 1<<20},
		{"/v1/attacks/launch", "application/json", auth, oversized},
		{"/api/verify-url", "application/x-www-form-urlencoded", "", oversized},
	} {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: warden\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n%s\r\n",
			tc.path, tc.ct, tc.size, tc.auth)
		conn, br := rawRequest(t, srv, head)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: reading the answer: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close() // a 100 Continue would leave the request waiting for its body
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(string(body), "{") {
			t.Errorf("%s: %d %s, want 413 before the body", tc.path, resp.StatusCode, body)
		}
	}
	if n := h.jobCount(); n != 0 {
		t.Errorf("%d jobs created", n)
	}
}

// TestOversizedUploadWithoutExpect: a client that sends a 101 MB body
// straight away reads a 413, not a connection reset, while it is still
// sending; the server stops reading and closes the connection.
func TestOversizedUploadWithoutExpect(t *testing.T) {
	h := newAPIHarness(t)
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	head := fmt.Sprintf("POST /api/verify HTTP/1.1\r\nHost: warden\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n", oversized)
	conn, br := rawRequest(t, srv, head)
	sent := make(chan int64, 1)
	go func() { // the body, as a client that does not wait would send it
		chunk := make([]byte, 64<<10)
		var n int64
		for n < oversized {
			w, err := conn.Write(chunk)
			n += int64(w)
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Errorf("%d close=%v %s, want 413 and Connection: close", resp.StatusCode, resp.Close, body)
	}
	conn.Close()
	if n := <-sent; n >= oversized {
		t.Errorf("the server read the whole %d bytes", n)
	}
}
