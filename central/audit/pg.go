package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/internal/kv"
)

// PGSchema is the audit log's PostgreSQL schema, in versions: step i is
// version i+1. Central's migration runner applies them with its own
// (OpenPG creates nothing). A released step is never edited: a change is
// a new step.
//
// Entries are the same JSON the Badger log keeps (bytea: what was hashed
// is stored byte for byte, and jsonb would reorder it); t_ns (the
// entry's time, Unix nanoseconds: timestamptz keeps only microseconds)
// is what List's time filter looks up. audit_head has exactly one row,
// created here, so the first append of two replicas has a row to lock.
var PGSchema = []string{
	// 1: entries, the head, AppendOnce keys.
	`CREATE TABLE audit_entries (
		seq   bigint PRIMARY KEY,
		t_ns  bigint NOT NULL,
		entry bytea NOT NULL -- Entry JSON, as hashed and exported (plus its MAC)
	);
	CREATE INDEX audit_entries_t_ns ON audit_entries (t_ns);
	CREATE TABLE audit_head (
		one    boolean PRIMARY KEY DEFAULT true CHECK (one),
		record bytea -- {"seq","hash","time","mac"} of the newest entry; NULL: none yet
	);
	INSERT INTO audit_head VALUES (true, NULL);
	CREATE TABLE audit_once (
		key bytea PRIMARY KEY, -- AppendOnce's key
		seq bigint NOT NULL    -- the entry recorded under it
	);`,
}

// OpenPG opens the audit log kept in PostgreSQL tables (PGSchema, applied
// beforehand) reached through pool, which stays the caller's. Any number
// of processes may open it at once and append: each commit locks the head
// row, continues the chain from the head it reads there and writes the
// entries and the new head, so all of them append to one chain, numbered
// in commit order. An entry is durable when Append returns (a synchronous
// commit). Options.Floor is not used: a full disk on the server is its
// SQLSTATE 53100, returned as an error wrapping kv.ErrDiskFull.
func OpenPG(ctx context.Context, pool *pgxpool.Pool, o Options) (*Log, error) {
	if pool == nil {
		return nil, errors.New("audit: OpenPG needs a pool")
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	o.Floor = nil
	l := &Log{pg: &pgStore{pool: pool}, log: o.Log, key: o.Key}
	if err := l.start(ctx, o); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
			return nil, fmt.Errorf("%w (the audit tables are made by central's migrations: audit.PGSchema)", err)
		}
		return nil, err
	}
	return l, nil
}

// pgStore is the PostgreSQL backend.
type pgStore struct {
	pool *pgxpool.Pool
}

func (p *pgStore) shared() bool { return true }

// view reads in one repeatable-read transaction: a snapshot, as Badger's.
func (p *pgStore) view(ctx context.Context, fn func(reads) error) error {
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(pgTx{ctx: ctx, tx: tx}) })
	return pgErr(err)
}

// update writes in a read-committed transaction: after lockHead each
// statement sees what the commits before it wrote (their AppendOnce
// keys too), and the head lock orders the writers.
func (p *pgStore) update(ctx context.Context, fn func(writeTx) error) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return fn(pgTx{ctx: ctx, tx: tx}) })
	return pgErr(err)
}

// pgErr adds kv.ErrDiskFull to the server's "disk full" (SQLSTATE
// 53100), so a refused write reads as one whichever engine refused it.
func pgErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" {
		return fmt.Errorf("%w: %w", kv.ErrDiskFull, err)
	}
	return err
}

// pgSeq is seq as a bigint; seqs past PostgreSQL's range are its end.
func pgSeq(seq uint64) int64 {
	if seq > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(seq)
}

// pgTx is a transaction over the audit tables.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (p pgTx) headRecord() ([]byte, bool, error) { return p.readHead("") }

