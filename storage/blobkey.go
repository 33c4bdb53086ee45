package storage

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wardenlab/warden"
)

// maxBlobKey is the longest key a store accepts (S3's limit on object
// names, which a bucket prefix shares).
const maxBlobKey = 900

// checkBlobKey refuses a key that could name something outside the store's
// root or prefix, or that two stores would not map to the same object:
// empty, absolute, with a ".." anywhere, an empty or "." segment, a
// trailing slash, a backslash, a control character or invalid UTF-8.
// LocalBlobs and S3Blobs apply the same rule.
func checkBlobKey(key string) error {
	bad := key == "" || len(key) > maxBlobKey || !utf8.ValidString(key) ||
		strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") ||
		strings.Contains(key, "\\") || strings.IndexFunc(key, unicode.IsControl) >= 0
	if !bad {
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." {
				bad = true
				break
			}
		}
	}
	if bad {
		return warden.Errorf(warden.EINVALID, "invalid blob key")
	}
	return nil
}
