package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// migration is one schema version. Versions are applied in order, once; a
// row in schema_migrations records each. Up must be safe to re-run after a
// crash half-way (AutoMigrate and CREATE INDEX IF NOT EXISTS are).
type migration struct {
	Version int
	Name    string
	Up      func(tx *gorm.DB) error
}

var migrations = []migration{
	{1, "core tables", func(tx *gorm.DB) error {
		return tx.AutoMigrate(&records.Org{}, &records.Credential{}, &records.Job{},
			&records.Result{}, &records.Blob{}, &records.WebhookDelivery{}, &records.WebhookAttempt{})
	}},
	// The first key is seeded by Migrate after every migration (sealed,
	// once the column is wide enough: version 6).
	{2, "signing keys", func(tx *gorm.DB) error { return tx.AutoMigrate(&records.SigningKey{}) }},
	{3, "models", func(tx *gorm.DB) error { return tx.AutoMigrate(&records.Model{}) }},
	{4, "remote model endpoints", func(tx *gorm.DB) error { return tx.AutoMigrate(&records.Model{}) }},
	{5, "unfinished-job indexes", func(tx *gorm.DB) error {
		// The reconciler looks only at unfinished jobs, a few among the
		// whole history, so only those are indexed. A plain index on status
		// also lured the per-job updates (which filter on status) into
		// scanning every queued entry instead of finding their rows by
		// primary key. These indexes are keyed on finished_at IS NULL,
		// which the per-job updates never mention, so the planner cannot
		// use them there; the reconciler's queries say both.
		for _, q := range []string{
			"DROP INDEX IF EXISTS idx_jobs_status",
			"DROP INDEX IF EXISTS idx_jobs_deadline",
			"CREATE INDEX IF NOT EXISTS idx_jobs_unfinished_updated ON jobs (updated_at) WHERE finished_at IS NULL",
			"CREATE INDEX IF NOT EXISTS idx_jobs_unfinished_deadline ON jobs (deadline) WHERE finished_at IS NULL",
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	}},
	{6, "blob deletion tombstones", func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&records.BlobDeletion{}); err != nil {
			return err
		}
		// A tombstone never deletes an object a model still points to
		// (referencedBlobs); this keeps that check off a full scan.
		return tx.Exec("CREATE INDEX IF NOT EXISTS idx_models_blob_key ON models (blob_key)").Error
	}},
	{7, "org quotas", func(tx *gorm.DB) error {
		// models.file_size, filled from the blob rows of uploaded files
		// (a file downloaded from model_file_url before this version has
		// no row and counts 0), and the org's unfinished jobs indexed for
		// the active-job count of every submission.
		if err := tx.AutoMigrate(&records.Model{}); err != nil {
			return err
		}
		for _, q := range []string{
			"UPDATE models SET file_size = (SELECT blobs.size FROM blobs WHERE blobs.key = models.blob_key) WHERE EXISTS (SELECT 1 FROM blobs WHERE blobs.key = models.blob_key)",
			"CREATE INDEX IF NOT EXISTS idx_jobs_unfinished_org ON jobs (org_id) WHERE finished_at IS NULL",
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	}},
	{8, "secret columns wide enough for sealed values", func(tx *gorm.DB) error {
		if err := tx.Migrator().AlterColumn(&records.Org{}, "WebhookSecret"); err != nil {
			return err
		}
		return tx.Migrator().AlterColumn(&records.SigningKey{}, "Secret")
	}},
	{9, "prediction audit records", func(tx *gorm.DB) error {
		return tx.AutoMigrate(&records.Prediction{})
	}},
	{10, "aggregates of deleted results", func(tx *gorm.DB) error {
		return tx.AutoMigrate(&records.ResultStat{})
	}},
	{11, "AISpectra registrations and uploads", func(tx *gorm.DB) error {
		return tx.AutoMigrate(&records.AISModel{}, &records.AISFile{})
	}},
	{12, "AISpectra analyses: job subjects, a registration's requested analysis", func(tx *gorm.DB) error {
		return tx.AutoMigrate(&records.Job{}, &records.AISModel{})
	}},
}

type schemaMigration struct {
	Version   int `gorm:"primaryKey"`
	Name      string
	AppliedAt time.Time
}

// Migrate applies every pending migration, then seals the secrets stored
// in clear when a key is configured (refusing a database whose sealed
// secrets it cannot open) and seeds the first signing key. Concurrent
// callers (API and worker starting together) serialise on a PostgreSQL
// advisory lock.
func (db *DB) Migrate(ctx context.Context) error {
	return db.gorm.WithContext(ctx).Connection(func(pinned *gorm.DB) error {
		// A fresh session per statement: chaining on the pinned handle
		// itself would carry one statement's model into the next.
		conn := pinned.Session(&gorm.Session{NewDB: true})
		if db.dialect == "postgres" {
			if err := conn.Exec("SELECT pg_advisory_lock(7224551)").Error; err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
			defer conn.Exec("SELECT pg_advisory_unlock(7224551)")
		}
		if err := conn.AutoMigrate(&schemaMigration{}); err != nil {
			return fmt.Errorf("schema_migrations: %w", err)
		}
		var applied []int
		if err := conn.Model(&schemaMigration{}).Pluck("version", &applied).Error; err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range migrations {
			if done[m.Version] {
				continue
			}
			err := conn.Transaction(func(tx *gorm.DB) error {
				if err := m.Up(tx); err != nil {
					return err
				}
				return tx.Create(&schemaMigration{Version: m.Version, Name: m.Name, AppliedAt: time.Now().UTC()}).Error
			})
			if err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			slog.Info("applied migration", "version", m.Version, "name", m.Name)
		}
		if err := db.sealSecrets(conn); err != nil {
			return err
		}
		// Seed the first signing key here, under the migration lock, so
		// that API replicas starting together all find the same one.
		if _, err := db.ensureSigningKey(conn); err != nil {
			return fmt.Errorf("signing key: %w", err)
		}
		return nil
	})
}

// SchemaVersion returns the highest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.gorm.WithContext(ctx).Model(&schemaMigration{}).Select("COALESCE(MAX(version),0)").Scan(&v).Error
	return v, err
}
