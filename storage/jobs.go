package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/models"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateJob writes a queued job and the blobs it owns in one transaction.
func (db *DB) CreateJob(ctx context.Context, job *models.Job, blobs []models.Blob) error {
	if job.Status == "" {
		job.Status = models.JobQueued
	}
	if len(blobs) == 0 { // one statement needs no transaction
		if err := db.gorm.WithContext(ctx).Create(job).Error; err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		return nil
	}
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return insertJob(tx, job, blobs) })
}

// insertJob writes a job and the blobs it owns inside a transaction.
func insertJob(tx *gorm.DB, job *models.Job, blobs []models.Blob) error {
	if err := tx.Create(job).Error; err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	for i := range blobs {
		blobs[i].JobID = job.ID
	}
	if len(blobs) > 0 {
		if err := tx.Create(&blobs).Error; err != nil {
			return fmt.Errorf("insert blobs: %w", err)
		}
	}
	return nil
}

// GetJob loads a job by id. Callers check visibility (tenancy) themselves
// with VisibleTo and answer 404 for a job the caller may not see.
func (db *DB) GetJob(ctx context.Context, id string) (models.Job, error) {
	return first[models.Job](db.gorm.WithContext(ctx).Where("id = ?", id), "job")
}

// GetResult loads a job's result; ENOTFOUND when it has none yet.
func (db *DB) GetResult(ctx context.Context, jobID string) (models.Result, error) {
	return first[models.Result](db.gorm.WithContext(ctx).Where("job_id = ?", jobID), "result")
}

// VisibleTo reports whether a caller of orgID ("" for anonymous) may see the
// job: an org's jobs only to that org, anonymous jobs to anyone who holds
// their unguessable id when anonymousOK.
func VisibleTo(j models.Job, orgID string, anonymousOK bool) bool {
	if j.OrgID == nil {
		return anonymousOK
	}
	return orgID != "" && *j.OrgID == orgID
}

// StartJob moves a queued (or retried in_progress) job to in_progress and
// counts the attempt. ok is false when the job is gone or already ended, in
// which case the handler must do nothing.
func (db *DB) StartJob(ctx context.Context, id string) (job models.Job, ok bool, err error) {
	now := time.Now().UTC()
	// One round trip: a single UPDATE … RETURNING. This runs once per job
	// attempt; UPDATE then SELECT would cost two.
	var rows []models.Job
	res := db.gorm.WithContext(ctx).Model(&rows).Clauses(clause.Returning{}).
		Where("id = ? AND status IN ?", id, []string{models.JobQueued, models.JobInProgress}).
		Updates(map[string]any{
			"status":     models.JobInProgress,
			"attempts":   gorm.Expr("attempts + 1"),
			"started_at": gorm.Expr("COALESCE(started_at, ?)", now),
			"updated_at": now,
		})
	if res.Error != nil {
		return job, false, fmt.Errorf("start job: %w", res.Error)
	}
	if res.RowsAffected == 0 || len(rows) == 0 {
		return job, false, nil
	}
	return rows[0], true, nil
}

// SetProgress records progress of an in_progress job.
func (db *DB) SetProgress(ctx context.Context, id string, pct int, stage string) error {
	return db.gorm.WithContext(ctx).Model(&models.Job{}).
		Where("id = ? AND status = ?", id, models.JobInProgress).
		Updates(map[string]any{"progress": pct, "stage": stage, "updated_at": time.Now().UTC()}).Error
}

// CompleteJob stores the result, marks the job completed and queues its
// webhook delivery, all in one transaction. It is a no-op returning false
// when the job is no longer in_progress (cancelled, deleted, or completed by
// an earlier attempt), so a retried handler never produces two results.
func (db *DB) CompleteJob(ctx context.Context, id string, result models.Result, delivery *models.WebhookDelivery) (bool, error) {
	if db.dialect == "postgres" {
		return db.completePostgres(ctx, id, result, delivery)
	}
	return db.finish(ctx, id, []string{models.JobInProgress}, map[string]any{"status": models.JobCompleted, "progress": 100, "stage": "done"}, &result, delivery)
}

