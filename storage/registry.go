package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// NewModelID returns a fresh model id: "mdl_" and 20 hex digits.
func NewModelID() string { return "mdl_" + compactUUID()[:20] }

// ModelBlobKey is where a model's TorchScript file is stored.
func ModelBlobKey(modelID string) string { return "models/" + modelID + "/model.pt" }

// NewModelJob is the validation job (kind model_validate, status queued)
// created together with a model by CreateModel; the caller enqueues it
// after the transaction commits.
func NewModelJob(orgID, modelID string, deadline time.Time) *records.Job {
	in, _ := json.Marshal(jobs.ModelJobInput{ModelID: modelID})
	return &records.Job{ID: "mjob_" + compactUUID(), OrgID: &orgID, Kind: jobs.KindModelLoad,
		Queue: jobs.Kinds[jobs.KindModelLoad].Queue, Status: records.JobQueued, Input: string(in), Deadline: deadline}
}

// CreateModel inserts a model (status processing) and its validation job
// in one transaction, with the model file's blob when it was uploaded.
func (db *DB) CreateModel(ctx context.Context, m *records.Model, job *records.Job, blobs []records.Blob) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(m).Error; err != nil {
			return fmt.Errorf("insert model: %w", err)
		}
		return insertJob(tx, job, blobs)
	})
}

// GetModel loads an org's model; another org's model is not found.
func (db *DB) GetModel(ctx context.Context, orgID, id string) (records.Model, error) {
	q := db.gorm.WithContext(ctx).Where("id = ?", id)
	if orgID != "" {
		q = q.Where("org_id = ?", orgID)
	}
	return first[records.Model](q, "model")
}

// FindModelByName returns an org's model with that name (the oldest one
// when several share it).
func (db *DB) FindModelByName(ctx context.Context, orgID, name string) (records.Model, error) {
	return first[records.Model](db.gorm.WithContext(ctx).Where("org_id = ? AND name = ?", orgID, name).Order("created_at ASC").Order("id ASC"), "model")
}

// ModelFilter selects and orders a model listing.
type ModelFilter struct {
	Type, Status      string
	Limit, Offset     int
	SortBy, SortOrder string // validated by the caller against ModelSortColumns
}

// ModelSortColumns are the columns a listing may sort by.
var ModelSortColumns = map[string]bool{"id": true, "name": true, "created_at": true, "updated_at": true, "type": true, "status": true}

// ListModels lists an org's models with the total before pagination.
func (db *DB) ListModels(ctx context.Context, orgID string, f ModelFilter) ([]records.Model, int64, error) {
	q := db.gorm.WithContext(ctx).Model(&records.Model{}).Where("org_id = ?", orgID)
	if f.Type != "" {
		q = q.Where("type = ?", f.Type)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count models: %w", err)
	}
	col, dir := "created_at", "DESC"
	if ModelSortColumns[f.SortBy] {
		col = f.SortBy
	}
	if f.SortOrder == "asc" {
		dir = "ASC"
	}
	var ms []records.Model
	err := q.Order(col + " " + dir).Order("id ASC").Limit(f.Limit).Offset(f.Offset).Find(&ms).Error
	return ms, total, err
}

// ModelValidated records the outcome of a model's validation.
func (db *DB) ModelValidated(ctx context.Context, id string, set map[string]any) error {
	set["updated_at"] = time.Now().UTC()
	return db.gorm.WithContext(ctx).Model(&records.Model{}).Where("id = ?", id).Updates(set).Error
}

// DeleteModel removes an org's model, returning it so the caller can delete its blob.
func (db *DB) DeleteModel(ctx context.Context, orgID, id string) (records.Model, error) {
	m, err := db.GetModel(ctx, orgID, id)
	if err != nil {
		return m, err
	}
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if m.BlobKey != "" {
			if err := tx.Where("key = ?", m.BlobKey).Delete(&records.Blob{}).Error; err != nil {
				return err
			}
		}
		return tx.Where("id = ?", m.ID).Delete(&records.Model{}).Error
	})
	return m, err
}

// AddJobBlobs records artifacts a running job wrote (idempotent per key);
// rows are only added while the job still exists.
func (db *DB) AddJobBlobs(ctx context.Context, jobID string, blobs []records.Blob) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&records.Job{}).Where("id = ?", jobID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return warden.Errorf(warden.ENOTFOUND, "job not found")
		}
		for _, b := range blobs {
			b.JobID = jobID
			if err := tx.Where(records.Blob{Key: b.Key}).Assign(b).FirstOrCreate(&b).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
