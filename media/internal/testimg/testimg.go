// Package testimg builds image files with chosen metadata for the media
// packages' tests: JPEGs with Exif and XMP segments, PNGs with text chunks.
package testimg

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"sort"
)

// Exif tags used by the tests.
const (
	TagMake             = 0x010F
	TagModel            = 0x0110
	TagSoftware         = 0x0131
	TagExifIFD          = 0x8769
	TagExposureTime     = 0x829A
	TagFNumber          = 0x829D
	TagISO              = 0x8827
	TagDateTimeOriginal = 0x9003
	TagBodySerialNumber = 0xA431
	TagLensModel        = 0xA434
)

// Value is one TIFF field value: a string (ASCII), a uint16 (SHORT) or a
// [2]uint32 (RATIONAL).
type Value any

// TIFF builds a little-endian TIFF block whose IFD0 holds ifd0 and whose
// Exif IFD (linked from IFD0 when exif is non-empty) holds exif.
func TIFF(ifd0, exif map[uint16]Value) []byte {
	var buf bytes.Buffer
	buf.WriteString("II")
	le := binary.LittleEndian
	buf.Write(le.AppendUint16(nil, 42))
	buf.Write(le.AppendUint32(nil, 8))
	if len(exif) > 0 {
		ifd0 = clone(ifd0)
		ifd0[TagExifIFD] = uint32(0) // patched below
	}
	patch := writeIFD(&buf, ifd0)
	if len(exif) > 0 {
		off := uint32(buf.Len())
		writeIFD(&buf, exif)
		b := buf.Bytes()
		le.PutUint32(b[patch:], off)
	}
	return buf.Bytes()
}

func clone(m map[uint16]Value) map[uint16]Value {
	c := make(map[uint16]Value, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// writeIFD appends an IFD and its out-of-line data at the buffer's end and
// returns the offset of the value field of the Exif IFD pointer (or 0).
func writeIFD(buf *bytes.Buffer, fields map[uint16]Value) int {
	le := binary.LittleEndian
	tags := make([]int, 0, len(fields))
	for t := range fields {
		tags = append(tags, int(t))
	}
	sort.Ints(tags)
	start := buf.Len()
	dataOff := start + 2 + 12*len(tags) + 4
	var data []byte
	entries := le.AppendUint16(nil, uint16(len(tags)))
	patch := 0
	for _, t := range tags {
		var typ uint16
		var raw []byte
		var count uint32
		switch v := fields[uint16(t)].(type) {
		case string:
			typ, raw, count = 2, append([]byte(v), 0), uint32(len(v)+1)
		case uint16:
			typ, raw, count = 3, le.AppendUint16(nil, v), 1
		case uint32:
			typ, raw, count = 4, le.AppendUint32(nil, v), 1
		case [2]uint32:
			typ, raw, count = 5, le.AppendUint32(le.AppendUint32(nil, v[0]), v[1]), 1
		}
		entries = le.AppendUint16(entries, uint16(t))
		entries = le.AppendUint16(entries, typ)
		entries = le.AppendUint32(entries, count)
		if t == TagExifIFD {
			patch = start + len(entries)
		}
		if len(raw) <= 4 {
			entries = append(entries, append(raw, make([]byte, 4-len(raw))...)...)
		} else {
			entries = le.AppendUint32(entries, uint32(dataOff+len(data)))
			data = append(data, raw...)
			if len(data)%2 == 1 {
				data = append(data, 0)
			}
		}
	}
	entries = le.AppendUint32(entries, 0)
	buf.Write(entries)
	buf.Write(data)
	return patch
}

// Segment returns a JPEG marker segment with the given marker and payload.
func Segment(marker byte, payload []byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// ExifSegment wraps a TIFF block in an APP1 Exif segment.
func ExifSegment(tiff []byte) []byte {
	return Segment(0xE1, append([]byte("Exif\x00\x00"), tiff...))
}

// XMPSegment wraps an XMP packet in an APP1 XMP segment.
func XMPSegment(packet string) []byte {
	return Segment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), packet...))
}

// JPEG encodes img at quality q and inserts segs right after SOI.
func JPEG(img image.Image, q int, segs ...[]byte) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err) // in-memory encode of a valid image cannot fail
	}
	b := buf.Bytes()
	out := append([]byte{}, b[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, b[2:]...)
}

// PNG encodes img and inserts chunks right after IHDR.
func PNG(img image.Image, chunks ...[]byte) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(b[8:]))
	out := append([]byte{}, b[:ihdrEnd]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, b[ihdrEnd:]...)
}

// Chunk builds a PNG chunk with a valid CRC.
func Chunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[4:]))
}

// TextChunk builds a tEXt chunk.
func TextChunk(key, value string) []byte {
	return Chunk("tEXt", append(append([]byte(key), 0), value...))
}

// ITextChunk builds a zlib-compressed iTXt chunk.
func ITextChunk(key, value string) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(value))
	w.Close()
	d := append([]byte(key), 0, 1, 0, 0, 0)
	return Chunk("iTXt", append(d, z.Bytes()...))
}
