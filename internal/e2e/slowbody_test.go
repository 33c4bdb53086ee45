package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
)

// TestSlowBodyTimesOut: a client that sends a request body too slowly (a
// slowloris holding a connection) gets 408 once its route's deadline
// passes, in the route's error shape, and nothing is stored.
func TestSlowBodyTimesOut(t *testing.T) {
	s := newStack(t, false, func(c *config.Config) { c.BodyTimeout = time.Second })
	org := s.org("acme")
	addr := strings.TrimPrefix(s.srv.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/diagnostics/probe HTTP/1.1\r\nHost: %s\r\nx-api-key: %s\r\nOrg-Id: %s\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"hold_", addr, org.APIKey, org.OrgID)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Errorf("answered after %s", waited)
	}
	var n int64
	s.db.Gorm().Model(&records.Job{}).Count(&n)
	if n != 0 {
		t.Errorf("%d jobs stored", n)
	}
}
