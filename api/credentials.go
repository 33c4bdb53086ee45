package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden/records"
)

// CredentialResponse is a credential as the API lists it; the secret is
// only ever in the creation response.
type CredentialResponse struct {
	ID        string     `json:"id"` // the client_id of an oauth_client
	Kind      string     `json:"kind"`
	Role      string     `json:"role"`
	CreatedAt Timestamp  `json:"created_at"`
	RevokedAt *Timestamp `json:"revoked_at"`
}

// NewCredentialResponse adds the secret, shown once: an oauth_client's
// client_secret, or the whole x-api-key value of an api_key.
type NewCredentialResponse struct {
	CredentialResponse
	OrgID  string `json:"org_id"`
	Secret string `json:"secret"`
}

type credentialRequest struct {
	Kind string `json:"kind"`
	Role string `json:"role"`
}

func credentialResponse(c records.Credential) CredentialResponse {
	return CredentialResponse{ID: c.ID, Kind: c.Kind, Role: c.Role, CreatedAt: Timestamp(c.CreatedAt), RevokedAt: (*Timestamp)(c.RevokedAt)}
}

func (s *Server) postCredential(c echo.Context) error {
	var body credentialRequest
	if err := decodeBody(c, &body, 4<<10); err != nil {
		return err
	}
	if body.Kind != records.CredentialClient && body.Kind != records.CredentialAPIKey {
		return invalid("kind", "kind must be oauth_client or api_key")
	}
	if records.RoleRank(body.Role) == 0 {
		return invalid("role", "role must be viewer, developer or admin")
	}
	ctx := c.Request().Context()
	org := orgOf(c)
	id, secret, err := s.DB.CreateCredential(ctx, org, body.Kind, body.Role)
	if err != nil {
		return err
	}
	cred, err := s.DB.GetCredential(ctx, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, NewCredentialResponse{CredentialResponse: credentialResponse(cred), OrgID: org, Secret: secret})
}

func (s *Server) listCredentials(c echo.Context) error {
	limit, offset, err := pagination(c)
	if err != nil {
		return err
	}
	cs, total, err := s.DB.ListCredentials(c.Request().Context(), orgOf(c), limit, offset)
	if err != nil {
		return err
	}
	data := make([]CredentialResponse, 0, len(cs))
	for _, cr := range cs {
		data = append(data, credentialResponse(cr))
	}
	return c.JSON(http.StatusOK, map[string]any{"total": total, "limit": limit, "offset": offset, "data": data})
}

// deleteCredential revokes a credential of the caller's org: its API key or
// client secret stops authenticating at once, and so do access tokens
// already issued to the client.
func (s *Server) deleteCredential(c echo.Context) error {
	cred, err := s.DB.RevokeCredential(c.Request().Context(), orgOf(c), c.Param("credential_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, credentialResponse(cred))
}
