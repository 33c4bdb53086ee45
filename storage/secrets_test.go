package storage_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/secretbox"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/webhook"
)

func testBox(t *testing.T, fill byte) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(bytes.Repeat([]byte{fill}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reopener opens the database under test again with options, not migrated.
type reopener func(t *testing.T, opts ...storage.Option) *storage.DB

// secretDialects runs fn against a PostgreSQL and a SQLite database, each
// migrated without a key (as before WARDEN_SECRET_KEY was set).
func secretDialects(t *testing.T, fn func(t *testing.T, plain *storage.DB, reopen reopener)) {
	open := func(url, path string) reopener {
		return func(t *testing.T, opts ...storage.Option) *storage.DB {
			db, err := storage.Open(context.Background(), url, path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
	t.Run("postgres", func(t *testing.T) {
		db, url := testenv.Postgres(t)
		fn(t, db, open(url, ""))
	})
	t.Run("sqlite", func(t *testing.T) {
		reopen := open("", filepath.Join(t.TempDir(), "warden.db"))
		db := reopen(t)
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		fn(t, db, reopen)
	})
}

func migrated(t *testing.T, db *storage.DB) *storage.DB {
	t.Helper()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// raw reads a column as stored, bypassing storage.
func raw(t *testing.T, db *storage.DB, query string, args ...any) string {
	t.Helper()
	var v string
	if err := db.Gorm().Raw(query, args...).Scan(&v).Error; err != nil || v == "" {
		t.Fatalf("%s %v: %q %v", query, args, v, err)
	}
	return v
}

func rawWebhookSecret(t *testing.T, db *storage.DB, orgID string) string {
	return raw(t, db, "SELECT webhook_secret FROM orgs WHERE id = ?", orgID)
}

func rawKeySecret(t *testing.T, db *storage.DB, kid string) string {
	return raw(t, db, "SELECT secret FROM signing_keys WHERE kid = ?", kid)
}

func assertSealed(t *testing.T, stored, plaintext string, box *secretbox.Box) {
	t.Helper()
	if strings.Contains(stored, plaintext) || !strings.HasPrefix(stored, box.Header()) {
		t.Errorf("stored %q: want a value sealed under %s without the plaintext %q", stored, box.ID(), plaintext)
	}
}

// TestSecretsSealedAtRest: with a key, new orgs' webhook secrets and new
// signing keys are stored sealed (the raw column holds no plaintext) and
// read back in clear through storage.
func TestSecretsSealedAtRest(t *testing.T) {
	secretDialects(t, func(t *testing.T, _ *storage.DB, reopen reopener) {
		ctx := context.Background()
		box := testBox(t, 1)
		db := migrated(t, reopen(t, storage.WithSecretBox(box)))
		creds, err := db.CreateOrg(ctx, "sealed")
		if err != nil {
			t.Fatal(err)
		}
		assertSealed(t, rawWebhookSecret(t, db, creds.OrgID), creds.WebhookSecret, box)
		for _, get := range []func() (string, error){
			func() (string, error) { o, err := db.GetOrg(ctx, creds.OrgID); return o.WebhookSecret, err },
			func() (string, error) { o, err := db.FindOrgByName(ctx, "sealed"); return o.WebhookSecret, err },
		} {
			if got, err := get(); err != nil || got != creds.WebhookSecret {
				t.Errorf("webhook secret read back %q, %v; want %q", got, err, creds.WebhookSecret)
			}
		}
		k, err := db.CreateSigningKey(ctx)
		if err != nil || !strings.HasPrefix(k.KID, "sk_") || len(k.Secret) != 44 {
			t.Fatalf("CreateSigningKey = %+v, %v", k, err)
		}
		assertSealed(t, rawKeySecret(t, db, k.KID), k.Secret, box)
		keys, err := db.SigningKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].KID != k.KID || keys[0].Secret != k.Secret {
			t.Fatalf("SigningKeys = %+v, %v; want the new key first, in clear", keys, err)
		}
		assertSealed(t, rawKeySecret(t, db, keys[1].KID), keys[1].Secret, box) // the seeded key
	})
}

// TestStartupSealsClearRows: rows written before a key was configured are
// sealed by Migrate once a key is, and their secrets still sign webhooks
// and tokens; migrating again changes nothing.
func TestStartupSealsClearRows(t *testing.T) {
	secretDialects(t, func(t *testing.T, plain *storage.DB, reopen reopener) {
		ctx := context.Background()
		var orgs []storage.NewOrgCredentials
		for _, name := range []string{"a", "b", "c"} {
			orgs = append(orgs, testenv.Org(t, plain, name))
		}
		if _, err := plain.CreateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		before, err := plain.SigningKeys(ctx)
		if err != nil || len(before) != 2 {
			t.Fatalf("keys before: %+v %v", before, err)
		}
		if got := rawWebhookSecret(t, plain, orgs[0].OrgID); got != orgs[0].WebhookSecret {
			t.Fatalf("without a key the secret is stored as %q, want it in clear", got)
		}
		body, ts := []byte(`{"type":"job.completed"}`), time.Now()
		signed := http.Header{} // a webhook signed before the key was set
		if err := webhook.SetHeaders(signed, orgs[0].WebhookSecret, "msg_1", ts, body); err != nil {
			t.Fatal(err)
		}

		box := testBox(t, 1)
		db := migrated(t, reopen(t, storage.WithSecretBox(box)))
		stored := map[string]string{}
		for _, o := range orgs {
			stored[o.OrgID] = rawWebhookSecret(t, db, o.OrgID)
			assertSealed(t, stored[o.OrgID], o.WebhookSecret, box)
			got, err := db.GetOrg(ctx, o.OrgID)
			if err != nil || got.WebhookSecret != o.WebhookSecret {
				t.Errorf("org %s after sealing: %q, %v; want %q", o.OrgID, got.WebhookSecret, err, o.WebhookSecret)
			}
		}
		for _, k := range before {
			stored[k.KID] = rawKeySecret(t, db, k.KID)
			assertSealed(t, stored[k.KID], k.Secret, box)
		}
		after, err := db.SigningKeys(ctx)
		if err != nil || len(after) != 2 || after[0] != before[0] || after[1] != before[1] {
			t.Errorf("keys after sealing: %+v, %v; want %+v", after, err, before)
		}
		// The secret read back signs as the one the org was given.
		o, _ := db.GetOrg(ctx, orgs[0].OrgID)
		if err := webhook.Verify(o.WebhookSecret, signed, body, ts, time.Minute); err != nil {
			t.Errorf("signature under the secret read back: %v", err)
		}

		migrated(t, db) // idempotent: sealed values stay as they are
		for id, v := range stored {
			if got := raw(t, db, "SELECT COALESCE((SELECT webhook_secret FROM orgs WHERE id = ?), (SELECT secret FROM signing_keys WHERE kid = ?))", id, id); got != v {
				t.Errorf("%s changed on a second migration", id)
			}
		}
	})
}

// TestSealedSecretsNeedTheirKey: a sealed database does not open without
// its key or under another one, and says which setting to check; the
// process that stored values in clear cannot read them any more.
func TestSealedSecretsNeedTheirKey(t *testing.T) {
	secretDialects(t, func(t *testing.T, plain *storage.DB, reopen reopener) {
		ctx := context.Background()
		creds := testenv.Org(t, plain, "keyed")
		migrated(t, reopen(t, storage.WithSecretBox(testBox(t, 1))))

		for name, db := range map[string]*storage.DB{
			"no key":    reopen(t),
			"wrong key": reopen(t, storage.WithSecretBox(testBox(t, 2))),
		} {
			want := secretbox.ErrNoKey
			if name == "wrong key" {
				want = secretbox.ErrWrongKey
			}
			err := db.Migrate(ctx)
			if !errors.Is(err, want) || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
				t.Errorf("%s: Migrate = %v; want %v naming WARDEN_SECRET_KEY", name, err, want)
			}
			if o, err := db.GetOrg(ctx, creds.OrgID); !errors.Is(err, want) || o.WebhookSecret != "" {
				t.Errorf("%s: GetOrg = %+v, %v; want %v", name, o, err, want)
			}
			if keys, err := db.SigningKeys(ctx); !errors.Is(err, want) || keys != nil {
				t.Errorf("%s: SigningKeys = %+v, %v; want %v", name, keys, err, want)
			}
		}
		if _, err := plain.GetOrg(ctx, creds.OrgID); !errors.Is(err, secretbox.ErrNoKey) {
			t.Errorf("the keyless handle read a sealed secret: %v", err)
		}
	})
}

// TestSealedSecretMovedOrAltered: a sealed value copied into another row,
// or altered in place, does not open there.
func TestSealedSecretMovedOrAltered(t *testing.T) {
	secretDialects(t, func(t *testing.T, _ *storage.DB, reopen reopener) {
		ctx := context.Background()
		db := migrated(t, reopen(t, storage.WithSecretBox(testBox(t, 1))))
		a, b := testenv.Org(t, db, "a"), testenv.Org(t, db, "b")
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.Gorm().Exec(q, args...).Error; err != nil {
				t.Fatal(err)
			}
		}
		exec("UPDATE orgs SET webhook_secret = ? WHERE id = ?", rawWebhookSecret(t, db, a.OrgID), b.OrgID)
		if o, err := db.GetOrg(ctx, b.OrgID); !errors.Is(err, secretbox.ErrInvalid) {
			t.Errorf("secret moved to another org opened: %q, %v", o.WebhookSecret, err)
		}
		k, err := db.CreateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := rawKeySecret(t, db, k.KID)
		exec("UPDATE signing_keys SET secret = ? WHERE kid = ?", v[:len(v)-3]+"AAA", k.KID)
		if keys, err := db.SigningKeys(ctx); !errors.Is(err, secretbox.ErrInvalid) {
			t.Errorf("altered signing key opened: %+v, %v", keys, err)
		}
	})
}

// TestSecretColumnsWidened: migration 8 widens the secret columns of a
// database created with the old varchar(128) to hold sealed values.
func TestSecretColumnsWidened(t *testing.T) {
	old, url := testenv.Postgres(t)
	for _, q := range []string{
		"ALTER TABLE orgs ALTER COLUMN webhook_secret TYPE varchar(128)",
		"ALTER TABLE signing_keys ALTER COLUMN secret TYPE varchar(128)",
		"DELETE FROM schema_migrations WHERE version = 8",
	} {
		if err := old.Gorm().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	// A new process (the old one's prepared statements expect varchar(128)).
	db, err := storage.Open(context.Background(), url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g := migrated(t, db).Gorm()
	for table, column := range map[string]string{"orgs": "webhook_secret", "signing_keys": "secret"} {
		var n int
		err := g.Raw("SELECT character_maximum_length FROM information_schema.columns WHERE table_name = ? AND column_name = ?", table, column).Scan(&n).Error
		if err != nil || n != 512 {
			t.Errorf("%s.%s holds %d characters (%v), want 512", table, column, n, err)
		}
	}
}
