package central

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-perimeter/vigil/wire"
)

// pgSensors is the sensor store of a PostgreSQL central, shared by the
// replicas. A batch is stored once whichever replica its edge re-sends
// it to: each part's marker row is inserted first in the part's
// transaction, so a second replica storing the same part waits on the
// first's row and then finds it. Readings and minutes carry their
// keeping time (Badger's TTL): history reads skip what has expired and
// writes delete it now and then.
type pgSensors struct {
	s   *PGStore
	now func() time.Time

	mu     *sync.Mutex
	purged *time.Time // the last delete of expired rows
}

var _ sensorStore = pgSensors{}

func newPGSensors(s *PGStore, now func() time.Time) pgSensors {
	return pgSensors{s: s, now: now, mu: &sync.Mutex{}, purged: &time.Time{}}
}

// sensorPurgeEvery spaces the deletes of expired readings.
const sensorPurgeEvery = time.Hour

func (p pgSensors) addBatch(edge string, b *wire.SensorBatch) (bool, error) {
	stored := false
	for part := 0; part*sensorPartPoints < len(b.Points); part++ {
		pts := b.Points[part*sensorPartPoints : min(len(b.Points), (part+1)*sensorPartPoints)]
		ctx, cancel := pgCtx()
		var added bool
		err := pgx.BeginFunc(ctx, p.s.pool, func(tx pgx.Tx) (err error) {
			added, err = p.addPart(ctx, tx, edge, b.ID, part, pts)
			return err
		})
		cancel()
		if err != nil {
			return false, fmt.Errorf("central: store sensor batch %s: %w", b.ID, pgErr(err))
		}
		stored = stored || added
	}
	p.purge()
	return stored, nil
}

type pgMinuteKey struct {
	sensor string
	t      int64
}

// addPart writes one part of a batch unless its marker says it is stored.
func (p pgSensors) addPart(ctx context.Context, tx pgx.Tx, edge, batch string, part int, pts []wire.SensorPoint) (bool, error) {
	now := p.now()
	tag, err := tx.Exec(ctx, `INSERT INTO sensor_batches (edge_id, batch, part, keep_to) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, []byte(edge), []byte(batch), part, now.Add(sensorMinuteKeep))
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil // a re-send, stored here or by another replica
	}
	minutes := map[pgMinuteKey]minuteAgg{}
	rw := &pgx.Batch{}
	for _, pt := range pts {
		if strings.IndexByte(pt.Sensor, 0) >= 0 {
			continue // as badgerSensors: its key layout cannot take it
		}
		t := pt.Time.UTC()
		if pt.Count <= 1 && now.Sub(t) < sensorRawKeep {
			rw.Queue(`INSERT INTO sensor_raw (edge_id, sensor, t_ns, value, keep_to) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (edge_id, sensor, t_ns) DO UPDATE SET value = excluded.value, keep_to = excluded.keep_to`,
				[]byte(edge), []byte(pt.Sensor), max(t.UnixNano(), 0), pt.Value, t.Add(sensorRawKeep))
		}
		minute := t.Truncate(time.Minute)
		if now.Sub(minute) >= sensorMinuteKeep {
			continue
		}
		k := pgMinuteKey{pt.Sensor, max(minute.UnixNano(), 0)}
		minutes[k] = minutes[k].add(pt)
	}
	// In key order: two replicas folding into the same minutes lock
	// their rows in one order and cannot deadlock.
	keys := make([]pgMinuteKey, 0, len(minutes))
	for k := range minutes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pgMinuteKey) int {
		if c := strings.Compare(a.sensor, b.sensor); c != 0 {
			return c
		}
		return int(min(max(a.t-b.t, -1), 1))
	})
	for _, k := range keys {
		m := minutes[k]
		rw.Queue(`INSERT INTO sensor_minutes (edge_id, sensor, t_ns, sum, lo, hi, n, keep_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (edge_id, sensor, t_ns) DO UPDATE SET
				sum = CASE WHEN sensor_minutes.keep_to <= now() THEN excluded.sum ELSE sensor_minutes.sum + excluded.sum END,
				lo = CASE WHEN sensor_minutes.keep_to <= now() THEN excluded.lo ELSE least(sensor_minutes.lo, excluded.lo) END,
				hi = CASE WHEN sensor_minutes.keep_to <= now() THEN excluded.hi ELSE greatest(sensor_minutes.hi, excluded.hi) END,
				n = CASE WHEN sensor_minutes.keep_to <= now() THEN excluded.n ELSE sensor_minutes.n + excluded.n END,
				keep_to = excluded.keep_to`,
			[]byte(edge), []byte(k.sensor), k.t, m.sum, m.lo, m.hi, int64(m.n), time.Unix(0, k.t).Add(sensorMinuteKeep))
	}
	if rw.Len() > 0 {
		if err := tx.SendBatch(ctx, rw).Close(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// purge deletes expired readings, minutes and markers, at most once an
// hour per replica; a failure is tried again at the next batch.
func (p pgSensors) purge() {
	p.mu.Lock()
	if p.now().Sub(*p.purged) < sensorPurgeEvery {
		p.mu.Unlock()
		return
	}
	*p.purged = p.now()
	p.mu.Unlock()
	ctx, cancel := pgCtx()
	defer cancel()
	for _, table := range []string{"sensor_raw", "sensor_minutes", "sensor_batches"} {
		if _, err := p.s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE keep_to <= now()`); err != nil {
			p.s.log.Warn("deleting expired sensor readings failed", "table", table, "err", err)
			return
		}
	}
}

// history answers as badgerSensors.history does: the same rows in time
// order, at most maxHistoryScan of them, folded into steps in Go.
func (p pgSensors) history(edge, sensor string, from, to time.Time, step time.Duration) ([]sensorPoint, error) {
	ctx, cancel := pgCtx()
	defer cancel()
	lo, hi := max(from.UnixNano(), 0), to.UnixNano()
	var rows pgx.Rows
	var err error
	if step == stepRaw {
		rows, err = p.s.pool.Query(ctx, `SELECT t_ns, value, value, value, 1 FROM sensor_raw
			WHERE edge_id = $1 AND sensor = $2 AND t_ns >= $3 AND t_ns < $4 AND keep_to > now()
			ORDER BY t_ns LIMIT $5`, []byte(edge), []byte(sensor), lo, hi, maxHistoryScan)
	} else {
		rows, err = p.s.pool.Query(ctx, `SELECT t_ns, sum, lo, hi, n FROM sensor_minutes
			WHERE edge_id = $1 AND sensor = $2 AND t_ns >= $3 AND t_ns < $4 AND keep_to > now()
			ORDER BY t_ns LIMIT $5`, []byte(edge), []byte(sensor), lo, hi, maxHistoryScan)
	}
	if err != nil {
		return nil, fmt.Errorf("central: sensor history %s/%s: %w", edge, sensor, err)
	}
	h := historyFold{step: step, out: []sensorPoint{}}
	var tns, n int64
	var a minuteAgg
	_, err = pgx.ForEachRow(rows, []any{&tns, &a.sum, &a.lo, &a.hi, &n}, func() error {
		t := time.Unix(0, tns).UTC()
		if step == stepRaw {
			h.reading(t, a.sum)
			return nil
		}
		a.n = uint64(n)
		h.minute(t, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("central: sensor history %s/%s: %w", edge, sensor, err)
	}
	return h.points(), nil
}
