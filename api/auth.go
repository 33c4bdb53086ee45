package api

import (
	"crypto/subtle"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

const (
	principalKey = "warden.principal"
	bearerKey    = "warden.bearer" // true when the principal came from an access token
)

// principal returns the authenticated caller, or nil for anonymous requests.
func principal(c echo.Context) *storage.Principal {
	p, _ := c.Get(principalKey).(*storage.Principal)
	return p
}

// orgOf returns the caller's org id, "" when anonymous.
func orgOf(c echo.Context) string {
	if p := principal(c); p != nil {
		return p.OrgID
	}
	return ""
}

// bearerToken returns the token of an `Authorization: Bearer …` header
// (the scheme is case-insensitive) and whether the header uses that scheme.
func bearerToken(h string) (string, bool) {
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// identify reads credentials when present: an OAuth2 access token
// (`Authorization: Bearer`, from POST /v1/auth/token), `x-api-key` with
// `Org-Id` (AISpectra style). HTTP Basic is not an org credential: only
// the operator surface (/monitoring) and the token endpoint take it. Wrong
// credentials are a 401 even on routes that allow anonymous use; no
// credentials give a nil principal (anonymous). It spends no rate budget:
// guard and authenticate do.
func (s *Server) identify(c echo.Context) (p *storage.Principal, bearer bool, err error) {
	req := c.Request()
	orgID, key := req.Header.Get("Org-Id"), req.Header.Get("x-api-key")
	if token, ok := bearerToken(req.Header.Get("Authorization")); ok {
		if key != "" {
			return nil, false, warden.Errorf(warden.EINVALID, "send either a bearer token or x-api-key, not both")
		}
		if token == "" {
			err = invalidToken("empty bearer token")
		} else {
			var v storage.Principal
			if v, err = s.tokens.verify(req.Context(), token); err == nil {
				return &v, true, nil
			}
		}
		if warden.ErrorCode(err) == warden.EUNAUTHORIZED {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="warden", error="invalid_token", error_description="`+warden.ErrorMessage(err)+`"`)
		}
		return nil, false, err
	}
	if key == "" {
		return nil, false, nil
	}
	if orgID == "" {
		return nil, false, warden.Errorf(warden.EUNAUTHORIZED, "Org-Id header is required with x-api-key")
	}
	v, err := s.DB.AuthenticateAPIKey(req.Context(), orgID, key)
	if err != nil {
		return nil, false, err
	}
	return &v, false, nil
}

// authenticate is identify plus the credential's rate budget, for routes
// that have no client-IP budget (guard does both in one Redis call).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, bearer, err := s.identify(c)
		if err != nil {
			return err
		}
		if p != nil {
			if err := s.spend(c, spend{"cred", p.CredentialID, s.Config.RateCredential}); err != nil {
				return err
			}
			c.Set(principalKey, p)
			c.Set(bearerKey, bearer)
		}
		return next(c)
	}
}

// requireIfAuthenticated lets anonymous callers through and demands at
// least role of authenticated ones (spec 003's routes work without
// credentials, but a viewer key must not delete).
func requireIfAuthenticated(role string) echo.MiddlewareFunc {
	check := require(role)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		checked := check(next)
		return func(c echo.Context) error {
			if principal(c) == nil {
				return next(c)
			}
			return checked(c)
		}
	}
}

// require demands an authenticated caller with at least role.
func require(role string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c)
			if p == nil {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
				return warden.Errorf(warden.EUNAUTHORIZED, "authentication required")
			}
			if records.RoleRank(p.Role) < records.RoleRank(role) {
				if bearer, _ := c.Get(bearerKey).(bool); bearer {
					c.Response().Header().Set("WWW-Authenticate", `Bearer realm="warden", error="insufficient_scope", scope="`+role+`"`)
				}
				return warden.Errorf(warden.EFORBIDDEN, "role %s required", role)
			}
			return next(c)
		}
	}
}

// operator guards the operator surface (asynqmon): HTTP Basic with user
// "operator" and WARDEN_OPERATOR_TOKEN. Org credentials, even an admin's,
// do not open it: its queues, tasks and payloads span every org. Without a
// token configured the surface does not exist.
func (s *Server) operator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := s.Config.OperatorToken
		if token == "" {
			return warden.Errorf(warden.ENOTFOUND, "the operator surface is off (set WARDEN_OPERATOR_TOKEN)")
		}
		u, pw, ok := c.Request().BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte("operator")) != 1 ||
			subtle.ConstantTimeCompare([]byte(pw), []byte(token)) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Basic realm="warden operator"`)
			return warden.Errorf(warden.EUNAUTHORIZED, "operator credentials required (user operator, password WARDEN_OPERATOR_TOKEN)")
		}
		return next(c)
	}
}
