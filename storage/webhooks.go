package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// GetDelivery loads a webhook delivery of an org; another org's, and any
// for an empty org id, is not found.
func (db *DB) GetDelivery(ctx context.Context, orgID, id string) (records.WebhookDelivery, error) {
	return ofOrg[records.WebhookDelivery](ctx, db, orgID, id, "webhook delivery")
}

// DeliveryByID loads a delivery for the worker that sends it; surfaces
// use GetDelivery.
func (db *DB) DeliveryByID(ctx context.Context, id string) (records.WebhookDelivery, error) {
	return first[records.WebhookDelivery](db.gorm.WithContext(ctx).Where("id = ?", id), "webhook delivery")
}

// ListDeliveries lists an org's deliveries, newest first, optionally of one job.
func (db *DB) ListDeliveries(ctx context.Context, orgID, jobID string, limit, offset int) ([]records.WebhookDelivery, int64, error) {
	q := db.gorm.WithContext(ctx).Model(&records.WebhookDelivery{}).Where("org_id = ?", orgID)
	if jobID != "" {
		q = q.Where("job_id = ?", jobID)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count deliveries: %w", err)
	}
	var ds []records.WebhookDelivery
	err := q.Order("created_at DESC").Limit(limit).Offset(offset).Find(&ds).Error
	return ds, total, err
}

// DeliveryAttempts lists the recorded attempts of a delivery, oldest first.
func (db *DB) DeliveryAttempts(ctx context.Context, deliveryID string) ([]records.WebhookAttempt, error) {
	var as []records.WebhookAttempt
	err := db.gorm.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("id").Find(&as).Error
	return as, err
}

// RecordAttempt stores one POST and moves the delivery to delivered, or to
// failed when giveUp is set.
func (db *DB) RecordAttempt(ctx context.Context, a records.WebhookAttempt, delivered, giveUp bool) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&a).Error; err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		set := map[string]any{"attempts": gorm.Expr("attempts + 1"), "updated_at": time.Now().UTC()}
		switch {
		case delivered:
			set["status"] = records.DeliveryDelivered
			set["delivered_at"] = time.Now().UTC()
		case giveUp:
			set["status"] = records.DeliveryFailed
		}
		return tx.Model(&records.WebhookDelivery{}).Where("id = ?", a.DeliveryID).Updates(set).Error
	})
}

// ResetDelivery puts a delivery back to pending for a manual redelivery.
func (db *DB) ResetDelivery(ctx context.Context, orgID, id string) (records.WebhookDelivery, error) {
	d, err := db.GetDelivery(ctx, orgID, id)
	if err != nil {
		return d, err
	}
	err = db.gorm.WithContext(ctx).Model(&d).Updates(map[string]any{"status": records.DeliveryPending, "updated_at": time.Now().UTC()}).Error
	d.Status = records.DeliveryPending
	return d, err
}

// PendingDeliveries lists pending deliveries not touched since before.
func (db *DB) PendingDeliveries(ctx context.Context, before time.Time, limit int) ([]records.WebhookDelivery, error) {
	var ds []records.WebhookDelivery
	err := db.gorm.WithContext(ctx).Where("status = ? AND updated_at < ?", records.DeliveryPending, before).
		Order("created_at").Limit(limit).Find(&ds).Error
	return ds, err
}
