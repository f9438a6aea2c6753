package central

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Recorded playback sessions in PostgreSQL, shared by the replicas: a
// player's windows, timeline and overlay requests may reach any replica
// behind the load balancer (each asks the edge through the replica that
// holds it: replica_relay.go).

func (s *PGStore) addPlayback(p PlaybackSession, maxPerUser int) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.authTx(func(ctx context.Context, tx pgx.Tx) error {
		// The user's least recently used sessions go beyond the bound;
		// the user's rows are locked so two replicas count alike.
		if _, err := tx.Exec(ctx, `DELETE FROM playback_sessions WHERE id IN (
			SELECT id FROM playback_sessions WHERE user_name = $1 ORDER BY expires DESC OFFSET $2 FOR UPDATE)`,
			p.user, maxPerUser-1); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO playback_sessions (id, user_name, body, expires) VALUES ($1, $2, $3, $4)`,
			p.ID, p.user, v, p.Expires)
		return err
	})
}

func (s *PGStore) usePlayback(id, user string, now time.Time, idle time.Duration) (PlaybackSession, bool) {
	ctx, cancel := pgCtx()
	defer cancel()
	var b []byte
	exp := now.Add(idle).UTC()
	err := s.pool.QueryRow(ctx, `UPDATE playback_sessions SET expires = $4 WHERE id = $1 AND user_name = $2 AND expires > $3 RETURNING body`,
		id, user, now, exp).Scan(&b)
	var p PlaybackSession
	if err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			s.log.Error("reading a playback session failed", "err", err)
		}
		return p, false
	}
	if json.Unmarshal(b, &p) != nil {
		return p, false
	}
	p.user, p.Expires = user, exp
	return p, true
}

func (s *PGStore) endPlayback(id, user string) bool {
	ctx, cancel := pgCtx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM playback_sessions WHERE id = $1 AND user_name = $2`, id, user)
	return err == nil && tag.RowsAffected() == 1
}

func (s *PGStore) sweepPlayback(now time.Time) {
	ctx, cancel := pgCtx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM playback_sessions WHERE expires <= $1`, now); err != nil {
		s.log.Warn("sweeping playback sessions failed", "err", err)
	}
}

func (s *PGStore) countPlayback() int {
	ctx, cancel := pgCtx()
	defer cancel()
	var n int
	_ = s.pool.QueryRow(ctx, `SELECT count(*) FROM playback_sessions`).Scan(&n)
	return n
}
