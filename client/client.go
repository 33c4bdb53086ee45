// Package client is a typed HTTP client of Warden's API: verification
// (spec 003), attacks (spec 002), AISpectra analyses (spec 000), the
// platform's jobs and webhook deliveries. It decodes every error shape the
// API answers (spec 002's {code, message, details}, spec 003's
// {error, detail}, AISpectra's {code, message, errors}, RFC 6749's
// {error, error_description}) into *Error. It imports nothing of the
// server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client calls one Warden API with one org's credentials: an API key with
// its org id (x-api-key and Org-Id), or an OAuth2 access token (Bearer).
// Without credentials only anonymous verification works.
type Client struct {
	BaseURL string // e.g. http://localhost:8000
	OrgID   string
	APIKey  string
	Token   string       // bearer access token; used instead of APIKey when set
	HTTP    *http.Client // nil: a client with a 60 s timeout per request
	// UserAgent is sent with every request ("" for warden-cli).
	UserAgent string
}

// Error is an error answer of the API, whatever its shape.
type Error struct {
	Status  int               // HTTP status
	Code    string            // domain code (invalid, unauthorized…), or the OAuth2 error code
	Message string            // the API's message
	Details map[string]string // field → reason
	Detail  string            // spec 003's detail string, when the shape has one
}

// Error renders the error on one line: "HTTP 400 invalid: Invalid attack
// launch (model_id: required)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	msg := e.Message
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		if e.Details[k] == e.Message { // invalid(field, msg): name the field once
			msg = k + ": " + msg
		} else {
			parts = append(parts, k+": "+e.Details[k])
		}
	}
	if msg != "" {
		b.WriteString(": " + msg)
	}
	if len(parts) == 0 && e.Detail != "" {
		parts = []string{e.Detail}
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, "; ") + ")")
	}
	return oneLine(b.String())
}

// Unauthorized reports a refusal of the credentials (401) or of their
// role (403).
func (e *Error) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// oneLine folds whitespace runs (newlines included) into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// decodeError reads an error answer in any of the API's shapes; a body
// that is not JSON (a proxy's HTML page) gives the status text and the
// body's first characters.
func decodeError(status int, body []byte) *Error {
	e := &Error{Status: status}
	var doc struct {
		Code             string          `json:"code"`
		Message          string          `json:"message"`
		Details          json.RawMessage `json:"details"`
		Error            json.RawMessage `json:"error"`
		Detail           string          `json:"detail"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &doc) != nil {
		e.Message = http.StatusText(status)
		if t := oneLine(string(body)); t != "" {
			if len(t) > 200 {
				t = t[:200] + "…"
			}
			e.Message += ": " + t
		}
		return e
	}
	e.Code, e.Message, e.Detail = doc.Code, doc.Message, doc.Detail
	var details map[string]any
	if json.Unmarshal(doc.Details, &details) == nil && len(details) > 0 {
		e.Details = make(map[string]string, len(details))
		for k, v := range details {
			if s, ok := v.(string); ok {
				e.Details[k] = s
			} else {
				b, _ := json.Marshal(v)
				e.Details[k] = string(b)
			}
		}
	}
	var errStr string
	if json.Unmarshal(doc.Error, &errStr) == nil && errStr != "" {
		if doc.ErrorDescription != "" || doc.Code == "" && doc.Message == "" && doc.Detail == "" && isOAuthCode(errStr) {
			e.Code, e.Message = errStr, doc.ErrorDescription // RFC 6749 §5.2
		} else if e.Message == "" {
			e.Message = errStr // spec 003
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func isOAuthCode(s string) bool {
	switch s {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
		return true
	}
	return false
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// request is one call: a method and path, an optional body with its type
// and length (-1 unknown), and what the answer decodes into.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	contentType  string
	length       int64
	anonymous    bool // send no credentials
}

// Raw is an answer's JSON body as the API sent it.
type Raw = json.RawMessage

// do sends r and returns the body of a 2xx answer; any other status is an
// *Error.
func (c *Client) do(ctx context.Context, r request) (Raw, error) {
	if c.BaseURL == "" {
		return nil, errors.New("no API URL: set --url, WARDEN_CLIENT_URL or \"url\" in the config file")
	}
	u := strings.TrimRight(c.BaseURL, "/") + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.body != nil {
		req.ContentLength = r.length
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	ua := c.UserAgent
	if ua == "" {
		ua = "warden-cli"
	}
	req.Header.Set("User-Agent", ua)
	if !r.anonymous {
		switch {
		case c.Token != "":
			req.Header.Set("Authorization", "Bearer "+c.Token)
		case c.APIKey != "":
			req.Header.Set("x-api-key", c.APIKey)
			req.Header.Set("Org-Id", c.OrgID)
		}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp.StatusCode, body)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("%s %s: the answer is not JSON (%s)", r.method, r.path, resp.Header.Get("Content-Type"))
	}
	return body, nil
}

// call sends r and decodes the answer into out (unless nil), returning
// the raw body as well.
func (c *Client) call(ctx context.Context, r request, out any) (Raw, error) {
	raw, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.path, err)
		}
	}
	return raw, nil
}

// postJSON sends v as a JSON body.
func (c *Client) postJSON(ctx context.Context, path string, v, out any) (Raw, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, request{method: http.MethodPost, path: path, body: bytes.NewReader(b), contentType: "application/json", length: int64(len(b))}, out)
}

// Authenticated reports whether the client has credentials.
func (c *Client) Authenticated() bool { return c.Token != "" || c.APIKey != "" }

// AccessToken exchanges an OAuth2 client's id and secret for an access token
// (POST /v1/auth/token, client credentials grant).
func (c *Client) AccessToken(ctx context.Context, clientID, clientSecret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}}.Encode()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/token", body: strings.NewReader(form),
		contentType: "application/x-www-form-urlencoded", length: int64(len(form)), anonymous: true}, &out)
	if err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", errors.New("POST /v1/auth/token: no access_token in the answer")
	}
	return out.AccessToken, nil
}

func pageQuery(limit, offset int) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	return q
}
