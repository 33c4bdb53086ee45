// Package warden holds the domain types shared by every layer of Warden: the
// error codes that each API surface renders in its own spec's shape.
package warden

import (
	"errors"
	"fmt"
)

// Error codes. Each API surface maps them to HTTP status codes and renders
// them in its own error shape; handlers never format errors by hand.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOLARGE     = "too_large"
	ERATELIMITED  = "rate_limited"
	EUNAVAILABLE  = "unavailable"
	ETIMEOUT      = "timeout"
	// EPRECONDITION: a request well formed but not allowed in the state
	// or combination it names (AISpectra's 412).
	EPRECONDITION = "precondition_failed"

	// Per-org quotas (WARDEN_ORG_MAX_*): a submission refused because its
	// org already holds as much as it may. EQUOTAJOBS is answered 429
	// with Retry-After (a slot frees when a job ends), EQUOTABYTES 413.
	EQUOTAJOBS  = "job_quota_exceeded"
	EQUOTABYTES = "storage_quota_exceeded"

	// Protocol errors the HTTP layer finds before a handler runs; each
	// keeps its own status (405, 406, 415) on every surface.
	EMETHODNOTALLOWED = "method_not_allowed"
	EREQUESTTIMEOUT   = "request_timeout" // the body did not arrive in time
	ENOTACCEPTABLE    = "not_acceptable"
	EUNSUPPORTEDMEDIA = "unsupported_media_type"
)

// Error is an application error with a machine-readable code, a message safe
// to show to the caller and optional per-field details.
type Error struct {
	Code    string
	Message string
	Details map[string]string
}

func (e *Error) Error() string {
	return fmt.Sprintf("warden error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for internal errors (their text never reaches a caller).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorDetails returns the per-field details of the first *Error in err's chain.
func ErrorDetails(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
