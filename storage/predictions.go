package storage

import (
	"context"
	"fmt"

	"github.com/wardenlab/warden/records"
)

// RecordPredictions stores prediction audit records, many per statement.
func (db *DB) RecordPredictions(ctx context.Context, rows []records.Prediction) error {
	if len(rows) == 0 {
		return nil
	}
	if err := db.gorm.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("record %d predictions: %w", len(rows), err)
	}
	return nil
}

// OrgPredictions lists an org's most recent prediction records, newest
// first (audit; tests).
func (db *DB) OrgPredictions(ctx context.Context, orgID string, limit int) ([]records.Prediction, error) {
	var out []records.Prediction
	if orgID == "" {
		return nil, nil
	}
	err := db.gorm.WithContext(ctx).Where("org_id = ?", orgID).Order("created_at DESC").Limit(limit).Find(&out).Error
	return out, err
}
