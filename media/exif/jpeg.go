package exif

import (
	"bytes"
	"errors"
	"fmt"
)

// Segment is one marker segment of a JPEG file, located in the file's bytes.
type Segment struct {
	Marker  byte   // second marker byte, e.g. 0xE1 for APP1
	Offset  int    // offset of the 0xFF that starts the marker
	Length  int    // bytes from Offset to the end of the segment (marker included)
	Payload []byte // segment data after the 2-byte length field
}

// JPEG APP1 identifiers.
var (
	exifHeader   = []byte("Exif\x00\x00")
	xmpHeader    = []byte("http://ns.adobe.com/xap/1.0/\x00")
	xmpExtHeader = []byte("http://ns.adobe.com/xmp/extension/\x00")
)

// maxSegments bounds the number of JPEG segments walked.
const maxSegments = 4096

// ErrNotJPEG is returned by JPEGSegments for data without a JPEG SOI marker.
var ErrNotJPEG = errors.New("not a JPEG file")

// JPEGSegments walks the marker segments of a JPEG file from SOI up to and
// including the first SOS segment (whose Payload is only the scan header;
// entropy-coded data follows it). Standalone markers (RSTn, TEM) are
// skipped. On a structural error it returns the segments read so far with
// the error.
func JPEGSegments(data []byte) ([]Segment, error) {
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, ErrNotJPEG
	}
	var segs []Segment
	i := 2
	for len(segs) < maxSegments {
		if i >= len(data) {
			return segs, fmt.Errorf("jpeg: truncated before SOS at offset %d", i)
		}
		if data[i] != 0xFF {
			return segs, fmt.Errorf("jpeg: expected marker at offset %d, found 0x%02X", i, data[i])
		}
		start := i
		for i < len(data) && data[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(data) {
			return segs, fmt.Errorf("jpeg: truncated marker at offset %d", start)
		}
		m := data[i]
		i++
		switch {
		case m == 0xD9: // EOI
			return segs, nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0xD8:
			continue
		}
		if i+2 > len(data) {
			return segs, fmt.Errorf("jpeg: truncated length of marker 0x%02X at offset %d", m, start)
		}
		l := int(data[i])<<8 | int(data[i+1])
		if l < 2 || i+l > len(data) {
			return segs, fmt.Errorf("jpeg: marker 0x%02X at offset %d has bad length %d", m, start, l)
		}
		segs = append(segs, Segment{Marker: m, Offset: start, Length: i + l - start, Payload: data[i+2 : i+l]})
		i += l
		if m == 0xDA {
			return segs, nil
		}
	}
	return segs, fmt.Errorf("jpeg: more than %d segments", maxSegments)
}

// parseJPEG reads Exif, XMP and comments from a JPEG file.
func parseJPEG(data []byte, md *Metadata) {
	segs, err := JPEGSegments(data)
	if err != nil {
		md.set("JPEGError", err.Error())
	}
	var ext []byte // extended XMP chunks, concatenated in file order
	for _, s := range segs {
		if md.stopped() {
			return
		}
		switch {
		case s.Marker == 0xE1 && bytes.HasPrefix(s.Payload, exifHeader):
			if err := parseTIFF(s.Payload[len(exifHeader):], md); err != nil {
				md.set("ExifError", err.Error())
			}
		case s.Marker == 0xE1 && bytes.HasPrefix(s.Payload, xmpHeader):
			parseXMP(s.Payload[len(xmpHeader):], md)
		case s.Marker == 0xE1 && bytes.HasPrefix(s.Payload, xmpExtHeader):
			// GUID (32) + full length (4) + offset (4) precede the chunk.
			p := s.Payload[len(xmpExtHeader):]
			if len(p) > 40 && len(ext) < maxInflate {
				ext = append(ext, p[40:]...)
			}
		case s.Marker == 0xFE:
			md.set("Comment", cleanText(s.Payload))
		}
	}
	if len(ext) > 0 {
		parseXMP(ext, md)
	}
}
