// Package secretbox seals the secrets Warden must keep in clear to use
// (HMAC keys for access tokens, orgs' webhook secrets) before they are
// stored, with AES-256-GCM under the key of WARDEN_SECRET_KEY.
//
// A sealed value is text that describes itself:
//
//	enc:v1:<key id>:<base64(nonce || ciphertext)>
//
// The key id is a fingerprint of the key (not the key), so a value sealed
// under another key is told apart from a value that was altered. Every
// value is sealed with associated data naming its place (table, column,
// row): a sealed value copied into another row does not open there.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// Prefix starts every sealed value, of any format version; values in
// clear (base64, "whsec_…") never start with it.
const Prefix = "enc:"

const v1 = Prefix + "v1:"

// The errors of Open. Each names WARDEN_SECRET_KEY, the setting to check.
var (
	// ErrNoKey: the value is sealed but no key is configured.
	ErrNoKey = errors.New("secret is sealed but WARDEN_SECRET_KEY is not set")
	// ErrWrongKey: the value was sealed under another key.
	ErrWrongKey = errors.New("secret was sealed under another WARDEN_SECRET_KEY")
	// ErrInvalid: the value is malformed, altered, or was moved from
	// another row.
	ErrInvalid = errors.New("sealed secret does not open under WARDEN_SECRET_KEY (altered, or moved from another row)")
)

// Box seals and opens values under one key. A nil *Box has no key: Seal
// returns the value unchanged and Open accepts only values in clear.
type Box struct {
	aead cipher.AEAD
	id   string
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("WARDEN_SECRET_KEY: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("WARDEN_SECRET_KEY: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("WARDEN_SECRET_KEY: %w", err)
	}
	return &Box{aead: aead, id: KeyID(key)}, nil
}

// KeyID is the fingerprint of a key that sealed values carry: 8 bytes of a
// domain-separated SHA-256, in hex. It identifies the key without
// revealing it.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("warden secretbox key id\x00"), key...))
	return hex.EncodeToString(h[:8])
}

// ID is the fingerprint of the Box's key ("" for a nil Box).
func (b *Box) ID() string {
	if b == nil {
		return ""
	}
	return b.id
}

// Header is how every value this Box seals begins: the prefix, the format
// version and the key id ("" for a nil Box).
func (b *Box) Header() string {
	if b == nil {
		return ""
	}
	return v1 + b.id + ":"
}

// IsSealed reports whether v is a sealed value (of any key or version).
func IsSealed(v string) bool { return strings.HasPrefix(v, Prefix) }

// Seal encrypts plaintext bound to aad (the value's place, such as
// "orgs.webhook_secret:org_…"). A nil Box returns plaintext unchanged.
func (b *Box) Seal(plaintext, aad string) string {
	if b == nil {
		return plaintext
	}
	header := b.Header()
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS RNG failing is unrecoverable
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(plaintext), associated(header, aad))
	return header + base64.StdEncoding.EncodeToString(sealed)
}

// Open returns the plaintext of v, which must have been sealed with the
// same aad under this Box's key. A value in clear (written before a key
// was configured) is returned as it is.
func (b *Box) Open(v, aad string) (string, error) {
	if !IsSealed(v) {
		return v, nil
	}
	if b == nil {
		return "", ErrNoKey
	}
	rest, ok := strings.CutPrefix(v, v1)
	if !ok { // another format version
		return "", ErrInvalid
	}
	id, data, ok := strings.Cut(rest, ":")
	if !ok {
		return "", ErrInvalid
	}
	if id != b.id {
		return "", fmt.Errorf("%w (sealed under key %s, WARDEN_SECRET_KEY is key %s)", ErrWrongKey, id, b.id)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrInvalid
	}
	nonce, ct := raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():]
	plain, err := b.aead.Open(nil, nonce, ct, associated(b.Header(), aad))
	if err != nil {
		return "", ErrInvalid
	}
	return string(plain), nil
}

// associated binds the header (format version and key id) and the value's
// place; the NUL keeps the two parts from running into each other.
func associated(header, aad string) []byte {
	return []byte(header + "\x00" + aad)
}
