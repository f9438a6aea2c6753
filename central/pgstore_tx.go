package central

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
)

// pgTx is a PostgreSQL transaction as an alertTx, in the tables of
// pgschema.go. IDs travel as []byte: their columns are bytea.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
}

var _ alertTx = pgTx{}

func (t pgTx) exec(sql string, args ...any) error {
	_, err := t.tx.Exec(t.ctx, sql, args...)
	return err
}

func (t pgTx) exists(sql string, args ...any) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(t.ctx, sql, args...).Scan(&ok)
	return ok, err
}

func (t pgTx) record(id string) (Record, error) {
	return pgRecord(t.ctx, t.tx, `SELECT record FROM alerts WHERE id = $1`, []byte(id))
}

func (t pgTx) putRecord(rec Record, rb []byte, seq uint64, frame []byte) error {
	if err := t.exec(`INSERT INTO alerts (seq, id, edge_id, site_id, kind, state, rev, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (seq) DO UPDATE SET state = excluded.state, rev = excluded.rev, record = excluded.record`,
		int64(rec.Seq), []byte(rec.ID), []byte(rec.EdgeID), []byte(rec.SiteID), []byte(rec.Kind), rec.State, int64(seq), rb); err != nil {
		return err
	}
	return t.exec(`INSERT INTO alert_changes (seq, frame) VALUES ($1, $2)`, int64(seq), frame)
}

func (t pgTx) insert(rec Record, snapshot []byte) error {
	if rec.Kind == KindSelfTest {
		if err := t.exec(`INSERT INTO alert_selftests (edge_id, alert_id) VALUES ($1, $2)
			ON CONFLICT (edge_id) DO UPDATE SET alert_id = excluded.alert_id`, []byte(rec.EdgeID), []byte(rec.ID)); err != nil {
			return err
		}
	}
	if err := t.setOpen(rec, colourRank(&rec)); err != nil {
		return err
	}
	if tamperClear(rec) {
		if err := t.exec(`INSERT INTO alert_tamper_clear (edge_id, camera, seq) VALUES ($1, $2, $3)
			ON CONFLICT (edge_id, camera) DO UPDATE SET seq = excluded.seq`,
			[]byte(rec.EdgeID), []byte(rec.Source), int64(rec.Seq)); err != nil {
			return err
		}
	}
	if len(snapshot) == 0 {
		return nil
	}
	return t.putUpdateSnapshot(rec.ID, "", snapshot)
}

func (t pgTx) setOpen(rec Record, rank int) error {
	return t.exec(`INSERT INTO alert_open (seq, rank, site_id) VALUES ($1, $2, $3)
		ON CONFLICT (seq) DO UPDATE SET rank = excluded.rank`, int64(rec.Seq), int16(rank), []byte(rec.SiteID))
}

func (t pgTx) clearOpen(rec Record) error {
	return t.exec(`DELETE FROM alert_open WHERE seq = $1`, int64(rec.Seq))
}

func (t pgTx) putUpdateSnapshot(alertID, updateID string, jpeg []byte) error {
	return t.exec(`INSERT INTO alert_snapshots (alert_id, update_id, jpeg) VALUES ($1, $2, $3)
		ON CONFLICT (alert_id, update_id) DO UPDATE SET jpeg = excluded.jpeg`, []byte(alertID), []byte(updateID), jpeg)
}

func (t pgTx) update(id string) (bool, error) {
	return t.exists(`SELECT EXISTS (SELECT 1 FROM alert_update_ids WHERE id = $1)`, []byte(id))
}

func (t pgTx) markUpdate(id string, seq uint64) error {
	return t.exec(`INSERT INTO alert_update_ids (id, seq) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`, []byte(id), int64(seq))
}

func (t pgTx) redirect(id string) (string, error) {
	var to []byte
	err := t.tx.QueryRow(t.ctx, `SELECT target FROM alert_redirects WHERE id = $1`, []byte(id)).Scan(&to)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, nil
	}
	return string(to), err
}

func (t pgTx) setRedirect(from, to string) error {
	return t.exec(`INSERT INTO alert_redirects (id, target) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET target = excluded.target`, []byte(from), []byte(to))
}

func (t pgTx) batch(id string) (bool, error) {
	return t.exists(`SELECT EXISTS (SELECT 1 FROM edge_event_batches WHERE id = $1)`, []byte(id))
}

func (t pgTx) markBatch(id string) error {
	return t.exec(`INSERT INTO edge_event_batches (id) VALUES ($1) ON CONFLICT DO NOTHING`, []byte(id))
}

func (t pgTx) putEvent(k eventKeyParts, e StoredEvent) (bool, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO edge_events (t_ns, edge_id, batch, idx, site_id, event)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		eventNanos(k.time), []byte(k.edge), []byte(k.batch), k.idx, []byte(e.SiteID), v)
	return err == nil && tag.RowsAffected() == 1, err
}
