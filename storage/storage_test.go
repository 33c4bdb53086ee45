package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// dialects runs a test against PostgreSQL and the embedded SQLite.
func dialects(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Run("postgres", func(t *testing.T) { db, _ := testenv.Postgres(t); fn(t, db) })
	t.Run("sqlite", func(t *testing.T) { fn(t, testenv.SQLite(t)) })
}

func TestMigrateTwice(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil || v < 1 {
			t.Fatalf("schema version %d %v", v, err)
		}
	})
}

func newJob(db *storage.DB, t *testing.T, org *string) records.Job {
	j := records.Job{ID: "job-" + strings.ReplaceAll(t.Name(), "/", "-"), OrgID: org, Kind: "probe", Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
	if err := db.CreateJob(context.Background(), &j, []records.Blob{{Key: "jobs/" + j.ID + "/input", Size: 1}}, storage.Quota{}); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestJobLifecycleIsIdempotent: a retried handler can never produce a
// second result, and a finished or deleted job cannot be restarted.
func TestJobLifecycleIsIdempotent(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		j := newJob(db, t, nil)
		for attempt := 1; attempt <= 2; attempt++ { // a crash after start: asynq retries
			got, ok, err := db.StartJob(ctx, j.ID)
			if err != nil || !ok || got.Status != records.JobInProgress || got.Attempts != attempt {
				t.Fatalf("start %d: %+v %v %v", attempt, got, ok, err)
			}
		}
		done, err := db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{Label: "ok", Data: "{}"}})
		if err != nil || !done {
			t.Fatalf("complete: %v %v", done, err)
		}
		done, err = db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{Label: "again", Data: "{}"}})
		if err != nil || done {
			t.Fatalf("second complete: %v %v", done, err)
		}
		if done, _ := db.FailJob(ctx, j.ID, "late failure", storage.Failure{}); done {
			t.Fatal("a completed job was failed")
		}
		if _, ok, _ := db.StartJob(ctx, j.ID); ok {
			t.Fatal("a completed job was restarted")
		}
		var n int64
		db.Gorm().Model(&records.Result{}).Where("job_id = ?", j.ID).Count(&n)
		r, err := db.GetResult(ctx, j.ID)
		if n != 1 || err != nil || r.Label != "ok" {
			t.Fatalf("results: %d, %+v %v", n, r, err)
		}
		blobs, err := db.DeleteJob(ctx, j.ID)
		if err != nil || len(blobs) != 1 {
			t.Fatalf("delete: %v %v", blobs, err)
		}
		if _, err := db.GetResult(ctx, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("result survives its job: %v", err)
		}
		if _, err := db.DeleteJob(ctx, j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("second delete: %v", err)
		}
		if _, ok, _ := db.StartJob(ctx, j.ID); ok {
			t.Fatal("a deleted job was started")
		}
	})
}

func TestCancelledJobIsNotCompleted(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		j := newJob(db, t, nil)
		db.StartJob(ctx, j.ID)
		if done, err := db.CancelJob(ctx, j.ID, nil); !done || err != nil {
			t.Fatalf("cancel %v %v", done, err)
		}
		if done, _ := db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{Data: "{}"}}); done {
			t.Fatal("a cancelled job was completed")
		}
	})
}

