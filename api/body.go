package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/outbound"
)

// multipartOverhead is the room the multipart envelope and small form
// fields get on top of the file size cap.
const multipartOverhead = 64 << 10

var errFileTooLarge = errors.New("file exceeds the size limit")

// discardUpload deletes a stored upload whose request failed before any
// row owned it; should the blob store refuse, the reconciler retries.
func (s *Server) discardUpload(ctx context.Context, key string) {
	s.DB.DiscardBlobs(context.WithoutCancel(ctx), s.Blobs, "abandoned upload", key)
}

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
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errBodyTimeout
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

// errBodyTooLarge answers a body over its route's cap.
var errBodyTooLarge = &warden.Error{Code: warden.ETOOLARGE, Message: "Request body too large"}

// decodeBody reads a request body of at most max bytes into v, refusing
// unknown fields. The body may be JSON (application/json or a +json type)
// or a form (application/x-www-form-urlencoded, multipart/form-data) whose
// field names are v's JSON keys (formJSON says how values are read); any
// other type is refused with 415. That forms and text bodies can be sent
// cross-site by any web page is answered by refuseCrossSite, not here.
func decodeBody(c echo.Context, v any, max int64) error {
	req := c.Request()
	mt, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || !acceptedBodyType(mt) {
		return unsupportedBody(req)
	}
	if req.ContentLength > max {
		return errBodyTooLarge
	}
	body := http.MaxBytesReader(c.Response(), req.Body, max)
	if isJSONType(mt) {
		return decodeJSONStream(body, v, "Invalid JSON body")
	}
	values, err := readForm(body, mt, params["boundary"])
	if err != nil {
		return formError(err)
	}
	doc, err := formJSON(values, v)
	if err != nil {
		return err
	}
	return decodeJSONStream(bytes.NewReader(doc), v, "Invalid form body")
}

const (
	mimeForm      = "application/x-www-form-urlencoded"
	mimeMultipart = "multipart/form-data"
)

func isJSONType(mt string) bool {
	return mt == echo.MIMEApplicationJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func acceptedBodyType(mt string) bool {
	return isJSONType(mt) || mt == mimeForm || mt == mimeMultipart
}

// unsupportedBody is the 415 of a body in a type no route reads.
func unsupportedBody(req *http.Request) error {
	got := req.Header.Get(echo.HeaderContentType)
	if got == "" {
		got = "none"
	}
	return &warden.Error{Code: warden.EUNSUPPORTEDMEDIA,
		Message: "Request body must be sent as application/json, application/x-www-form-urlencoded or multipart/form-data",
		Details: map[string]string{"content_type": got}}
}

// decodeJSONStream decodes exactly one JSON value from r into v, refusing
// unknown fields; msg names the body's kind in a 400.
func decodeJSONStream(r io.Reader, v any, msg string) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errBodyTooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errBodyTimeout
		}
		return &warden.Error{Code: warden.EINVALID, Message: msg, Details: map[string]string{"body": err.Error()}}
	}
	if dec.More() {
		return &warden.Error{Code: warden.EINVALID, Message: msg, Details: map[string]string{"body": "trailing data after the JSON object"}}
	}
	return nil
}

// readForm reads a urlencoded or multipart form. A multipart part's value
// is its content, file parts included (curl -F input=@doc.json).
func readForm(r io.Reader, mt, boundary string) (url.Values, error) {
	if mt == mimeForm {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return url.ParseQuery(string(b))
	}
	if boundary == "" {
		return nil, errors.New("multipart body without a boundary")
	}
	values := url.Values{}
	mr := multipart.NewReader(r, boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return values, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		if name := part.FormName(); name != "" {
			values.Add(name, string(b))
		}
	}
}

// formError maps a form read failure to 413, 408 or 400.
func formError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errBodyTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errBodyTimeout
	}
	return &warden.Error{Code: warden.EINVALID, Message: "Invalid form body", Details: map[string]string{"body": err.Error()}}
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// formJSON turns form fields into the JSON document v would be decoded
// from, so that a form is read with the same names, types and checks as
// JSON. By the Go type of the field a name maps to: a string is the text
// itself; a number or a bool is parsed from the text; an object, array or
// free-form value (json.RawMessage, any) is the text read as JSON, else the
// text as a string (an array of strings also takes the field repeated, or
// one plain value). A name v does not have is passed on as text, for the
// decoder to refuse as an unknown field.
func formJSON(values url.Values, v any) ([]byte, error) {
	doc := make(map[string]json.RawMessage, len(values))
	for name, vals := range values {
		t, known := fieldType(reflect.TypeOf(v), name)
		switch {
		case !known:
			doc[name] = jsonString(vals[0])
		case len(vals) > 1 && isList(t):
			items := make([]json.RawMessage, len(vals))
			for i, s := range vals {
				items[i] = formValue(t.Elem(), s)
			}
			doc[name], _ = json.Marshal(items)
		case len(vals) > 1:
			return nil, invalid(name, name+" is given more than once")
		default:
			doc[name] = formValue(t, vals[0])
		}
	}
	return json.Marshal(doc)
}

// fieldType is the Go type the JSON key name decodes into within t (a
// struct, a map, or pointers to them).
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), true
	case reflect.Struct:
	default:
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" && f.Anonymous {
			if ft, ok := fieldType(f.Type, name); ok {
				return ft, true
			}
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if strings.EqualFold(tag, name) {
			return f.Type, true
		}
	}
	return nil, false
}

// isList reports a JSON array type other than raw bytes.
func isList(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t != rawMessageType && t.Elem().Kind() != reflect.Uint8
}

// formValue is one form text as the JSON of a value of type t.
func formValue(t reflect.Type, s string) json.RawMessage {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return jsonOrString(s)
	}
	switch t.Kind() {
	case reflect.String:
		return jsonString(s)
	case reflect.Bool:
		if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			return json.RawMessage(strconv.FormatBool(b))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if n := strings.TrimSpace(s); json.Valid([]byte(n)) && isNumber(n) {
			return json.RawMessage(n)
		}
	case reflect.Interface, reflect.Map, reflect.Struct:
		return jsonOrString(s)
	case reflect.Slice, reflect.Array:
		if json.Valid([]byte(s)) || !isList(t) {
			return jsonOrString(s)
		}
		return json.RawMessage("[" + string(formValue(t.Elem(), s)) + "]")
	}
	return jsonString(s) // the decoder refuses it with the field's name
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// jsonOrString is s when it is a JSON document, else s as a JSON string.
func jsonOrString(s string) json.RawMessage {
	if t := strings.TrimSpace(s); t != "" && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return jsonString(s)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// errBodyTimeout answers a request whose body did not arrive within its
// route's read deadline (a slow upload holding a connection).
var errBodyTimeout = &warden.Error{Code: warden.EREQUESTTIMEOUT, Message: "Request body not received in time"}

// bodyDeadline bounds how long a request may take to send its body: the
// upload routes get WARDEN_UPLOAD_TIMEOUT, every other route
// WARDEN_BODY_TIMEOUT. (The server's ReadHeaderTimeout bounds the headers.)
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := s.Config.BodyTimeout
		if r := c.Request(); (r.Method == http.MethodPost && (c.Path() == "/api/verify" || c.Path() == "/v1/models")) || c.Path() == aisUploadPath {
			d = s.Config.UploadTimeout
		}
		if d > 0 {
			// Not supported by test recorders; a real connection honours it.
			_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(d))
		}
		return next(c)
	}
}
