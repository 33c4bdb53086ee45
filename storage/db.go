// Package storage opens the database, migrates it and holds the
// repositories and the blob store. It is the only package that talks SQL.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/secretbox"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DB wraps the GORM handle with Warden's repositories.
type DB struct {
	gorm    *gorm.DB
	dialect string // "postgres" or "sqlite"
	creds   credCache
	box     *secretbox.Box // seals secrets at rest; nil stores them in clear

	// Group commit of the per-job writes (see groupWriter).
	jobInserts     *groupWriter[jobInsert, error] // answers a quota refusal per row
	jobStarts      *groupWriter[string, started]
	jobCompletions *groupWriter[completion, bool] // PostgreSQL only; SQLite uses finish
}

// Open connects to PostgreSQL when url starts with postgres:// or
// postgresql://, otherwise it opens (creating) an embedded SQLite file at
// sqlitePath. The pure-Go SQLite driver keeps CGO_ENABLED=0 builds working.
func Open(ctx context.Context, url, sqlitePath string, opts ...Option) (*DB, error) {
	cfg := &gorm.Config{
		// Single statements are atomic on their own; GORM's implicit
		// BEGIN/COMMIT around each would double the round trips. Multi-
		// statement changes use explicit transactions.
		SkipDefaultTransaction: true,
		PrepareStmt:            true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		TranslateError:         true,
	}
	var (
		g       *gorm.DB
		err     error
		dialect string
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dialect = "postgres"
		g, err = gorm.Open(postgres.Open(url), cfg)
	case url == "" || strings.HasPrefix(url, "sqlite://"):
		dialect = "sqlite"
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			path = sqlitePath
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		g, err = gorm.Open(sqlite.Open(path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"), cfg)
	default:
		return nil, fmt.Errorf("WARDEN_DATABASE_URL: unsupported scheme in %q (want postgres:// or sqlite://)", redact(url))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("database handle: %w", err)
	}
	if dialect == "sqlite" {
		// One writer at a time; SQLite serialises writes anyway and this
		// avoids SQLITE_BUSY under concurrent API and worker goroutines.
		sqlDB.SetMaxOpenConns(1)
	} else {
		// As many idle connections as open ones: with fewer, a burst past
		// the idle count closes connections as it ends and the next burst
		// opens new ones (a backend start, authentication and the prepared
		// statements again, on the request's path: bench/RESULTS.md, "API
		// load"). Idle ones still go after ConnMaxIdleTime.
		const conns = 20
		sqlDB.SetMaxOpenConns(conns)
		sqlDB.SetMaxIdleConns(conns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
	}
	db := &DB{gorm: g, dialect: dialect}
	for _, o := range opts {
		o(db)
	}
	db.startGroups()
	if err := db.Ping(ctx); err != nil {
		slog.Warn("database not reachable yet; will retry on use", "err", err)
	}
	return db, nil
}

// Ping checks the connection; database/sql reconnects on its own after a
// server restart, so a failing ping only reports the current state.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return sqlDB.PingContext(ctx)
}

// Dialect reports "postgres" or "sqlite".
func (db *DB) Dialect() string { return db.dialect }

// groupFlushers is how many batches of one kind may be in flight at once;
// groupMax bounds a batch (and so the distinct statement texts prepared).
const groupFlushers, groupMax = 1, 32

func (db *DB) startGroups() {
	db.jobInserts = newGroupWriter(groupFlushers, groupMax, func(r jobInsert) string { return r.job.ID }, db.insertJobs)
	db.jobStarts = newGroupWriter(groupFlushers, groupMax, func(id string) string { return id }, db.startJobs)
	if db.dialect == "postgres" {
		db.jobCompletions = newGroupWriter(groupFlushers, groupMax, func(c completion) string { return c.id }, db.completeJobs)
	}
}

// Close finishes the batched writes in flight and closes the pool.
func (db *DB) Close() error {
	db.jobInserts.close()
	db.jobStarts.close()
	if db.jobCompletions != nil {
		db.jobCompletions.close()
	}
	sqlDB, err := db.gorm.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Gorm exposes the handle for tests that inspect rows directly.
func (db *DB) Gorm() *gorm.DB { return db.gorm }

func redact(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			return url[:j+3] + "***" + url[i:]
		}
	}
	return url
}

// first loads the first row q selects, answering ENOTFOUND ("<what> not
// found") when there is none.
func first[T any](q *gorm.DB, what string) (T, error) {
	var v T
	err := q.First(&v).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return v, warden.Errorf(warden.ENOTFOUND, "%s not found", what)
	} else if err != nil {
		return v, fmt.Errorf("load %s: %w", what, err)
	}
	return v, nil
}

// ofOrg loads the row with id that belongs to orgID. An empty org id finds
// nothing: no exported call treats it as "any org".
func ofOrg[T any](ctx context.Context, db *DB, orgID, id, what string) (T, error) {
	if orgID == "" {
		var zero T
		return zero, warden.Errorf(warden.ENOTFOUND, "%s not found", what)
	}
	return first[T](db.gorm.WithContext(ctx).Where("id = ? AND org_id = ?", id, orgID), what)
}
