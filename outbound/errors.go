package outbound

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors. Every error returned by this package that belongs to one
// of these classes wraps the sentinel, so callers map them with errors.Is.
var (
	// ErrForbiddenAddress: the target (literal IP, resolved IP or hostname)
	// is on the block list and not on the allow-list. The concrete error is
	// a *BlockedError carrying the address and the reason.
	ErrForbiddenAddress = errors.New("outbound: forbidden address")
	// ErrTooLarge: the response body exceeds the caller's byte cap.
	ErrTooLarge = errors.New("outbound: response too large")
	// ErrTooManyRedirects: more redirects than Config.MaxRedirects.
	ErrTooManyRedirects = errors.New("outbound: too many redirects")
	// ErrBadURL: the URL does not parse, has a scheme other than http or
	// https, has no host, or has an invalid port or ambiguous numeric host.
	ErrBadURL = errors.New("outbound: bad URL")
	// ErrHTTPStatus: the server answered with a non-2xx status. The concrete
	// error is a *StatusError carrying the code.
	ErrHTTPStatus = errors.New("outbound: unexpected HTTP status")
)

// BlockedError reports a refused target. It unwraps to ErrForbiddenAddress.
type BlockedError struct {
	Host   string     // the host name or address as requested (no userinfo)
	IP     netip.Addr // the refused IP; invalid when refused by name
	Reason string     // e.g. "private address", "cloud metadata hostname"
}

func (e *BlockedError) Error() string {
	if !e.IP.IsValid() {
		return fmt.Sprintf("refusing to connect to %s: %s", e.Host, e.Reason)
	}
	ip := e.IP.String()
	if e.Host == "" || e.Host == ip {
		return fmt.Sprintf("refusing to connect to %s: %s", ip, e.Reason)
	}
	return fmt.Sprintf("refusing to connect to %s (%s): %s", ip, e.Host, e.Reason)
}

// Unwrap returns ErrForbiddenAddress.
func (e *BlockedError) Unwrap() error { return ErrForbiddenAddress }

// StatusError reports a non-2xx response. It unwraps to ErrHTTPStatus.
type StatusError struct {
	Code   int    // e.g. 404
	Status string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("unexpected HTTP status %s", e.Status)
}

// Unwrap returns ErrHTTPStatus.
func (e *StatusError) Unwrap() error { return ErrHTTPStatus }

// badURL wraps ErrBadURL with context.
func badURL(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, args...))
}
