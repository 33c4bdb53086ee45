package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// The results UI (/ui) is server-rendered HTML for people: sign in with an
// org's API key, watch the org's jobs live, read attack, verification and
// analysis results. Its pages, CSS and script are embedded; nothing is
// fetched from elsewhere, and the Content-Security-Policy allows only the
// UI's own script and style.

//go:embed ui
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("ui").Funcs(uiFuncs).ParseFS(uiFiles, "ui/*.html"))

const (
	uiCookie      = "warden_ui"       // the session: an opaque token, its data in Redis
	uiLoginCookie = "warden_ui_login" // the login form's CSRF token, before there is a session
	uiSessionTTL  = 8 * time.Hour
	uiSessionKey  = "warden.ui.session"
	// uiCSP allows the UI's own script, style, images (data: for the
	// inlined PNGs), the event stream and the analysis report's frame.
	uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	// uiReportCSP is the analysis report's: its inline style and images,
	// no script, framed by the UI only.
	uiReportCSP = "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'self'"
)

// uiSession is what Redis holds for a signed-in browser, under the
// SHA-256 of the cookie's token (so a read of Redis yields no cookie).
type uiSession struct {
	OrgID        string    `json:"org_id"`
	CredentialID string    `json:"credential_id"`
	CSRF         string    `json:"csrf"` // the token forms of this session carry
	Expires      time.Time `json:"expires"`
	key          string
}

func uiRedisKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "warden:ui:session:" + hex.EncodeToString(sum[:])
}

// routesUI registers the results UI under /ui. Pages answer errors as
// HTML; a page that needs a session redirects to /ui/login without one.
func (s *Server) routesUI() {
	g := s.group("/ui", s.renderUIError)
	page := s.limit(bucket{"ip", s.Config.RateGeneral})
	login := s.limit(bucket{"token", s.Config.RateToken}) // as POST /v1/auth/token: a key guesser meets 429
	add := func(method, p string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
		s.e.Add(method, p, h, append([]echo.MiddlewareFunc{g.mark, uiHeaders}, mw...)...)
	}
	add(http.MethodGet, "/ui/static/:name", s.uiStatic)
	add(http.MethodGet, "/ui/login", s.uiLoginForm, page)
	add(http.MethodPost, "/ui/login", s.uiLogin, login)
	add(http.MethodPost, "/ui/logout", s.uiLogout, page, s.uiAuth)
	add(http.MethodGet, "/ui", s.uiJobs, page, s.uiAuth)
	add(http.MethodGet, "/ui/events", s.uiEvents, page, s.uiAuth)
	add(http.MethodGet, "/ui/jobs/:id", s.uiJob, page, s.uiAuth)
	add(http.MethodGet, "/ui/jobs/:id/report", s.uiReport, page, s.uiAuth)
	add(http.MethodGet, "/ui/jobs/:id/artifacts/:name", s.uiArtifact, page, s.uiAuth)
}

// uiHeaders sets the UI's Content-Security-Policy and keeps its pages out
// of caches and referrers.
func uiHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

// uiView is what every page template draws around its own data.
type uiView struct {
	Title   string
	OrgID   string
	Role    string
	CSRF    string // the session's, for the logout form (or the login form's)
	Message string // an error to show
	Data    any
}

// renderUI writes a page.
func (s *Server) renderUI(c echo.Context, status int, name string, v uiView) error {
	if sess := uiSessionOf(c); sess != nil {
		v.OrgID, v.CSRF = sess.OrgID, sess.CSRF
		if p := principal(c); p != nil {
			v.Role = p.Role
		}
	}
	var buf strings.Builder
	if err := uiTemplates.ExecuteTemplate(&buf, name, v); err != nil {
		return fmt.Errorf("ui template %s: %w", name, err)
	}
	return c.HTML(status, buf.String())
}

