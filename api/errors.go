package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
)

// statusOf maps a domain error code to its HTTP status.
var statusOf = map[string]int{
	warden.EINVALID:      http.StatusBadRequest,
	warden.EUNAUTHORIZED: http.StatusUnauthorized,
	warden.EFORBIDDEN:    http.StatusForbidden,
	warden.ENOTFOUND:     http.StatusNotFound,
	warden.ECONFLICT:     http.StatusConflict,
	warden.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	warden.ERATELIMITED:  http.StatusTooManyRequests,
	warden.EUNAVAILABLE:  http.StatusServiceUnavailable,
	warden.ETIMEOUT:      http.StatusGatewayTimeout,
	warden.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus maps echo's own HTTP errors (unknown route, wrong method…)
// back to domain codes.
func codeOfStatus(status int) string {
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	if status >= 500 {
		return warden.EINTERNAL
	}
	return warden.EINVALID
}

// jobIDKey is the context key under which verification handlers store the
// job id an error relates to, so the error shape can carry it.
const jobIDKey = "warden.job_id"

// handleError renders every error in the shape of the surface the request
// belongs to: {code,message,details} under /v1, {error,detail,job_id}
// elsewhere (spec 003). Internal errors are logged once, here, and never
// leak their text.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var oe *oauthError
	if errors.As(err, &oe) {
		if err := renderOAuthError(c, oe); err != nil {
			slog.Warn("writing error response failed", "err", err)
		}
		return
	}
	code, msg, details := warden.ErrorCode(err), warden.ErrorMessage(err), warden.ErrorDetails(err)
	var he *echo.HTTPError
	if errors.As(err, &he) && !isDomain(err) {
		code = codeOfStatus(he.Code)
		msg = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			msg = m
		}
	}
	status := statusOf[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		slog.Error("request failed", "err", err, "method", c.Request().Method, "path", c.Path(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	var body any
	if strings.HasPrefix(c.Request().URL.Path, "/v1/") {
		if details == nil {
			details = map[string]string{}
		}
		body = map[string]any{"code": code, "message": msg, "details": details}
	} else {
		b := map[string]any{"error": msg}
		if d := verifyDetail(code, details); d != "" {
			b["detail"] = d
		}
		if id, ok := c.Get(jobIDKey).(string); ok && id != "" {
			b["job_id"] = id
		}
		body = b
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		slog.Warn("writing error response failed", "err", err)
	}
}

func isDomain(err error) bool {
	var e *warden.Error
	return errors.As(err, &e)
}

// verifyDetail flattens details into spec 003's single detail string.
func verifyDetail(code string, details map[string]string) string {
	if len(details) == 0 {
		return ""
	}
	var parts []string
	for k, v := range details {
		parts = append(parts, k+": "+v)
	}
	return strings.Join(parts, "; ")
}

// invalid returns an EINVALID error with one field detail.
func invalid(field, msg string) error {
	return &warden.Error{Code: warden.EINVALID, Message: msg, Details: map[string]string{field: msg}}
}
