package storage

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sort"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateJob writes a queued job and the blobs it owns in one transaction,
// unless it would pass a cap of q for the job's org: then it writes
// nothing and answers EQUOTAJOBS or EQUOTABYTES.
func (db *DB) CreateJob(ctx context.Context, job *records.Job, blobs []records.Blob, q Quota) error {
	if job.Status == "" {
		job.Status = records.JobQueued
	}
	if len(blobs) == 0 { // one statement, shared with concurrent submissions
		refused, err := db.jobInserts.do(ctx, jobInsert{job: job, quota: q})
		if err != nil {
			return err
		}
		return refused
	}
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := db.checkQuota(tx, job.OrgID, q, blobBytes(blobs)); err != nil {
			return err
		}
		return insertJob(tx, job, blobs)
	})
}

// insertJob writes a job and the blobs it owns inside a transaction.
func insertJob(tx *gorm.DB, job *records.Job, blobs []records.Blob) error {
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

// JobByID loads a job by id for a worker or the reconciler, which act for
// every org. Surfaces never call it: they read jobs through OrgJob and
// AnonymousJob (jobs.Service.Get), whose queries carry the tenancy.
func (db *DB) JobByID(ctx context.Context, id string) (records.Job, error) {
	return first[records.Job](db.gorm.WithContext(ctx).Where("id = ?", id), "job")
}

// OrgJob loads a job of an org; another org's job, an anonymous job and
// any job for an empty org id are not found.
func (db *DB) OrgJob(ctx context.Context, orgID, id string) (records.Job, error) {
	return ofOrg[records.Job](ctx, db, orgID, id, "job")
}

// JobFilter narrows ListJobs: a kind and a status, each "" for any.
type JobFilter struct {
	Kind   string
	Status string
}

// ListJobs lists an org's jobs, newest first, with the total that match f.
// An empty org id lists nothing: anonymous jobs are never listed.
func (db *DB) ListJobs(ctx context.Context, orgID string, f JobFilter, limit, offset int) ([]records.Job, int64, error) {
	if orgID == "" {
		return nil, 0, nil
	}
	q := db.gorm.WithContext(ctx).Model(&records.Job{}).Where("org_id = ?", orgID)
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count jobs: %w", err)
	}
	var js []records.Job
	if err := q.Order("created_at DESC, id").Limit(limit).Offset(offset).Find(&js).Error; err != nil {
		return nil, 0, fmt.Errorf("list jobs: %w", err)
	}
	return js, total, nil
}

// AnonymousJob loads a job that belongs to no org (spec 003 lets anyone
// who holds such a job's unguessable id read it).
func (db *DB) AnonymousJob(ctx context.Context, id string) (records.Job, error) {
	return first[records.Job](db.gorm.WithContext(ctx).Where("id = ? AND org_id IS NULL", id), "job")
}

// OrgOrAnonymousJob loads a job that belongs to orgID or to no org, in
// one query (spec 003's verification reads: an org's caller sees its own
// jobs and anonymous ones); an empty org id finds anonymous jobs only.
func (db *DB) OrgOrAnonymousJob(ctx context.Context, orgID, id string) (records.Job, error) {
	if orgID == "" {
		return db.AnonymousJob(ctx, id)
	}
	return first[records.Job](db.gorm.WithContext(ctx).Where("id = ? AND (org_id = ? OR org_id IS NULL)", id, orgID), "job")
}

// GetResult loads a job's result; ENOTFOUND when it has none yet.
func (db *DB) GetResult(ctx context.Context, jobID string) (records.Result, error) {
	return first[records.Result](db.gorm.WithContext(ctx).Where("job_id = ?", jobID), "result")
}

// StartJob moves a queued (or retried in_progress) job to in_progress,
// counts the attempt and returns the row. ok is false when the job is
// finished, cancelled or gone, and the handler must not run. Concurrent
// starts share one UPDATE … RETURNING (see groupWriter).
func (db *DB) StartJob(ctx context.Context, id string) (job records.Job, ok bool, err error) {
	r, err := db.jobStarts.do(ctx, id)
	return r.job, r.ok, err
}

type started struct {
	job records.Job
	ok  bool
}

