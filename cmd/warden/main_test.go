package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/wardenlab/warden/cli"
	"github.com/wardenlab/warden/config"
)

// TestOrgCreateAndMigrate runs the CLI verbs against an embedded SQLite
// database: `org create --json` prints every credential once, `migrate`
// reports the schema version, and bad invocations fail with usage.
func TestOrgCreateAndMigrate(t *testing.T) {
	t.Setenv("WARDEN_DATA_DIR", t.TempDir())
	t.Setenv("WARDEN_DATABASE_URL", "")
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, "org", []string{"create", "--name", "acme", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var c map[string]string
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatalf("not JSON: %q", out.String())
	}
	for _, k := range []string{"org_id", "api_key", "client_id", "client_secret", "webhook_secret"} {
		if c[k] == "" {
			t.Errorf("%s missing in %v", k, c)
		}
	}
	if !strings.HasPrefix(c["webhook_secret"], "whsec_") {
		t.Errorf("webhook secret %q", c["webhook_secret"])
	}
	out.Reset()
	if err := run(ctx, "migrate", nil, &out); err != nil || !strings.Contains(out.String(), "schema version") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
	for _, args := range [][]string{{"org"}, {"org", "create"}, {"org", "delete"}} {
		if err := run(ctx, args[0], args[1:], &out); err == nil {
			t.Errorf("warden %v succeeded", args)
		}
	}
	if err := run(ctx, "frobnicate", nil, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("unknown command: %v", err)
	}
}

// TestClientCommandsSkipServerConfig runs `warden jobs list` with a server
// configuration that config.Load refuses: the client command still runs
// (and fails only on the unreachable API), and `warden api` fails on the
// configuration.
func TestClientCommandsSkipServerConfig(t *testing.T) {
	t.Setenv("WARDEN_MAX_UPLOAD_BYTES", "not-a-number")
	if _, err := config.Load(); err == nil {
		t.Fatal("config.Load accepted WARDEN_MAX_UPLOAD_BYTES=not-a-number; the test needs a refused configuration")
	}
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	code, ok := runClient(context.Background(), []string{"jobs", "list", "--url", "http://127.0.0.1:1", "--org-id", "o", "--api-key", "k"}, os.Stdout, stderr)
	if !ok {
		t.Fatal("jobs list is not a client command")
	}
	b, _ := os.ReadFile(stderr.Name())
	if code != cli.ExitError || !strings.Contains(string(b), "127.0.0.1:1") || strings.Contains(string(b), "WARDEN_MAX_UPLOAD_BYTES") {
		t.Fatalf("exit %d, stderr %q: want exit %d on the unreachable API, no configuration error", code, b, cli.ExitError)
	}
	if _, ok := runClient(context.Background(), []string{"api"}, os.Stdout, stderr); ok {
		t.Fatal("api is a client command")
	}
	if err := run(context.Background(), "api", nil, io.Discard); err == nil || !strings.Contains(err.Error(), "WARDEN_MAX_UPLOAD_BYTES") {
		t.Fatalf("warden api: %v, want the configuration error", err)
	}
}
