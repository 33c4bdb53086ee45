package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/storage"
)

// TestSecretKeyAtStartup: with WARDEN_SECRET_KEY set, `org create` stores
// the webhook secret sealed; the sealed database then refuses to start
// without the key or under another one, naming the setting; and
// WARDEN_REQUIRE_SECRET_KEY refuses to start without a key at all.
func TestSecretKeyAtStartup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WARDEN_DATA_DIR", dir)
	t.Setenv("WARDEN_DATABASE_URL", "")
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	t.Setenv("WARDEN_SECRET_KEY", key)
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, "org", []string{"create", "--name", "acme", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var c storage.NewOrgCredentials
	if err := json.Unmarshal(out.Bytes(), &c); err != nil || !strings.HasPrefix(c.WebhookSecret, "whsec_") {
		t.Fatalf("org create printed %q (%v)", out.String(), err)
	}
	db, err := storage.Open(ctx, "", filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	db.Gorm().Raw("SELECT webhook_secret FROM orgs WHERE id = ?", c.OrgID).Scan(&stored)
	db.Close()
	if !strings.HasPrefix(stored, "enc:v1:") || strings.Contains(stored, c.WebhookSecret) {
		t.Fatalf("webhook secret stored as %q", stored)
	}

	if err := run(ctx, "migrate", nil, &out); err != nil {
		t.Fatalf("migrate with the key: %v", err)
	}
	for name, v := range map[string]string{"without the key": "", "under another key": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))} {
		t.Setenv("WARDEN_SECRET_KEY", v)
		start := time.Now()
		if err := run(ctx, "migrate", nil, &out); err == nil || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
			t.Errorf("migrate %s: %v; want an error naming WARDEN_SECRET_KEY", name, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("migrate %s took %v: a key error is not worth retrying", name, d)
		}
	}
	t.Setenv("WARDEN_SECRET_KEY", "")
	t.Setenv("WARDEN_REQUIRE_SECRET_KEY", "true")
	if err := run(ctx, "version", nil, &out); err == nil || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
		t.Errorf("required key missing: %v", err)
	}
}

// TestWarnClearSecrets: `warden api` and `warden worker` say loudly what a
// database dump would give away when WARDEN_SECRET_KEY is not set.
func TestWarnClearSecrets(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	cases := []struct {
		cfg  config.Config
		want string
	}{
		{config.Config{}, "webhook secrets and access-token signing keys"},
		{config.Config{JWTKeys: []config.JWTKey{{ID: "k", Secret: make([]byte, 32)}}}, "webhook secrets are stored"},
		{config.Config{SecretKey: make([]byte, 32)}, ""},
	}
	for _, c := range cases {
		logs.Reset()
		warnClearSecrets(c.cfg)
		got := logs.String()
		if c.want == "" && got != "" || c.want != "" && (!strings.Contains(got, c.want) || !strings.Contains(got, "level=WARN") || !strings.Contains(got, "WARDEN_SECRET_KEY")) {
			t.Errorf("SecretKey %d bytes, JWTKeys %d: logged %q, want %q", len(c.cfg.SecretKey), len(c.cfg.JWTKeys), got, c.want)
		}
	}
}
