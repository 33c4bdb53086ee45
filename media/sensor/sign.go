package sensor

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenlab/warden/media/exif"
)

// Sign embeds a sensor signature made by signer into a JPEG or PNG file and
// returns the signed file. chain is the device certificate first, then any
// intermediates; its leaf must hold signer's public key. It is the reference
// writer of the format this package verifies (for test cameras and tools).
func Sign(data []byte, signer crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("sensor sign: empty certificate chain")
	}
	if _, err := locate(data); !errors.Is(err, errNoSignature) {
		return nil, errors.New("sensor sign: file already carries a sensor signature")
	}
	isPNG := false
	at := 0
	if _, err := exif.JPEGSegments(data); err == nil {
		at = 2 // right after SOI
	} else if chunks, err := exif.PNGChunks(data); err == nil && len(chunks) > 0 && chunks[0].Type == "IHDR" {
		isPNG = true
		at = chunks[0].Offset + 12 + len(chunks[0].Data)
	} else {
		return nil, errors.New("sensor sign: not a well-formed JPEG or PNG file")
	}
	d := digest(data, 0, 0)
	env := envelope{Version: 1}
	var err error
	switch signer.Public().(type) {
	case *ecdsa.PublicKey:
		env.Alg = AlgECDSASHA256
		env.Sig, err = signer.Sign(rand.Reader, d, crypto.SHA256)
	case ed25519.PublicKey:
		env.Alg = AlgEd25519
		env.Sig, err = signer.Sign(rand.Reader, d, crypto.Hash(0))
	default:
		return nil, fmt.Errorf("sensor sign: unsupported key type %T", signer.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("sensor sign: %w", err)
	}
	for _, c := range chain {
		env.Chain = append(env.Chain, c.Raw)
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("sensor sign: %w", err)
	}
	box, err := container(isPNG, payload)
	if err != nil {
		return nil, fmt.Errorf("sensor sign: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(data) + len(box))
	out.Write(data[:at])
	out.Write(box)
	out.Write(data[at:])
	return out.Bytes(), nil
}