// renderUIError answers an error as an HTML page; 401 sends a page GET to
// the login form.
func (s *Server) renderUIError(c echo.Context, e apiError) error {
	if e.Status == http.StatusUnauthorized && c.Request().Method == http.MethodGet && c.Path() != "/ui/events" {
		return c.Redirect(http.StatusSeeOther, "/ui/login")
	}
	if c.Path() == "/ui/events" || c.Path() == "/ui/jobs/:id/artifacts/:name" {
		return c.String(e.Status, e.Message)
	}
	c.Response().Header().Set("Content-Security-Policy", uiCSP)
	msg := e.Message
	if e.Status >= 500 {
		msg = "Something went wrong on our side; the request id is " + c.Response().Header().Get(echo.HeaderXRequestID) + "."
	}
	return s.renderUI(c, e.Status, "error.html", uiView{Title: http.StatusText(e.Status), Message: msg, Data: e.Status})
}

var uiStaticTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

// uiStatic serves the embedded CSS and script.
func (s *Server) uiStatic(c echo.Context) error {
	name := c.Param("name")
	ct, ok := uiStaticTypes[path.Ext(name)]
	if !ok || strings.ContainsAny(name, "/\\") {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	}
	b, err := fs.ReadFile(uiFiles, "ui/static/"+name)
	if errors.Is(err, fs.ErrNotExist) {
		return warden.Errorf(warden.ENOTFOUND, "not found")
	} else if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, ct, b)
}

// secureCookies is true when the API is served over https.
func (s *Server) secureCookies() bool {
	return strings.HasPrefix(strings.ToLower(s.Config.PublicURL), "https://")
}

func (s *Server) setCookie(c echo.Context, name, value, path string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode})
}

// uiLoginForm shows the sign-in form with a fresh CSRF token, kept in a
// cookie that the form must echo (double submit).
func (s *Server) uiLoginForm(c echo.Context) error {
	if sess, err := s.loadUISession(c); err == nil && sess != nil {
		return c.Redirect(http.StatusSeeOther, "/ui")
	}
	return s.loginPage(c, http.StatusOK, "")
}

func (s *Server) loginPage(c echo.Context, status int, msg string) error {
	token := rand.Text()
	s.setCookie(c, uiLoginCookie, token, "/ui/login", 3600)
	return s.renderUI(c, status, "login.html", uiView{Title: "Sign in", CSRF: token, Message: msg})
}

// sameToken compares a submitted CSRF token with the expected one in
// constant time; an empty expected token matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// uiLogin checks the form's CSRF token, then the org id and API key as
// x-api-key and Org-Id are checked, and opens a session.
func (s *Server) uiLogin(c echo.Context) error {
	ctx := c.Request().Context()
	cookie, _ := c.Cookie(uiLoginCookie)
	if cookie == nil || !sameToken(c.FormValue("csrf"), cookie.Value) {
		return warden.Errorf(warden.EFORBIDDEN, "The form expired or was not sent by this site; reload the sign-in page and try again.")
	}
	orgID, key := strings.TrimSpace(c.FormValue("org_id")), strings.TrimSpace(c.FormValue("api_key"))
	if orgID == "" || key == "" {
		return s.loginPage(c, http.StatusBadRequest, "Enter your org id and an API key.")
	}
	p, err := s.DB.AuthenticateAPIKey(ctx, orgID, key)
	if code := warden.ErrorCode(err); code == warden.EUNAUTHORIZED || code == warden.ENOTFOUND {
		slog.Info("ui sign-in refused", "org_id", orgID, "ip", c.RealIP())
		return s.loginPage(c, http.StatusUnauthorized, "That org id and API key do not match an active key.")
	} else if err != nil {
		return err
	}
	if records.RoleRank(p.Role) < records.RoleRank(records.RoleViewer) {
		return s.loginPage(c, http.StatusForbidden, "This key has no role that may read results.")
	}
	if old, _ := c.Cookie(uiCookie); old != nil && old.Value != "" { // a fresh token at each sign-in: no session fixation
		if err := s.rdb.Del(ctx, uiRedisKey(old.Value)).Err(); err != nil {
			slog.Warn("deleting the replaced ui session", "err", err)
		}
	}
	token := rand.Text() + rand.Text() // 256 bits
	sess := uiSession{OrgID: p.OrgID, CredentialID: p.CredentialID, CSRF: rand.Text(), Expires: time.Now().Add(uiSessionTTL).UTC()}
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, uiRedisKey(token), b, uiSessionTTL).Err(); err != nil {
		return fmt.Errorf("store ui session: %w", err)
	}
	s.setCookie(c, uiLoginCookie, "", "/ui/login", -1)
	s.setCookie(c, uiCookie, token, "/ui", int(uiSessionTTL/time.Second))
	slog.Info("ui sign-in", "org_id", p.OrgID, "credential_id", p.CredentialID)
	return c.Redirect(http.StatusSeeOther, "/ui")
}

