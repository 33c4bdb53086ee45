package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// tokenLeeway absorbs clock skew between replicas when checking exp, nbf
// and iat.
const tokenLeeway = 10 * time.Second

// Keys loaded from the database are reloaded this often, and at most this
// often again when a token names a kid the replica does not know yet (a key
// another replica created).
const (
	keyReload     = time.Minute
	keyMissReload = 5 * time.Second
)

// AccessClaims are the claims of Warden's access tokens.
type AccessClaims struct {
	Org   string `json:"org"`
	Role  string `json:"role"`
	Scope string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// tokens issues and verifies the HS256 access tokens of POST /v1/auth/token.
type tokens struct {
	db       *storage.DB
	issuer   string
	audience string
	ttl      time.Duration
	static   []config.JWTKey // WARDEN_JWT_KEYS; nil → signing_keys table

	mu       sync.Mutex
	keys     []config.JWTKey // signer first
	loadedAt time.Time
}

func newTokens(cfg config.Config, db *storage.DB) *tokens {
	t := &tokens{db: db, issuer: cfg.PublicURL, audience: cfg.JWTAudience, ttl: cfg.TokenTTL, static: cfg.JWTKeys}
	if t.audience == "" {
		t.audience = "warden-api"
	}
	if t.ttl <= 0 {
		t.ttl = 15 * time.Minute
	}
	return t
}

// keyring returns the keys, signer first. Database keys are cached; force
// asks for a reload (rate-limited) when a kid was not found. When a reload
// fails the cached keys go on serving.
func (t *tokens) keyring(ctx context.Context, force bool) ([]config.JWTKey, error) {
	if len(t.static) > 0 {
		return t.static, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	age := time.Since(t.loadedAt)
	if t.keys != nil && age < keyReload && (!force || age < keyMissReload) {
		return t.keys, nil
	}
	rows, err := t.db.SigningKeys(ctx)
	if err != nil {
		if t.keys != nil {
			slog.Warn("reloading signing keys failed; using cached keys", "err", err)
			return t.keys, nil
		}
		return nil, err
	}
	keys := make([]config.JWTKey, 0, len(rows))
	for _, r := range rows {
		b, err := base64.StdEncoding.DecodeString(r.Secret)
		if err != nil || len(b) < 32 {
			slog.Error("ignoring malformed signing key", "kid", r.KID)
			continue
		}
		keys = append(keys, config.JWTKey{ID: r.KID, Secret: b})
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable signing key in the database")
	}
	t.keys, t.loadedAt = keys, time.Now()
	return keys, nil
}

// issue signs an access token for an authenticated client, granting role
// (at most the client's own role; the caller has checked).
func (t *tokens) issue(ctx context.Context, p storage.Principal, role string) (string, error) {
	keys, err := t.keyring(ctx, false)
	if err != nil {
		return "", fmt.Errorf("signing keys: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	claims := AccessClaims{Org: p.OrgID, Role: role, Scope: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: t.issuer, Subject: p.CredentialID, Audience: jwt.ClaimStrings{t.audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		ID: uuid.NewString(),
	}}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = keys[0].ID
	signed, err := tok.SignedString(keys[0].Secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// invalidToken is the error of every rejected bearer token.
func invalidToken(msg string) error {
	return &warden.Error{Code: warden.EUNAUTHORIZED, Message: msg}
}

// verify checks a bearer token and returns its principal. Only HS256 is
// accepted (so alg:none and algorithm confusion fail), the kid must name a
// current key, aud and iss must be ours, exp is required, and the client
// must still exist unrevoked; the role is the lower of the token's and the
// client's current one.
func (t *tokens) verify(ctx context.Context, raw string) (storage.Principal, error) {
	var claims AccessClaims
	var keyErr error
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(t.audience), jwt.WithIssuer(t.issuer), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(tokenLeeway))
	_, err := parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		for _, force := range []bool{false, true} {
			keys, err := t.keyring(ctx, force)
			if err != nil {
				keyErr = err
				return nil, err
			}
			for _, k := range keys {
				if k.ID == kid {
					return k.Secret, nil
				}
			}
		}
		return nil, errors.New("unknown kid")
	})
	switch {
	case keyErr != nil:
		return storage.Principal{}, fmt.Errorf("signing keys: %w", keyErr)
	case errors.Is(err, jwt.ErrTokenExpired):
		return storage.Principal{}, invalidToken("token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return storage.Principal{}, invalidToken("token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return storage.Principal{}, invalidToken("token was not issued for this API")
	case err != nil:
		return storage.Principal{}, invalidToken("invalid token")
	}
	if claims.Subject == "" || claims.Org == "" || records.RoleRank(claims.Role) == 0 {
		return storage.Principal{}, invalidToken("token lacks sub, org or role")
	}
	cred, err := t.db.GetCredential(ctx, claims.Subject)
	if warden.ErrorCode(err) == warden.ENOTFOUND {
		return storage.Principal{}, invalidToken("token's client no longer exists")
	} else if err != nil {
		return storage.Principal{}, err
	}
	if cred.Kind != records.CredentialClient || cred.OrgID != claims.Org {
		return storage.Principal{}, invalidToken("invalid token")
	}
	if cred.RevokedAt != nil {
		return storage.Principal{}, invalidToken("token's client has been revoked")
	}
	role := claims.Role
	if records.RoleRank(cred.Role) < records.RoleRank(role) {
		role = cred.Role
	}
	return storage.Principal{OrgID: cred.OrgID, CredentialID: cred.ID, Role: role}, nil
}
