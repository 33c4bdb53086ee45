package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// NewOrgCredentials is what `warden org create` prints once; secrets are not
// recoverable afterwards (only their hashes are stored).
type NewOrgCredentials struct {
	OrgID         string `json:"org_id"`
	APIKey        string `json:"api_key"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	WebhookSecret string `json:"webhook_secret"`
}

// CreateOrg creates an org with an admin API key, an admin OAuth2 client and
// a webhook signing secret.
func (db *DB) CreateOrg(ctx context.Context, name string) (NewOrgCredentials, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return NewOrgCredentials{}, warden.Errorf(warden.EINVALID, "org name must be 1-200 characters")
	}
	org := records.Org{ID: "org_" + compactUUID(), Name: name, WebhookSecret: "whsec_" + randomB64(32)}
	keyID := "wk_" + randomHex(8)
	apiKey := keyID + "." + randomB64URL(32)
	clientID := "wc_" + randomHex(12)
	clientSecret := randomB64URL(32)
	stored := org
	stored.WebhookSecret = db.seal(orgWebhookSecret, org.ID, org.WebhookSecret)
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&stored).Error; err != nil {
			return err
		}
		return tx.Create([]records.Credential{
			{ID: keyID, OrgID: org.ID, Kind: records.CredentialAPIKey, Role: records.RoleAdmin, SecretHash: hashSecret(apiKey)},
			{ID: clientID, OrgID: org.ID, Kind: records.CredentialClient, Role: records.RoleAdmin, SecretHash: hashSecret(clientSecret)},
		}).Error
	})
	if err != nil {
		return NewOrgCredentials{}, fmt.Errorf("create org: %w", err)
	}
	return NewOrgCredentials{OrgID: org.ID, APIKey: apiKey, ClientID: clientID, ClientSecret: clientSecret, WebhookSecret: org.WebhookSecret}, nil
}

// CreateCredential adds a credential with the given role to an org and
// returns its secret (shown once).
func (db *DB) CreateCredential(ctx context.Context, orgID, kind, role string) (id, secret string, err error) {
	if records.RoleRank(role) == 0 {
		return "", "", warden.Errorf(warden.EINVALID, "unknown role %q", role)
	}
	switch kind {
	case records.CredentialAPIKey:
		id = "wk_" + randomHex(8)
		secret = id + "." + randomB64URL(32)
	case records.CredentialClient:
		id = "wc_" + randomHex(12)
		secret = randomB64URL(32)
	default:
		return "", "", warden.Errorf(warden.EINVALID, "unknown credential kind %q", kind)
	}
	c := records.Credential{ID: id, OrgID: orgID, Kind: kind, Role: role, SecretHash: hashSecret(secret)}
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&records.Credential{}).Where("org_id = ? AND revoked_at IS NULL", orgID).Count(&n).Error; err != nil {
			return err
		}
		if n >= MaxCredentialsPerOrg {
			return warden.Errorf(warden.ECONFLICT, "an org has at most %d active credentials; revoke one first", MaxCredentialsPerOrg)
		}
		return tx.Create(&c).Error
	})
	if err != nil {
		return "", "", fmt.Errorf("create credential: %w", err)
	}
	return id, secret, nil
}

// MaxCredentialsPerOrg caps an org's active API keys and OAuth2 clients.
const MaxCredentialsPerOrg = 100

// Principal is an authenticated caller.
type Principal struct {
	OrgID        string
	CredentialID string
	Role         string
}

// AuthenticateAPIKey checks an `x-api-key` + `Org-Id` pair.
func (db *DB) AuthenticateAPIKey(ctx context.Context, orgID, apiKey string) (Principal, error) {
	keyID, _, ok := strings.Cut(apiKey, ".")
	if !ok {
		return Principal{}, warden.Errorf(warden.EUNAUTHORIZED, "invalid API key")
	}
	return db.authenticate(ctx, records.CredentialAPIKey, keyID, orgID, apiKey)
}

// AuthenticateClient checks OAuth2 client credentials.
func (db *DB) AuthenticateClient(ctx context.Context, clientID, secret string) (Principal, error) {
	return db.authenticate(ctx, records.CredentialClient, clientID, "", secret)
}

func (db *DB) authenticate(ctx context.Context, kind, id, orgID, secret string) (Principal, error) {
	hash := hashSecret(secret)
	if p, ok := db.creds.get(kind + ":" + id + ":" + hash); ok && (orgID == "" || orgID == p.OrgID) {
		return p, nil
	}
	var c records.Credential
	err := db.gorm.WithContext(ctx).Where("id = ? AND kind = ? AND revoked_at IS NULL", id, kind).First(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		hashSecret(secret) // same work whether or not the id exists
		return Principal{}, warden.Errorf(warden.EUNAUTHORIZED, "invalid credentials")
	} else if err != nil {
		return Principal{}, fmt.Errorf("load credential: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(c.SecretHash)) != 1 ||
		(orgID != "" && orgID != c.OrgID) {
		return Principal{}, warden.Errorf(warden.EUNAUTHORIZED, "invalid credentials")
	}
	p := Principal{OrgID: c.OrgID, CredentialID: c.ID, Role: c.Role}
	db.creds.put(kind+":"+id+":"+hash, p)
	return p, nil
}

// credentialTTL bounds how long a verified credential is trusted without
// reading the database again: a revocation takes effect within it.
const credentialTTL = 10 * time.Second

// credCache remembers successful authentications briefly, keyed by the
// credential id and the hash of the presented secret (never the secret).
type credCache struct {
	mu sync.Mutex
	m  map[string]credEntry
}

type credEntry struct {
	p   Principal
	exp time.Time
}

func (c *credCache) get(key string) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Now().After(e.exp) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *credCache) put(key string, p Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]credEntry{} // bounded: start over rather than grow
	}
	c.m[key] = credEntry{p: p, exp: time.Now().Add(credentialTTL)}
}

// forget drops cached authentications of a credential (on revocation).
func (c *credCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if strings.Contains(k, ":"+id+":") {
			delete(c.m, k)
		}
	}
}

// GetOrg loads an org, its webhook secret opened.
func (db *DB) GetOrg(ctx context.Context, id string) (records.Org, error) {
	return db.firstOrg(db.gorm.WithContext(ctx).Where("id = ?", id))
}

// FindOrgByName returns the first org with that name.
func (db *DB) FindOrgByName(ctx context.Context, name string) (records.Org, error) {
	return db.firstOrg(db.gorm.WithContext(ctx).Where("name = ?", name).Order("created_at"))
}

func (db *DB) firstOrg(q *gorm.DB) (records.Org, error) {
	o, err := first[records.Org](q, "org")
	if err != nil {
		return o, err
	}
	if err := db.openOrg(&o); err != nil {
		return records.Org{}, fmt.Errorf("load org: %w", err)
	}
	return o, nil
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func compactUUID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS RNG failing is unrecoverable
	}
	return b
}

func randomHex(n int) string    { return hex.EncodeToString(randomBytes(n)) }
func randomB64(n int) string    { return base64.StdEncoding.EncodeToString(randomBytes(n)) }
func randomB64URL(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }
