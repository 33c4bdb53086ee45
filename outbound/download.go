package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// sniffLen is how many leading bytes http.DetectContentType looks at.
const sniffLen = 512

// Download GETs rawURL and streams the body to w, writing at most maxBytes
// bytes. It returns the number of bytes written and the content type sniffed
// from the first 512 bytes with http.DetectContentType ("" for an empty
// body); the server's Content-Type header is not trusted.
//
// The URL is validated first (ErrBadURL, ErrForbiddenAddress) and every
// connection and redirect is guarded as described in the package doc. A
// non-2xx answer fails with a *StatusError (ErrHTTPStatus). A body larger
// than maxBytes fails with ErrTooLarge: early, without reading the body, when
// Content-Length announces it, otherwise after reading at most maxBytes+1
// bytes. Download honours ctx and Config.Timeout, which bounds the whole
// transfer. On error, n reports what was already written to w; the caller
// should discard it.
func (c *Client) Download(ctx context.Context, rawURL string, w io.Writer, maxBytes int64) (n int64, contentType string, err error) {
	if maxBytes <= 0 {
		return 0, "", fmt.Errorf("outbound: maxBytes must be positive, got %d", maxBytes)
	}
	u, err := c.ValidateURL(rawURL)
	if err != nil {
		return 0, "", err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, "", badURL("%v", err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	hc := *c.hc
	hc.Timeout = 0 // the context deadline above covers the transfer
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error // repeats method and URL; keep only the cause
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, "", fmt.Errorf("outbound: GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, "", fmt.Errorf("outbound: GET %s: %w", u.Redacted(),
			&StatusError{Code: resp.StatusCode, Status: resp.Status})
	}
	if resp.ContentLength > maxBytes {
		return 0, "", fmt.Errorf("%w: Content-Length %d exceeds limit of %d bytes",
			ErrTooLarge, resp.ContentLength, maxBytes)
	}
	body := io.Reader(resp.Body)
	if c.wrapBody != nil {
		body = c.wrapBody(body)
	}
	return copyCapped(w, body, maxBytes)
}

// copyCapped copies r to w, sniffing the content type of the first bytes.
// It writes at most max bytes and reads at most max+1: if a byte remains
// after max, the copy fails with ErrTooLarge.
func copyCapped(w io.Writer, r io.Reader, max int64) (n int64, contentType string, err error) {
	head := make([]byte, min(sniffLen, max))
	m, err := io.ReadFull(r, head)
	head = head[:m]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, "", fmt.Errorf("outbound: reading body: %w", err)
	}
	if m == 0 {
		return 0, "", nil // empty body
	}
	contentType = http.DetectContentType(head)
	k, err := w.Write(head)
	n += int64(k)
	if err != nil {
		return n, contentType, fmt.Errorf("outbound: writing body: %w", err)
	}
	if m < cap(head) {
		return n, contentType, nil // body ended inside the sniff window
	}
	copied, err := io.Copy(w, io.LimitReader(r, max-n))
	n += copied
	if err != nil {
		return n, contentType, fmt.Errorf("outbound: copying body: %w", err)
	}
	if n < max {
		return n, contentType, nil // LimitReader stopped early: body ended
	}
	var one [1]byte
	switch k, err := io.ReadFull(r, one[:]); {
	case k > 0:
		return n, contentType, fmt.Errorf("%w: body exceeds limit of %d bytes", ErrTooLarge, max)
	case errors.Is(err, io.EOF):
		return n, contentType, nil
	default:
		return n, contentType, fmt.Errorf("outbound: reading body: %w", err)
	}
}
