package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgChangesChannel is the NOTIFY channel on which a commit that made
// changes announces its last sequence number.
const pgChangesChannel = "vigil_changes"

var _ sharedAlertStore = (*PGStore)(nil)

// changesIn reads the committed changes in (after, upto], oldest first.
func (s *PGStore) changesIn(after, upto uint64, limit int) ([]Change, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT seq, frame FROM alert_changes WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
		int64(after), pgSeq(upto), limit)
	if err != nil {
		return nil, err
	}
	var out []Change
	var seq int64
	var frame []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &frame}, func() error {
		var m struct {
			Type  string `json:"type"`
			Alert Record `json:"alert"`
		}
		if err := json.Unmarshal(frame, &m); err != nil {
			return fmt.Errorf("change %d: %w", seq, err)
		}
		m.Alert.normalise()
		out = append(out, Change{Seq: uint64(seq), Type: m.Type, Record: m.Alert, Frame: frame})
		frame = nil
		return nil
	})
	return out, err
}

// watch listens on pgChangesChannel on a connection of its own and calls
// f with each announced seq; after every (re)connection it calls f with
// LastSeq, so what was announced while it was away is caught up.
func (s *PGStore) watch(ctx context.Context, f func(last uint64)) {
	s.listen(ctx, pgChangesChannel, func() { f(s.LastSeq()) }, func(payload string) {
		if seq, err := strconv.ParseUint(payload, 10, 64); err == nil {
			f(seq)
		}
	})
}

// listen calls notice with the payload of every notification on channel
// until ctx ends, on a connection of its own, reconnecting with backoff;
// connected runs after each (re)connection, to catch up on what was
// announced while no connection listened.
func (s *PGStore) listen(ctx context.Context, channel string, connected func(), notice func(payload string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channel, connected, notice)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listening to the database failed; retrying", "channel", channel, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *PGStore) listenOnce(ctx context.Context, channel string, connected func(), notice func(payload string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool: LISTEN belongs to it alone.
	c := conn.Hijack()
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	connected()
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notice(n.Payload)
	}
}

var _ edgePresence = (*PGStore)(nil)

func (s *PGStore) claim(ctx context.Context, edge, replica, url string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO edge_presence (edge_id, replica, url, since) VALUES ($1, $2, $3, now())
		ON CONFLICT (edge_id) DO UPDATE SET replica = excluded.replica, url = excluded.url, since = excluded.since`,
		[]byte(edge), replica, url)
	return err
}

func (s *PGStore) release(ctx context.Context, edge, replica string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM edge_presence WHERE edge_id = $1 AND replica = $2`, []byte(edge), replica)
	return err
}

func (s *PGStore) holder(ctx context.Context, edge string) (string, bool, error) {
	var url string
	err := s.pool.QueryRow(ctx, `SELECT url FROM edge_presence WHERE edge_id = $1`, []byte(edge)).Scan(&url)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return url, err == nil, err
}

func (s *PGStore) setStatus(ctx context.Context, edge, replica string, status []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE edge_presence SET status = $3 WHERE edge_id = $1 AND replica = $2`, []byte(edge), replica, status)
	return err
}

func (s *PGStore) statuses(ctx context.Context, except string) (map[string][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT edge_id, status FROM edge_presence WHERE replica <> $1 AND status IS NOT NULL`, except)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var id, st []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &st}, func() error {
		out[string(id)] = st
		return nil
	})
	return out, err
}

// pgPresenceChannel carries edges coming and going at a replica, for the
// other replicas' consoles.
const pgPresenceChannel = "vigil_presence"

type presenceNotice struct {
	Replica string       `json:"replica"`
	Edge    EdgePresence `json:"edge"`
}

func (s *PGStore) announcePresence(ctx context.Context, replica string, p EdgePresence) error {
	v, err := json.Marshal(presenceNotice{Replica: replica, Edge: p})
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, pgPresenceChannel, string(v))
	return err
}

// watchPresence calls f for every edge coming or going at another
// replica than self, until ctx ends; connected runs once it listens.
func (s *PGStore) watchPresence(ctx context.Context, self string, connected func(), f func(EdgePresence)) {
	s.listen(ctx, pgPresenceChannel, connected, func(payload string) {
		var n presenceNotice
		if json.Unmarshal([]byte(payload), &n) == nil && n.Replica != self {
			f(n.Edge)
		}
	})
}
