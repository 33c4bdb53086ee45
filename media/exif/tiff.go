package exif

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TIFF limits that bound work on hostile input.
const (
	maxIFDs       = 16  // IFDs visited per TIFF block
	maxIFDEntries = 512 // entries read per IFD
)

// tiff is a bounds-checked reader over one TIFF block (the payload of an
// Exif APP1 segment or a PNG eXIf chunk).
type tiff struct {
	b       []byte
	bo      binary.ByteOrder
	visited map[uint32]bool
}

// tagNames maps the tags we extract to their Raw names, per IFD kind.
var (
	ifd0Tags = map[uint16]string{
		0x010E: "ImageDescription",
		0x010F: "Make",
		0x0110: "Model",
		0x0131: "Software",
		0x0132: "DateTime",
		0x013B: "Artist",
		0x8298: "Copyright",
		0xC62F: "CameraSerialNumber",
	}
	exifTags = map[uint16]string{
		0x829A: "ExposureTime",
		0x829D: "FNumber",
		0x8827: "ISOSpeedRatings",
		0x9003: "DateTimeOriginal",
		0x9004: "DateTimeDigitized",
		0x9011: "OffsetTimeOriginal",
		0x920A: "FocalLength",
		0x9286: "UserComment",
		0xA002: "PixelXDimension",
		0xA003: "PixelYDimension",
		0xA420: "ImageUniqueID",
		0xA430: "CameraOwnerName",
		0xA431: "BodySerialNumber",
		0xA433: "LensMake",
		0xA434: "LensModel",
	}
	gpsTags = map[uint16]string{
		0x0001: "GPSLatitudeRef",
		0x0002: "GPSLatitude",
		0x0003: "GPSLongitudeRef",
		0x0004: "GPSLongitude",
	}
)

const (
	tagExifIFD = 0x8769
	tagGPSIFD  = 0x8825
)

// typeSize is the byte size of one value of each TIFF field type.
var typeSize = map[uint16]uint64{1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}

// parseTIFF reads IFD0 (and IFD1), the Exif IFD and the GPS IFD of a TIFF
// block into md.Raw. It returns an error describing the first structural
// problem; fields read before it are kept.
func parseTIFF(b []byte, md *Metadata) error {
	if len(b) < 8 {
		return fmt.Errorf("tiff header: %d bytes", len(b))
	}
	t := &tiff{b: b, visited: map[uint32]bool{}}
	switch string(b[:2]) {
	case "II":
		t.bo = binary.LittleEndian
	case "MM":
		t.bo = binary.BigEndian
	default:
		return fmt.Errorf("tiff byte order %q", b[:2])
	}
	if t.bo.Uint16(b[2:4]) != 42 {
		return fmt.Errorf("tiff magic %d", t.bo.Uint16(b[2:4]))
	}
	md.HasEXIF = true
	off := t.bo.Uint32(b[4:8])
	// IFD0 only: IFD1 describes the thumbnail and would overwrite nothing we
	// keep, so the chain is not followed further.
	next, err := t.readIFD(off, ifd0Tags, md)
	_ = next
	return err
}