func (db *DB) startJobs(ctx context.Context, ids []string) ([]started, error) {
	now := time.Now().UTC()
	var rows []records.Job
	res := db.gorm.WithContext(ctx).Model(&rows).Clauses(clause.Returning{}).
		Where("id IN ? AND status IN ?", ids, []string{records.JobQueued, records.JobInProgress}).
		Updates(map[string]any{
			"status":     records.JobInProgress,
			"attempts":   gorm.Expr("attempts + 1"),
			"started_at": gorm.Expr("COALESCE(started_at, ?)", now),
			"updated_at": now,
		})
	if res.Error != nil {
		return nil, fmt.Errorf("start job: %w", res.Error)
	}
	byID := make(map[string]records.Job, len(rows))
	for _, j := range rows {
		byID[j.ID] = j
	}
	out := make([]started, len(ids))
	for i, id := range ids {
		out[i].job, out[i].ok = byID[id]
	}
	return out, nil
}

// SetProgress records progress of an in_progress job.
func (db *DB) SetProgress(ctx context.Context, id string, pct int, stage string) error {
	return db.gorm.WithContext(ctx).Model(&records.Job{}).
		Where("id = ? AND status = ?", id, records.JobInProgress).
		Updates(map[string]any{"progress": pct, "stage": stage, "updated_at": time.Now().UTC()}).Error
}

// ModelUpdate is a change to a registered model's row that commits with
// the job that caused it (a validation's outcome).
type ModelUpdate struct {
	ID      string
	Status  string
	Error   string
	Metrics string // JSON object; "" leaves the column as it is
	Device  string
	// Metadata replaces the model's metadata (with what validation
	// inferred written in); "" leaves it as it is.
	Metadata string
}

func (u *ModelUpdate) apply(tx *gorm.DB, now time.Time) error {
	set := map[string]any{"status": u.Status, "error": u.Error, "updated_at": now}
	if u.Metrics != "" {
		set["metrics"] = u.Metrics
	}
	if u.Device != "" {
		set["device"] = u.Device
	}
	if u.Metadata != "" {
		set["metadata"] = u.Metadata
	}
	if err := tx.Model(&records.Model{}).Where("id = ?", u.ID).Updates(set).Error; err != nil {
		return fmt.Errorf("update model %s: %w", u.ID, err)
	}
	return nil
}

// Completion is everything a finished job writes: its result, the blobs
// it stored (artifacts), a model row it changes and its webhook delivery.
// All of it commits in one transaction with the status change, or none.
type Completion struct {
	Result   records.Result
	Blobs    []records.Blob
	Model    *ModelUpdate
	Delivery *records.WebhookDelivery
}

// CompleteJob stores the completion and marks the job completed, in one
// transaction. It is a no-op returning false when the job is no longer
// in_progress (cancelled, deleted, or completed by an earlier attempt), so a
// retried handler never produces two results.
func (db *DB) CompleteJob(ctx context.Context, id string, c Completion) (bool, error) {
	if db.jobCompletions != nil && len(c.Blobs) == 0 && c.Model == nil {
		// PostgreSQL: one statement, shared with concurrent completions.
		if c.Delivery != nil {
			c.Delivery.JobID, c.Delivery.Status = id, records.DeliveryPending
		}
		return db.jobCompletions.do(ctx, completion{id: id, result: c.Result, delivery: c.Delivery})
	}
	return db.finish(ctx, id, []string{records.JobInProgress}, map[string]any{"status": records.JobCompleted, "progress": 100, "stage": "done"}, &c)
}

// Failure is what a failed job writes besides its status and message.
type Failure struct {
	Model    *ModelUpdate
	Delivery *records.WebhookDelivery
}

// FailJob marks a queued or in_progress job failed with a message safe to
// show to its owner, with its model change and webhook delivery.
func (db *DB) FailJob(ctx context.Context, id, msg string, f Failure) (bool, error) {
	return db.finish(ctx, id, []string{records.JobQueued, records.JobInProgress}, map[string]any{"status": records.JobFailed, "error": msg},
		&Completion{Model: f.Model, Delivery: f.Delivery})
}

// CancelJob marks an unfinished job cancelled, with its webhook delivery
// (nil: none) in the same transaction.
func (db *DB) CancelJob(ctx context.Context, id string, d *records.WebhookDelivery) (bool, error) {
	return db.finish(ctx, id, []string{records.JobQueued, records.JobInProgress}, map[string]any{"status": records.JobCancelled}, &Completion{Delivery: d})
}

