package audit

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
)

// A test's log lives in a place: a directory (a Badger database of its
// own, OpenDir) or a postgres:// URL (a database with PGSchema applied,
// OpenPG over a pool of its own). openLog and openKeyed open either, so
// the behavioural tests run unchanged on both backends.

// forBackends runs fn once per backend; place makes a new, empty place.
// The PostgreSQL run starts one server for the test function.
func forBackends(t *testing.T, fn func(t *testing.T, place func(*testing.T) string)) {
	t.Run("badger", func(t *testing.T) {
		fn(t, func(t *testing.T) string { return t.TempDir() })
	})
	t.Run("postgres", func(t *testing.T) {
		pg := postgres.Start(t)
		fn(t, func(t *testing.T) string { return pgPlace(t, pg) })
	})
}

var pgPlaces atomic.Int64

// pgPlace makes a new database on pg with the audit schema.
func pgPlace(t *testing.T, pg *postgres.Server) string {
	t.Helper()
	url := pg.CreateDB(t, fmt.Sprintf("audit_%d", pgPlaces.Add(1)))
	applySchema(t, url)
	return url
}

// applySchema applies PGSchema as central's migration runner would.
func applySchema(t *testing.T, url string) {
	t.Helper()
	pool := newPool(t, url)
	defer pool.Close()
	for i, step := range PGSchema {
		if _, err := pool.Exec(ctx, step); err != nil {
			t.Fatalf("PGSchema version %d: %v", i+1, err)
		}
	}
}

// newPool connects to url; the test closes it.
func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func isPG(place string) bool { return strings.HasPrefix(place, "postgres://") }

// openAt opens the log at place with o; the test closes it.
func openAt(t *testing.T, place string, o Options) (*Log, error) {
	t.Helper()
	var l *Log
	var err error
	if isPG(place) {
		l, err = OpenPG(ctx, newPool(t, place), o)
	} else {
		l, err = OpenDir(place, o)
	}
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, err
}

// raw returns the stored bytes of seq.
func raw(t *testing.T, l *Log, seq uint64) []byte {
	t.Helper()
	var v []byte
	var err error
	if l.pg != nil {
		err = l.pg.pool.QueryRow(ctx, `SELECT entry FROM audit_entries WHERE seq = $1`, int64(seq)).Scan(&v)
	} else {
		v, err = badgerValue(l, l.st.entryKey(seq))
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// badgerValue reads one key of a Badger log's database.
func badgerValue(l *Log, key []byte) ([]byte, error) {
	var v []byte
	err := l.st.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return v, err
}

// put stores v as entry seq behind the log's back.
func put(t *testing.T, l *Log, seq uint64, v []byte) {
	t.Helper()
	var err error
	if l.pg != nil {
		_, err = l.pg.pool.Exec(ctx, `UPDATE audit_entries SET entry = $2 WHERE seq = $1`, int64(seq), v)
	} else {
		err = l.st.db.Update(func(txn *badger.Txn) error { return txn.Set(l.st.entryKey(seq), v) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// del removes entry seq behind the log's back.
func del(t *testing.T, l *Log, seq uint64) {
	t.Helper()
	var err error
	if l.pg != nil {
		_, err = l.pg.pool.Exec(ctx, `DELETE FROM audit_entries WHERE seq = $1`, int64(seq))
	} else {
		err = l.st.db.Update(func(txn *badger.Txn) error { return txn.Delete(l.st.entryKey(seq)) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// headRaw returns the stored head record.
func headRaw(t *testing.T, l *Log) []byte {
	t.Helper()
	var v []byte
	var err error
	if l.pg != nil {
		err = l.pg.pool.QueryRow(ctx, `SELECT record FROM audit_head`).Scan(&v)
	} else {
		v, err = badgerValue(l, l.st.headKey())
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setHead stores v as the head record behind the log's back.
func setHead(t *testing.T, l *Log, v []byte) {
	t.Helper()
	var err error
	if l.pg != nil {
		_, err = l.pg.pool.Exec(ctx, `UPDATE audit_head SET record = $1`, v)
	} else {
		err = l.st.db.Update(func(txn *badger.Txn) error { return txn.Set(l.st.headKey(), v) })
	}
	if err != nil {
		t.Fatal(err)
	}
}
