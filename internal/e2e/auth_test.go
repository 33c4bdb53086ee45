package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

func newKey(id string) config.JWTKey {
	b := make([]byte, 32)
	rand.Read(b)
	return config.JWTKey{ID: id, Secret: b}
}

// withKeys configures WARDEN_JWT_KEYS (first key signs).
func withKeys(keys ...config.JWTKey) stackOpt {
	return func(c *config.Config) { c.JWTKeys = keys }
}

func withBearer(token string) reqOpt {
	return header("Authorization", "Bearer "+token)
}

// client is an OAuth2 client's credentials.
type client struct{ id, secret string }

func clientOf(c storage.NewOrgCredentials) client { return client{c.ClientID, c.ClientSecret} }

// tokenForm posts a form to the token endpoint.
func (s *stack) tokenForm(form url.Values, opts ...reqOpt) (int, map[string]any, http.Header) {
	s.t.Helper()
	return s.do("POST", "/v1/auth/token", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", opts...)
}

// token gets an access token with client_id/client_secret in the body.
func (s *stack) token(c client, scope string) string {
	s.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.id}, "client_secret": {c.secret}}
	if scope != "" {
		form.Set("scope", scope)
	}
	code, m, _ := s.tokenForm(form)
	if code != 200 {
		s.t.Fatalf("token for %s: %d %v", c.id, code, m)
	}
	return m["access_token"].(string)
}

// claimsFor are valid claims for a client of org with role.
func (s *stack) claimsFor(clientID, org, role string) *api.AccessClaims {
	now := time.Now()
	return &api.AccessClaims{Org: org, Role: role, Scope: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.cfg.PublicURL, Subject: clientID, Audience: jwt.ClaimStrings{"warden-api"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		ID: uuid.NewString(),
	}}
}

// mint signs claims with method and key, kid in the header.
func mint(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawJWT assembles a token by hand, for headers the library refuses to sign.
func rawJWT(header map[string]any, claims any, sign func(input string) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign(input))
}

// assertInvalidToken checks a rejected bearer token: 401, the /v1 error
// shape and an RFC 6750 challenge.
func assertInvalidToken(t *testing.T, s *stack, path, token string) {
	t.Helper()
	code, m, h := s.do("GET", path, nil, "", withBearer(token))
	assertV1Error(t, code, m, 401, "")
	if ch := h.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q", ch)
	}
}

