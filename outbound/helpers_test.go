package outbound

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testServer is an httptest server on loopback that counts requests and
// whose blocking handlers return once the test ends.
type testServer struct {
	*httptest.Server
	addr    string // "127.0.0.1:port"
	port    string
	hits    atomic.Int32
	release chan struct{}
}

func newServer(t *testing.T, h func(s *testServer, w http.ResponseWriter, r *http.Request)) *testServer {
	t.Helper()
	s := &testServer{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(s, w, r)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) }) // runs before s.Close
	s.addr = strings.TrimPrefix(s.URL, "http://")
	_, s.port, _ = net.SplitHostPort(s.addr)
	return s
}

// block waits until the client goes away or the test ends.
func (s *testServer) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.release:
	}
}

// mapResolver is a fixed DNS table; tests never use real DNS.
type mapResolver map[string][]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range m[strings.ToLower(host)] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// dialLog records every connection attempt of a test client.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// newTestClient returns a client whose resolver is res (or an empty table)
// and which records every dial. As a safety net it fails the test and aborts
// any attempt to connect to a non-loopback address.
func newTestClient(t *testing.T, cfg Config, res mapResolver) (*Client, *dialLog) {
	t.Helper()
	if res == nil {
		res = mapResolver{}
	}
	cfg.Resolver = res
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := &dialLog{}
	c.onDial = func(addr string) error {
		log.mu.Lock()
		log.addrs = append(log.addrs, addr)
		log.mu.Unlock()
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("test tried to connect to non-loopback %s", addr)
			return fmt.Errorf("test safety net: refusing %s", addr)
		}
		return nil
	}
	return c, log
}