// FailJob marks a queued or in_progress job failed with a message safe to
// show to its owner and queues its webhook delivery.
func (db *DB) FailJob(ctx context.Context, id, msg string, delivery *models.WebhookDelivery) (bool, error) {
	return db.finish(ctx, id, []string{models.JobQueued, models.JobInProgress}, map[string]any{"status": models.JobFailed, "error": msg}, nil, delivery)
}

// CancelJob marks an unfinished job cancelled.
func (db *DB) CancelJob(ctx context.Context, id string, delivery *models.WebhookDelivery) (bool, error) {
	return db.finish(ctx, id, []string{models.JobQueued, models.JobInProgress}, map[string]any{"status": models.JobCancelled}, nil, delivery)
}

func (db *DB) finish(ctx context.Context, id string, from []string, set map[string]any, result *models.Result, delivery *models.WebhookDelivery) (bool, error) {
	done := false
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		set["finished_at"] = now
		set["updated_at"] = now
		res := tx.Model(&models.Job{}).Where("id = ? AND status IN ?", id, from).Updates(set)
		if res.Error != nil {
			return fmt.Errorf("update job: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		if result != nil {
			result.JobID = id
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(result).Error; err != nil {
				return fmt.Errorf("insert result: %w", err)
			}
		}
		if delivery != nil {
			delivery.JobID = id
			delivery.Status = models.DeliveryPending
			if err := tx.Create(delivery).Error; err != nil {
				return fmt.Errorf("insert webhook delivery: %w", err)
			}
		}
		done = true
		return nil
	})
	return done, err
}

// RequeueJob puts an in_progress job whose task vanished back to queued.
func (db *DB) RequeueJob(ctx context.Context, id string) error {
	return db.gorm.WithContext(ctx).Model(&models.Job{}).
		Where("id = ? AND status = ?", id, models.JobInProgress).
		Updates(map[string]any{"status": models.JobQueued, "updated_at": time.Now().UTC()}).Error
}

// DeleteJob removes a job with its result, blobs rows and webhook records,
// returning the blobs so the caller can delete the stored objects.
func (db *DB) DeleteJob(ctx context.Context, id string) ([]models.Blob, error) {
	var blobs []models.Blob
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("job_id = ?", id).Find(&blobs).Error; err != nil {
			return err
		}
		var deliveryIDs []string
		if err := tx.Model(&models.WebhookDelivery{}).Where("job_id = ?", id).Pluck("id", &deliveryIDs).Error; err != nil {
			return err
		}
		if len(deliveryIDs) > 0 {
			if err := tx.Where("delivery_id IN ?", deliveryIDs).Delete(&models.WebhookAttempt{}).Error; err != nil {
				return err
			}
		}
		for _, m := range []any{&models.WebhookDelivery{}, &models.Blob{}, &models.Result{}} {
			if err := tx.Where("job_id = ?", id).Delete(m).Error; err != nil {
				return err
			}
		}
		res := tx.Where("id = ?", id).Delete(&models.Job{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return warden.Errorf(warden.ENOTFOUND, "job not found")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete job: %w", err)
	}
	return blobs, nil
}

// JobBlobs lists the blobs of a job.
func (db *DB) JobBlobs(ctx context.Context, jobID string) ([]models.Blob, error) {
	var blobs []models.Blob
	err := db.gorm.WithContext(ctx).Where("job_id = ?", jobID).Order("created_at").Find(&blobs).Error
	return blobs, err
}

// UnfinishedJobs lists queued and in_progress jobs not touched since before,
// oldest first, for the reconciler.
func (db *DB) UnfinishedJobs(ctx context.Context, before time.Time, limit int) ([]models.Job, error) {
	var jobs []models.Job
	err := db.gorm.WithContext(ctx).
		Where("status IN ? AND updated_at < ?", []string{models.JobQueued, models.JobInProgress}, before).
		Order("created_at").Limit(limit).Find(&jobs).Error
	return jobs, err
}

// ExpiredJobs lists unfinished jobs past their deadline.
func (db *DB) ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]models.Job, error) {
	var jobs []models.Job
	err := db.gorm.WithContext(ctx).
		Where("status IN ? AND deadline < ?", []string{models.JobQueued, models.JobInProgress}, now).
		Order("deadline").Limit(limit).Find(&jobs).Error
	return jobs, err
}

