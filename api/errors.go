package api

import (
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
)

// statusOf maps a domain error code to its HTTP status.
var statusOf = map[string]int{
	warden.EINVALID:          http.StatusBadRequest,
	warden.EUNAUTHORIZED:     http.StatusUnauthorized,
	warden.EFORBIDDEN:        http.StatusForbidden,
	warden.ENOTFOUND:         http.StatusNotFound,
	warden.EMETHODNOTALLOWED: http.StatusMethodNotAllowed,
	warden.ENOTACCEPTABLE:    http.StatusNotAcceptable,
	warden.EREQUESTTIMEOUT:   http.StatusRequestTimeout,
	warden.ECONFLICT:         http.StatusConflict,
	warden.EPRECONDITION:     http.StatusPreconditionFailed,
	warden.ETOOLARGE:         http.StatusRequestEntityTooLarge,
	warden.EUNSUPPORTEDMEDIA: http.StatusUnsupportedMediaType,
	warden.ERATELIMITED:      http.StatusTooManyRequests,
	warden.EUNAVAILABLE:      http.StatusServiceUnavailable,
	warden.ETIMEOUT:          http.StatusGatewayTimeout,
	warden.EINTERNAL:         http.StatusInternalServerError,
	warden.EQUOTAJOBS:        http.StatusTooManyRequests,
	warden.EQUOTABYTES:       http.StatusRequestEntityTooLarge,
}

// quotaRetryAfter is the Retry-After of EQUOTAJOBS: a slot frees when one
// of the org's jobs ends, which nothing predicts.
const quotaRetryAfter = 30 * time.Second

// codeOfStatus maps echo's own HTTP errors (unknown route, wrong method…)
// back to domain codes. The quota codes share their statuses with
// ERATELIMITED and ETOOLARGE and are never the answer.
func codeOfStatus(status int) string {
	for code, s := range statusOf {
		if s == status && code != warden.EQUOTAJOBS && code != warden.EQUOTABYTES {
			return code
		}
	}
	if status >= 500 {
		return warden.EINTERNAL
	}
	return warden.EINVALID
}

// apiError is an error as a surface renders it.
type apiError struct {
	Status    int
	Code      string
	Message   string
	Details   map[string]string
	OAuthCode string // the RFC 6749 code of an oauthError, for renderTokenError
}

// errorRenderer writes an error in one surface's shape.
type errorRenderer func(c echo.Context, e apiError) error

// routeGroup is the routes of one surface under a path prefix, with the
// renderer of that surface's error shape.
type routeGroup struct {
	s      *Server
	prefix string
	render errorRenderer
}

const rendererKey = "warden.error_renderer"

// group registers a surface's error renderer for the routes added through
// the returned group and for unmatched paths under prefix.
func (s *Server) group(prefix string, render errorRenderer) *routeGroup {
	g := &routeGroup{s: s, prefix: prefix, render: render}
	s.groups = append(s.groups, g)
	sort.SliceStable(s.groups, func(i, j int) bool { return len(s.groups[i].prefix) > len(s.groups[j].prefix) })
	return g
}

// add registers a route of the group.
func (g *routeGroup) add(r route, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	g.s.add(r, h, append([]echo.MiddlewareFunc{g.mark}, mw...)...)
}

// mark records the group's renderer on the request, before any other
// middleware can fail it.
func (g *routeGroup) mark(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(rendererKey, g.render)
		return next(c)
	}
}

// rendererFor is the renderer of the request's route group; for a path no
// route matched (404, 405), the group whose prefix it has.
func (s *Server) rendererFor(c echo.Context) errorRenderer {
	if r, ok := c.Get(rendererKey).(errorRenderer); ok {
		return r
	}
	path := c.Request().URL.Path
	for _, g := range s.groups {
		if path == g.prefix || strings.HasPrefix(path, g.prefix+"/") {
			return g.render
		}
	}
	return renderPlatformError
}

// handleError renders every error in the shape of the surface the request
// belongs to. Internal errors are logged once, here, and never leak their
// text.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := apiError{Code: warden.ErrorCode(err), Message: warden.ErrorMessage(err), Details: warden.ErrorDetails(err)}
	var he *echo.HTTPError
	var oe *oauthError
	if errors.As(err, &oe) {
		e = apiError{Status: oe.Status, Code: codeOfStatus(oe.Status), Message: oe.Description, OAuthCode: oe.Code}
	} else if errors.As(err, &he) && !isDomain(err) {
		e.Code, e.Status = codeOfStatus(he.Code), he.Code
		e.Message = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			e.Message = m
		}
	}
	if e.Status == 0 {
		e.Status = statusOf[e.Code]
	}
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.Code == warden.EQUOTAJOBS {
		e.Details = maps.Clone(e.Details)
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["retry_after_seconds"] = retryAfter(c, quotaRetryAfter)
	}
	if e.Status >= 500 {
		slog.Error("request failed", "err", err, "method", c.Request().Method, "path", c.Path(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(e.Status)
	} else {
		err = s.rendererFor(c)(c, e)
	}
	if err != nil {
		slog.Warn("writing error response failed", "err", err)
	}
}

// renderSandboxError is spec 002's shape: {code, message, details}.
func renderSandboxError(c echo.Context, e apiError) error {
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	return c.JSON(e.Status, map[string]any{"code": e.Code, "message": e.Message, "details": details})
}

// jobIDKey is the context key under which verification handlers store the
// job id an error relates to, so the error shape can carry it.
const jobIDKey = "warden.job_id"

// renderVerifyError is spec 003's shape: {error, detail, job_id}.
func renderVerifyError(c echo.Context, e apiError) error {
	b := map[string]any{"error": e.Message}
	if len(e.Details) > 0 {
		b["detail"] = detailString(e.Details)
	}
	if id, ok := c.Get(jobIDKey).(string); ok && id != "" {
		b["job_id"] = id
	}
	return c.JSON(e.Status, b)
}

// detailString joins details as "field: reason" in the order of the
// field names, so the same error always reads the same.
func detailString(details map[string]string) string {
	parts := make([]string, 0, len(details))
	for _, k := range slices.Sorted(maps.Keys(details)) {
		parts = append(parts, k+": "+details[k])
	}
	return strings.Join(parts, "; ")
}

// renderPlatformError serves the operational routes (/health, /metrics,
// docs) and paths no surface claims: spec 003's shape, since /health is
// that spec's.
var renderPlatformError errorRenderer = renderVerifyError

func isDomain(err error) bool {
	var e *warden.Error
	return errors.As(err, &e)
}

// invalid returns an EINVALID error with one field detail.
func invalid(field, msg string) error {
	return &warden.Error{Code: warden.EINVALID, Message: msg, Details: map[string]string{field: msg}}
}
