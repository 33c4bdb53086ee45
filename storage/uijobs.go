package storage

import (
	"context"
	"fmt"

	"github.com/wardenlab/warden/records"
)

// jobSummaryColumns are the columns of a job list: everything but the
// input, the error text and the callback, which can be large and a list
// polled twice a second does not show.
var jobSummaryColumns = []string{"id", "org_id", "kind", "queue", "status", "progress", "stage", "subject", "attempts",
	"created_at", "updated_at", "started_at", "finished_at", "deadline"}

// RecentOrgJobs lists an org's newest jobs, newest first (ties by id, so
// the order is stable), at most limit of them, without their input,
// error or callback (see jobSummaryColumns). An empty org id lists
// nothing: anonymous jobs belong to no org's list.
func (db *DB) RecentOrgJobs(ctx context.Context, orgID string, limit int) ([]records.Job, error) {
	if orgID == "" || limit <= 0 {
		return nil, nil
	}
	var jobs []records.Job
	err := db.gorm.WithContext(ctx).Select(jobSummaryColumns).Where("org_id = ?", orgID).
		Order("created_at DESC").Order("id DESC").Limit(limit).Find(&jobs).Error
	if err != nil {
		return nil, fmt.Errorf("recent jobs of org: %w", err)
	}
	return jobs, nil
}
