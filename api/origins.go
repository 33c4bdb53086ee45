package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/wardenlab/warden"
)

// origins are the browser origins the API trusts: its own (from
// WARDEN_PUBLIC_URL) and those of WARDEN_CORS_ORIGINS, which also get CORS
// headers.
type origins struct {
	own  string
	cors map[string]bool
}

func newOrigins(publicURL string, cors []string) origins {
	o := origins{cors: map[string]bool{}}
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		o.own = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	for _, c := range cors {
		o.cors[strings.ToLower(c)] = true
	}
	return o
}

func (o origins) allowed(origin string) bool {
	origin = strings.ToLower(origin)
	return origin == o.own || o.cors[origin]
}

// corsHeaders lists what a browser page on an allowed origin may send and
// read.
var (
	corsMethods       = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete}
	corsAllowHeaders  = []string{echo.HeaderAuthorization, "x-api-key", "Org-Id", echo.HeaderContentType}
	corsExposeHeaders = []string{"Retry-After", echo.HeaderXRequestID, echo.HeaderWWWAuthenticate, echo.HeaderContentDisposition}
)

// corsMiddleware answers preflights and adds CORS headers for the WARDEN_CORS_ORIGINS
// origins only; nil when there are none (no CORS headers at all).
func (o origins) corsMiddleware() echo.MiddlewareFunc {
	if len(o.cors) == 0 {
		return nil
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return o.cors[strings.ToLower(origin)], nil },
		AllowMethods:    corsMethods,
		AllowHeaders:    corsAllowHeaders,
		ExposeHeaders:   corsExposeHeaders,
		MaxAge:          600,
	})
}

// refuseCrossSite refuses, with 403, a state-changing request that a
// browser marks as sent by a page of another site: an Origin that is
// neither the API's own nor an allowed CORS origin, or, without Origin, a
// Sec-Fetch-Site of cross-site or same-site (a sibling subdomain is not
// the API). Any page can make its visitors' browsers send forms and
// text/plain bodies anywhere without a preflight, and the routes accept
// forms; this keeps other sites from driving them (anonymous verify-url
// above all) through their visitors, including onto addresses only the
// visitor reaches. Clients that are not browsers send neither header.
func (o origins) refuseCrossSite(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if origin := r.Header.Get(echo.HeaderOrigin); origin != "" {
			if o.allowed(origin) {
				return next(c)
			}
			return errCrossSite("origin", origin)
		}
		if site := strings.ToLower(r.Header.Get("Sec-Fetch-Site")); site == "cross-site" || site == "same-site" {
			return errCrossSite("sec_fetch_site", site)
		}
		return next(c)
	}
}

// errCrossSite names the header that showed the request cross-site.
func errCrossSite(header, value string) error {
	return &warden.Error{Code: warden.EFORBIDDEN,
		Message: "Cross-site browser request refused: only the API's own origin (WARDEN_PUBLIC_URL) and WARDEN_CORS_ORIGINS may change state from a browser",
		Details: map[string]string{header: value}}
}
