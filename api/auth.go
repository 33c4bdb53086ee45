package api

import (
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/models"
	"github.com/wardenlab/warden/storage"
)

const principalKey = "warden.principal"

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

// authenticate reads credentials when present: `x-api-key` with `Org-Id`
// (AISpectra style), or HTTP Basic with the org id as user name and the API
// key as password (for browsers opening /monitoring). Wrong credentials are
// a 401 even on routes that allow anonymous use; no credentials leave the
// request anonymous. Authenticated callers also spend their per-credential
// rate budget here.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		orgID, key := req.Header.Get("Org-Id"), req.Header.Get("x-api-key")
		if key == "" {
			if u, p, ok := req.BasicAuth(); ok {
				orgID, key = u, p
			}
		}
		if key == "" {
			if h := req.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
				return warden.Errorf(warden.EUNAUTHORIZED, "bearer tokens are not accepted on this route; use x-api-key and Org-Id")
			}
			return next(c)
		}
		if orgID == "" {
			return warden.Errorf(warden.EUNAUTHORIZED, "Org-Id header is required with x-api-key")
		}
		p, err := s.DB.AuthenticateAPIKey(req.Context(), orgID, key)
		if err != nil {
			return err
		}
		if err := s.spend(c, "cred", p.CredentialID, s.Config.RateCredential); err != nil {
			return err
		}
		c.Set(principalKey, &p)
		return next(c)
	}
}

// require demands an authenticated caller with at least role.
func require(role string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principal(c)
			if p == nil {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="warden"`)
				return warden.Errorf(warden.EUNAUTHORIZED, "authentication required")
			}
			if models.RoleRank(p.Role) < models.RoleRank(role) {
				return warden.Errorf(warden.EFORBIDDEN, "role %s required", role)
			}
			return next(c)
		}
	}
}
