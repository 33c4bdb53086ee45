package storage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Deleting rows that own stored objects (a job's input and artifacts, a
// model's file) writes a tombstone (records.BlobDeletion) for each object
// in the same transaction. The caller then deletes the objects at once
// through PurgeBlobs; whatever fails there, or is never tried because the
// process died after the commit, the reconciler retries
// (RetryBlobDeletions) until the blob store lets it go. No stored object
// outlives its rows for longer than the blob store stays broken.

// Delays between tries of a failed blob delete: doubling from the first,
// never longer than the last.
const (
	blobRetryFirst = time.Minute
	blobRetryMax   = time.Hour
)

// blobRetryDelay is how long to wait after the attempts-th failed delete.
func blobRetryDelay(attempts int) time.Duration {
	d := blobRetryFirst
	for i := 1; i < attempts && d < blobRetryMax; i++ {
		d *= 2
	}
	return min(d, blobRetryMax)
}

// tombstone queues keys for deletion inside tx, the transaction that drops
// the rows owning them. A key already queued keeps its tombstone.
func tombstone(tx *gorm.DB, reason string, keys []string) error {
	keys = compactKeys(keys)
	if len(keys) == 0 {
		return nil
	}
	now := time.Now().UTC()
	rows := make([]records.BlobDeletion, len(keys))
	for i, k := range keys {
		rows[i] = records.BlobDeletion{Key: k, Reason: reason, NextAt: now, CreatedAt: now}
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
		return fmt.Errorf("insert blob tombstones: %w", err)
	}
	return nil
}

// compactKeys returns keys sorted, without duplicates and empty keys.
func compactKeys(keys []string) []string {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	slices.Sort(keys)
	return slices.Compact(keys)
}

// PurgeBlobs deletes the stored objects of tombstoned keys, and their
// tombstones; keys without a tombstone are left alone. A key whose delete
// fails keeps its tombstone with the attempt, the error and the time of
// its next try (RetryBlobDeletions). Failures are logged, not returned:
// the rows are gone and the deletion is guaranteed, so the caller's
// operation has succeeded. It answers how many keys are still queued.
func (db *DB) PurgeBlobs(ctx context.Context, store BlobStore, keys []string) int {
	keys = compactKeys(keys)
	if len(keys) == 0 {
		return 0
	}
	var rows []records.BlobDeletion
	if err := db.gorm.WithContext(ctx).Where("key IN ?", keys).Find(&rows).Error; err != nil {
		slog.Warn("blob tombstones not read; the reconciler deletes the blobs", "keys", len(keys), "err", err)
		return len(keys)
	}
	return db.purge(ctx, store, rows)
}

// DiscardBlobs deletes stored objects that no row owns (an upload whose
// request failed, the files of an attempt whose completion was not
// stored), through tombstones like any other deletion, so a failed delete
// is retried. Should the tombstones not be written (database trouble), it
// still tries the deletes and logs what stays behind. It answers how many
// keys are still stored or queued.
func (db *DB) DiscardBlobs(ctx context.Context, store BlobStore, reason string, keys ...string) int {
	if err := tombstone(db.gorm.WithContext(ctx), reason, keys); err != nil {
		slog.Warn("blob tombstones not written; deleting without them", "reason", reason, "err", err)
		left := 0
		for _, key := range compactKeys(keys) {
			if err := store.Delete(ctx, key); err != nil {
				left++
				slog.Error("blob not deleted and not queued for deletion", "key", key, "reason", reason, "err", err)
			}
		}
		return left
	}
	return db.PurgeBlobs(ctx, store, keys)
}

// RetryBlobDeletions tries again, oldest first, at most limit tombstones
// whose next try is due. It answers how many objects it deleted and how
// many failed again (logged, retried later); err is database trouble.
func (db *DB) RetryBlobDeletions(ctx context.Context, store BlobStore, now time.Time, limit int) (deleted, failed int, err error) {
	var rows []records.BlobDeletion
	if err := db.gorm.WithContext(ctx).Where("next_at <= ?", now).Order("next_at").Limit(limit).Find(&rows).Error; err != nil {
		return 0, 0, fmt.Errorf("due blob tombstones: %w", err)
	}
	failed = db.purge(ctx, store, rows)
	return len(rows) - failed, failed, nil
}

// CountBlobDeletions counts the queued blob deletions, for the
// Prometheus gauge.
func (db *DB) CountBlobDeletions(ctx context.Context) (int64, error) {
	var n int64
	err := db.gorm.WithContext(ctx).Model(&records.BlobDeletion{}).Count(&n).Error
	return n, err
}

// purge deletes the objects of tombstones and the tombstones that are
// done; it answers how many are still queued.
func (db *DB) purge(ctx context.Context, store BlobStore, rows []records.BlobDeletion) int {
	if len(rows) == 0 {
		return 0
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.Key
	}
	live, err := db.referencedBlobs(ctx, keys)
	if err != nil {
		slog.Warn("blob references not checked; deletions wait for the reconciler", "keys", len(keys), "err", err)
		return len(rows)
	}
	var done []string
	for _, r := range rows {
		if live[r.Key] {
			// A row owns the key again: the object is not garbage.
			slog.Warn("tombstoned blob is referenced by a row; kept", "key", r.Key, "reason", r.Reason)
			done = append(done, r.Key)
			continue
		}
		if err := store.Delete(ctx, r.Key); err != nil && warden.ErrorCode(err) != warden.EINVALID {
			db.deleteFailed(ctx, r, err)
			continue
		} else if err != nil {
			// The store refuses the key itself, so nothing is stored
			// under it; retrying would fail forever.
			slog.Warn("tombstone for an invalid blob key dropped", "key", r.Key, "reason", r.Reason, "err", err)
		}
		done = append(done, r.Key)
	}
	if len(done) > 0 {
		// Should this fail, the next try deletes a missing object, which
		// succeeds, and drops the tombstone then.
		if err := db.gorm.WithContext(ctx).Where("key IN ?", done).Delete(&records.BlobDeletion{}).Error; err != nil {
			slog.Warn("blob tombstones not removed", "keys", len(done), "err", err)
		}
	}
	return len(rows) - len(done)
}

// deleteFailed records a failed delete and when to try again.
func (db *DB) deleteFailed(ctx context.Context, r records.BlobDeletion, cause error) {
	attempts := r.Attempts + 1
	next := time.Now().UTC().Add(blobRetryDelay(attempts))
	slog.Warn("blob delete failed; retried later", "key", r.Key, "reason", r.Reason, "attempts", attempts, "next_at", next, "err", cause)
	err := db.gorm.WithContext(ctx).Model(&records.BlobDeletion{}).Where("key = ?", r.Key).
		Updates(map[string]any{"attempts": attempts, "next_at": next, "last_error": cause.Error()}).Error
	if err != nil {
		slog.Warn("blob delete failure not recorded; retried at once", "key", r.Key, "err", err)
	}
}

// referencedBlobs answers which keys a blob row or a model still points to.
func (db *DB) referencedBlobs(ctx context.Context, keys []string) (map[string]bool, error) {
	var blobKeys, modelKeys []string
	if err := db.gorm.WithContext(ctx).Model(&records.Blob{}).Where("key IN ?", keys).Pluck("key", &blobKeys).Error; err != nil {
		return nil, fmt.Errorf("blob rows: %w", err)
	}
	if err := db.gorm.WithContext(ctx).Model(&records.Model{}).Where("blob_key IN ?", keys).Pluck("blob_key", &modelKeys).Error; err != nil {
		return nil, fmt.Errorf("model files: %w", err)
	}
	live := make(map[string]bool, len(blobKeys)+len(modelKeys))
	for _, k := range append(blobKeys, modelKeys...) {
		live[k] = true
	}
	return live, nil
}