func TestCredentialsAndTenancy(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		a, err := db.CreateOrg(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := db.CreateOrg(ctx, "b")
		if _, err := db.CreateOrg(ctx, "  "); warden.ErrorCode(err) != warden.EINVALID {
			t.Errorf("blank org name: %v", err)
		}
		p, err := db.AuthenticateAPIKey(ctx, a.OrgID, a.APIKey)
		if err != nil || p.OrgID != a.OrgID || p.Role != records.RoleAdmin {
			t.Fatalf("auth: %+v %v", p, err)
		}
		for _, c := range []struct{ org, key string }{{b.OrgID, a.APIKey}, {a.OrgID, a.APIKey + "x"}, {a.OrgID, "nodot"}, {a.OrgID, b.APIKey}} {
			if _, err := db.AuthenticateAPIKey(ctx, c.org, c.key); warden.ErrorCode(err) != warden.EUNAUTHORIZED {
				t.Errorf("auth(%s, %s…) = %v, want unauthorized", c.org, c.key[:6], err)
			}
		}
		if _, err := db.AuthenticateClient(ctx, a.ClientID, a.ClientSecret); err != nil {
			t.Errorf("client auth: %v", err)
		}
		if _, err := db.AuthenticateClient(ctx, a.ClientID, b.ClientSecret); err == nil {
			t.Error("client authenticated with another client's secret")
		}
		var stored records.Credential
		db.Gorm().First(&stored, "id = ?", strings.SplitN(a.APIKey, ".", 2)[0])
		if strings.Contains(a.APIKey, stored.SecretHash) || len(stored.SecretHash) != 64 {
			t.Errorf("API key not stored hashed: %q", stored.SecretHash)
		}
		// Tenancy is in the queries: another org's row, an anonymous
		// row and an empty org id never reach a surface.
		orgA := a.OrgID
		j := records.Job{ID: "tenancy-" + orgA, OrgID: &orgA, Kind: "probe", Queue: "cpu", Deadline: time.Now().Add(time.Hour)}
		anon := records.Job{ID: "tenancy-anon-" + orgA, Kind: "probe", Queue: "cpu", Deadline: time.Now().Add(time.Hour)}
		for _, job := range []*records.Job{&j, &anon} {
			if err := db.CreateJob(ctx, job, nil, storage.Quota{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.OrgJob(ctx, a.OrgID, j.ID); err != nil {
			t.Errorf("own job: %v", err)
		}
		for name, get := range map[string]func() error{
			"other org's job":      func() error { _, err := db.OrgJob(ctx, b.OrgID, j.ID); return err },
			"empty org":            func() error { _, err := db.OrgJob(ctx, "", j.ID); return err },
			"anonymous as org job": func() error { _, err := db.OrgJob(ctx, a.OrgID, anon.ID); return err },
			"org job as anonymous": func() error { _, err := db.AnonymousJob(ctx, j.ID); return err },
			"model, empty org":     func() error { _, err := db.GetModel(ctx, "", "mdl_x"); return err },
			"delivery, empty org":  func() error { _, err := db.GetDelivery(ctx, "", "msg_x"); return err },
		} {
			if err := get(); warden.ErrorCode(err) != warden.ENOTFOUND {
				t.Errorf("%s: %v, want not found", name, err)
			}
		}
		if _, err := db.AnonymousJob(ctx, anon.ID); err != nil {
			t.Errorf("anonymous job: %v", err)
		}
	})
}

func TestLocalBlobs(t *testing.T) {
	ctx := context.Background()
	b, err := storage.NewLocalBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.Put(ctx, "jobs/x/input", bytes.NewReader([]byte("hello"))); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	rc, err := b.Open(ctx, "jobs/x/input")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	for _, bad := range []string{"../escape", "/abs", "a/../../b", "", "a\\b", "nul\x00"} {
		if _, err := b.Put(ctx, bad, strings.NewReader("x")); warden.ErrorCode(err) != warden.EINVALID {
			t.Errorf("key %q accepted: %v", bad, err)
		}
	}
	if err := b.Delete(ctx, "jobs/x/input"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Exists(ctx, "jobs/x/input"); ok {
		t.Fatal("blob still exists")
	}
	if err := b.Delete(ctx, "jobs/x/input"); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	// A failed write leaves nothing behind.
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Put(ctx2, "jobs/y/input", strings.NewReader("data")); err == nil {
		t.Fatal("write with a cancelled context succeeded")
	}
	if ok, _ := b.Exists(ctx, "jobs/y/input"); ok {
		t.Fatal("a failed write left a blob")
	}
}

// TestSigningKeys: migration 2 seeds one key; the newest active key comes
// first; retiring every key makes SigningKeys create a fresh one.
func TestSigningKeys(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if v, _ := db.SchemaVersion(ctx); v < 2 {
			t.Fatalf("schema version %d, want ≥ 2", v)
		}
		keys, err := db.SigningKeys(ctx)
		if err != nil || len(keys) != 1 || len(keys[0].Secret) < 40 {
			t.Fatalf("seeded keys %v %v", keys, err)
		}
		seeded := keys[0].KID
		k2, err := db.CreateSigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ = db.SigningKeys(ctx)
		if len(keys) != 2 || keys[0].KID != k2.KID || keys[1].KID != seeded {
			t.Fatalf("after rotation: %v", keys)
		}
		for _, kid := range []string{seeded, k2.KID} {
			if err := db.RetireSigningKey(ctx, kid); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.RetireSigningKey(ctx, seeded); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Errorf("retire twice: %v", err)
		}
		keys, err = db.SigningKeys(ctx)
		if err != nil || len(keys) != 1 || keys[0].KID == seeded || keys[0].KID == k2.KID {
			t.Fatalf("after retiring all: %v %v", keys, err)
		}
	})
}

func TestRevokeCredential(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		a, _ := db.CreateOrg(ctx, "a")
		b, _ := db.CreateOrg(ctx, "b")
		if _, err := db.RevokeCredential(ctx, b.OrgID, a.ClientID); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("revoke another org's credential: %v", err)
		}
		if _, err := db.AuthenticateClient(ctx, a.ClientID, a.ClientSecret); err != nil {
			t.Fatalf("client after a foreign revoke attempt: %v", err)
		}
		c, err := db.RevokeCredential(ctx, a.OrgID, a.ClientID)
		if err != nil || c.RevokedAt == nil {
			t.Fatalf("revoke: %+v %v", c, err)
		}
		again, err := db.RevokeCredential(ctx, a.OrgID, a.ClientID)
		if err != nil || !again.RevokedAt.Equal(*c.RevokedAt) {
			t.Errorf("revoke twice: %+v %v", again, err)
		}
		if _, err := db.AuthenticateClient(ctx, a.ClientID, a.ClientSecret); warden.ErrorCode(err) != warden.EUNAUTHORIZED {
			t.Errorf("revoked client authenticated: %v", err)
		}
		cs, total, err := db.ListCredentials(ctx, a.OrgID, 10, 0)
		if err != nil || total != 2 || len(cs) != 2 {
			t.Errorf("list: %d %v %v", total, cs, err)
		}
		if g, err := db.GetCredential(ctx, a.ClientID); err != nil || g.RevokedAt == nil {
			t.Errorf("get revoked: %+v %v", g, err)
		}
	})
}

