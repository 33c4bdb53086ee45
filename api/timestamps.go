package api

import (
	"encoding/json"
	"time"
)

// timeLayout is how the API writes every instant: RFC 3339 in UTC with
// exactly six fractional digits (PostgreSQL keeps microseconds), whatever
// the time zone of the database session or of this process.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// formatTime writes t in timeLayout.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Timestamp is an instant in a response document, written by formatTime.
// A nil *Timestamp is JSON null.
type Timestamp time.Time

// MarshalJSON writes the instant as a timeLayout string.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + formatTime(time.Time(t)) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 instant, for clients of these types.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var v time.Time
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = Timestamp(v)
	return nil
}