// LabelCount is one row of a per-label aggregate.
type LabelCount struct {
	Label string
	Count int64
}

// ResultStats aggregates completed results of a job kind since a time: the
// count per label and the mean processing time in milliseconds.
func (db *DB) ResultStats(ctx context.Context, kind string, since time.Time) ([]LabelCount, float64, error) {
	var rows []LabelCount
	q := db.gorm.WithContext(ctx).Table("results").Joins("JOIN jobs ON jobs.id = results.job_id").
		Where("jobs.kind = ? AND results.created_at >= ?", kind, since)
	if err := q.Session(&gorm.Session{}).Select("results.label AS label, COUNT(*) AS count").Group("results.label").Scan(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("count results: %w", err)
	}
	var avg *float64
	if err := q.Session(&gorm.Session{}).Select("AVG(results.duration_ms)").Scan(&avg).Error; err != nil {
		return nil, 0, fmt.Errorf("average duration: %w", err)
	}
	if avg == nil {
		return rows, 0, nil
	}
	return rows, *avg, nil
}

// CountJobs counts jobs by kind and status, for the Prometheus gauge.
func (db *DB) CountJobs(ctx context.Context) (map[[2]string]int64, error) {
	var rows []struct {
		Kind, Status string
		N            int64
	}
	err := db.gorm.WithContext(ctx).Model(&models.Job{}).Select("kind, status, COUNT(*) AS n").Group("kind, status").Scan(&rows).Error
	out := map[[2]string]int64{}
	for _, r := range rows {
		out[[2]string{r.Kind, r.Status}] = r.N
	}
	return out, err
}

// completePostgres is CompleteJob in one round trip: data-modifying CTEs
// run as one atomic statement, so the job, its result and its webhook
// delivery change together or not at all, exactly as the transaction in
// finish does (SQLite has no data-modifying CTEs and uses that).
func (db *DB) completePostgres(ctx context.Context, id string, r models.Result, d *models.WebhookDelivery) (bool, error) {
	now := time.Now().UTC()
	q := `WITH u AS (
  UPDATE jobs SET status = @done, progress = 100, stage = 'done', finished_at = @now, updated_at = @now
  WHERE id = @id AND status = @running RETURNING id
), r AS (
  INSERT INTO results (job_id, label, data, duration_ms, created_at)
  SELECT id, @label, @data, @dur, @now FROM u ON CONFLICT (job_id) DO NOTHING
)`
	args := map[string]any{"done": models.JobCompleted, "running": models.JobInProgress, "now": now, "id": id,
		"label": r.Label, "data": r.Data, "dur": r.DurationMS}
	if d != nil {
		q += `, d AS (
  INSERT INTO webhook_deliveries (id, org_id, job_id, event_type, url, payload, status, attempts, created_at, updated_at)
  SELECT @did, @org, id, @event, @url, @payload, @pending, 0, @now, @now FROM u
)`
		args["did"], args["org"], args["event"], args["url"], args["payload"], args["pending"] = d.ID, d.OrgID, d.EventType, d.URL, d.Payload, models.DeliveryPending
		d.JobID, d.Status = id, models.DeliveryPending
	}
	q += ` SELECT COUNT(*) FROM u`
	var n int64
	if err := db.gorm.WithContext(ctx).Raw(q, args).Scan(&n).Error; err != nil {
		return false, fmt.Errorf("complete job: %w", err)
	}
	return n == 1, nil
}
