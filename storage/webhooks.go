package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenlab/warden/models"
	"gorm.io/gorm"
)

// GetDelivery loads a webhook delivery of an org ("" = any org, for the worker).
func (db *DB) GetDelivery(ctx context.Context, orgID, id string) (models.WebhookDelivery, error) {
	q := db.gorm.WithContext(ctx).Where("id = ?", id)
	if orgID != "" {
		q = q.Where("org_id = ?", orgID)
	}
	return first[models.WebhookDelivery](q, "webhook delivery")
}

// ListDeliveries lists an org's deliveries, newest first, optionally of one job.
func (db *DB) ListDeliveries(ctx context.Context, orgID, jobID string, limit, offset int) ([]models.WebhookDelivery, int64, error) {
	q := db.gorm.WithContext(ctx).Model(&models.WebhookDelivery{}).Where("org_id = ?", orgID)
	if jobID != "" {
		q = q.Where("job_id = ?", jobID)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count deliveries: %w", err)
	}
	var ds []models.WebhookDelivery
	err := q.Order("created_at DESC").Limit(limit).Offset(offset).Find(&ds).Error
	return ds, total, err
}

// DeliveryAttempts lists the recorded attempts of a delivery, oldest first.
func (db *DB) DeliveryAttempts(ctx context.Context, deliveryID string) ([]models.WebhookAttempt, error) {
	var as []models.WebhookAttempt
	err := db.gorm.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("id").Find(&as).Error
	return as, err
}

// RecordAttempt stores one POST and moves the delivery to delivered, or to
// failed when giveUp is set.
func (db *DB) RecordAttempt(ctx context.Context, a models.WebhookAttempt, delivered, giveUp bool) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&a).Error; err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		set := map[string]any{"attempts": gorm.Expr("attempts + 1"), "updated_at": time.Now().UTC()}
		switch {
		case delivered:
			set["status"] = models.DeliveryDelivered
			set["delivered_at"] = time.Now().UTC()
		case giveUp:
			set["status"] = models.DeliveryFailed
		}
		return tx.Model(&models.WebhookDelivery{}).Where("id = ?", a.DeliveryID).Updates(set).Error
	})
}

// ResetDelivery puts a delivery back to pending for a manual redelivery.
func (db *DB) ResetDelivery(ctx context.Context, orgID, id string) (models.WebhookDelivery, error) {
	d, err := db.GetDelivery(ctx, orgID, id)
	if err != nil {
		return d, err
	}
	err = db.gorm.WithContext(ctx).Model(&d).Updates(map[string]any{"status": models.DeliveryPending, "updated_at": time.Now().UTC()}).Error
	d.Status = models.DeliveryPending
	return d, err
}

// PendingDeliveries lists pending deliveries not touched since before.
func (db *DB) PendingDeliveries(ctx context.Context, before time.Time, limit int) ([]models.WebhookDelivery, error) {
	var ds []models.WebhookDelivery
	err := db.gorm.WithContext(ctx).Where("status = ? AND updated_at < ?", models.DeliveryPending, before).
		Order("created_at").Limit(limit).Find(&ds).Error
	return ds, err
}
