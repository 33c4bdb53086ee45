package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/wardenlab/warden"
)

const (
	// DefaultS3PartSize is the part size of multipart uploads: objects up
	// to one part go in a single PUT; a larger one is uploaded in parts of
	// this size (each held in memory once) and appears only when the
	// upload completes. 16 MiB × S3's 10,000 parts allows 160 GiB.
	DefaultS3PartSize = 16 << 20
	// minS3PartSize is S3's smallest part (all but the last).
	minS3PartSize = 5 << 20
)

// S3Options is a parsed WARDEN_BLOB_URL:
//
//	s3://bucket[/prefix]?endpoint=host:port&region=…&secure=false&path_style=true&part_size=…
//
// endpoint defaults to AWS (s3.amazonaws.com), secure to true (HTTPS),
// path_style to the client's choice (virtual-host style where the endpoint
// supports it), part_size to DefaultS3PartSize. Credentials never go in
// the URL: they come from S3Credentials.
type S3Options struct {
	Bucket    string
	Prefix    string // "" or a key prefix ending in "/"
	Endpoint  string // host[:port]
	Region    string
	Secure    bool
	PathStyle *bool // nil: automatic
	PartSize  uint64
	// Transport carries the requests (nil: Go's default, with the
	// system's CAs); tests give one that trusts their server.
	Transport http.RoundTripper
}

// S3Credentials are the store's access keys (WARDEN_S3_ACCESS_KEY and
// WARDEN_S3_SECRET_KEY, or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN).
type S3Credentials struct {
	AccessKey, SecretKey, SessionToken string
}

// ParseS3URL parses a WARDEN_BLOB_URL. Its errors never repeat the URL,
// which could hold a credential pasted by mistake.
func ParseS3URL(raw string) (S3Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return S3Options{}, fmt.Errorf("not a URL (want s3://bucket[/prefix]?endpoint=host:port)")
	}
	if u.Scheme != "s3" {
		return S3Options{}, fmt.Errorf("scheme %q: want s3://bucket[/prefix]?endpoint=host:port", u.Scheme)
	}
	if u.User != nil {
		return S3Options{}, fmt.Errorf("credentials do not belong in the URL: set WARDEN_S3_ACCESS_KEY and WARDEN_S3_SECRET_KEY")
	}
	o := S3Options{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Secure: true, PartSize: DefaultS3PartSize}
	if err := s3utils.CheckValidBucketNameStrict(o.Bucket); err != nil {
		return S3Options{}, fmt.Errorf("bucket %q: %v", o.Bucket, err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if checkBlobKey(p) != nil {
			return S3Options{}, fmt.Errorf("prefix %q is not a valid key prefix", p)
		}
		o.Prefix = p + "/"
	}
	if u.Fragment != "" {
		return S3Options{}, fmt.Errorf("a fragment (#…) means nothing here")
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			if v == "" || strings.ContainsAny(v, "/?#@") {
				return S3Options{}, fmt.Errorf("endpoint: host or host:port, without scheme or path")
			}
			o.Endpoint = v
		case "region":
			o.Region = v
		case "secure":
			if o.Secure, err = strconv.ParseBool(v); err != nil {
				return S3Options{}, fmt.Errorf("secure: true or false")
			}
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Options{}, fmt.Errorf("path_style: true or false")
			}
			o.PathStyle = &b
		case "part_size":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n < minS3PartSize || n > 5<<30 {
				return S3Options{}, fmt.Errorf("part_size: bytes between %d (5 MiB) and %d (5 GiB)", minS3PartSize, 5<<30)
			}
			o.PartSize = n
		default:
			return S3Options{}, fmt.Errorf("unknown parameter %q (endpoint, region, secure, path_style, part_size)", k)
		}
	}
	return o, nil
}

// S3Blobs stores blobs as objects of one bucket of an S3-compatible
// service (AWS S3, MinIO, SeaweedFS, Ceph…), under an optional prefix.
// API servers and workers on any node share it; model runners never see
// it (a worker copies what a runner needs to a local file).
type S3Blobs struct {
	client   *minio.Client
	opts     S3Options
	location string // s3://bucket/prefix at endpoint, for messages and logs
}