// readIFD reads one IFD at off, storing the named tags and following the
// Exif and GPS pointers. It returns the offset of the next IFD in the chain.
func (t *tiff) readIFD(off uint32, names map[uint16]string, md *Metadata) (uint32, error) {
	if t.visited[off] || len(t.visited) >= maxIFDs {
		return 0, fmt.Errorf("ifd at %d: loop or too many IFDs", off)
	}
	t.visited[off] = true
	if uint64(off)+2 > uint64(len(t.b)) {
		return 0, fmt.Errorf("ifd at %d: out of bounds", off)
	}
	n := int(t.bo.Uint16(t.b[off:]))
	if n > maxIFDEntries {
		n = maxIFDEntries
	}
	base := uint64(off) + 2
	for i := 0; i < n; i++ {
		if md.stopped() {
			return 0, md.ctx.Err()
		}
		e := base + uint64(i)*12
		if e+12 > uint64(len(t.b)) {
			return 0, fmt.Errorf("ifd at %d: entry %d out of bounds", off, i)
		}
		tag := t.bo.Uint16(t.b[e:])
		typ := t.bo.Uint16(t.b[e+2:])
		count := t.bo.Uint32(t.b[e+4:])
		val, ok := t.value(e, typ, count)
		if !ok {
			continue
		}
		switch tag {
		case tagExifIFD, tagGPSIFD:
			if (typ == 4 || typ == 13) && len(val) >= 4 {
				sub := exifTags
				if tag == tagGPSIFD {
					sub = gpsTags
				}
				if _, err := t.readIFD(t.bo.Uint32(val), sub, md); err != nil {
					md.set("ExifError", err.Error())
				}
			}
			continue
		}
		if name, ok := names[tag]; ok {
			md.set(name, t.format(name, typ, val))
		}
	}
	end := base + uint64(n)*12
	if end+4 > uint64(len(t.b)) {
		return 0, nil
	}
	return t.bo.Uint32(t.b[end:]), nil
}

// value returns the bytes of an entry's value, inline or at its offset.
func (t *tiff) value(entry uint64, typ uint16, count uint32) ([]byte, bool) {
	size, ok := typeSize[typ]
	if !ok {
		return nil, false
	}
	total := size * uint64(count)
	if total <= 4 {
		return t.b[entry+8 : entry+8+total], true
	}
	off := uint64(t.bo.Uint32(t.b[entry+8:]))
	if off+total > uint64(len(t.b)) {
		return nil, false
	}
	return t.b[off : off+total], true
}

// format renders a value as text: ASCII trimmed, integers in decimal,
// rationals as "n/d" (FNumber and FocalLength as decimals), GPS
// coordinates as signed decimal degrees.
func (t *tiff) format(name string, typ uint16, v []byte) string {
	if len(v) == 0 { // count 0; value() guarantees one full value otherwise
		return ""
	}
	switch typ {
	case 2, 7: // ASCII, UNDEFINED
		if name == "UserComment" && len(v) >= 8 {
			// 8-byte character-code prefix ("ASCII\0\0\0", "UNICODE\0"...).
			v = v[8:]
		}
		return cleanText(v)
	case 1, 6:
		return strconv.Itoa(int(v[0]))
	case 3:
		return strconv.Itoa(int(t.bo.Uint16(v)))
	case 8:
		return strconv.Itoa(int(int16(t.bo.Uint16(v))))
	case 4:
		return strconv.FormatUint(uint64(t.bo.Uint32(v)), 10)
	case 9:
		return strconv.Itoa(int(int32(t.bo.Uint32(v))))
	case 5, 10:
		rats := make([]string, 0, 3)
		vals := make([]float64, 0, 3)
		for i := 0; i+8 <= len(v) && i < 24; i += 8 {
			n, d := t.bo.Uint32(v[i:]), t.bo.Uint32(v[i+4:])
			nf, df := float64(n), float64(d)
			if typ == 10 {
				nf, df = float64(int32(n)), float64(int32(d))
			}
			rats = append(rats, fmt.Sprintf("%v/%v", nf, df))
			if df != 0 {
				vals = append(vals, nf/df)
			} else {
				vals = append(vals, math.NaN())
			}
		}
		switch {
		case (name == "GPSLatitude" || name == "GPSLongitude") && len(vals) == 3:
			deg := vals[0] + vals[1]/60 + vals[2]/3600
			if !math.IsNaN(deg) {
				return strconv.FormatFloat(deg, 'f', 6, 64)
			}
		case (name == "FNumber" || name == "FocalLength") && len(vals) == 1 && !math.IsNaN(vals[0]):
			return strconv.FormatFloat(vals[0], 'f', -1, 64)
		}
		return strings.Join(rats, " ")
	}
	return ""
}

// cleanText trims NULs and spaces and replaces non-printable bytes.
func cleanText(v []byte) string {
	if i := indexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	s := strings.ToValidUTF8(string(v), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
