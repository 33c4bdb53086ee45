package api

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
)

// oauthError is an error of the token endpoint with its RFC 6749 §5.2
// error code. Handlers return it; handleError renders it through the token
// route's renderer, renderTokenError.
type oauthError struct {
	Status      int
	Code        string // invalid_request, invalid_client, unsupported_grant_type, invalid_scope…
	Description string
}

func (e *oauthError) Error() string { return "oauth2 " + e.Code + ": " + e.Description }

func oauthInvalidRequest(desc string) error {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

// renderTokenError is POST /v1/auth/token's error shape: RFC 6749 §5.2's
// fields (error, error_description), which OAuth2 client libraries parse,
// and spec 002's (code, message, details) together, so that both kinds of
// client read every error of the route, a 429 or a 403 included.
func renderTokenError(c echo.Context, e apiError) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="warden"`)
	}
	oauth := e.OAuthCode
	if oauth == "" {
		oauth = oauthCodeOf(e.Code)
	}
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	return c.JSON(e.Status, map[string]any{"error": oauth, "error_description": e.Message,
		"code": e.Code, "message": e.Message, "details": details})
}

// oauthCodeOf is the RFC 6749 error code of a domain error the token route
// returns (a bad body, a rate limit, an outage); codes RFC 6749 has no
// word for stay as they are.
func oauthCodeOf(code string) string {
	switch code {
	case warden.EINVALID, warden.ETOOLARGE, warden.EUNSUPPORTEDMEDIA, warden.EREQUESTTIMEOUT:
		return "invalid_request"
	case warden.EUNAUTHORIZED:
		return "invalid_client"
	case warden.EUNAVAILABLE, warden.ETIMEOUT:
		return "temporarily_unavailable"
	case warden.EINTERNAL:
		return "server_error"
	}
	return code
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
// not both. The body is a form (RFC 6749) or a JSON object with the same
// parameters (spec 002: all bodies are JSON). scope, when given, is a space-separated list of role names: the
// token gets the highest of them, which must not exceed the client's role.
// Without scope the token carries the client's role.
func (s *Server) postToken(c echo.Context) error {
	req := c.Request()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	form, err := readTokenRequest(req)
	if err != nil {
		return err
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

// maxTokenBody caps a token request's body.
const maxTokenBody = 8 << 10

// readTokenRequest reads the token request's parameters from a form or a
// JSON object of strings. Unknown parameters are ignored (RFC 6749 §3.2),
// a repeated one is refused.
func readTokenRequest(req *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mt != mimeForm && !isJSONType(mt) {
		return nil, oauthInvalidRequest("the body must be application/x-www-form-urlencoded or application/json")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxTokenBody+1))
	if err != nil || len(body) > maxTokenBody {
		return nil, oauthInvalidRequest("the body is too large or unreadable")
	}
	if mt != mimeForm {
		return tokenJSON(body)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthInvalidRequest("the body is not valid form encoding")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, oauthInvalidRequest("parameter " + k + " is repeated")
		}
	}
	return form, nil
}

// tokenJSON reads a JSON token request: an object whose parameters of the
// grant are strings.
func tokenJSON(body []byte) (url.Values, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, oauthInvalidRequest("the body is not a JSON object")
	}
	form := url.Values{}
	for _, k := range []string{"grant_type", "client_id", "client_secret", "scope"} {
		switch v := doc[k].(type) {
		case nil:
		case string:
			form.Set(k, v)
		default:
			return nil, oauthInvalidRequest("parameter " + k + " must be a string")
		}
	}
	return form, nil
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