// uiLogout ends the session (its CSRF token required) and forgets the
// cookie.
func (s *Server) uiLogout(c echo.Context) error {
	sess := uiSessionOf(c)
	if !sameToken(c.FormValue("csrf"), sess.CSRF) {
		return warden.Errorf(warden.EFORBIDDEN, "The form expired or was not sent by this site; reload the page and try again.")
	}
	if err := s.rdb.Del(c.Request().Context(), sess.key).Err(); err != nil {
		return fmt.Errorf("delete ui session: %w", err)
	}
	s.setCookie(c, uiCookie, "", "/ui", -1)
	return c.Redirect(http.StatusSeeOther, "/ui/login")
}

// errNoSession is a missing, unknown, expired or revoked session.
var errNoSession = warden.Errorf(warden.EUNAUTHORIZED, "sign in first")

// loadUISession reads the request's session; nil without a cookie.
func (s *Server) loadUISession(c echo.Context) (*uiSession, error) {
	cookie, err := c.Cookie(uiCookie)
	if err != nil || cookie.Value == "" {
		return nil, nil
	}
	return s.sessionByKey(c.Request().Context(), uiRedisKey(cookie.Value))
}

// sessionByKey loads a session and checks that its credential still
// exists unrevoked in its org; errNoSession otherwise (and a revoked
// credential's session is deleted).
func (s *Server) sessionByKey(ctx context.Context, key string) (*uiSession, error) {
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errNoSession
	} else if err != nil {
		return nil, fmt.Errorf("load ui session: %w", err)
	}
	var sess uiSession
	if err := json.Unmarshal(b, &sess); err != nil || time.Now().After(sess.Expires) {
		return nil, errNoSession
	}
	sess.key = key
	return &sess, nil
}

// sessionPrincipal is the session's caller with the credential's current
// role; errNoSession once the credential is revoked or gone.
func (s *Server) sessionPrincipal(ctx context.Context, sess *uiSession) (*storage.Principal, error) {
	cred, err := s.DB.GetCredential(ctx, sess.CredentialID)
	if warden.ErrorCode(err) == warden.ENOTFOUND || err == nil && (cred.RevokedAt != nil || cred.OrgID != sess.OrgID) {
		if err := s.rdb.Del(ctx, sess.key).Err(); err != nil {
			slog.Warn("deleting a revoked credential's ui session", "err", err)
		}
		return nil, errNoSession
	} else if err != nil {
		return nil, err
	}
	return &storage.Principal{OrgID: cred.OrgID, CredentialID: cred.ID, Role: cred.Role}, nil
}

// uiAuth demands a session whose credential is still valid with at least
// the viewer role, and spends the credential's rate budget.
func (s *Server) uiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, err := s.loadUISession(c)
		if err != nil {
			return err
		}
		if sess == nil {
			return errNoSession
		}
		p, err := s.sessionPrincipal(c.Request().Context(), sess)
		if err != nil {
			return err
		}
		if records.RoleRank(p.Role) < records.RoleRank(records.RoleViewer) {
			return warden.Errorf(warden.EFORBIDDEN, "role %s required", records.RoleViewer)
		}
		if err := s.spend(c, spend{"cred", p.CredentialID, s.Config.RateCredential}); err != nil {
			return err
		}
		c.Set(principalKey, p)
		c.Set(uiSessionKey, sess)
		return next(c)
	}
}

func uiSessionOf(c echo.Context) *uiSession {
	sess, _ := c.Get(uiSessionKey).(*uiSession)
	return sess
}
