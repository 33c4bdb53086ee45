package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/wardenlab/warden/secretbox"
)

func newBox(t *testing.T, fill byte) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(bytes.Repeat([]byte{fill}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const secret = "whsec_c2VjcmV0LXZhbHVlLW9mLXRoaXJ0eS10d28tYnl0ZXM="

func TestSealOpenRoundTrip(t *testing.T) {
	b := newBox(t, 1)
	for _, plain := range []string{secret, "", "ünïcødé\x00bytes", strings.Repeat("x", 4096)} {
		v := b.Seal(plain, "orgs.webhook_secret:org_1")
		if !secretbox.IsSealed(v) || !strings.HasPrefix(v, "enc:v1:"+b.ID()+":") {
			t.Fatalf("sealed value %q lacks its header", v)
		}
		if plain != "" && strings.Contains(v, plain) {
			t.Fatalf("sealed value %q contains the plaintext", v)
		}
		got, err := b.Open(v, "orgs.webhook_secret:org_1")
		if err != nil || got != plain {
			t.Fatalf("Open = %q, %v; want %q", got, err, plain)
		}
	}
	if b.Seal(secret, "a") == b.Seal(secret, "a") {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
}

func TestSealedFitsColumn(t *testing.T) {
	// The longest secret stored: "whsec_" + base64 of 32 bytes.
	if n := len(newBox(t, 1).Seal(secret, "x")); n > 512 {
		t.Errorf("sealed webhook secret is %d characters; columns hold 512", n)
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	b := newBox(t, 1)
	v := b.Seal(secret, "signing_keys.secret:sk_1")
	header := v[:strings.LastIndexByte(v, ':')+1]
	raw, err := base64.StdEncoding.DecodeString(v[len(header):])
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw { // every byte: nonce, ciphertext and tag
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		if got, err := b.Open(header+base64.StdEncoding.EncodeToString(flipped), "signing_keys.secret:sk_1"); !errors.Is(err, secretbox.ErrInvalid) {
			t.Fatalf("byte %d flipped: Open = %q, %v; want ErrInvalid", i, got, err)
		}
	}
	for name, bad := range map[string]string{
		"truncated":     v[:len(v)-4],
		"not base64":    header + "!!!!",
		"too short":     header + base64.StdEncoding.EncodeToString([]byte("short")),
		"no key id":     "enc:v1:" + v[len(header):],
		"empty payload": header,
		"other version": strings.Replace(v, "enc:v1:", "enc:v2:", 1),
	} {
		if got, err := b.Open(bad, "signing_keys.secret:sk_1"); err == nil {
			t.Errorf("%s: Open = %q, want an error", name, got)
		}
	}
}

func TestOpenRejectsAnotherRow(t *testing.T) {
	b := newBox(t, 1)
	v := b.Seal(secret, "orgs.webhook_secret:org_1")
	for _, aad := range []string{"orgs.webhook_secret:org_2", "signing_keys.secret:org_1", "", "orgs.webhook_secret:org_1 "} {
		if got, err := b.Open(v, aad); !errors.Is(err, secretbox.ErrInvalid) {
			t.Errorf("opened with aad %q: %q, %v; want ErrInvalid", aad, got, err)
		}
	}
}

func TestOpenWithWrongOrNoKey(t *testing.T) {
	v := newBox(t, 1).Seal(secret, "row")
	other := newBox(t, 2)
	_, err := other.Open(v, "row")
	if !errors.Is(err, secretbox.ErrWrongKey) || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
		t.Errorf("wrong key: %v; want ErrWrongKey naming WARDEN_SECRET_KEY", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the secret", err)
	}
	// A forged header naming the right key id still does not open.
	forged := strings.Replace(v, newBox(t, 1).ID(), other.ID(), 1)
	if _, err := other.Open(forged, "row"); !errors.Is(err, secretbox.ErrInvalid) {
		t.Errorf("forged key id: %v; want ErrInvalid", err)
	}
	var none *secretbox.Box
	if _, err := none.Open(v, "row"); !errors.Is(err, secretbox.ErrNoKey) || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
		t.Errorf("no key: %v; want ErrNoKey naming WARDEN_SECRET_KEY", err)
	}
}

func TestClearValues(t *testing.T) {
	var none *secretbox.Box
	if got := none.Seal(secret, "row"); got != secret {
		t.Errorf("nil Box sealed %q", got)
	}
	for _, b := range []*secretbox.Box{none, newBox(t, 1)} {
		if got, err := b.Open(secret, "row"); err != nil || got != secret {
			t.Errorf("clear value: Open = %q, %v", got, err)
		}
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := secretbox.New(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "WARDEN_SECRET_KEY") {
			t.Errorf("%d-byte key: %v; want an error naming WARDEN_SECRET_KEY", n, err)
		}
	}
	a, b := newBox(t, 1), newBox(t, 2)
	if a.ID() == b.ID() || len(a.ID()) != 16 {
		t.Errorf("key ids %q %q", a.ID(), b.ID())
	}
}