func TestTokenIssuance(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	good := form("grant_type", "client_credentials", "client_id", org.ClientID, "client_secret", org.ClientSecret)

	t.Run("form", func(t *testing.T) {
		code, m, h := s.tokenForm(good)
		if code != 200 || m["token_type"] != "Bearer" || m["expires_in"].(float64) != s.cfg.TokenTTL.Seconds() || m["scope"] != "admin" || m["access_token"] == "" {
			t.Fatalf("%d %v", code, m)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		// The claims are what the spec asks for, signed with a database key.
		var claims api.AccessClaims
		tok, _, err := jwt.NewParser().ParseUnverified(m["access_token"].(string), &claims)
		if err != nil {
			t.Fatal(err)
		}
		var key records.SigningKey
		if err := s.db.Gorm().First(&key, "kid = ?", tok.Header["kid"]).Error; err != nil {
			t.Errorf("kid %v is not in signing_keys: %v", tok.Header["kid"], err)
		}
		if tok.Method.Alg() != "HS256" || claims.Subject != org.ClientID || claims.Org != org.OrgID || claims.Role != "admin" ||
			claims.Issuer != s.cfg.PublicURL || len(claims.Audience) != 1 || claims.Audience[0] != "warden-api" || claims.ID == "" ||
			claims.IssuedAt == nil || claims.NotBefore == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) != s.cfg.TokenTTL {
			t.Errorf("claims %+v header %v", claims, tok.Header)
		}
	})
	t.Run("basic", func(t *testing.T) {
		code, m, _ := s.tokenForm(form("grant_type", "client_credentials"), func(r *http.Request) { r.SetBasicAuth(org.ClientID, org.ClientSecret) })
		if code != 200 || m["access_token"] == "" {
			t.Fatalf("%d %v", code, m)
		}
		// A token issued by one replica works on another sharing the database.
		other := s.replica()
		if code, m := other.getJSON("/v1/webhooks/deliveries", withBearer(m["access_token"].(string))); code != 200 {
			t.Errorf("token on another replica: %d %v", code, m)
		}
	})
	t.Run("scope", func(t *testing.T) {
		code, m, _ := s.tokenForm(form("grant_type", "client_credentials", "client_id", org.ClientID, "client_secret", org.ClientSecret, "scope", "viewer"))
		if code != 200 || m["scope"] != "viewer" {
			t.Fatalf("%d %v", code, m)
		}
		code, m = s.postJSON("/v1/credentials", map[string]string{"kind": "api_key", "role": "viewer"}, withBearer(m["access_token"].(string)))
		assertV1Error(t, code, m, 403, "")
	})

	basicWrong := func(r *http.Request) { r.SetBasicAuth(org.ClientID, "wrong") }
	cases := []struct {
		name  string
		ct    string
		body  string
		opts  []reqOpt
		code  int
		error string
	}{
		{"wrong secret", "", form("grant_type", "client_credentials", "client_id", org.ClientID, "client_secret", "wrong").Encode(), nil, 401, "invalid_client"},
		{"wrong secret basic", "", form("grant_type", "client_credentials").Encode(), []reqOpt{basicWrong}, 401, "invalid_client"},
		{"unknown client", "", form("grant_type", "client_credentials", "client_id", "wc_nobody", "client_secret", "x").Encode(), nil, 401, "invalid_client"},
		{"api key is not a client", "", form("grant_type", "client_credentials", "client_id", strings.SplitN(org.APIKey, ".", 2)[0], "client_secret", org.APIKey).Encode(), nil, 401, "invalid_client"},
		{"password grant", "", form("grant_type", "password", "username", "a", "password", "b").Encode(), nil, 400, "unsupported_grant_type"},
		{"authorization_code grant", "", form("grant_type", "authorization_code", "client_id", org.ClientID, "client_secret", org.ClientSecret).Encode(), nil, 400, "unsupported_grant_type"},
		{"no grant_type", "", form("client_id", org.ClientID, "client_secret", org.ClientSecret).Encode(), nil, 400, "invalid_request"},
		{"no client_secret", "", form("grant_type", "client_credentials", "client_id", org.ClientID).Encode(), nil, 400, "invalid_request"},
		{"no client", "", form("grant_type", "client_credentials").Encode(), nil, 400, "invalid_request"},
		{"json body without a client", "application/json", `{"grant_type":"client_credentials"}`, nil, 400, "invalid_request"},
		{"text body", "text/plain", good.Encode(), nil, 400, "invalid_request"},
		{"repeated parameter", "", good.Encode() + "&grant_type=client_credentials", nil, 400, "invalid_request"},
		{"two auth methods", "", good.Encode(), []reqOpt{basicWrong}, 400, "invalid_request"},
		{"unknown scope", "", good.Encode() + "&scope=root", nil, 400, "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.ct
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			code, m, h := s.do("POST", "/v1/auth/token", strings.NewReader(c.body), ct, c.opts...)
			// RFC 6749's fields and spec 002's code, message and details.
			if code != c.code || m["error"] != c.error || m["error_description"] == nil || m["message"] != m["error_description"] || m["code"] == nil || len(m) != 5 {
				t.Fatalf("%d %v, want %d %s", code, m, c.code, c.error)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// A viewer client cannot ask for more than it has.
	id, secret, err := s.db.CreateCredential(context.Background(), org.OrgID, records.CredentialClient, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	code, m, _ := s.tokenForm(form("grant_type", "client_credentials", "client_id", id, "client_secret", secret, "scope", "admin"))
	if code != 400 || m["error"] != "invalid_scope" {
		t.Errorf("escalating scope: %d %v", code, m)
	}
}

func TestTokenRateLimit(t *testing.T) {
	s := newStack(t, false, func(c *config.Config) { c.RateToken = 1 })
	codes := map[int]int{}
	for i := 0; i < 5; i++ {
		code, _, h := s.tokenForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {"wc_x"}, "client_secret": {fmt.Sprint(i)}})
		codes[code]++
		if code == 429 && h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[429] == 0 || codes[401] == 0 {
		t.Errorf("5 guesses in a burst at 1/s: %v", codes)
	}
}

// TestTokenVerification covers what the bearer middleware must refuse.
func TestTokenVerification(t *testing.T) {
	key := newKey("k1")
	s := newStack(t, false, withKeys(key))
	org := s.org("acme")
	const path = "/v1/webhooks/deliveries"

	// Issued and hand-minted valid tokens work on several routes.
	tok := s.token(clientOf(org), "")
	code, m := s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withBearer(tok))
	if code != 202 {
		t.Fatalf("probe with token: %d %v", code, m)
	}
	jobID := m["job_id"].(string)
	for _, p := range []string{path, "/v1/jobs/" + jobID} {
		if code, m := s.getJSON(p, withBearer(tok)); code != 200 {
			t.Errorf("GET %s with token: %d %v", p, code, m)
		}
	}
	if code, m := s.getJSON("/v1/jobs/"+jobID, header("Authorization", "bearer "+tok)); code != 200 {
		t.Errorf("lower-case scheme: %d %v", code, m)
	}
	valid := func() *api.AccessClaims { return s.claimsFor(org.ClientID, org.OrgID, "admin") }
	if code, m := s.getJSON(path, withBearer(mint(t, jwt.SigningMethodHS256, "k1", key.Secret, valid()))); code != 200 {
		t.Fatalf("hand-minted token: %d %v", code, m)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other := newKey("k1")
	cases := map[string]string{
		"expired": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims {
			c := valid()
			c.IssuedAt, c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
			return c
		}()),
		"no exp": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.ExpiresAt = nil; return c }()),
		"nbf in the future": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims {
			c := valid()
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
			return c
		}()),
		"iat in the future": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims {
			c := valid()
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
			return c
		}()),
		"forged signature": mint(t, jwt.SigningMethodHS256, "k1", other.Secret, valid()),
		"tampered claims": func() string {
			parts := strings.Split(mint(t, jwt.SigningMethodHS256, "k1", key.Secret, s.claimsFor(org.ClientID, org.OrgID, "viewer")), ".")
			c, _ := json.Marshal(valid())
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
		}(),
		"alg none": rawJWT(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"}, valid(), func(string) []byte { return nil }),
		"alg None with signature": rawJWT(map[string]any{"alg": "None", "typ": "JWT", "kid": "k1"}, valid(), func(in string) []byte {
			h := hmac.New(sha256.New, key.Secret)
			h.Write([]byte(in))
			return h.Sum(nil)
		}),
		"HS512": mint(t, jwt.SigningMethodHS512, "k1", key.Secret, valid()),
		"HS384": mint(t, jwt.SigningMethodHS384, "k1", key.Secret, valid()),
		"RS256": mint(t, jwt.SigningMethodRS256, "k1", rsaKey, valid()),
		"RS256 label, HMAC signature": rawJWT(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}, valid(), func(in string) []byte {
			h := hmac.New(sha256.New, key.Secret)
			h.Write([]byte(in))
			return h.Sum(nil)
		}),
		"wrong audience": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Audience = jwt.ClaimStrings{"other-api"}; return c }()),
		"no audience":    mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Audience = nil; return c }()),
		"wrong issuer":   mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Issuer = "https://evil.example"; return c }()),
		"unknown kid":    mint(t, jwt.SigningMethodHS256, "k2", key.Secret, valid()),
		"no kid":         mint(t, jwt.SigningMethodHS256, "", key.Secret, valid()),
		"no org":         mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Org = ""; return c }()),
		"no role":        mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Role = ""; return c }()),
		"unknown role":   mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Role = "root"; return c }()),
		"no sub":         mint(t, jwt.SigningMethodHS256, "k1", key.Secret, func() *api.AccessClaims { c := valid(); c.Subject = ""; return c }()),
		"unknown client": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, s.claimsFor("wc_nobody", org.OrgID, "admin")),
		"api key as sub": mint(t, jwt.SigningMethodHS256, "k1", key.Secret, s.claimsFor(strings.SplitN(org.APIKey, ".", 2)[0], org.OrgID, "admin")),
		"org mismatch":   mint(t, jwt.SigningMethodHS256, "k1", key.Secret, s.claimsFor(org.ClientID, "org_someoneelse", "admin")),
		"garbage":        "not.a.jwt",
		"empty":          "",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) { assertInvalidToken(t, s, path, token) })
	}
	// A bad token is a 401 even where anonymous use is allowed.
	code, m, _ = s.do("GET", "/api/verify/"+uuid.NewString(), nil, "", withBearer("not.a.jwt"))
	assertVerifyError(t, code, m, 401)
	// Two credentials at once are refused.
	code, m = s.getJSON(path, withBearer(tok), withKey(org))
	assertV1Error(t, code, m, 400, "")

	// The role is capped by the client's stored role: a viewer client's
	// token that claims admin is still a viewer.
	viewerID, _, err := s.db.CreateCredential(context.Background(), org.OrgID, records.CredentialClient, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	inflated := mint(t, jwt.SigningMethodHS256, "k1", key.Secret, s.claimsFor(viewerID, org.OrgID, "admin"))
	if code, _ := s.getJSON(path, withBearer(inflated)); code != 200 {
		t.Errorf("viewer token read: %d", code)
	}
	code, m, h := s.do("GET", "/v1/credentials", nil, "", withBearer(inflated))
	assertV1Error(t, code, m, 403, "")
	if !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("403 challenge %q", h.Get("WWW-Authenticate"))
	}
}

