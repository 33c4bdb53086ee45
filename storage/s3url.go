package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/config"
)

// S3Unconfigured is why an s3:// model_file_url is refused: reading one
// needs an S3-compatible blob store configured on the server
// (WARDEN_BLOB_URL), which this deployment does not have.
const S3Unconfigured = `s3:// URLs need an S3 blob store configured on the server (WARDEN_BLOB_URL); this deployment has none: upload the file as multipart field "file" or give an https:// URL`

// OpenBlobs opens the configured blob store: S3Blobs when WARDEN_BLOB_URL
// is set, else LocalBlobs in WARDEN_BLOB_DIR.
func OpenBlobs(ctx context.Context, cfg config.Config) (BlobStore, error) {
	if cfg.BlobURL == "" {
		return NewLocalBlobs(cfg.BlobDir)
	}
	o, err := ParseS3URL(cfg.BlobURL)
	if err != nil {
		return nil, fmt.Errorf("WARDEN_BLOB_URL: %w", err)
	}
	b, err := NewS3Blobs(ctx, o, S3Credentials{AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, SessionToken: cfg.S3SessionToken})
	if err != nil {
		return nil, err
	}
	slog.Info("blob store", "s3", b.String())
	return b, nil
}

// importsDir is where, in an S3 blob store, each org's own files sit for
// spec 002's s3:// model_file_url: <prefix>imports/<org_id>/…. Warden
// writes nothing there; operators give each tenant write access to its
// own folder only.
const importsDir = "imports/"

// ImportPrefix is the key prefix, inside the store's prefix, an org may
// name in an s3:// model_file_url.
func ImportPrefix(orgID string) string { return importsDir + orgID + "/" }

// ImportKey maps an s3:// model_file_url to the blob key the org may read
// from store. The URL must name the store's bucket and an object under
// <prefix>imports/<org_id>/: an org can read neither another org's files
// nor Warden's own blobs (models, job inputs, artifacts) by naming them.
// Any other URL is refused (warden.EINVALID) with the reason; a store that
// is not S3 answers S3Unconfigured.
func ImportKey(store BlobStore, orgID, rawURL string) (string, error) {
	s3, ok := store.(*S3Blobs)
	if !ok {
		return "", warden.Errorf(warden.EINVALID, "%s", S3Unconfigured)
	}
	want := "s3://" + s3.Bucket() + "/" + s3.Prefix() + ImportPrefix(orgID)
	refuse := func(why string) (string, error) {
		return "", warden.Errorf(warden.EINVALID, "%s; this server reads s3:// model files from %s… only", why, want)
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" {
		return refuse("not an s3:// URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return refuse("credentials, query and fragment are not accepted")
	}
	if u.Host != s3.Bucket() {
		return refuse(fmt.Sprintf("bucket %q is not this server's", u.Host))
	}
	name, ok := strings.CutPrefix(u.Path, "/")
	if !ok || checkBlobKey(name) != nil || orgID == "" || checkBlobKey(orgID) != nil || strings.Contains(orgID, "/") {
		return refuse("not a valid object key")
	}
	key, ok := strings.CutPrefix(name, s3.Prefix())
	if !ok || !strings.HasPrefix(key, ImportPrefix(orgID)) {
		return refuse("the object is outside this org's import folder")
	}
	return key, nil
}
