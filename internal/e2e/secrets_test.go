package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/wardenlab/warden/secretbox"
	"github.com/wardenlab/warden/storage"
)

// TestTokensSurviveSealing: an API that ran without WARDEN_SECRET_KEY
// restarts with one; startup seals its signing keys, the access tokens
// signed before still verify, new ones are issued, and the signing_keys
// table holds no key in clear.
func TestTokensSurviveSealing(t *testing.T) {
	a := newStack(t, false)
	org := a.org("acme")
	const path = "/v1/webhooks/deliveries"
	before := a.token(clientOf(org), "")

	box, err := secretbox.New(bytes.Repeat([]byte{5}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), a.dbURL, "", storage.WithSecretBox(box))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	db.Gorm().Raw("SELECT secret FROM signing_keys").Scan(&secrets)
	if len(secrets) == 0 {
		t.Fatal("no signing keys")
	}
	for _, s := range secrets {
		if !strings.HasPrefix(s, box.Header()) {
			t.Errorf("signing key stored as %q after sealing", s)
		}
	}

	b := &stack{t: t, cfg: a.cfg, db: db, deps: a.deps} // the restarted API, on the keyed database
	b.deps.DB = db
	b.startAPI()
	if code, m := b.getJSON(path, withBearer(before)); code != 200 {
		t.Errorf("token signed before sealing: %d %v", code, m)
	}
	if code, m := b.getJSON(path, withBearer(b.token(clientOf(org), ""))); code != 200 {
		t.Errorf("token signed after sealing: %d %v", code, m)
	}
}