func (db *DB) finish(ctx context.Context, id string, from []string, set map[string]any, c *Completion) (bool, error) {
	done := false
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := time.Now().UTC()
		set["finished_at"] = now
		set["updated_at"] = now
		res := tx.Model(&records.Job{}).Where("id = ? AND status IN ?", id, from).Updates(set)
		if res.Error != nil {
			return fmt.Errorf("update job: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		done = true
		if c == nil {
			return nil
		}
		if set["status"] == records.JobCompleted {
			c.Result.JobID = id
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&c.Result).Error; err != nil {
				return fmt.Errorf("insert result: %w", err)
			}
		}
		for i := range c.Blobs {
			c.Blobs[i].JobID = id
		}
		if len(c.Blobs) > 0 {
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&c.Blobs).Error; err != nil {
				return fmt.Errorf("insert blobs: %w", err)
			}
		}
		if c.Model != nil {
			if err := c.Model.apply(tx, now); err != nil {
				return err
			}
		}
		if d := c.Delivery; d != nil {
			d.JobID, d.Status = id, records.DeliveryPending
			if err := tx.Create(d).Error; err != nil {
				return fmt.Errorf("insert webhook delivery: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		done = false
	}
	return done, err
}

// RequeueJob puts an in_progress job whose task vanished back to queued.
func (db *DB) RequeueJob(ctx context.Context, id string) error {
	return db.gorm.WithContext(ctx).Model(&records.Job{}).
		Where("id = ? AND status = ?", id, records.JobInProgress).
		Updates(map[string]any{"status": records.JobQueued, "updated_at": time.Now().UTC()}).Error
}

// DeleteJob removes a job with its result, blobs rows and webhook records,
// and queues its stored objects for deletion in the same transaction. It
// returns their keys: the caller deletes them at once with PurgeBlobs (the
// reconciler retries whatever that leaves).
func (db *DB) DeleteJob(ctx context.Context, id string) ([]string, error) {
	var keys []string
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&records.Blob{}).Where("job_id = ?", id).Pluck("key", &keys).Error; err != nil {
			return err
		}
		var deliveryIDs []string
		if err := tx.Model(&records.WebhookDelivery{}).Where("job_id = ?", id).Pluck("id", &deliveryIDs).Error; err != nil {
			return err
		}
		if len(deliveryIDs) > 0 {
			if err := tx.Where("delivery_id IN ?", deliveryIDs).Delete(&records.WebhookAttempt{}).Error; err != nil {
				return err
			}
		}
		if err := retireResult(tx, id); err != nil {
			return err
		}
		for _, m := range []any{&records.WebhookDelivery{}, &records.Blob{}, &records.Result{}} {
			if err := tx.Where("job_id = ?", id).Delete(m).Error; err != nil {
				return err
			}
		}
		res := tx.Where("id = ?", id).Delete(&records.Job{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return warden.Errorf(warden.ENOTFOUND, "job not found")
		}
		return tombstone(tx, "deleted job "+id, keys)
	})
	if err != nil {
		return nil, fmt.Errorf("delete job: %w", err)
	}
	return keys, nil
}

// JobBlobs lists the blobs of a job.
func (db *DB) JobBlobs(ctx context.Context, jobID string) ([]records.Blob, error) {
	var blobs []records.Blob
	err := db.gorm.WithContext(ctx).Where("job_id = ?", jobID).Order("created_at").Find(&blobs).Error
	return blobs, err
}

// unfinished selects queued and in_progress jobs through the partial
// indexes of migration 5 (finished_at is set exactly when a job ends).
const unfinished = "finished_at IS NULL AND status IN ('" + records.JobQueued + "', '" + records.JobInProgress + "')"

// UnfinishedJobs lists queued and in_progress jobs not touched since before,
// oldest first, for the reconciler.
func (db *DB) UnfinishedJobs(ctx context.Context, before time.Time, limit int) ([]records.Job, error) {
	var jobs []records.Job
	err := db.gorm.WithContext(ctx).
		Where(unfinished+" AND updated_at < ?", before).
		Order("created_at").Limit(limit).Find(&jobs).Error
	return jobs, err
}

// ExpiredJobs lists unfinished jobs past their deadline.
func (db *DB) ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]records.Job, error) {
	var jobs []records.Job
	err := db.gorm.WithContext(ctx).
		Where(unfinished+" AND deadline < ?", now).
		Order("deadline").Limit(limit).Find(&jobs).Error
	return jobs, err
}