// TestTokenKeyRotation: the first WARDEN_JWT_KEYS entry signs, every entry
// verifies; a key dropped from the list stops verifying. The same holds
// for keys kept in the database.
func TestTokenKeyRotation(t *testing.T) {
	old, cur := newKey("old"), newKey("new")
	a := newStack(t, false, withKeys(old))
	org := a.org("acme")
	const path = "/v1/webhooks/deliveries"
	oldTok := a.token(clientOf(org), "")

	both := a.replica(withKeys(cur, old))
	if code, m := both.getJSON(path, withBearer(oldTok)); code != 200 {
		t.Fatalf("old-kid token while the old key is listed: %d %v", code, m)
	}
	newTok := both.token(clientOf(org), "")
	if tok, _, _ := jwt.NewParser().ParseUnverified(newTok, &api.AccessClaims{}); tok.Header["kid"] != "new" {
		t.Errorf("signer kid %v, want new", tok.Header["kid"])
	}
	if code, _ := both.getJSON(path, withBearer(newTok)); code != 200 {
		t.Errorf("new-kid token: %d", code)
	}

	onlyNew := a.replica(withKeys(cur))
	assertInvalidToken(t, onlyNew, path, oldTok)
	if code, _ := onlyNew.getJSON(path, withBearer(newTok)); code != 200 {
		t.Errorf("new-kid token after the old key is gone: %d", code)
	}

	// Database keys: a new key signs for replicas that load it, the old one
	// verifies until retired.
	d := a.replica(withKeys())
	dbTok := d.token(clientOf(org), "")
	var claims api.AccessClaims
	tok, _, _ := jwt.NewParser().ParseUnverified(dbTok, &claims)
	oldKID := tok.Header["kid"].(string)
	ctx := context.Background()
	k2, err := a.db.CreateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d2 := a.replica(withKeys())
	tok2, _, _ := jwt.NewParser().ParseUnverified(d2.token(clientOf(org), ""), &claims)
	if tok2.Header["kid"] != k2.KID {
		t.Errorf("newest database key does not sign: %v, want %s", tok2.Header["kid"], k2.KID)
	}
	if code, _ := d2.getJSON(path, withBearer(dbTok)); code != 200 {
		t.Errorf("token of the previous database key: %d", code)
	}
	if err := a.db.RetireSigningKey(ctx, oldKID); err != nil {
		t.Fatal(err)
	}
	assertInvalidToken(t, a.replica(withKeys()), path, dbTok)
}

