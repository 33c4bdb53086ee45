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

// GetCredential loads a credential by id, revoked or not, so that callers
// can tell a revoked client from an unknown one.
func (db *DB) GetCredential(ctx context.Context, id string) (records.Credential, error) {
	return first[records.Credential](db.gorm.WithContext(ctx).Where("id = ?", id), "credential")
}

// ListCredentials returns an org's credentials, revoked ones included,
// oldest first.
func (db *DB) ListCredentials(ctx context.Context, orgID string, limit, offset int) ([]records.Credential, int64, error) {
	q := db.gorm.WithContext(ctx).Model(&records.Credential{}).Where("org_id = ?", orgID)
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count credentials: %w", err)
	}
	var cs []records.Credential
	if err := q.Order("created_at, id").Limit(limit).Offset(offset).Find(&cs).Error; err != nil {
		return nil, 0, fmt.Errorf("list credentials: %w", err)
	}
	return cs, total, nil
}

// RevokeCredential marks an org's credential revoked. Revoking twice keeps
// the first time; another org's credential is not found.
func (db *DB) RevokeCredential(ctx context.Context, orgID, id string) (records.Credential, error) {
	var c records.Credential
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.First(&c, "id = ? AND org_id = ?", id, orgID).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return warden.Errorf(warden.ENOTFOUND, "credential not found")
		} else if err != nil {
			return fmt.Errorf("load credential: %w", err)
		}
		if c.RevokedAt != nil {
			return nil
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := tx.Model(&c).Where("revoked_at IS NULL").Update("revoked_at", now).Error; err != nil {
			return fmt.Errorf("revoke credential: %w", err)
		}
		c.RevokedAt = &now
		return nil
	})
	if err == nil {
		// This process stops honouring it at once; other replicas within
		// credentialTTL.
		db.creds.forget(id)
	}
	return c, err
}
