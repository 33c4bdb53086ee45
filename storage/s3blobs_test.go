package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/storage"
)

// openS3 opens the test server's bucket (under prefix) as Warden does.
func openS3(t *testing.T, srv *testenv.S3Server, prefix string, partSize uint64) *storage.S3Blobs {
	t.Helper()
	o, err := storage.ParseS3URL(srv.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if partSize != 0 {
		o.PartSize = partSize
	}
	b, err := storage.NewS3Blobs(context.Background(), o, storage.S3Credentials{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, b storage.BlobStore, key string) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return got
}

// hostileKeys are keys both stores refuse (warden.EINVALID).
var hostileKeys = []string{"", "../escape", "/abs", "a/../../b", "..", "a/..", "a\\b", "nul\x00", "a//b", "a/", "./a", "a/./b",
	"a/.", ".", "tab\tkey", "new\nline", "bad\xffutf8", strings.Repeat("k", 901)}

// blobContract is what every BlobStore does, run against LocalBlobs, the
// real S3 server and the in-process fake alike.
func blobContract(t *testing.T, b storage.BlobStore) {
	ctx := context.Background()
	t.Run("round trip", func(t *testing.T) {
		if n, err := b.Put(ctx, "jobs/x/input", strings.NewReader("hello")); err != nil || n != 5 {
			t.Fatal(n, err)
		}
		if got := readAll(t, b, "jobs/x/input"); string(got) != "hello" {
			t.Fatalf("read %q", got)
		}
		if ok, err := b.Exists(ctx, "jobs/x/input"); !ok || err != nil {
			t.Fatalf("exists: %v %v", ok, err)
		}
		if err := b.Delete(ctx, "jobs/x/input"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.Exists(ctx, "jobs/x/input"); ok || err != nil {
			t.Fatalf("exists after delete: %v %v", ok, err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		_, err := b.Open(ctx, "jobs/none/input")
		if warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("open missing: %v, want not_found", err)
		}
		if ok, err := b.Exists(ctx, "jobs/none/input"); ok || err != nil {
			t.Fatalf("exists missing: %v %v", ok, err)
		}
		if err := b.Delete(ctx, "jobs/none/input"); err != nil {
			t.Fatalf("delete missing: %v", err)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		b.Put(ctx, "models/m/model.pt", strings.NewReader("first version, longer"))
		if n, err := b.Put(ctx, "models/m/model.pt", strings.NewReader("second")); err != nil || n != 6 {
			t.Fatal(n, err)
		}
		if got := readAll(t, b, "models/m/model.pt"); string(got) != "second" {
			t.Fatalf("read %q after overwrite", got)
		}
		b.Delete(ctx, "models/m/model.pt")
	})
	t.Run("empty object", func(t *testing.T) {
		if n, err := b.Put(ctx, "jobs/e/input", bytes.NewReader(nil)); err != nil || n != 0 {
			t.Fatal(n, err)
		}
		if got := readAll(t, b, "jobs/e/input"); len(got) != 0 {
			t.Fatalf("read %q", got)
		}
		b.Delete(ctx, "jobs/e/input")
	})
	t.Run("failed put leaves nothing", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("partial"), errReader{})
		if _, err := b.Put(ctx, "jobs/f/input", r); err == nil {
			t.Fatal("put of a failing reader succeeded")
		}
		if ok, err := b.Exists(ctx, "jobs/f/input"); ok || err != nil {
			t.Fatalf("a failed put left an object: %v %v", ok, err)
		}
	})
	t.Run("hostile keys", func(t *testing.T) {
		for _, key := range hostileKeys {
			if _, err := b.Put(ctx, key, strings.NewReader("x")); warden.ErrorCode(err) != warden.EINVALID {
				t.Errorf("put %q: %v, want invalid", key, err)
			}
			if _, err := b.Open(ctx, key); warden.ErrorCode(err) != warden.EINVALID {
				t.Errorf("open %q: %v, want invalid", key, err)
			}
			if _, err := b.Exists(ctx, key); warden.ErrorCode(err) != warden.EINVALID {
				t.Errorf("exists %q: %v, want invalid", key, err)
			}
			if err := b.Delete(ctx, key); warden.ErrorCode(err) != warden.EINVALID {
				t.Errorf("delete %q: %v, want invalid", key, err)
			}
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset (test)") }

func TestLocalBlobsContract(t *testing.T) {
	b, err := storage.NewLocalBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobContract(t, b)
}

// fakeS3 opens raw (an s3:// URL without endpoint) on gofakes3, served in
// the test process over TLS (gofakes3 does not read the aws-chunked bodies
// minio-go sends over plain HTTP); bucket is created first.
func fakeS3(t *testing.T, bucket, raw string) *storage.S3Blobs {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	o, err := storage.ParseS3URL(raw + "?endpoint=" + strings.TrimPrefix(srv.URL, "https://") + "&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	o.Transport = srv.Client().Transport
	b, err := storage.NewS3Blobs(context.Background(), o, storage.S3Credentials{AccessKey: "k", SecretKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3BlobsFake runs the contract against gofakes3 in the test process:
// the edge cases without a server.
func TestS3BlobsFake(t *testing.T) {
	blobContract(t, fakeS3(t, "fake", "s3://fake/pre"))
}

// TestS3Blobs runs the contract and what only S3 has (prefixes, multipart
// uploads, concurrent writers) against a real S3 server (SeaweedFS).
func TestS3Blobs(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	b := openS3(t, srv, "", 0)
	blobContract(t, b)

	t.Run("prefix", func(t *testing.T) {
		p := openS3(t, srv, "tenant-a/blobs", 0)
		if _, err := p.Put(ctx, "jobs/p/input", strings.NewReader("in prefix")); err != nil {
			t.Fatal(err)
		}
		if keys := srv.Keys(t); !slices.Contains(keys, "tenant-a/blobs/jobs/p/input") {
			t.Fatalf("bucket holds %q, want tenant-a/blobs/jobs/p/input", keys)
		}
		if ok, _ := b.Exists(ctx, "jobs/p/input"); ok {
			t.Fatal("the object is visible outside its prefix")
		}
		if got := readAll(t, b, "tenant-a/blobs/jobs/p/input"); string(got) != "in prefix" {
			t.Fatalf("read %q", got)
		}
		p.Delete(ctx, "jobs/p/input")
	})

	t.Run("large object multipart", func(t *testing.T) {
		const partSize = 5 << 20
		small := openS3(t, srv, "", partSize)
		data := make([]byte, 2*partSize+123457) // three parts
		for i := range data {
			data[i] = byte(i*7 + i>>13)
		}
		start := time.Now()
		n, err := small.Put(ctx, "models/big/model.pt", onlyReader{bytes.NewReader(data)})
		if err != nil || n != int64(len(data)) {
			t.Fatal(n, err)
		}
		info, err := srv.Client.StatObject(ctx, srv.Bucket, "models/big/model.pt", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A multipart object's ETag is "<md5 of the parts' md5s>-<parts>".
		if !strings.HasSuffix(info.ETag, "-3") {
			t.Errorf("ETag %q: not a 3-part upload", info.ETag)
		}
		got := readAll(t, small, "models/big/model.pt")
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("read %d bytes, differing from the %d written", len(got), len(data))
		}
		t.Logf("%d bytes in 3 parts: put+stat+read %v", len(data), time.Since(start).Round(time.Millisecond))
		small.Delete(ctx, "models/big/model.pt")
	})

	t.Run("failed multipart upload leaves nothing", func(t *testing.T) {
		const partSize = 5 << 20
		small := openS3(t, srv, "", partSize)
		r := io.MultiReader(bytes.NewReader(make([]byte, partSize+partSize/2)), errReader{}) // fails in the second part
		if _, err := small.Put(ctx, "models/broken/model.pt", r); err == nil {
			t.Fatal("put succeeded")
		}
		if ok, err := small.Exists(ctx, "models/broken/model.pt"); ok || err != nil {
			t.Fatalf("object visible after a failed upload: %v %v", ok, err)
		}
		for u := range srv.Client.ListIncompleteUploads(ctx, srv.Bucket, "models/broken", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			t.Errorf("multipart upload %s left open", u.UploadID)
		}
	})

	t.Run("cancelled put leaves nothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(make([]byte, 1<<20)), left: 64 << 10, cancel: cancel}
		if _, err := b.Put(cctx, "jobs/c/input", r); err == nil {
			t.Fatal("put succeeded after its context was cancelled")
		}
		if ok, _ := b.Exists(ctx, "jobs/c/input"); ok {
			t.Fatal("a cancelled put left an object")
		}
	})

	t.Run("concurrent puts", func(t *testing.T) {
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, 2*writers)
		payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 256<<10+i) }
		for i := range writers {
			wg.Go(func() {
				// Each writer its own key, and all of them the same key.
				if _, err := b.Put(ctx, fmt.Sprintf("jobs/w%d/input", i), bytes.NewReader(payload(i))); err != nil {
					errs <- err
				}
				if _, err := b.Put(ctx, "jobs/shared/input", bytes.NewReader(payload(i))); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range writers {
			if got := readAll(t, b, fmt.Sprintf("jobs/w%d/input", i)); !bytes.Equal(got, payload(i)) {
				t.Errorf("writer %d: read %d bytes, not its own", i, len(got))
			}
		}
		got := readAll(t, b, "jobs/shared/input")
		whole := false
		for i := range writers {
			whole = whole || bytes.Equal(got, payload(i))
		}
		if !whole {
			t.Errorf("the shared key holds %d bytes that are no single writer's", len(got))
		}
	})

	t.Run("hostile keys wrote nothing", func(t *testing.T) {
		for _, k := range srv.Keys(t) {
			if !strings.HasPrefix(k, "jobs/") && !strings.HasPrefix(k, "tenant-a/") {
				t.Errorf("unexpected object %q", k)
			}
		}
	})
}

// onlyReader hides the reader's Seek and ReadAt: Put sees a stream of
// unknown length, as an upload body is.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// cancelAfter cancels its context once left bytes have been read.
type cancelAfter struct {
	r      io.Reader
	left   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

// TestOpenBlobs: the configuration chooses the store; a wrong bucket or
// wrong keys fail at start, not at the first upload.
func TestOpenBlobs(t *testing.T) {
	ctx := context.Background()
	local, err := storage.OpenBlobs(ctx, config.Config{BlobDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := local.(*storage.LocalBlobs); !ok {
		t.Fatalf("no WARDEN_BLOB_URL: %T, want LocalBlobs", local)
	}
	srv := testenv.S3(t)
	cfg := config.Config{BlobDir: t.TempDir()}
	srv.Configure(&cfg)
	b, err := storage.OpenBlobs(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s3, ok := b.(*storage.S3Blobs)
	if !ok || s3.Bucket() != srv.Bucket {
		t.Fatalf("WARDEN_BLOB_URL set: %T %v", b, b)
	}
	if strings.Contains(s3.String(), srv.SecretKey) || strings.Contains(s3.String(), srv.AccessKey) {
		t.Fatalf("String() shows a key: %s", s3)
	}
	for name, mod := range map[string]func(*config.Config){
		"missing bucket": func(c *config.Config) { c.BlobURL = strings.Replace(c.BlobURL, srv.Bucket, "no-such-bucket", 1) },
		"wrong secret":   func(c *config.Config) { c.S3SecretKey = "wrong-secret-key" },
		"no keys":        func(c *config.Config) { c.S3AccessKey, c.S3SecretKey = "", "" },
		"unknown option": func(c *config.Config) { c.BlobURL += "&colour=blue" },
	} {
		c := cfg
		mod(&c)
		if _, err := storage.OpenBlobs(ctx, c); err == nil {
			t.Errorf("%s: opened", name)
		} else if strings.Contains(err.Error(), srv.SecretKey) {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestParseS3URL(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		url  string
		want storage.S3Options
	}{
		{"s3://bucket", storage.S3Options{Bucket: "bucket", Endpoint: "s3.amazonaws.com", Secure: true, PartSize: storage.DefaultS3PartSize}},
		{"s3://my-bucket/a/b/?endpoint=127.0.0.1:9000&region=eu-west-1&secure=false&path_style=true&part_size=5242880",
			storage.S3Options{Bucket: "my-bucket", Prefix: "a/b/", Endpoint: "127.0.0.1:9000", Region: "eu-west-1", PathStyle: &yes, PartSize: 5 << 20}},
		{"s3://b.example/p?path_style=false", storage.S3Options{Bucket: "b.example", Prefix: "p/", Endpoint: "s3.amazonaws.com", Secure: true, PathStyle: &no, PartSize: storage.DefaultS3PartSize}},
	} {
		got, err := storage.ParseS3URL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if fmt.Sprint(got.PathStyle != nil && *got.PathStyle) != fmt.Sprint(c.want.PathStyle != nil && *c.want.PathStyle) ||
			(got.PathStyle == nil) != (c.want.PathStyle == nil) {
			t.Errorf("%s: path style %v, want %v", c.url, got.PathStyle, c.want.PathStyle)
		}
		got.PathStyle, c.want.PathStyle = nil, nil
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.url, got, c.want)
		}
	}
	for _, bad := range []string{"https://bucket", "s3://", "s3://UPPER", "s3://ab", "s3://b_x", "s3://bucket/../x",
		"s3://bucket?endpoint=http://host:9000", "s3://bucket?secure=maybe", "s3://bucket?part_size=1024", "s3://bucket?colour=blue",
		"s3://bucket#frag", "s3://AKIAEXAMPLE:hunter2secret@bucket"} {
		_, err := storage.ParseS3URL(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%s: the error repeats the secret: %v", bad, err)
		}
	}
}

// TestImportKey: an s3:// model_file_url reads only the org's own import
// folder of the store's bucket; neither another org's files nor Warden's
// own blobs can be named.
func TestImportKey(t *testing.T) {
	plain, prefixed := fakeS3(t, "warden", "s3://warden"), fakeS3(t, "warden", "s3://warden/prod")
	for _, c := range []struct {
		store storage.BlobStore
		url   string
		want  string // "" refused
	}{
		{plain, "s3://warden/imports/org_a/model.pt", "imports/org_a/model.pt"},
		{plain, "s3://warden/imports/org_a/team/v2/model.pt", "imports/org_a/team/v2/model.pt"},
		{prefixed, "s3://warden/prod/imports/org_a/model.pt", "imports/org_a/model.pt"},
		{plain, "s3://warden/imports/org_b/model.pt", ""},              // another org's
		{plain, "s3://warden/imports/org_ab/model.pt", ""},             // a name that starts like it
		{plain, "s3://warden/models/mdl_1/model.pt", ""},               // Warden's own blobs
		{plain, "s3://warden/jobs/job_1/input", ""},                    // a job's input
		{plain, "s3://warden/imports/org_a/../org_b/model.pt", ""},     // climbing out
		{plain, "s3://warden/imports/org_a/%2e%2e/org_b/model.pt", ""}, // the same, encoded
		{plain, "s3://warden/imports/org_a//model.pt", ""},
		{plain, "s3://warden/imports/org_a/", ""}, // the folder itself
		{plain, "s3://warden/imports/org_a", ""},
		{plain, "s3://other-bucket/imports/org_a/model.pt", ""}, // not the store's bucket
		{plain, "s3://key:secret@warden/imports/org_a/model.pt", ""},
		{plain, "s3://warden/imports/org_a/model.pt?versionId=1", ""},
		{prefixed, "s3://warden/imports/org_a/model.pt", ""}, // outside the store's prefix
		{prefixed, "s3://warden/prod/models/mdl_1/model.pt", ""},
		{storage.BlobStore(nil), "s3://warden/imports/org_a/model.pt", ""},
	} {
		got, err := storage.ImportKey(c.store, "org_a", c.url)
		if c.want == "" {
			if err == nil || warden.ErrorCode(err) != warden.EINVALID {
				t.Errorf("%s: %q %v, want refused", c.url, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.url, got, err, c.want)
		}
	}
	local, _ := storage.NewLocalBlobs(t.TempDir())
	if _, err := storage.ImportKey(local, "org_a", "s3://warden/imports/org_a/model.pt"); warden.ErrorMessage(err) != storage.S3Unconfigured {
		t.Errorf("local store: %v, want S3Unconfigured", err)
	}
}