// TestTokenRevokedClient: revoking a client stops its tokens at once.
func TestTokenRevokedClient(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	admin := s.token(clientOf(org), "")
	code, m := s.postJSON("/v1/credentials", map[string]string{"kind": "oauth_client", "role": "developer"}, withBearer(admin))
	if code != 201 || m["secret"] == "" || m["role"] != "developer" || m["kind"] != "oauth_client" {
		t.Fatalf("create client: %d %v", code, m)
	}
	dev := client{m["id"].(string), m["secret"].(string)}
	devTok := s.token(dev, "")
	if code, m := s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withBearer(devTok)); code != 202 {
		t.Fatalf("developer probe: %d %v", code, m)
	}
	code, m, _ = s.do("DELETE", "/v1/credentials/"+dev.id, nil, "", withBearer(admin))
	if code != 200 || m["revoked_at"] == nil {
		t.Fatalf("revoke: %d %v", code, m)
	}
	assertInvalidToken(t, s, "/v1/webhooks/deliveries", devTok)
	code, m, _ = s.tokenForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {dev.id}, "client_secret": {dev.secret}})
	if code != 401 || m["error"] != "invalid_client" {
		t.Errorf("token for a revoked client: %d %v", code, m)
	}
	// Revoked API keys stop too, and listing shows revocation, never secrets.
	code, m = s.postJSON("/v1/credentials", map[string]string{"kind": "api_key", "role": "viewer"}, withBearer(admin))
	if code != 201 || !strings.HasPrefix(m["secret"].(string), m["id"].(string)+".") {
		t.Fatalf("create key: %d %v", code, m)
	}
	key := org
	key.APIKey = m["secret"].(string)
	if code, _ := s.getJSON("/v1/webhooks/deliveries", withKey(key)); code != 200 {
		t.Errorf("new API key: %d", code)
	}
	if code, _, _ := s.do("DELETE", "/v1/credentials/"+m["id"].(string), nil, "", withBearer(admin)); code != 200 {
		t.Errorf("revoke key: %d", code)
	}
	code, m = s.getJSON("/v1/webhooks/deliveries", withKey(key))
	assertV1Error(t, code, m, 401, "")
	code, m = s.getJSON("/v1/credentials", withBearer(admin))
	if code != 200 || m["total"].(float64) != 4 {
		t.Fatalf("list: %d %v", code, m)
	}
	revoked := 0
	for _, c := range m["data"].([]any) {
		c := c.(map[string]any)
		if _, ok := c["secret"]; ok {
			t.Errorf("listing shows a secret: %v", c)
		}
		if c["revoked_at"] != nil {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("%d revoked in listing, want 2: %v", revoked, m)
	}
	for _, body := range []map[string]string{{"kind": "password", "role": "viewer"}, {"kind": "api_key", "role": "root"}} {
		code, m := s.postJSON("/v1/credentials", body, withBearer(admin))
		assertV1Error(t, code, m, 400, "")
	}
}

