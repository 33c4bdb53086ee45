package storage

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
)

// Quota caps what one org may hold at once; a zero field is unlimited.
// A submission is checked in the transaction that writes its rows, under
// a lock on its org's row, so concurrent submissions cannot pass a cap
// together. Anonymous jobs (no org) are not counted: they are
// rate-limited per client address instead.
type Quota struct {
	MaxActiveJobs  int64 // queued and in_progress jobs
	MaxStoredBytes int64 // the blobs of its jobs (inputs, artifacts) and its models' files
}

// refuseJob answers the error that refuses one more job to an org that
// has active queued or in_progress jobs, or nil.
func (q Quota) refuseJob(active int64) error {
	if q.MaxActiveJobs == 0 || active < q.MaxActiveJobs {
		return nil
	}
	return &warden.Error{Code: warden.EQUOTAJOBS,
		Message: fmt.Sprintf("Active job quota exceeded: the org has %d queued or running jobs and may have at most %d; submit again when one ends", active, q.MaxActiveJobs),
		Details: map[string]string{"active_jobs": strconv.FormatInt(active, 10), "max_active_jobs": strconv.FormatInt(q.MaxActiveJobs, 10)}}
}

// refuseBytes answers the error that refuses a submission bringing
// incoming bytes to an org that stores stored bytes, or nil. With nothing
// incoming yet (a model file to download) it refuses only an org with no
// room left.
func (q Quota) refuseBytes(stored, incoming int64) error {
	if q.MaxStoredBytes == 0 || (stored < q.MaxStoredBytes && stored+incoming <= q.MaxStoredBytes) {
		return nil
	}
	return &warden.Error{Code: warden.EQUOTABYTES,
		Message: fmt.Sprintf("Storage quota exceeded: the org stores %d bytes and may store at most %d; this upload is %d bytes. Delete jobs or models to make room", stored, q.MaxStoredBytes, incoming),
		Details: map[string]string{"stored_bytes": strconv.FormatInt(stored, 10), "max_stored_bytes": strconv.FormatInt(q.MaxStoredBytes, 10), "upload_bytes": strconv.FormatInt(incoming, 10)}}
}

// jobInsert is a job row for the batched insert with its submission's quota.
type jobInsert struct {
	job   *records.Job
	quota Quota
}

// counted reports whether the row's org has an active-job cap.
func (r jobInsert) counted() bool { return r.job.OrgID != nil && r.quota.MaxActiveJobs > 0 }

// insertJobs writes a batch of job rows in one statement. Under an
// active-job cap it does so in a transaction that first locks the orgs
// and refuses the rows of an org at its cap: the answer holds, per row,
// nil or the error that refused it.
func (db *DB) insertJobs(ctx context.Context, rows []jobInsert) ([]error, error) {
	var refused []error
	write := func(tx *gorm.DB) error {
		var err error
		if refused, err = db.admit(tx, rows); err != nil {
			return err
		}
		admitted := make([]*records.Job, 0, len(rows))
		for i, r := range rows {
			if refused[i] == nil {
				admitted = append(admitted, r.job)
			}
		}
		if len(admitted) == 0 {
			return nil
		}
		if err := tx.Create(admitted).Error; err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		return nil
	}
	g := db.gorm.WithContext(ctx)
	var err error
	if slices.ContainsFunc(rows, jobInsert.counted) {
		err = g.Transaction(write)
	} else {
		err = write(g)
	}
	return refused, err
}

// admit locks the orgs of the counted rows and answers, per row, nil or
// the error that refuses it; a row admitted counts towards the next ones.
func (db *DB) admit(tx *gorm.DB, rows []jobInsert) ([]error, error) {
	refused := make([]error, len(rows))
	var orgs []string
	for _, r := range rows {
		if r.counted() {
			orgs = append(orgs, *r.job.OrgID)
		}
	}
	if len(orgs) == 0 {
		return refused, nil
	}
	slices.Sort(orgs)
	orgs = slices.Compact(orgs)
	if err := db.lockOrgs(tx, orgs); err != nil {
		return nil, err
	}
	active, err := activeJobs(tx, orgs)
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		if !r.counted() {
			continue
		}
		org := *r.job.OrgID
		if refused[i] = r.quota.refuseJob(active[org]); refused[i] == nil {
			active[org]++
		}
	}
	return refused, nil
}

