package sensor

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/wardenlab/warden/media/exif"
)

// Identifier starts the payload of the signature container.
const Identifier = "WARDEN-SENSOR\x00"

// Container kinds.
const (
	jpegMarker = 0xEA   // APP10
	pngChunk   = "snSG" // ancillary, private, unsafe to copy
)

// Signature algorithm names used in the envelope.
const (
	AlgECDSASHA256 = "ECDSA-SHA256"
	AlgEd25519     = "Ed25519"
)

// envelope is the JSON document inside the container.
type envelope struct {
	Version  int      `json:"v"`
	Alg      string   `json:"alg"`
	Sig      []byte   `json:"sig"`
	Chain    [][]byte `json:"chain,omitempty"`
	ChainPEM string   `json:"chain_pem,omitempty"`
}

// errNoSignature means the file holds no signature container.
var errNoSignature = errors.New("no sensor signature container")

// located is a signature container found in a file.
type located struct {
	start, end int // byte range of the container in the file
	payload    []byte
}

// locate finds the single signature container of a JPEG or PNG file.
func locate(data []byte) (located, error) {
	var found []located
	if segs, err := exif.JPEGSegments(data); err == nil || len(segs) > 0 {
		for _, s := range segs {
			if s.Marker == jpegMarker && bytes.HasPrefix(s.Payload, []byte(Identifier)) {
				found = append(found, located{s.Offset, s.Offset + s.Length, s.Payload[len(Identifier):]})
			}
		}
	} else if chunks, _ := exif.PNGChunks(data); len(chunks) > 0 {
		for _, c := range chunks {
			if c.Type == pngChunk && bytes.HasPrefix(c.Data, []byte(Identifier)) {
				found = append(found, located{c.Offset, c.Offset + 12 + len(c.Data), c.Data[len(Identifier):]})
			}
		}
	}
	switch len(found) {
	case 0:
		return located{}, errNoSignature
	case 1:
		return found[0], nil
	}
	return located{}, fmt.Errorf("%d sensor signature containers (exactly one allowed)", len(found))
}

// digest is SHA-256 of data without the byte range [start, end).
func digest(data []byte, start, end int) []byte {
	h := sha256.New()
	h.Write(data[:start])
	h.Write(data[end:])
	return h.Sum(nil)
}

// parseEnvelope decodes the JSON envelope and its certificate chain (DER or
// PEM), leaf first.
func parseEnvelope(payload []byte) (envelope, [][]byte, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return env, nil, fmt.Errorf("envelope: %w", err)
	}
	if env.Version != 1 {
		return env, nil, fmt.Errorf("envelope version %d unsupported", env.Version)
	}
	ders := env.Chain
	rest := []byte(env.ChainPEM)
	for len(rest) > 0 && len(ders) < 8 {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return env, nil, errors.New("envelope carries no certificate")
	}
	if len(ders) > 8 {
		return env, nil, fmt.Errorf("certificate chain of %d is too long", len(ders))
	}
	return env, ders, nil
}

// container builds the JPEG segment or PNG chunk that holds payload.
func container(png bool, payload []byte) ([]byte, error) {
	body := append([]byte(Identifier), payload...)
	if png {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		out = append(out, pngChunk...)
		out = append(out, body...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[4:])), nil
	}
	if len(body)+2 > 0xFFFF {
		return nil, fmt.Errorf("signature envelope of %d bytes does not fit a JPEG segment", len(body))
	}
	n := len(body) + 2
	return append([]byte{0xFF, jpegMarker, byte(n >> 8), byte(n)}, body...), nil
}
