package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// NewAISModelID returns a fresh AISpectra model id: "ais_" and 24 hex digits.
func NewAISModelID() string { return "ais_" + compactUUID()[:24] }

// NewAISFileID returns a fresh id for one file's upload URL.
func NewAISFileID() string { return "upl_" + compactUUID() }

// AISBlobKey is where a valid uploaded file of an AISpectra model is stored.
func AISBlobKey(modelID, name string) string { return "ais/" + modelID + "/" + name + ".zip" }

// CreateAISModel inserts a registration and its files in one transaction.
func (db *DB) CreateAISModel(ctx context.Context, m *records.AISModel, files []records.AISFile) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(m).Error; err != nil {
			return fmt.Errorf("insert ais model: %w", err)
		}
		if err := tx.Create(&files).Error; err != nil {
			return fmt.Errorf("insert ais files: %w", err)
		}
		return nil
	})
}

// GetAISModel loads an org's registration with its files (by name); another
// org's is not found.
func (db *DB) GetAISModel(ctx context.Context, orgID, id string) (records.AISModel, []records.AISFile, error) {
	m, err := ofOrg[records.AISModel](ctx, db, orgID, id, "model")
	if err != nil {
		return m, nil, err
	}
	files, err := db.aisFiles(ctx, id)
	return m, files, err
}

func (db *DB) aisFiles(ctx context.Context, modelID string) ([]records.AISFile, error) {
	var files []records.AISFile
	if err := db.gorm.WithContext(ctx).Where("model_id = ?", modelID).Order("name").Find(&files).Error; err != nil {
		return nil, fmt.Errorf("load ais files: %w", err)
	}
	return files, nil
}

// AISModelByFile loads the registration a file belongs to, with all its
// files (the upload endpoint, which knows only the file from its token).
func (db *DB) AISModelByFile(ctx context.Context, fileID string) (records.AISModel, []records.AISFile, error) {
	f, err := first[records.AISFile](db.gorm.WithContext(ctx).Where("id = ?", fileID), "upload")
	if err != nil {
		return records.AISModel{}, nil, err
	}
	return db.GetAISModel(ctx, f.OrgID, f.ModelID)
}

// ClaimAISFile takes a file's single-use upload URL: one statement that
// applies only to an unused URL before its expiry, so of two concurrent
// uploads exactly one wins (FinishAISFile gives it back unless the file
// was valid). The loser learns why: ECONFLICT (already
// used), EFORBIDDEN (expired), ENOTFOUND.
func (db *DB) ClaimAISFile(ctx context.Context, id string, now time.Time) (records.AISFile, error) {
	res := db.gorm.WithContext(ctx).Model(&records.AISFile{}).
		Where("id = ? AND used_at IS NULL AND expires_at > ?", id, now).
		Updates(map[string]any{"used_at": now, "status": records.AISFileReceiving, "updated_at": now})
	if res.Error != nil {
		return records.AISFile{}, fmt.Errorf("claim upload: %w", res.Error)
	}
	f, err := first[records.AISFile](db.gorm.WithContext(ctx).Where("id = ?", id), "upload")
	if err != nil || res.RowsAffected == 1 {
		return f, err
	}
	if f.UsedAt != nil {
		return f, warden.Errorf(warden.ECONFLICT, "this upload URL has already been used")
	}
	return f, warden.Errorf(warden.EFORBIDDEN, "this upload URL has expired")
}

// FinishAISFile records the outcome of a claimed upload (status, blob,
// summary, errors). It applies only to a file still receiving. A file that
// is not valid gives its URL back: it may be used again until it expires,
// so a wrong file costs a retry, not a new registration; a valid file
// spends it for good.
//
// A valid file counts towards its org's stored bytes: when it would pass
// q's cap it is refused (EQUOTABYTES) and nothing changes.
func (db *DB) FinishAISFile(ctx context.Context, f records.AISFile, q Quota) error {
	set := map[string]any{"status": f.Status, "blob_key": f.BlobKey, "size": f.Size,
		"summary": f.Summary, "errors": f.Errors, "updated_at": time.Now().UTC()}
	if f.Status != records.AISFileValid {
		set["used_at"] = nil
	}
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if f.Status == records.AISFileValid && q.MaxStoredBytes > 0 {
			org := f.OrgID
			if err := db.checkQuota(tx, &org, Quota{MaxStoredBytes: q.MaxStoredBytes}, f.Size); err != nil {
				return err
			}
		}
		res := tx.Model(&records.AISFile{}).Where("id = ? AND status = ?", f.ID, records.AISFileReceiving).Updates(set)
		if res.Error != nil {
			return fmt.Errorf("finish upload: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return warden.Errorf(warden.ECONFLICT, "the upload is no longer in progress")
		}
		return nil
	})
}

// SubjectJobs lists an org's jobs of a kind about one subject, newest
// first (a registration's analyses).
func (db *DB) SubjectJobs(ctx context.Context, orgID, kind, subject string, limit int) ([]records.Job, error) {
	var out []records.Job
	err := db.gorm.WithContext(ctx).Where("org_id = ? AND kind = ? AND subject = ?", orgID, kind, subject).
		Order("created_at DESC, id").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list %s jobs: %w", kind, err)
	}
	return out, nil
}

// NewestSubjectJob is an org's newest job of a kind about one subject
// whose JSON input names analysisType in "analysis_type" (a registration's
// newest analysis of one type), completed only when completed is set; ok
// is false when there is none. One query through the subject index
// (migration 12): a registration has few analyses, each filtered and the
// newest kept in the database (0.1 ms for 10, 1.8 ms for 1000 on
// PostgreSQL); none of them is sent back but the one.
func (db *DB) NewestSubjectJob(ctx context.Context, orgID, kind, subject, analysisType string, completed bool) (job records.Job, ok bool, err error) {
	// The input is read as JSON only on rows of the kind (CASE evaluates
	// lazily), whatever order the planner takes the conditions in.
	typ := "CASE WHEN kind = ? THEN CAST(input AS json) ->> 'analysis_type' END = ?"
	if db.dialect != "postgres" {
		typ = "CASE WHEN kind = ? THEN json_extract(input, '$.analysis_type') END = ?"
	}
	q := db.gorm.WithContext(ctx).Where("org_id = ? AND subject = ? AND kind = ?", orgID, subject, kind).
		Where(typ, kind, analysisType)
	if completed {
		q = q.Where("status = ?", records.JobCompleted)
	}
	res := q.Order("created_at DESC, id").Limit(1).Find(&job)
	if res.Error != nil {
		return records.Job{}, false, fmt.Errorf("newest %s %s job: %w", analysisType, kind, res.Error)
	}
	return job, res.RowsAffected > 0, nil
}

// DeleteAISModel removes an org's registration and its files' rows in one
// transaction, writing a tombstone for each stored file; it returns the
// keys to purge now (the reconciler retries what fails). Its analyses are
// the caller's to delete (they are jobs). Another org's is not found.
func (db *DB) DeleteAISModel(ctx context.Context, orgID, id string) ([]string, error) {
	m, files, err := db.GetAISModel(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, f := range files {
		keys = append(keys, f.BlobKey)
	}
	keys = compactKeys(keys)
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("model_id = ?", m.ID).Delete(&records.AISFile{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ? AND org_id = ?", m.ID, orgID).Delete(&records.AISModel{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return warden.Errorf(warden.ENOTFOUND, "model not found")
		}
		return tombstone(tx, "deleted AISpectra registration "+m.ID, keys)
	})
	if err != nil {
		return nil, fmt.Errorf("delete ais model: %w", err)
	}
	return keys, nil
}
