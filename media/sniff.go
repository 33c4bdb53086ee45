// Package media holds the media-verification evidence packages (c2pa, exif,
// sensor, forensics, verdict) and what they share: format sniffing.
package media

import (
	"bytes"
	"net/http"
	"strings"
)

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 512

// Sniff returns the MIME type of a file from its first bytes, never from its
// name. It extends http.DetectContentType with ISO-BMFF brands (HEIC, AVIF,
// QuickTime, MP4 variants), TIFF and Matroska.
func Sniff(head []byte) string {
	if len(head) >= 12 && string(head[4:8]) == "ftyp" {
		brand := string(head[8:12])
		switch brand {
		case "heic", "heix", "heim", "heis", "hevc", "hevx":
			return "image/heic"
		case "mif1", "msf1":
			return "image/heif"
		case "avif", "avis":
			return "image/avif"
		case "qt  ":
			return "video/quicktime"
		case "3gp4", "3gp5", "3g2a":
			return "video/3gpp"
		}
		if strings.HasPrefix(brand, "mp4") || strings.HasPrefix(brand, "iso") || brand == "M4V " || brand == "avc1" || brand == "dash" {
			return "video/mp4"
		}
	}
	if len(head) >= 4 && (bytes.Equal(head[:4], []byte("II*\x00")) || bytes.Equal(head[:4], []byte("MM\x00*"))) {
		return "image/tiff"
	}
	if len(head) >= 4 && bytes.Equal(head[:4], []byte{0x1A, 0x45, 0xDF, 0xA3}) {
		if bytes.Contains(head, []byte("webm")) {
			return "video/webm"
		}
		return "video/x-matroska"
	}
	ct := http.DetectContentType(head)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return ct
}

// IsImageOrVideo reports whether a sniffed type is accepted for verification.
func IsImageOrVideo(ct string) bool {
	return strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "video/")
}