// LabelCount is one row of a per-label aggregate.
type LabelCount struct {
	Label string
	Count int64
}

// retireResult adds a job's result, about to be deleted, to the anonymous
// aggregates (records.ResultStat), so that deleting does not change what
// ResultStats counts.
func retireResult(tx *gorm.DB, jobID string) error {
	var rows []struct {
		Kind       string
		Label      string
		DurationMS int64
		CreatedAt  time.Time
	}
	err := tx.Table("results").Joins("JOIN jobs ON jobs.id = results.job_id").Where("results.job_id = ?", jobID).
		Select("jobs.kind AS kind, results.label AS label, results.duration_ms AS duration_ms, results.created_at AS created_at").Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("read result: %w", err)
	}
	for _, r := range rows {
		stat := records.ResultStat{Hour: r.CreatedAt.UTC().Truncate(time.Hour), Kind: r.Kind, Label: r.Label, Count: 1, DurationMSSum: r.DurationMS}
		err := tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "hour"}, {Name: "kind"}, {Name: "label"}},
			DoUpdates: clause.Assignments(map[string]any{
				"count":           gorm.Expr("result_stats.count + excluded.count"),
				"duration_ms_sum": gorm.Expr("result_stats.duration_ms_sum + excluded.duration_ms_sum"),
			}),
		}).Create(&stat).Error
		if err != nil {
			return fmt.Errorf("keep the result's aggregate: %w", err)
		}
	}
	return nil
}

// ResultStats aggregates completed results of a job kind since a time: the
// count per label and the mean processing time in milliseconds. Results
// deleted since are still counted, from their hourly aggregates (an hour
// that straddles since counts whole).
func (db *DB) ResultStats(ctx context.Context, kind string, since time.Time) ([]LabelCount, float64, error) {
	type agg struct {
		Label string
		Count int64
		Sum   int64
	}
	var live, retired []agg
	err := db.gorm.WithContext(ctx).Table("results").Joins("JOIN jobs ON jobs.id = results.job_id").
		Where("jobs.kind = ? AND results.created_at >= ?", kind, since).
		Select("results.label AS label, COUNT(*) AS count, COALESCE(SUM(results.duration_ms), 0) AS sum").Group("results.label").Scan(&live).Error
	if err != nil {
		return nil, 0, fmt.Errorf("count results: %w", err)
	}
	err = db.gorm.WithContext(ctx).Model(&records.ResultStat{}).
		Where("kind = ? AND hour >= ?", kind, since.UTC().Truncate(time.Hour)).
		Select("label, SUM(count) AS count, SUM(duration_ms_sum) AS sum").Group("label").Scan(&retired).Error
	if err != nil {
		return nil, 0, fmt.Errorf("count deleted results: %w", err)
	}
	byLabel := map[string]int64{}
	var n, sum int64
	for _, r := range append(live, retired...) {
		byLabel[r.Label] += r.Count
		n += r.Count
		sum += r.Sum
	}
	rows := make([]LabelCount, 0, len(byLabel))
	for l, c := range byLabel {
		rows = append(rows, LabelCount{Label: l, Count: c})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Label < rows[j].Label })
	if n == 0 {
		return rows, 0, nil
	}
	return rows, float64(sum) / float64(n), nil
}

// CountJobs counts jobs by kind and status, for the Prometheus gauge.
func (db *DB) CountJobs(ctx context.Context) (map[[2]string]int64, error) {
	var rows []struct {
		Kind, Status string
		N            int64
	}
	err := db.gorm.WithContext(ctx).Model(&records.Job{}).Select("kind, status, COUNT(*) AS n").Group("kind, status").Scan(&rows).Error
	out := map[[2]string]int64{}
	for _, r := range rows {
		out[[2]string{r.Kind, r.Status}] = r.N
	}
	return out, err
}

// completion is one CompleteJob call waiting for its batch.
type completion struct {
	id       string
	result   records.Result
	delivery *records.WebhookDelivery
}