// NewS3Blobs connects to the service and checks that the bucket exists.
func NewS3Blobs(ctx context.Context, o S3Options, c S3Credentials) (*S3Blobs, error) {
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, fmt.Errorf("S3 blob store: set WARDEN_S3_ACCESS_KEY and WARDEN_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultS3PartSize
	}
	mo := &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken),
		Secure: o.Secure, Region: o.Region, Transport: o.Transport}
	if o.PathStyle != nil {
		mo.BucketLookup = minio.BucketLookupDNS
		if *o.PathStyle {
			mo.BucketLookup = minio.BucketLookupPath
		}
	}
	client, err := minio.New(o.Endpoint, mo)
	if err != nil {
		return nil, fmt.Errorf("S3 blob store: %w", err)
	}
	b := &S3Blobs{client: client, opts: o, location: "s3://" + o.Bucket + "/" + o.Prefix + " at " + o.Endpoint}
	ok, err := client.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("S3 blob store %s: %w", b.location, err)
	}
	if !ok {
		return nil, fmt.Errorf("S3 blob store %s: the bucket does not exist", b.location)
	}
	return b, nil
}

// String names the store (bucket, prefix, endpoint; no credential).
func (b *S3Blobs) String() string { return b.location }

// Bucket is the store's bucket.
func (b *S3Blobs) Bucket() string { return b.opts.Bucket }

// Prefix is the store's key prefix ("" or ending in "/").
func (b *S3Blobs) Prefix() string { return b.opts.Prefix }

func (b *S3Blobs) object(key string) (string, error) {
	if err := checkBlobKey(key); err != nil {
		return "", err
	}
	return b.opts.Prefix + key, nil
}

// Put uploads r: a single PUT up to one part (PartSize), a multipart
// upload above.
// S3 makes an object visible only when its PUT or its multipart upload
// completes, and a failed multipart upload is aborted, so a reader that
// fails or a cancelled context never leaves a partial object.
func (b *S3Blobs) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	name, err := b.object(key)
	if err != nil {
		return 0, err
	}
	cr := &countingReader{r: ctxReader{ctx, r}}
	// Up to one part is read first: what fits goes in one PUT of known
	// length; a longer stream goes on as a multipart upload.
	var first bytes.Buffer
	if _, err := io.CopyN(&first, cr, int64(b.opts.PartSize)+1); err != nil && !errors.Is(err, io.EOF) {
		return cr.n, fmt.Errorf("write blob: %w", err)
	}
	var body io.Reader = bytes.NewReader(first.Bytes())
	size := int64(first.Len())
	if size > int64(b.opts.PartSize) {
		body, size = io.MultiReader(body, cr), -1
	}
	_, err = b.client.PutObject(ctx, b.opts.Bucket, name, body, size,
		minio.PutObjectOptions{PartSize: b.opts.PartSize, ContentType: "application/octet-stream"})
	if err != nil {
		return cr.n, fmt.Errorf("write blob: %w", err)
	}
	return cr.n, nil
}

// Open starts reading an object; a missing one is warden.ENOTFOUND, as
// LocalBlobs answers.
func (b *S3Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := b.object(key)
	if err != nil {
		return nil, err
	}
	obj, err := b.client.GetObject(ctx, b.opts.Bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	if _, err := obj.Stat(); err != nil { // sends the GET
		obj.Close()
		if isS3NotFound(err) {
			return nil, warden.Errorf(warden.ENOTFOUND, "blob not found")
		}
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return obj, nil
}

// Delete removes an object; a missing one is not an error.
func (b *S3Blobs) Delete(ctx context.Context, key string) error {
	name, err := b.object(key)
	if err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.opts.Bucket, name, minio.RemoveObjectOptions{}); err != nil && !isS3NotFound(err) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// Exists reports whether key is stored.
func (b *S3Blobs) Exists(ctx context.Context, key string) (bool, error) {
	name, err := b.object(key)
	if err != nil {
		return false, err
	}
	_, err = b.client.StatObject(ctx, b.opts.Bucket, name, minio.StatObjectOptions{})
	if isS3NotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat blob: %w", err)
	}
	return true, nil
}

func isS3NotFound(err error) bool {
	if err == nil {
		return false
	}
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == "NotFound"
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
