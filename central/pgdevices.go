package central

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Device names in PostgreSQL, shared by the replicas: an edge reports its
// names to the replica holding its connection, which stores them and
// announces the edge on pgDevicesChannel; every replica reloads that
// edge's list into its deviceBook (watchDevices), so all show the same
// names.
const pgDevicesChannel = "vigil_devices"

var _ deviceNameStore = (*PGStore)(nil)

func (s *PGStore) loadDevices(f func(string, EdgeDevices)) error {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT edge_id, body FROM edge_devices`)
	if err != nil {
		return err
	}
	var id string
	var b []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &b}, func() error {
		var d EdgeDevices
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		f(id, d)
		return nil
	})
	return err
}

func (s *PGStore) putDevices(edgeID string, d EdgeDevices) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO edge_devices (edge_id, body) VALUES ($1, $2)
			ON CONFLICT (edge_id) DO UPDATE SET body = excluded.body`, edgeID, v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgDevicesChannel, edgeID)
		return err
	})
}

// devicesOf reads one edge's stored list (found false: none).
func (s *PGStore) devicesOf(edgeID string) (EdgeDevices, bool, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	var b []byte
	var d EdgeDevices
	err := s.pool.QueryRow(ctx, `SELECT body FROM edge_devices WHERE edge_id = $1`, edgeID).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	err = json.Unmarshal(b, &d) // before the return reads d
	return d, err == nil, err
}

// watchDevices keeps book in step with the names other replicas store
// until ctx ends; on (re)connecting it reloads every edge's list, as
// what changed while nobody listened is not announced again.
func (s *PGStore) watchDevices(ctx context.Context, book *deviceBook) {
	s.listen(ctx, pgDevicesChannel, func() {
		if err := s.loadDevices(func(id string, d EdgeDevices) { book.reloaded(id, d, true) }); err != nil {
			s.log.Error("reloading device names failed", "err", err)
		}
	}, func(id string) {
		d, found, err := s.devicesOf(id)
		if err != nil {
			s.log.Warn("reloading an edge's device names failed", "edge_id", id, "err", err)
			return
		}
		book.reloaded(id, d, found)
	})
}
