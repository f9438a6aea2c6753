package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// PGStore keeps alerts in PostgreSQL (pgschema.go): central's AlertStore
// when central.yaml says store: postgres://…. Several central replicas
// may share one database: each batch of changes takes the alert_seq row
// lock first, so changes are numbered in one order with no gaps across
// replicas, and a re-sent alert or update is recognised whichever
// replica stored it (ARCHITECTURE.md, "One machine or many").
type PGStore struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	rules *priorityRules // alert priorities (nil: the default order); set before the writer starts
	// mu serialises this process's writers: the row lock would too, but
	// holding a pool connection each while waiting for it is waste.
	mu sync.Mutex
}

var _ AlertStore = (*PGStore)(nil)

// pgTimeout bounds one statement or transaction of the store: a database
// that does not answer fails the batch (edges keep their items) rather
// than hanging the writer.
const pgTimeout = 30 * time.Second

// OpenPGStore connects to the database at url and brings its schema to
// this build's version.
func OpenPGStore(ctx context.Context, url string, log *slog.Logger) (*PGStore, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("central: store: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// Consoles' starting views each hold a connection briefly, and
		// the writer one: more than pgx's default of the CPU count.
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("central: store: %w", err)
	}
	v, err := pgMigrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("central: store %s: %w", cfg.ConnConfig.Host, err)
	}
	log.Info("postgresql store ready", "host", cfg.ConnConfig.Host, "database", cfg.ConnConfig.Database, "schema", v)
	return &PGStore{pool: pool, log: log}, nil
}

func (s *PGStore) setRules(r *priorityRules) { s.rules = r }

// selfTests lists each edge's latest self-test alert, by edge ID.
func (s *PGStore) selfTests() ([]Record, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	out := []Record{}
	err := pgRecords(ctx, s.pool, `SELECT a.seq, a.record FROM alert_selftests t JOIN alerts a ON a.id = t.alert_id ORDER BY t.edge_id`,
		nil, func(_ uint64, r Record) bool { out = append(out, r); return true })
	return out, err
}

// Close closes the store's connections.
func (s *PGStore) Close() error { s.pool.Close(); return nil }

func pgCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), pgTimeout)
}

// pgErr adds kv.ErrDiskFull to the database's "disk full" (SQLSTATE
// 53100), so a refused write reads as one whichever engine refused it.
func pgErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" {
		return fmt.Errorf("%w: %w", kv.ErrDiskFull, err)
	}
	return err
}

// apply runs ops in one transaction that first locks the sequence row:
// the changes of every replica are numbered in commit order.
func (s *PGStore) apply(ops []*op, now time.Time) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := pgCtx()
	defer cancel()
	var changes []Change
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last FROM alert_seq FOR UPDATE`).Scan(&last); err != nil {
			return err
		}
		var seq uint64
		var err error
		changes, seq, err = runOps(pgTx{ctx, tx}, ops, uint64(last), now, s.rules)
		if err != nil || seq == uint64(last) {
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE alert_seq SET last = $1`, int64(seq)); err != nil {
			return err
		}
		// Delivered at commit, in commit order: every central's writer
		// publishes the changes to its consoles (writer.catchUp).
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgChangesChannel, strconv.FormatUint(seq, 10))
		return err
	})
	if err != nil {
		return nil, pgErr(err)
	}
	for _, o := range ops {
		o.committed = true
	}
	return changes, nil
}

// Put stores one alert outside the writer (tests and tools).
func (s *PGStore) Put(a wire.Alert) (Record, bool, error) {
	o := &op{alert: &a}
	if _, err := s.apply([]*op{o}, time.Now()); err != nil {
		return Record{}, false, err
	}
	return o.rec, o.changed, o.err
}

// LastSeq returns the newest change's sequence number, any replica's.
func (s *PGStore) LastSeq() uint64 {
	ctx, cancel := pgCtx()
	defer cancel()
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT last FROM alert_seq`).Scan(&last); err != nil {
		s.log.Error("read the last sequence number", "err", err)
		return 0
	}
	return uint64(last)
}

// Get returns the record of one alert, or ErrNotFound.
func (s *PGStore) Get(id string) (Record, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	return pgRecord(ctx, s.pool, `SELECT record FROM alerts WHERE id = $1`, []byte(id))
}

// pgQuerier is what reads need of a pool, a connection or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgBodies calls f with each row sql selects, its one column (JSON)
// decoded into a T.
func pgBodies[T any](s *PGStore, sql string, f func(T)) error {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, sql)
	if err != nil {
		return err
	}
	var b []byte
	_, err = pgx.ForEachRow(rows, []any{&b}, func() error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		f(v)
		return nil
	})
	return err
}

// pgRecord reads the one record sql selects, or ErrNotFound.
func pgRecord(ctx context.Context, q pgQuerier, sql string, args ...any) (Record, error) {
	var b []byte
	var rec Record
	err := q.QueryRow(ctx, sql, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("record: %w", err)
	}
	return rec, nil
}

// Since returns up to limit records created after seq, oldest first.
func (s *PGStore) Since(seq uint64, limit int) ([]Record, error) {
	recs, _, err := s.Query(AlertQuery{Since: seq, Limit: limit})
	return recs, err
}

// Snapshot returns an alert's JPEG, or ErrNotFound.
func (s *PGStore) Snapshot(id string) ([]byte, error) { return s.blob(id, "") }

// UpdateSnapshot returns the JPEG an edge sent with an alert update.
func (s *PGStore) UpdateSnapshot(alertID, updateID string) ([]byte, error) {
	return s.blob(alertID, updateID)
}

func (s *PGStore) blob(alertID, updateID string) ([]byte, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT jpeg FROM alert_snapshots WHERE alert_id = $1 AND update_id = $2`,
		[]byte(alertID), []byte(updateID)).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, err
}

