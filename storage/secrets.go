package storage

import (
	"fmt"
	"log/slog"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/secretbox"
	"gorm.io/gorm"
)

// An Option configures Open.
type Option func(*DB)

// WithSecretBox seals the secrets the database holds in clear to use
// (signing keys, webhook secrets) with box (from WARDEN_SECRET_KEY).
// Without it they are stored in clear, and a database that holds sealed
// values refuses to migrate.
func WithSecretBox(box *secretbox.Box) Option { return func(db *DB) { db.box = box } }

// sealedColumn is a column whose values are sealed at rest, each bound to
// its place: table, column and row key.
type sealedColumn struct{ table, key, column string }

var (
	orgWebhookSecret = sealedColumn{"orgs", "id", "webhook_secret"}
	signingKeySecret = sealedColumn{"signing_keys", "kid", "secret"}
	sealedColumns    = []sealedColumn{orgWebhookSecret, signingKeySecret}
)

// place is the associated data that binds a sealed value to its row.
func (c sealedColumn) place(id string) string { return c.table + "." + c.column + ":" + id }

func (db *DB) seal(c sealedColumn, id, plaintext string) string {
	return db.box.Seal(plaintext, c.place(id))
}

func (db *DB) open(c sealedColumn, id, stored string) (string, error) {
	v, err := db.box.Open(stored, c.place(id))
	if err != nil {
		return "", fmt.Errorf("%s.%s of %s: %w", c.table, c.column, id, err)
	}
	return v, nil
}

func (db *DB) openOrg(o *records.Org) (err error) {
	o.WebhookSecret, err = db.open(orgWebhookSecret, o.ID, o.WebhookSecret)
	return err
}

func (db *DB) openSigningKeys(keys []records.SigningKey) (err error) {
	for i := range keys {
		if keys[i].Secret, err = db.open(signingKeySecret, keys[i].KID, keys[i].Secret); err != nil {
			return err
		}
	}
	return nil
}

// sealSecrets is the migration step run on every Migrate: it refuses a
// database whose sealed values this process cannot open (no key, or
// another key), then seals the values still in clear (written before a
// key was configured). Re-running it changes nothing.
func (db *DB) sealSecrets(conn *gorm.DB) error {
	for _, c := range sealedColumns {
		if err := db.checkSealedKey(conn, c); err != nil {
			return err
		}
		if db.box == nil {
			continue
		}
		n, err := db.sealClear(conn, c)
		if err != nil {
			return fmt.Errorf("seal %s.%s: %w", c.table, c.column, err)
		}
		if n > 0 {
			slog.Info("sealed secrets stored in clear", "table", c.table, "column", c.column, "rows", n)
		}
	}
	return nil
}

// checkSealedKey fails when a value of c is sealed under a key other than
// the configured one (or when no key is configured).
func (db *DB) checkSealedKey(conn *gorm.DB, c sealedColumn) error {
	q := c.rows(conn).Where(c.column+" LIKE ?", secretbox.Prefix+"%")
	if db.box != nil {
		q = q.Where(c.column+" NOT LIKE ?", db.box.Header()+"%")
	}
	var r sealedRow
	if err := q.Limit(1).Scan(&r).Error; err != nil {
		return fmt.Errorf("check sealed %s.%s: %w", c.table, c.column, err)
	}
	if r.ID == "" {
		return nil
	}
	_, err := db.open(c, r.ID, r.Value)
	return err
}

// sealedRow is one row's key and stored value of a sealedColumn.
type sealedRow struct{ ID, Value string }

// rows selects c's rows as sealedRows.
func (c sealedColumn) rows(conn *gorm.DB) *gorm.DB {
	return conn.Table(c.table).Select(c.key + " AS id, " + c.column + " AS value")
}

// sealBatch bounds the rows read at once while sealing.
const sealBatch = 500

// sealClear seals c's values in clear, a batch at a time in key order.
// Each update applies only while the row still holds the value read, so a
// concurrent change is never overwritten.
func (db *DB) sealClear(conn *gorm.DB, c sealedColumn) (int, error) {
	sealed, after := 0, ""
	for {
		var rows []sealedRow
		err := c.rows(conn).Where(c.column+" NOT LIKE ? AND "+c.key+" > ?", secretbox.Prefix+"%", after).
			Order(c.key).Limit(sealBatch).Scan(&rows).Error
		if err != nil || len(rows) == 0 {
			return sealed, err
		}
		for _, r := range rows {
			res := conn.Table(c.table).Where(c.key+" = ? AND "+c.column+" = ?", r.ID, r.Value).
				Update(c.column, db.seal(c, r.ID, r.Value))
			if res.Error != nil {
				return sealed, res.Error
			}
			sealed += int(res.RowsAffected)
		}
		after = rows[len(rows)-1].ID
	}
}
