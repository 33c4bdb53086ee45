package storage

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// NewModelID returns a fresh model id: "mdl_" and 20 hex digits.
func NewModelID() string { return "mdl_" + compactUUID()[:20] }

// modelKeyPrefix starts the key of every model file.
const modelKeyPrefix = "models/"

// ModelBlobKey is where a model's TorchScript file is stored.
func ModelBlobKey(modelID string) string { return modelKeyPrefix + modelID + "/model.pt" }

// ArtifactKey is where an attempt of a job stores an artifact file (a PNG
// of an attack…). Each attempt has its own folder, so an attempt that
// loses a race (a duplicate after a lease expired) can delete what it
// wrote without touching the files of the attempt that completed.
func ArtifactKey(jobID string, attempt int, file string) string {
	return fmt.Sprintf("jobs/%s/artifacts/%d/%s", jobID, attempt, file)
}

// JobArtifact finds the stored artifact file of a job by file name (the
// one its completed attempt recorded).
func (db *DB) JobArtifact(ctx context.Context, jobID, file string) (records.Blob, error) {
	blobs, err := db.JobBlobs(ctx, jobID)
	if err != nil {
		return records.Blob{}, err
	}
	for _, b := range blobs {
		if dir, name := path.Split(b.Key); name == file && strings.HasPrefix(dir, "jobs/"+jobID+"/artifacts/") {
			return b, nil
		}
	}
	return records.Blob{}, warden.Errorf(warden.ENOTFOUND, "artifact not found")
}

// CreateModel inserts a model (status processing) and its validation job
// in one transaction, with the model file's blob when it was uploaded
// (m.FileSize is its size), unless the org is at a cap of q: then it
// writes nothing and answers EQUOTAJOBS or EQUOTABYTES. A model served by
// an endpoint stores no file and passes the byte cap.
func (db *DB) CreateModel(ctx context.Context, m *records.Model, job *records.Job, blobs []records.Blob, q Quota) error {
	if m.EndpointURL != "" {
		q.MaxStoredBytes = 0
	}
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := db.checkQuota(tx, job.OrgID, q, blobBytes(blobs)); err != nil {
			return err
		}
		if err := tx.Create(m).Error; err != nil {
			return fmt.Errorf("insert model: %w", err)
		}
		return insertJob(tx, job, blobs)
	})
}

// GetModel loads an org's model; another org's model, and any model for
// an empty org id, is not found.
func (db *DB) GetModel(ctx context.Context, orgID, id string) (records.Model, error) {
	return ofOrg[records.Model](ctx, db, orgID, id, "model")
}

// ModelByID loads a model by id for a worker, which acts for every org;
// surfaces use GetModel.
func (db *DB) ModelByID(ctx context.Context, id string) (records.Model, error) {
	return first[records.Model](db.gorm.WithContext(ctx).Where("id = ?", id), "model")
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

// SetModelBlob records where a model's file was stored, and its size, once
// a worker downloaded it from model_file_url; ENOTFOUND when the model was
// deleted meanwhile (the caller discards the file).
func (db *DB) SetModelBlob(ctx context.Context, id, key string, size int64) error {
	res := db.gorm.WithContext(ctx).Model(&records.Model{}).Where("id = ?", id).
		Updates(map[string]any{"blob_key": key, "file_size": size, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("set model file: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return warden.Errorf(warden.ENOTFOUND, "model not found")
	}
	return nil
}

// DeleteModel removes an org's model and queues its file for deletion in
// the same transaction. It returns the model and the keys to delete at
// once with PurgeBlobs. The file's usual key is queued even when the row
// names none yet: a worker may be storing a downloaded file right now.
func (db *DB) DeleteModel(ctx context.Context, orgID, id string) (records.Model, []string, error) {
	m, err := db.GetModel(ctx, orgID, id)
	if err != nil {
		return m, nil, err
	}
	keys := compactKeys([]string{m.BlobKey, ModelBlobKey(m.ID)})
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("key IN ?", keys).Delete(&records.Blob{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ?", m.ID).Delete(&records.Model{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return warden.Errorf(warden.ENOTFOUND, "model not found")
		}
		return tombstone(tx, "deleted model "+m.ID, keys)
	})
	if err != nil {
		return m, nil, fmt.Errorf("delete model: %w", err)
	}
	return m, keys, nil
}
