package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"x"}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := healthcheck(context.Background(), srv.URL+"/health", &out); err != nil || !strings.Contains(out.String(), `"x"`) {
		t.Fatalf("healthy: err %v, out %q", err, out.String())
	}
	status = http.StatusServiceUnavailable
	if err := healthcheck(context.Background(), srv.URL+"/health", &out); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unhealthy answered %v", err)
	}
	srv.Close()
	if err := healthcheck(context.Background(), srv.URL+"/health", &out); err == nil {
		t.Fatal("a closed server passed")
	}
	for addr, want := range map[string]string{":8000": ":8000", "0.0.0.0:9001": ":9001", "[::1]:7": ":7", "bogus": ":8000"} {
		if got := addrPort(addr); got != want {
			t.Errorf("addrPort(%q) = %q, want %q", addr, got, want)
		}
	}
}
