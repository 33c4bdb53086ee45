package exif

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// Chunk is one PNG chunk located in the file's bytes.
type Chunk struct {
	Type   string
	Offset int // offset of the chunk's length field
	Data   []byte
}

// maxChunks bounds the number of PNG chunks walked.
const maxChunks = 8192

// ErrNotPNG is returned by PNGChunks for data without the PNG signature.
var ErrNotPNG = errors.New("not a PNG file")

// PNGChunks walks the chunks of a PNG file up to IEND. CRCs are not checked.
// On a structural error it returns the chunks read so far with the error.
func PNGChunks(data []byte) ([]Chunk, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, ErrNotPNG
	}
	var chunks []Chunk
	i := len(pngSignature)
	for len(chunks) < maxChunks {
		if i+8 > len(data) {
			return chunks, fmt.Errorf("png: truncated chunk header at offset %d", i)
		}
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if uint64(i)+12+n > uint64(len(data)) {
			return chunks, fmt.Errorf("png: chunk %q at offset %d overruns file", typ, i)
		}
		chunks = append(chunks, Chunk{Type: typ, Offset: i, Data: data[i+8 : i+8+int(n)]})
		i += 12 + int(n)
		if typ == "IEND" {
			return chunks, nil
		}
	}
	return chunks, fmt.Errorf("png: more than %d chunks", maxChunks)
}

// parsePNG reads text chunks, XMP and eXIf from a PNG file.
func parsePNG(data []byte, md *Metadata) {
	chunks, err := PNGChunks(data)
	if err != nil {
		md.set("PNGError", err.Error())
	}
	for _, c := range chunks {
		if md.stopped() {
			return
		}
		switch c.Type {
		case "tEXt":
			if k, v, ok := bytes.Cut(c.Data, []byte{0}); ok {
				pngText(md, string(k), latin1(v))
			}
		case "zTXt":
			k, rest, ok := bytes.Cut(c.Data, []byte{0})
			if ok && len(rest) > 1 && rest[0] == 0 {
				if v, err := inflate(rest[1:]); err == nil {
					pngText(md, string(k), latin1(v))
				}
			}
		case "iTXt":
			pngIText(md, c.Data)
		case "eXIf":
			if err := parseTIFF(c.Data, md); err != nil {
				md.set("ExifError", err.Error())
			}
		}
	}
}

// pngIText decodes an iTXt chunk: keyword, compression flag and method,
// language tag, translated keyword, then UTF-8 text.
func pngIText(md *Metadata, d []byte) {
	k, rest, ok := bytes.Cut(d, []byte{0})
	if !ok || len(rest) < 2 {
		return
	}
	compressed := rest[0] == 1
	rest = rest[2:]
	_, rest, ok = bytes.Cut(rest, []byte{0}) // language
	if !ok {
		return
	}
	_, text, ok := bytes.Cut(rest, []byte{0}) // translated keyword
	if !ok {
		return
	}
	if compressed {
		var err error
		if text, err = inflate(text); err != nil {
			return
		}
	}
	pngText(md, string(k), string(text))
}

// pngText stores one text chunk; XMP packets are parsed as XMP.
func pngText(md *Metadata, key, value string) {
	if key == "XML:com.adobe.xmp" {
		parseXMP([]byte(value), md)
		return
	}
	md.set("PNG:"+key, value)
}

// inflate decompresses zlib data, refusing more than maxInflate bytes.
func inflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflate))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	return out, nil
}

// latin1 converts ISO 8859-1 bytes (the tEXt encoding) to a string.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