func (p pgTx) lockHead() ([]byte, bool, error) {
	v, ok, err := p.readHead(" FOR UPDATE")
	if errors.Is(err, pgx.ErrNoRows) {
		// The row was deleted (PGSchema makes it): make it again, then
		// lock it; two writers doing so at once meet on its key.
		if _, err := p.tx.Exec(p.ctx, `INSERT INTO audit_head (one, record) VALUES (true, NULL) ON CONFLICT DO NOTHING`); err != nil {
			return nil, false, err
		}
		v, ok, err = p.readHead(" FOR UPDATE")
	}
	return v, ok, err
}

// readHead reads the head row; with lock "" a missing row is no head.
func (p pgTx) readHead(lock string) ([]byte, bool, error) {
	var v []byte
	err := p.tx.QueryRow(p.ctx, `SELECT record FROM audit_head`+lock).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) && lock == "" {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, v != nil, nil
}

func (p pgTx) last() (uint64, []byte, error) {
	var seq int64
	var v []byte
	err := p.tx.QueryRow(p.ctx, `SELECT seq, entry FROM audit_entries ORDER BY seq DESC LIMIT 1`).Scan(&seq, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	return uint64(seq), v, err
}

func (p pgTx) entry(seq uint64) ([]byte, error) {
	var v []byte
	err := p.tx.QueryRow(p.ctx, `SELECT entry FROM audit_entries WHERE seq = $1`, pgSeq(seq)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoEntry
	}
	return v, err
}

func (p pgTx) scan(from, to uint64, fn func(uint64, []byte) error) error {
	rows, err := p.tx.Query(p.ctx, `SELECT seq, entry FROM audit_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq`,
		pgSeq(from), pgSeq(to))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var v []byte
		if err := rows.Scan(&seq, &v); err != nil {
			return err
		}
		if err := fn(uint64(seq), v); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return rows.Err()
}

// firstAtOrAfter looks t up in the time index; on an error it answers 1
// (a full scan is always right).
func (p pgTx) firstAtOrAfter(t time.Time, _ uint64) uint64 {
	var seq *int64
	err := p.tx.QueryRow(p.ctx, `SELECT min(seq) FROM audit_entries WHERE t_ns >= $1`, t.UnixNano()).Scan(&seq)
	switch {
	case err != nil:
		return 1
	case seq == nil:
		return math.MaxInt64 // nothing that late
	}
	return uint64(*seq)
}

func (p pgTx) putHead(v []byte) error {
	_, err := p.tx.Exec(p.ctx, `UPDATE audit_head SET record = $1`, v)
	return err
}

// putEntry inserts: an append never meets a stored seq (the chain
// continues after the newest entry stored, whatever the head says), so a
// seq already taken means the head lock failed, and the commit fails
// rather than overwrite another process's entry.
func (p pgTx) putEntry(seq uint64, t time.Time, v []byte) error {
	_, err := p.tx.Exec(p.ctx, `INSERT INTO audit_entries (seq, t_ns, entry) VALUES ($1, $2, $3)`,
		pgSeq(seq), t.UnixNano(), v)
	return err
}

func (p pgTx) replaceEntry(seq uint64, v []byte) error {
	_, err := p.tx.Exec(p.ctx, `UPDATE audit_entries SET entry = $2 WHERE seq = $1`, pgSeq(seq), v)
	return err
}

func (p pgTx) once(key string) (uint64, bool, error) {
	var seq int64
	err := p.tx.QueryRow(p.ctx, `SELECT seq FROM audit_once WHERE key = $1`, []byte(key)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return uint64(seq), err == nil, err
}

func (p pgTx) onces(fn func(string, uint64) error) error {
	rows, err := p.tx.Query(p.ctx, `SELECT key, seq FROM audit_once ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		var seq int64
		if err := rows.Scan(&key, &seq); err != nil {
			return err
		}
		if err := fn(string(key), uint64(seq)); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (p pgTx) putOnce(key string, seq uint64) error {
	_, err := p.tx.Exec(p.ctx, `INSERT INTO audit_once (key, seq) VALUES ($1, $2)`, []byte(key), pgSeq(seq))
	return err
}