// Admit lets every write go ahead: the database's disk is the database
// server's, and a write it cannot take fails with kv.ErrDiskFull
// (pgErr) — nothing is acknowledged, so edges keep their items.
func (s *PGStore) Admit(bool) error { return nil }

// Disk reports no floor: central cannot see the database server's disk
// (the operator watches it, ARCHITECTURE.md).
func (s *PGStore) Disk() (kv.FloorState, error) { return kv.FloorState{}, nil }

// openIndex calls f for every open alert's seq, site and rank.
func (s *PGStore) openIndex(f func(seq uint64, site string, rank int)) error {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT seq, site_id, rank FROM alert_open`)
	if err != nil {
		return err
	}
	var seq int64
	var site []byte
	var rank int16
	_, err = pgx.ForEachRow(rows, []any{&seq, &site, &rank}, func() error {
		f(uint64(seq), string(site), int(rank))
		return nil
	})
	return err
}

// tamperState reads the tamper all-clear marks and then every open alert
// in sequence order, in one snapshot.
func (s *PGStore) tamperState(clear func(edge, camera string, seq uint64), open func(Record)) error {
	ctx, cancel := pgCtx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT edge_id, camera, seq FROM alert_tamper_clear`)
		if err != nil {
			return err
		}
		var edge, cam []byte
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&edge, &cam, &seq}, func() error {
			clear(string(edge), string(cam), uint64(seq))
			return nil
		}); err != nil {
			return err
		}
		return pgRecords(ctx, tx, `SELECT a.seq, a.record FROM alert_open o JOIN alerts a USING (seq) ORDER BY seq`,
			nil, func(_ uint64, r Record) bool { open(r); return true })
	})
}

// pgRecords calls f for each (seq, record) row sql selects, normalised,
// until f returns false.
func pgRecords(ctx context.Context, q pgQuerier, sql string, args []any, f func(seq uint64, r Record) bool) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return err
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		r.normalise()
		if !f(uint64(seq), r) {
			break
		}
	}
	rows.Close()
	return rows.Err()
}

// pgView is a read-only snapshot transaction as an alertView.
type pgView struct {
	ctx    context.Context
	cancel context.CancelFunc
	tx     pgx.Tx
	seq    uint64 // alert_seq.last in the snapshot
	err    error
}

// readView opens a repeatable-read transaction: it sees the store as it
// is now, whatever replicas commit meanwhile.
func (s *PGStore) readView() alertView {
	ctx, cancel := pgCtx()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	var last int64
	if err == nil {
		// The snapshot is taken by the first statement, not by BEGIN.
		if err = tx.QueryRow(ctx, `SELECT last FROM alert_seq`).Scan(&last); err != nil {
			tx.Rollback(ctx)
		}
	}
	return &pgView{ctx: ctx, cancel: cancel, tx: tx, seq: uint64(last), err: err}
}

func (v *pgView) newestOpen(limit int) ([]Record, error) {
	if v.err != nil {
		return nil, v.err
	}
	out := []Record{}
	err := pgRecords(v.ctx, v.tx, `SELECT a.seq, a.record FROM alert_open o JOIN alerts a USING (seq) ORDER BY seq DESC LIMIT $1`,
		[]any{limit}, func(_ uint64, r Record) bool { out = append(out, r); return true })
	return out, err
}

func (v *pgView) changes(after, upto uint64, limit int) ([]consoleFrame, error) {
	if v.err != nil {
		return nil, v.err
	}
	var out []consoleFrame
	if after >= upto {
		return out, nil
	}
	rows, err := v.tx.Query(v.ctx, `SELECT seq, frame FROM alert_changes WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
		int64(after), pgSeq(upto), limit)
	if err != nil {
		return nil, err
	}
	var seq int64
	var frame []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &frame}, func() error {
		out = append(out, consoleFrame{seq: uint64(seq), data: frame})
		frame = nil // ForEachRow scans into the same slice otherwise
		return nil
	})
	return out, err
}

func (v *pgView) last() uint64 { return v.seq }

func (v *pgView) Discard() {
	if v.err == nil {
		v.tx.Rollback(v.ctx)
	}
	v.cancel()
}

// pgSeq is a sequence bound as a bigint (math.MaxUint64, "no bound",
// becomes the largest bigint).
func pgSeq(seq uint64) int64 { return int64(min(seq, math.MaxInt64)) }