// rbacRoute is one /v1 route with a request that passes validation.
type rbacRoute struct {
	method, path, concrete string
	body                   any
	role                   string
	fresh                  func() string // for routes that consume their target (DELETE): a new concrete path per call
}

// TestRBAC: every /v1 route × every role, by bearer token and by API key:
// 401 anonymous, 403 below the route's role, neither at or above it. The
// table must cover every authenticated /v1 route of the OpenAPI document.
func TestRBAC(t *testing.T) {
	s := newStack(t, false)
	org := s.org("acme")
	ctx := context.Background()
	callers := map[string][]reqOpt{} // "role/method" → options
	for _, role := range []string{records.RoleViewer, records.RoleDeveloper, records.RoleAdmin} {
		id, secret, err := s.db.CreateCredential(ctx, org.OrgID, records.CredentialClient, role)
		if err != nil {
			t.Fatal(err)
		}
		callers[role+"/bearer"] = []reqOpt{withBearer(s.token(client{id, secret}, ""))}
		_, key, err := s.db.CreateCredential(ctx, org.OrgID, records.CredentialAPIKey, role)
		if err != nil {
			t.Fatal(err)
		}
		k := org
		k.APIKey = key
		callers[role+"/api-key"] = []reqOpt{withKey(k)}
	}
	code, m := s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withKey(org))
	if code != 202 {
		t.Fatalf("probe: %d %v", code, m)
	}
	jobID := m["job_id"].(string)
	delivery := records.WebhookDelivery{ID: "dlv_" + uuid.NewString(), OrgID: org.OrgID, JobID: jobID, EventType: "job.completed",
		URL: "http://127.0.0.1:1/hook", Payload: "{}", Status: records.DeliveryFailed}
	if err := s.db.Gorm().Create(&delivery).Error; err != nil {
		t.Fatal(err)
	}
	victim, _, err := s.db.CreateCredential(ctx, org.OrgID, records.CredentialAPIKey, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}

	// A model (failed validation, so no worker is needed), an attack job with
	// an artifact, and a factory of deletable models.
	newModel := func() string {
		m := records.Model{ID: "mdl_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], OrgID: org.OrgID, Name: "m", Type: "CV",
			Status: records.ModelFailed, Error: "test", Metadata: `{"input_shape":[4]}`}
		if err := s.db.Gorm().Create(&m).Error; err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	modelID := newModel()
	atk := records.Job{ID: "atk_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:24], OrgID: &org.OrgID, Kind: "attack", Queue: "gpu",
		Status: records.JobInProgress, Input: "{}", Deadline: time.Now().Add(time.Hour)}
	artifact := storage.ArtifactKey(atk.ID, 1, "0_original.png")
	if err := s.db.CreateJob(ctx, &atk, []records.Blob{{Key: artifact, ContentType: "image/png", Size: 3}}, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.blobs.Put(ctx, artifact, strings.NewReader("png")); err != nil {
		t.Fatal(err)
	}
	fgsm := map[string]any{"model_id": modelID, "attack_method_id": "attack_fgsm", "input_data": []float32{0, 0, 0, 0}}

	routes := []rbacRoute{
		{"GET", "/v1/models", "/v1/models", nil, records.RoleViewer, nil},
		{"GET", "/v1/models/{model_id}", "/v1/models/" + modelID, nil, records.RoleViewer, nil},
		{"POST", "/v1/models", "/v1/models", map[string]string{"name": "x", "type": "CV", "model_file_url": "s3://b/k"}, records.RoleDeveloper, nil},
		{"DELETE", "/v1/models/{model_id}", "", nil, records.RoleAdmin, func() string { return "/v1/models/" + newModel() }},
		{"POST", "/v1/models/{model_id}/predict", "/v1/models/" + modelID + "/predict", map[string]any{"input_data": []float32{0, 0, 0, 0}}, records.RoleDeveloper, nil},
		{"GET", "/v1/attacks", "/v1/attacks", nil, records.RoleViewer, nil},
		{"POST", "/v1/attacks/launch", "/v1/attacks/launch", fgsm, records.RoleDeveloper, nil},
		{"GET", "/v1/attacks/{attack_id}/status", "/v1/attacks/" + atk.ID + "/status", nil, records.RoleViewer, nil},
		{"GET", "/v1/attacks/{attack_id}/results", "/v1/attacks/" + atk.ID + "/results", nil, records.RoleViewer, nil},
		{"GET", "/v1/attacks/{attack_id}/artifacts/{name}", "/v1/attacks/" + atk.ID + "/artifacts/0_original.png", nil, records.RoleViewer, nil},
		{"POST", "/v1/attacks/{attack_id}/cancel", "/v1/attacks/" + atk.ID + "/cancel", nil, records.RoleDeveloper, nil},
		{"GET", "/v1/jobs/{job_id}", "/v1/jobs/" + jobID, nil, records.RoleViewer, nil},
		{"GET", "/v1/jobs", "/v1/jobs?kind=probe", nil, records.RoleViewer, nil},
		{"POST", "/v1/jobs/{job_id}/cancel", "", nil, records.RoleDeveloper, func() string {
			code, m := s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withKey(org))
			if code != 202 {
				t.Fatalf("probe: %d %v", code, m)
			}
			return "/v1/jobs/" + m["job_id"].(string) + "/cancel"
		}},
		{"GET", "/v1/webhooks/deliveries", "/v1/webhooks/deliveries", nil, records.RoleViewer, nil},
		{"GET", "/v1/webhooks/deliveries/{delivery_id}", "/v1/webhooks/deliveries/" + delivery.ID, nil, records.RoleViewer, nil},
		{"POST", "/v1/webhooks/deliveries/{delivery_id}/redeliver", "/v1/webhooks/deliveries/" + delivery.ID + "/redeliver", nil, records.RoleDeveloper, nil},
		{"POST", "/v1/diagnostics/probe", "/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, records.RoleDeveloper, nil},
		{"GET", "/v1/credentials", "/v1/credentials", nil, records.RoleAdmin, nil},
		{"POST", "/v1/credentials", "/v1/credentials", map[string]string{"kind": "api_key", "role": "viewer"}, records.RoleAdmin, nil},
		{"DELETE", "/v1/credentials/{credential_id}", "/v1/credentials/" + victim, nil, records.RoleAdmin, nil},
	}

	// Coverage: every authenticated /v1 operation is in the table, with the
	// role the document states.
	_, doc := s.getJSON("/openapi.json")
	if doc["paths"].(map[string]any)["/v1/auth/token"] == nil || doc["components"].(map[string]any)["securitySchemes"].(map[string]any)["bearerAuth"] == nil {
		t.Error("OpenAPI lacks /v1/auth/token or the bearerAuth scheme")
	}
	inTable := map[string]string{}
	for _, r := range routes {
		inTable[r.method+" "+r.path] = r.role
	}
	for p, item := range doc["paths"].(map[string]any) {
		if !strings.HasPrefix(p, "/v1/") {
			continue
		}
		for method, o := range item.(map[string]any) {
			o := o.(map[string]any)
			desc, _ := o["description"].(string)
			if !strings.HasPrefix(desc, "Requires role ") {
				continue
			}
			k := strings.ToUpper(method) + " " + p
			if role, ok := inTable[k]; !ok {
				t.Errorf("RBAC table lacks %s", k)
			} else if !strings.HasPrefix(desc, "Requires role "+role+" ") {
				t.Errorf("%s: document says %q, table %s", k, desc, role)
			}
		}
	}

	send := func(r rbacRoute, opts ...reqOpt) (int, map[string]any) {
		path := r.concrete
		if r.fresh != nil {
			path = r.fresh()
		}
		if r.body != nil {
			b, _ := json.Marshal(r.body)
			code, m, _ := s.do(r.method, path, strings.NewReader(string(b)), "application/json", opts...)
			return code, m
		}
		code, m, _ := s.do(r.method, path, nil, "", opts...)
		return code, m
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path+"/anonymous", func(t *testing.T) {
			code, m := send(r)
			assertV1Error(t, code, m, 401, "")
		})
		for _, role := range []string{records.RoleViewer, records.RoleDeveloper, records.RoleAdmin} {
			for _, via := range []string{"bearer", "api-key"} {
				t.Run(r.method+" "+r.path+"/"+role+"/"+via, func(t *testing.T) {
					code, m := send(r, callers[role+"/"+via]...)
					if records.RoleRank(role) < records.RoleRank(r.role) {
						assertV1Error(t, code, m, 403, "")
					} else if code == 401 || code == 403 || code >= 500 || code == 404 {
						t.Errorf("allowed caller got %d %v", code, m)
					}
				})
			}
		}
	}
}

