package central

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// The edge registry in PostgreSQL, shared by the replicas: an edge
// enrolled through one connects to any; a revocation or a new key
// announced on pgEdgesChannel closes the edge's connection wherever it
// is (registry.reloaded, edgeHub.kick).
const pgEdgesChannel = "vigil_edges"

var _ sharedEdgeBook = (*PGStore)(nil)

func (s *PGStore) loadEdges(f func(EdgeRecord)) error {
	return pgBodies(s, `SELECT body FROM edges`, f)
}

// edge reads one edge's record (found false: none).
func (s *PGStore) edge(id string) (EdgeRecord, bool, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	return pgEdge(ctx, s.pool, id, "")
}

func pgEdge(ctx context.Context, q pgQuerier, id, lock string) (EdgeRecord, bool, error) {
	var b []byte
	var e EdgeRecord
	err := q.QueryRow(ctx, `SELECT body FROM edges WHERE id = $1 `+lock, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	err = json.Unmarshal(b, &e) // before the return reads e
	return e, err == nil, err
}

func putEdgeTx(ctx context.Context, tx pgx.Tx, e *EdgeRecord) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO edges (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, e.ID, v); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgEdgesChannel, e.ID)
	return err
}

func (s *PGStore) putEdge(e *EdgeRecord) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error { return putEdgeTx(ctx, tx, e) })
}

func (s *PGStore) putToken(hash string, t enrolToken, ttl time.Duration) error {
	v, _ := json.Marshal(t)
	ctx, cancel := pgCtx()
	defer cancel()
	// Tokens past their keeping time go as new ones come.
	_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM enrol_tokens WHERE keep_to < now())
		INSERT INTO enrol_tokens (hash, body, keep_to) VALUES ($1, $2, $3)`, hash, v, time.Now().Add(ttl))
	return pgErr(err)
}

// spendToken locks the token's row and the edge's, so two replicas
// enrolling with one token, or one edge, at once cannot both succeed.
func (s *PGStore) spendToken(hash string, use func(*enrolToken, *EdgeRecord) (*EdgeRecord, error)) error {
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		var b []byte
		err := tx.QueryRow(ctx, `SELECT body FROM enrol_tokens WHERE hash = $1 AND keep_to >= now() FOR UPDATE`, hash).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err := use(nil, nil)
			return err
		}
		if err != nil {
			return err
		}
		var t enrolToken
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		var current *EdgeRecord
		if e, found, err := pgEdge(ctx, tx, t.EdgeID, "FOR UPDATE"); err != nil {
			return err
		} else if found {
			current = &e
		}
		rec, err := use(&t, current)
		if err != nil || rec == nil {
			return err
		}
		v, _ := json.Marshal(t)
		if _, err := tx.Exec(ctx, `UPDATE enrol_tokens SET body = $2, keep_to = $3 WHERE hash = $1`, hash, v, time.Now().Add(24*time.Hour)); err != nil {
			return err
		}
		return putEdgeTx(ctx, tx, rec)
	})
}

// watchEdges keeps reg (and the connections hub holds) in step with the
// other replicas' changes until ctx ends.
func (s *PGStore) watchEdges(ctx context.Context, reg *registry, hub *edgeHub) {
	s.listen(ctx, pgEdgesChannel, func() {
		if err := s.loadEdges(func(e EdgeRecord) { reg.reloaded(e, hub) }); err != nil {
			s.log.Error("reloading the edge registry failed", "err", err)
		}
	}, func(id string) {
		e, found, err := s.edge(id)
		if err != nil || !found {
			return
		}
		reg.reloaded(e, hub)
	})
}
