package api

import (
	"github.com/labstack/echo/v4"
)

// checkCallback validates an optional callback_url. Webhooks are signed with
// the org's secret, so anonymous callers cannot ask for one.
func (s *Server) checkCallback(c echo.Context, callback string) error {
	if callback == "" {
		return nil
	}
	if principal(c) == nil {
		return invalid("callback_url", "callback_url requires credentials (x-api-key and Org-Id): webhooks are signed with the org's secret")
	}
	if _, err := s.Outbound.Webhook.ValidateURL(callback); err != nil {
		return invalid("callback_url", err.Error())
	}
	return nil
}