// TestTokenCrossTenant: org B's token never reaches org A's rows: 404.
func TestTokenCrossTenant(t *testing.T) {
	s := newStack(t, false)
	a, b := s.org("a"), s.org("b")
	tokA, tokB := s.token(clientOf(a), ""), s.token(clientOf(b), "")
	code, m := s.postJSON("/v1/diagnostics/probe", map[string]int{"hold_ms": 0}, withBearer(tokA))
	if code != 202 {
		t.Fatalf("probe: %d %v", code, m)
	}
	jobID := m["job_id"].(string)
	delivery := records.WebhookDelivery{ID: "dlv_" + uuid.NewString(), OrgID: a.OrgID, JobID: jobID, EventType: "job.completed",
		URL: "http://127.0.0.1:1/hook", Payload: "{}", Status: records.DeliveryFailed}
	if err := s.db.Gorm().Create(&delivery).Error; err != nil {
		t.Fatal(err)
	}
	victim, _, err := s.db.CreateCredential(context.Background(), a.OrgID, records.CredentialAPIKey, records.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/jobs/" + jobID},
		{"GET", "/v1/webhooks/deliveries/" + delivery.ID},
		{"POST", "/v1/webhooks/deliveries/" + delivery.ID + "/redeliver"},
		{"DELETE", "/v1/credentials/" + victim},
		{"DELETE", "/v1/credentials/" + a.ClientID},
	} {
		code, m, _ := s.do(r.method, r.path, nil, "", withBearer(tokB))
		assertV1Error(t, code, m, 404, "")
		if r.path == "/v1/credentials/"+a.ClientID {
			continue // the owner revoking its own client would end this test's token
		}
		if code, _, _ := s.do(r.method, r.path, nil, "", withBearer(tokA)); code == 404 {
			t.Errorf("%s %s: owner got 404", r.method, r.path)
		}
	}
	for _, path := range []string{"/v1/webhooks/deliveries", "/v1/credentials"} {
		_, m := s.getJSON(path, withBearer(tokB))
		for _, row := range m["data"].([]any) {
			row := row.(map[string]any)
			if row["id"] == delivery.ID || row["id"] == a.ClientID || row["id"] == victim || row["job_id"] == jobID {
				t.Errorf("%s as org B lists org A's row %v", path, row)
			}
		}
	}
	// A's client is not revoked by B's attempt.
	if code, _ := s.getJSON("/v1/credentials", withBearer(tokA)); code != 200 {
		t.Errorf("org A's token after B's revoke attempt: %d", code)
	}
}