// checkQuota refuses one more job of orgID (nil: anonymous, not counted)
// bringing incoming bytes, when it would pass a cap of q. It locks the
// org's row until tx ends, so the rows tx writes next are counted by the
// next submission of the org.
func (db *DB) checkQuota(tx *gorm.DB, orgID *string, q Quota, incoming int64) error {
	if orgID == nil || q == (Quota{}) {
		return nil
	}
	org := *orgID
	if err := db.lockOrgs(tx, []string{org}); err != nil {
		return err
	}
	if q.MaxActiveJobs > 0 {
		active, err := activeJobs(tx, []string{org})
		if err != nil {
			return err
		}
		if err := q.refuseJob(active[org]); err != nil {
			return err
		}
	}
	if q.MaxStoredBytes > 0 {
		stored, err := storedBytes(tx, org)
		if err != nil {
			return err
		}
		return q.refuseBytes(stored, incoming)
	}
	return nil
}

// lockOrgs serialises the submissions of orgs (sorted) until tx ends. On
// PostgreSQL it locks their rows, in id order so that two batches cannot
// deadlock; the counts read after it see every row committed by the
// submissions it waited for (READ COMMITTED takes a snapshot per
// statement). SQLite has one connection, so one transaction at a time.
func (db *DB) lockOrgs(tx *gorm.DB, orgs []string) error {
	if db.dialect != "postgres" {
		return nil
	}
	if err := tx.Exec("SELECT id FROM orgs WHERE id IN ? ORDER BY id FOR UPDATE", orgs).Error; err != nil {
		return fmt.Errorf("lock orgs: %w", err)
	}
	return nil
}

// activeJobs counts the queued and in_progress jobs of each org, through
// the partial index of migration 7.
func activeJobs(tx *gorm.DB, orgs []string) (map[string]int64, error) {
	rows, err := tx.Model(&records.Job{}).Select("org_id, COUNT(*)").
		Where("org_id IN ? AND "+unfinished, orgs).Group("org_id").Rows()
	if err != nil {
		return nil, fmt.Errorf("count active jobs: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(orgs))
	for rows.Next() {
		var (
			org string
			n   int64
		)
		if err := rows.Scan(&org, &n); err != nil {
			return nil, fmt.Errorf("count active jobs: %w", err)
		}
		out[org] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count active jobs: %w", err)
	}
	return out, nil
}

// storedBytes is what an org stores: the blobs of its jobs (inputs,
// artifacts), its models' files and its AISpectra registrations' valid
// uploads. An uploaded model file also has a
// blob row, on its validation job; it is counted once, as the model's.
func storedBytes(tx *gorm.DB, orgID string) (int64, error) {
	var n int64
	err := tx.Raw(`SELECT CAST(COALESCE((SELECT SUM(b.size) FROM blobs b JOIN jobs j ON j.id = b.job_id WHERE j.org_id = ? AND b.key NOT LIKE ?), 0)
  + COALESCE((SELECT SUM(m.file_size) FROM models m WHERE m.org_id = ?), 0)
  + COALESCE((SELECT SUM(f.size) FROM ais_files f WHERE f.org_id = ? AND f.status = ?), 0) AS BIGINT)`,
		orgID, modelKeyPrefix+"%", orgID, orgID, records.AISFileValid).Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sum stored bytes: %w", err)
	}
	return n, nil
}

// blobBytes is the size of the blobs a submission brings.
func blobBytes(blobs []records.Blob) int64 {
	var n int64
	for _, b := range blobs {
		n += b.Size
	}
	return n
}