// TestConcurrentJobWritesShareStatements: many jobs created, started and
// completed at once (the API and worker under load, where the writes are
// batched) each get exactly their own row, result and delivery, with data
// that an array literal could garble carried byte for byte.
func TestConcurrentJobWritesShareStatements(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		org, err := db.CreateOrg(ctx, "load")
		if err != nil {
			t.Fatal(err)
		}
		const n = 120
		hostile := []string{`{"a":"b,c"}`, `say "hi" \ back\slash`, `NULL`, ``, "{}", "ünï\ncode\t{,}"}
		id := func(i int) string { return fmt.Sprintf("%s-%03d", strings.ReplaceAll(t.Name(), "/", "-"), i) }
		var wg sync.WaitGroup
		errs := make(chan error, 4*n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j := records.Job{ID: id(i), OrgID: &org.OrgID, Kind: "probe", Queue: "cpu", Input: hostile[i%len(hostile)], Deadline: time.Now().Add(time.Hour)}
				if err := db.CreateJob(ctx, &j, nil, storage.Quota{}); err != nil {
					errs <- fmt.Errorf("create %d: %w", i, err)
					return
				}
				if j.CreatedAt.IsZero() || j.Status != records.JobQueued {
					errs <- fmt.Errorf("create %d: row not filled in: %+v", i, j)
				}
				got, ok, err := db.StartJob(ctx, j.ID)
				if err != nil || !ok || got.ID != j.ID || got.Attempts != 1 || got.Input != j.Input {
					errs <- fmt.Errorf("start %d: %+v %v %v", i, got, ok, err)
					return
				}
				var d *records.WebhookDelivery
				if i%3 == 0 {
					d = &records.WebhookDelivery{ID: "d-" + j.ID, OrgID: org.OrgID, EventType: "job.completed", URL: "https://hooks.example/" + j.ID, Payload: hostile[(i+1)%len(hostile)]}
				}
				done, err := db.CompleteJob(ctx, j.ID, storage.Completion{Result: records.Result{Label: hostile[(i+2)%len(hostile)], Data: hostile[i%len(hostile)], DurationMS: int64(i)}, Delivery: d})
				if err != nil || !done {
					errs <- fmt.Errorf("complete %d: %v %v", i, done, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range n {
			j, err := db.JobByID(ctx, id(i))
			if err != nil || j.Status != records.JobCompleted || j.Attempts != 1 || j.Input != hostile[i%len(hostile)] {
				t.Fatalf("job %d: %+v %v", i, j, err)
			}
			r, err := db.GetResult(ctx, id(i))
			if err != nil || r.Label != hostile[(i+2)%len(hostile)] || r.Data != hostile[i%len(hostile)] || r.DurationMS != int64(i) {
				t.Fatalf("result %d: %+v %v", i, r, err)
			}
			var ds []records.WebhookDelivery
			db.Gorm().Where("job_id = ?", id(i)).Find(&ds)
			switch {
			case i%3 != 0 && len(ds) != 0:
				t.Fatalf("job %d has deliveries it never asked for: %+v", i, ds)
			case i%3 == 0 && (len(ds) != 1 || ds[0].Payload != hostile[(i+1)%len(hostile)] || ds[0].Status != records.DeliveryPending || ds[0].OrgID != org.OrgID):
				t.Fatalf("job %d deliveries: %+v", i, ds)
			}
		}
		// A duplicate id fails its own caller, not the others writing at
		// the same moment.
		var dup atomic.Int32
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				jid := fmt.Sprintf("%s-fresh-%02d", strings.ReplaceAll(t.Name(), "/", "-"), i)
				if i%5 == 0 {
					jid = id(i) // exists
				}
				j := records.Job{ID: jid, Kind: "probe", Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
				err := db.CreateJob(ctx, &j, nil, storage.Quota{})
				if (err != nil) != (i%5 == 0) {
					t.Errorf("create %s: %v", jid, err)
				}
				if err != nil {
					dup.Add(1)
				}
			}()
		}
		wg.Wait()
		if dup.Load() != 4 {
			t.Fatalf("%d duplicate ids refused, want 4", dup.Load())
		}
	})
}

// TestConcurrentStartsOfOneJobCountEveryAttempt: two starts of the same job
// at once (a retry racing the reconciler) never share a statement, so both
// attempts are counted.
func TestConcurrentStartsOfOneJobCountEveryAttempt(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		j := newJob(db, t, nil)
		var wg sync.WaitGroup
		attempts := make(chan int, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, ok, err := db.StartJob(ctx, j.ID)
				if err != nil || !ok {
					t.Errorf("start: %v %v", ok, err)
				}
				attempts <- got.Attempts
			}()
		}
		wg.Wait()
		close(attempts)
		var seen []int
		for a := range attempts {
			seen = append(seen, a)
		}
		slices.Sort(seen)
		if !slices.Equal(seen, []int{1, 2, 3, 4}) {
			t.Fatalf("attempts seen %v, want 1..4", seen)
		}
	})
}
