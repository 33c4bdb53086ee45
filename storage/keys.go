package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// SigningKeys returns the keys that verify access tokens, newest (the
// signer) first. When every key has been retired it creates a fresh one, so
// the API always has a signer; concurrent replicas serialise on a lock so
// they create one key between them, not one each.
func (db *DB) SigningKeys(ctx context.Context) ([]records.SigningKey, error) {
	keys, err := db.activeSigningKeys(db.gorm.WithContext(ctx))
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(7224552)").Error; err != nil {
				return fmt.Errorf("signing key lock: %w", err)
			}
		}
		keys, err = db.ensureSigningKey(tx)
		return err
	})
	return keys, err
}

// CreateSigningKey adds a key that becomes the signer at once (for replicas,
// once they reload). Retire the previous one after the token TTL has passed
// so that tokens it signed expire first.
func (db *DB) CreateSigningKey(ctx context.Context) (records.SigningKey, error) {
	k := newSigningKey()
	if err := db.gorm.WithContext(ctx).Create(db.sealedKey(k)).Error; err != nil {
		return k, fmt.Errorf("create signing key: %w", err)
	}
	return k, nil
}

// RetireSigningKey stops a key from verifying (and signing) tokens.
func (db *DB) RetireSigningKey(ctx context.Context, kid string) error {
	res := db.gorm.WithContext(ctx).Model(&records.SigningKey{}).Where("kid = ? AND retired_at IS NULL", kid).
		Update("retired_at", time.Now().UTC())
	if res.Error != nil {
		return fmt.Errorf("retire signing key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return warden.Errorf(warden.ENOTFOUND, "signing key not found")
	}
	return nil
}

func (db *DB) activeSigningKeys(tx *gorm.DB) ([]records.SigningKey, error) {
	var keys []records.SigningKey
	err := tx.Where("retired_at IS NULL").Order("created_at DESC, kid").Find(&keys).Error
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if err := db.openSigningKeys(keys); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return keys, nil
}

// ensureSigningKey returns the active keys, creating one when there is none.
func (db *DB) ensureSigningKey(tx *gorm.DB) ([]records.SigningKey, error) {
	keys, err := db.activeSigningKeys(tx)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	k := newSigningKey()
	if err := tx.Create(db.sealedKey(k)).Error; err != nil && !errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return []records.SigningKey{k}, nil
}

// sealedKey is the row that stores k: its secret sealed when a key is
// configured.
func (db *DB) sealedKey(k records.SigningKey) *records.SigningKey {
	k.Secret = db.seal(signingKeySecret, k.KID, k.Secret)
	return &k
}

func newSigningKey() records.SigningKey {
	return records.SigningKey{KID: "sk_" + randomHex(8), Secret: randomB64(32), CreatedAt: time.Now().UTC()}
}
