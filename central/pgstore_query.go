package central

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPage is how many rows a scan of the PostgreSQL store fetches at once.
const pgPage = 256

// Query is AlertQuery.run over the alerts table (or the open index) in
// one snapshot: the same results and cursors as the Badger store's.
func (s *PGStore) Query(q AlertQuery) ([]Record, uint64, error) {
	if out, next, done := q.empty(); done {
		return out, next, nil
	}
	ctx, cancel := pgCtx()
	defer cancel()
	var out []Record
	var next uint64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		sc := &pgScan{ctx: ctx, tx: tx, q: &q, open: q.State == "open", cursor: pgSeq(q.Since)}
		if q.Desc {
			sc.cursor = math.MaxInt64
			if q.Before > 0 {
				sc.cursor = pgSeq(q.Before)
			}
		}
		var err error
		out, next, err = q.run(sc)
		return err
	})
	if err != nil {
		return nil, q.Since, fmt.Errorf("central: query alerts since %d: %w", q.Since, err)
	}
	return out, next, nil
}

// pgScan pages through records by creation seq from cursor (exclusive),
// upwards or (q.Desc) downwards. On the open index the site and rank
// rule records out before their JSON is decoded, as the Badger o/ index
// does.
type pgScan struct {
	ctx    context.Context
	tx     pgx.Tx
	q      *AlertQuery
	open   bool
	cursor int64 // the last seq fetched
	rows   []pgScanRow
	end    bool // no rows beyond rows
}

type pgScanRow struct {
	seq    int64
	rank   int16
	site   []byte
	record []byte
}

func (p *pgScan) fill() error {
	if len(p.rows) > 0 || p.end {
		return nil
	}
	from := `alerts a`
	cols := `a.seq, 0::smallint, a.site_id, a.record`
	if p.open {
		from = `alert_open o JOIN alerts a USING (seq)`
		cols = `a.seq, o.rank, o.site_id, a.record`
	}
	cmp, order := `>`, `ASC`
	if p.q.Desc {
		cmp, order = `<`, `DESC`
	}
	rows, err := p.tx.Query(p.ctx, `SELECT `+cols+` FROM `+from+` WHERE a.seq `+cmp+` $1 ORDER BY a.seq `+order+` LIMIT $2`, p.cursor, pgPage)
	if err != nil {
		return err
	}
	var r pgScanRow
	p.rows, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (pgScanRow, error) {
		err := row.Scan(&r.seq, &r.rank, &r.site, &r.record)
		return r, err
	})
	if err != nil {
		return err
	}
	p.end = len(p.rows) < pgPage
	if n := len(p.rows); n > 0 {
		p.cursor = p.rows[n-1].seq
	}
	return nil
}

func (p *pgScan) peek() (uint64, bool, error) {
	if err := p.fill(); err != nil || len(p.rows) == 0 {
		return 0, false, err
	}
	return uint64(p.rows[0].seq), true, nil
}

func (p *pgScan) read() (Record, bool, error) {
	row := p.rows[0]
	p.rows = p.rows[1:]
	var r Record
	if p.open && !p.q.siteAndRank(string(row.site), int(row.rank)) {
		return r, false, nil
	}
	if err := json.Unmarshal(row.record, &r); err != nil {
		return r, false, fmt.Errorf("record %d: %w", row.seq, err)
	}
	r.normalise()
	return r, true, nil
}

// Events lists stored edge events in time order from q.From, and the
// time to continue from when the limit was reached (zero otherwise),
// examining at most scanBudget events as the Badger store does.
func (s *PGStore) Events(q EventQuery) ([]StoredEvent, time.Time, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	out := []StoredEvent{}
	var next time.Time
	to := int64(math.MaxInt64)
	if !q.To.IsZero() {
		to = eventNanos(q.To)
	}
	// The key the next page starts after: (t_ns, edge, batch, idx).
	kt, ke, kb, ki := eventNanos(q.From)-1, []byte{}, []byte{}, int32(math.MaxInt32)
	for examined := 0; examined < scanBudget; {
		rows, err := s.pool.Query(ctx, `SELECT t_ns, edge_id, batch, idx, event FROM edge_events
			WHERE (t_ns, edge_id, batch, idx) > ($1, $2, $3, $4) AND t_ns < $5
			ORDER BY t_ns, edge_id, batch, idx LIMIT $6`, kt, ke, kb, ki, to, pgPage)
		if err != nil {
			return nil, next, err
		}
		n := 0
		var v []byte
		var stop bool
		_, err = pgx.ForEachRow(rows, []any{&kt, &ke, &kb, &ki, &v}, func() error {
			n++
			if stop || examined >= scanBudget {
				stop = true
				return nil
			}
			examined++
			var e StoredEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if (q.Edge != "" && e.EdgeID != q.Edge) || (q.Site != "" && e.SiteID != q.Site && !strings.HasPrefix(e.SiteID, q.Site+"/")) {
				return nil
			}
			if len(out) == q.Limit {
				next, stop = e.Time, true
				return nil
			}
			out = append(out, e)
			return nil
		})
		if err != nil {
			return nil, time.Time{}, err
		}
		if stop || n < pgPage {
			break
		}
	}
	return out, next, nil
}