// completeJobs finishes a batch of in_progress jobs in one statement: the
// status change, each result row and each webhook delivery row, so a job
// can never be completed without its result or its delivery. Answers, per
// job, whether this call completed it.
func (db *DB) completeJobs(ctx context.Context, cs []completion) ([]bool, error) {
	now := time.Now().UTC()
	var ids, labels, data, dIDs, dOrgs, dJobs, dEvents, dURLs, dPayloads pgArray[string]
	var durs pgArray[int64]
	for _, c := range cs {
		ids = append(ids, c.id)
		labels = append(labels, c.result.Label)
		data = append(data, c.result.Data)
		durs = append(durs, c.result.DurationMS)
		if d := c.delivery; d != nil {
			dIDs, dOrgs, dJobs = append(dIDs, d.ID), append(dOrgs, d.OrgID), append(dJobs, c.id)
			dEvents, dURLs, dPayloads = append(dEvents, d.EventType), append(dURLs, d.URL), append(dPayloads, d.Payload)
		}
	}
	// CAST, not ::, because GORM reads a name followed by ":" as no parameter.
	// The UPDATE names its rows in a parameter list (id IN ($1, …, $k),
	// one prepared statement per batch size): joined to v, or as id =
	// ANY(array), the plan cached while the table was nearly empty kept
	// scanning the whole table (or every unfinished entry of an index)
	// as it grew; with k known the primary key wins from the start.
	q := `WITH v AS (
  SELECT * FROM unnest(CAST(@ids AS text[]), CAST(@labels AS text[]), CAST(@data AS text[]), CAST(@durs AS bigint[])) AS v(id, label, data, dur)
), u AS (
  UPDATE jobs SET status = @done, progress = 100, stage = 'done', finished_at = @now, updated_at = @now
  WHERE jobs.id IN @idlist AND jobs.status = @running RETURNING jobs.id
), r AS (
  INSERT INTO results (job_id, label, data, duration_ms, created_at)
  SELECT v.id, v.label, v.data, v.dur, @now FROM v JOIN u ON u.id = v.id ON CONFLICT (job_id) DO NOTHING
)`
	args := map[string]any{"ids": ids, "idlist": []string(ids), "labels": labels, "data": data, "durs": durs,
		"done": records.JobCompleted, "running": records.JobInProgress, "now": now}
	if len(dIDs) > 0 {
		q += `, d AS (
  INSERT INTO webhook_deliveries (id, org_id, job_id, event_type, url, payload, status, attempts, created_at, updated_at)
  SELECT d.id, d.org, d.job, d.event, d.url, d.payload, @pending, 0, @now, @now
  FROM unnest(CAST(@dids AS text[]), CAST(@dorgs AS text[]), CAST(@djobs AS text[]), CAST(@devents AS text[]), CAST(@durls AS text[]), CAST(@dpayloads AS text[])) AS d(id, org, job, event, url, payload)
  JOIN u ON u.id = d.job
)`
		args["dids"], args["dorgs"], args["djobs"], args["devents"], args["durls"], args["dpayloads"] = dIDs, dOrgs, dJobs, dEvents, dURLs, dPayloads
		args["pending"] = records.DeliveryPending
	}
	q += ` SELECT id FROM u`
	// Rows, not Scan: GORM's Scan renders the whole statement with its
	// arguments as text for a logger on every call.
	rows, err := db.gorm.WithContext(ctx).Raw(q, args).Rows()
	if err != nil {
		return nil, fmt.Errorf("complete job: %w", err)
	}
	defer rows.Close()
	set := make(map[string]bool, len(cs))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("complete job: %w", err)
		}
		set[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("complete job: %w", err)
	}
	out := make([]bool, len(cs))
	for i, c := range cs {
		out[i] = set[c.id]
	}
	return out, nil
}

// pgArray is an array parameter. As a driver.Valuer it passes GORM whole
// (GORM would expand a plain slice into a list of parameters), and pgx,
// which takes any Go value through database/sql, encodes the slice it
// returns as a binary array: no quoting, no escaping, no element can read
// as NULL.
type pgArray[T string | int64] []T

// Value hands the elements to pgx.
func (a pgArray[T]) Value() (driver.Value, error) { return []T(a), nil }

// StaleAnonymousJobs lists anonymous (spec 003) jobs that finished before
// a time, oldest first: the retention sweep deletes them with their files.
func (db *DB) StaleAnonymousJobs(ctx context.Context, finishedBefore time.Time, limit int) ([]records.Job, error) {
	var jobs []records.Job
	err := db.gorm.WithContext(ctx).Where("org_id IS NULL AND finished_at IS NOT NULL AND finished_at < ?", finishedBefore).
		Order("finished_at").Limit(limit).Find(&jobs).Error
	return jobs, err
}
