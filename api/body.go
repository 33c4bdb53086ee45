package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/outbound"
)

// multipartOverhead is the room the multipart envelope and small form
// fields get on top of the file size cap.
const multipartOverhead = 64 << 10

var errFileTooLarge = errors.New("file exceeds the size limit")

// capReader fails with errFileTooLarge once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errFileTooLarge
	}
	return n, err
}

// bodyError maps body read failures to 413 or 400.
func bodyError(err error, max int64) error {
	var mbe *http.MaxBytesError
	var we *warden.Error
	switch {
	case errors.Is(err, errFileTooLarge), errors.As(err, &mbe), errors.Is(err, outbound.ErrTooLarge):
		return tooLarge(max)
	case errors.As(err, &we):
		return err
	}
	return invalid("file", "malformed multipart body: "+err.Error())
}

func sanitizeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, name)
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// decodeJSON reads a JSON body of at most max bytes, refusing unknown fields.
func decodeJSON(c echo.Context, v any, max int64) error {
	req := c.Request()
	if req.ContentLength > max {
		return &warden.Error{Code: warden.ETOOLARGE, Message: "Request body too large"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &warden.Error{Code: warden.ETOOLARGE, Message: "Request body too large"}
		}
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid JSON body", Details: map[string]string{"body": err.Error()}}
	}
	if dec.More() {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid JSON body", Details: map[string]string{"body": "trailing data after the JSON object"}}
	}
	return nil
}
