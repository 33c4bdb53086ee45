package api

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
)

// oauthError is an error of the token endpoint. Unlike every other /v1
// route, POST /v1/auth/token answers errors in RFC 6749 §5.2's shape
// ({"error","error_description"}), because that is what OAuth2 client
// libraries parse; handleError renders it. Handlers still return it rather
// than writing the body themselves.
type oauthError struct {
	Status      int
	Code        string // invalid_request, invalid_client, unsupported_grant_type, invalid_scope…
	Description string
}

func (e *oauthError) Error() string { return "oauth2 " + e.Code + ": " + e.Description }

func oauthInvalidRequest(desc string) error {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

// renderOAuthError writes an RFC 6749 §5.2 error response.
func renderOAuthError(c echo.Context, e *oauthError) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="warden"`)
	}
	return c.JSON(e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// TokenResponse is a successful RFC 6749 §5.1 access token response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// postToken is the OAuth2 client credentials grant (RFC 6749 §4.4). The
// client authenticates with HTTP Basic (§2.3.1, id and secret
// form-urlencoded first) or with client_id and client_secret in the body;
// not both. scope, when given, is a space-separated list of role names: the
// token gets the highest of them, which must not exceed the client's role.
// Without scope the token carries the client's role.
func (s *Server) postToken(c echo.Context) error {
	req := c.Request()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return oauthInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, 8<<10))
	if err != nil {
		return oauthInvalidRequest("the body is too large or unreadable")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return oauthInvalidRequest("the body is not valid form encoding")
	}
	for k, v := range form {
		if len(v) > 1 {
			return oauthInvalidRequest("parameter " + k + " is repeated")
		}
	}
	switch grant := form.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		return oauthInvalidRequest("grant_type is required")
	default:
		return &oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"}
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := req.BasicAuth(); ok {
		if secret != "" {
			return oauthInvalidRequest("use one client authentication method, not both Basic and client_secret")
		}
		bu, err1 := url.QueryUnescape(u)
		bp, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			return oauthInvalidRequest("malformed Basic credentials")
		}
		if id != "" && id != bu {
			return oauthInvalidRequest("client_id does not match the Basic credentials")
		}
		id, secret = bu, bp
	}
	if id == "" || secret == "" {
		return oauthInvalidRequest("client authentication is required: HTTP Basic, or client_id and client_secret")
	}
	p, err := s.DB.AuthenticateClient(req.Context(), id, secret)
	if warden.ErrorCode(err) == warden.EUNAUTHORIZED {
		return &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	} else if err != nil {
		return err
	}
	role, err := grantedRole(form.Get("scope"), p.Role)
	if err != nil {
		return err
	}
	token, err := s.tokens.issue(req.Context(), p, role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TokenResponse{AccessToken: token, TokenType: "Bearer",
		ExpiresIn: int64(s.tokens.ttl.Seconds()), Scope: role})
}

// grantedRole resolves a requested scope against the client's role.
func grantedRole(scope, clientRole string) (string, error) {
	fields := strings.Fields(scope)
	if len(fields) == 0 {
		return clientRole, nil
	}
	role := ""
	for _, f := range fields {
		if records.RoleRank(f) == 0 {
			return "", &oauthError{http.StatusBadRequest, "invalid_scope", "unknown scope " + f + "; scopes are viewer, developer and admin"}
		}
		if records.RoleRank(f) > records.RoleRank(role) {
			role = f
		}
	}
	if records.RoleRank(role) > records.RoleRank(clientRole) {
		return "", &oauthError{http.StatusBadRequest, "invalid_scope", "scope " + role + " exceeds the client's role " + clientRole}
	}
	return role, nil
}
