package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// predictionAudit writes prediction records in the background, many per
// statement, so that the audit trail costs a prediction a channel send and
// not a database round trip. A full buffer makes predictions wait rather
// than drop records; a failed write is tried three times; Close writes what
// is left.
type predictionAudit struct {
	db   *storage.DB
	rows chan records.Prediction
	done chan struct{}
	once sync.Once
}

const (
	auditBuffer = 8192
	auditBatch  = 500
	auditEvery  = 100 * time.Millisecond
)

func newPredictionAudit(db *storage.DB) *predictionAudit {
	a := &predictionAudit{db: db, rows: make(chan records.Prediction, auditBuffer), done: make(chan struct{})}
	go a.flush()
	return a
}

// record queues one record; it waits while the buffer is full, until ctx
// ends.
func (a *predictionAudit) record(ctx context.Context, p records.Prediction) {
	select {
	case a.rows <- p:
	case <-ctx.Done():
		slog.Warn("prediction audit record not queued", "id", p.ID, "err", ctx.Err())
	}
}

func (a *predictionAudit) flush() {
	defer close(a.done)
	t := time.NewTicker(auditEvery)
	defer t.Stop()
	var batch []records.Prediction
	write := func() {
		if len(batch) == 0 {
			return
		}
		var err error
		for try := 0; try < 3; try++ { // a database restart, say
			if try > 0 {
				time.Sleep(time.Duration(try) * time.Second)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = a.db.RecordPredictions(ctx, batch)
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			slog.Error("prediction audit records lost", "n", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case p, ok := <-a.rows:
			if !ok {
				write()
				return
			}
			batch = append(batch, p)
			if len(batch) >= auditBatch {
				write()
			}
		case <-t.C:
			write()
		}
	}
}

// Close writes the queued records and stops. Call after the HTTP server
// has stopped taking requests.
func (a *predictionAudit) Close() {
	a.once.Do(func() { close(a.rows) })
	<-a.done
}
