package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
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
