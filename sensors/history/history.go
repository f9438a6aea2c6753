// Package history keeps a sensor's readings at the edge, downsampled
// with age: every reading for Raw (24 h), and per minute the mean,
// minimum and maximum for Minute (30 days). Badger's TTL ends both,
// counted from the reading's own time.
//
// Keep never blocks: readings go through a bounded queue to one writer
// goroutine, which commits them in batches; what does not fit is dropped
// and counted. The writer keeps each sensor's open minute in memory and
// writes its aggregate once the minute is over (a few seconds after, for
// readings that arrive late), or on Close. A minute's aggregate merges
// with what is stored for it, so readings arriving after their minute
// was written, and the rest of a minute a restart interrupted, still
// count. A crash loses the open minutes (their raw readings are kept).
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// Defaults and bounds.
const (
	DefaultRaw    = 24 * time.Hour
	DefaultMinute = 30 * 24 * time.Hour
	// lateness is how long after its end a minute stays open for
	// readings that arrive late.
	lateness = 5 * time.Second
	// queueLen is how many Keep calls wait for the writer before Keep drops.
	queueLen = 4096
	// maxBatch is about how many readings one write commits.
	maxBatch = 1024
	// syncWait bounds how long Range waits for the writer (Recent: a fifth).
	syncWait = time.Second
)

// The footprint of a small, append-mostly database.
const (
	memTableSize     = 4 << 20
	valueLogFileSize = 16 << 20
)

// Config says where the history lives and how long it keeps readings.
type Config struct {
	Dir        string
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Raw        time.Duration // every reading; 0: DefaultRaw
	Minute     time.Duration // minute aggregates; 0: DefaultMinute
	// Now is the clock that closes minutes and places Recent and Range's
	// choice of raw readings (default time.Now). Expiry is Badger's, by
	// the wall clock.
	Now func() time.Time
}

// Store is a sensor history. Open it, Keep readings, Range and Recent for
// charts, Close once.
type Store struct {
	db      *badger.DB
	cfg     Config
	log     *slog.Logger
	queue   chan item
	dropped prometheus.Counter
	written prometheus.Counter
	errs    prometheus.Counter
	wait    time.Duration // syncWait; tests under -race wait longer

	mu   sync.Mutex
	open map[string]*agg // per sensor: the minute being gathered (the writer's)

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// item is what waits for the writer: readings, or a barrier (done) that
// the writer closes once everything queued before it is committed.
type item struct {
	points []wire.SensorPoint
	done   chan struct{}
}

// Open opens (or creates) the history in cfg.Dir and starts its writer.
func Open(cfg Config) (*Store, error) {
	if cfg.Raw <= 0 {
		cfg.Raw = DefaultRaw
	}
	if cfg.Minute <= 0 {
		cfg.Minute = DefaultMinute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db, err := kv.Open(kv.Options{Dir: cfg.Dir, Logger: cfg.Log, MemTableSize: memTableSize, ValueLogFileSize: valueLogFileSize})
	if err != nil {
		return nil, fmt.Errorf("sensor history: %w", err)
	}
	s := &Store{db: db, cfg: cfg, log: cfg.Log.With("component", "sensors/history"), queue: make(chan item, queueLen),
		wait: syncWait, open: map[string]*agg{}, done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_sensor_history_dropped_total",
			Help: "Sensor readings not kept in the edge's history: its queue was full, or the reading was invalid."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_sensor_history_written_total",
			Help: "Sensor readings kept in the edge's history."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_sensor_history_write_errors_total",
			Help: "Failed writes of the edge's sensor history (readings or minute aggregates lost)."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.dropped, s.written, s.errs} {
			if err := cfg.Registerer.Register(c); err != nil {
				db.Close()
				return nil, fmt.Errorf("sensor history: metrics: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// Keep keeps readings (Count 0 or 1; a point with Count > 1 counts as
// that many readings in its minute). It never blocks: with the writer
// behind, the readings are dropped and counted.
func (s *Store) Keep(points ...wire.SensorPoint) {
	keep := make([]wire.SensorPoint, 0, len(points))
	for _, p := range points {
		if p.Sensor == "" || p.Time.IsZero() || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			s.dropped.Inc()
			continue
		}
		p.Time = p.Time.UTC()
		keep = append(keep, p)
	}
	if len(keep) == 0 {
		return
	}
	select {
	case s.queue <- item{points: keep}:
	default:
		s.dropped.Add(float64(len(keep)))
	}
}

// run is the writer: it commits queued readings in batches and closes
// minutes that are over, until ctx ends; then it commits what is queued
// and writes every open minute.
func (s *Store) run(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			var batch []item
			for len(s.queue) > 0 {
				batch = append(batch, <-s.queue)
			}
			s.write(batch)
			s.closeMinutes(time.Time{})
			return
		case it := <-s.queue:
			batch, n := []item{it}, len(it.points)
			for n < maxBatch && len(s.queue) > 0 {
				it = <-s.queue
				batch, n = append(batch, it), n+len(it.points)
			}
			s.write(batch)
		case <-tick.C:
			s.closeMinutes(s.cfg.Now())
		}
	}
}

// write commits the readings of a batch and gathers them into minutes,
// then releases the batch's barriers.
func (s *Store) write(batch []item) {
	defer func() {
		for _, it := range batch {
			if it.done != nil {
				close(it.done)
			}
		}
	}()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	now, n := time.Now(), 0
	for _, it := range batch {
		for _, p := range it.points {
			s.gather(p)
			expires := p.Time.Add(s.cfg.Raw)
			if !expires.After(now) {
				continue
			}
			e := badger.NewEntry(key(tableRaw, p.Sensor, p.Time), encodeRaw(p.Value))
			e.ExpiresAt = uint64(expires.Unix())
			if err := wb.SetEntry(e); err != nil {
				s.fail("readings", err)
				return
			}
			n++
		}
	}
	if err := wb.Flush(); err != nil {
		s.fail("readings", err)
		return
	}
	s.written.Add(float64(n))
}

func (s *Store) fail(what string, err error) {
	s.errs.Inc()
	s.log.Warn("sensor history: "+what+" not kept", "err", err)
}

// gather adds a reading to its sensor's open minute. A reading of a
// later minute closes the open one first; one of an earlier minute (late)
// is merged into that minute's stored aggregate at once.
func (s *Store) gather(p wire.SensorPoint) {
	a := pointAgg(p)
	s.mu.Lock()
	open := s.open[p.Sensor]
	switch {
	case open == nil:
		s.open[p.Sensor] = &a
	case a.start.Equal(open.start):
		open.add(a)
	case a.start.After(open.start):
		s.open[p.Sensor] = &a
	}
	s.mu.Unlock()
	switch {
	case open != nil && a.start.Before(open.start):
		s.store(p.Sensor, a)
	case open != nil && a.start.After(open.start):
		s.store(p.Sensor, *open)
	}
}

// pointAgg is a reading as a minute of its own.
func pointAgg(p wire.SensorPoint) agg {
	a := agg{start: p.Time.Truncate(time.Minute), mean: p.Value, lo: p.Value, hi: p.Value, n: 1}
	if p.Count > 1 {
		a.lo, a.hi, a.n = min(p.Min, p.Value), max(p.Max, p.Value), p.Count
	}
	return a
}

// closeMinutes stores and forgets the open minutes that ended lateness
// before now (every one for a zero now).
func (s *Store) closeMinutes(now time.Time) {
	type closed struct {
		sensor string
		a      agg
	}
	var out []closed
	s.mu.Lock()
	for sensor, a := range s.open {
		if now.IsZero() || !a.start.Add(time.Minute+lateness).After(now) {
			out = append(out, closed{sensor, *a})
			delete(s.open, sensor)
		}
	}
	s.mu.Unlock()
	for _, c := range out {
		s.store(c.sensor, c.a)
	}
}

// store merges a minute's aggregate into what is stored for it.
func (s *Store) store(sensor string, a agg) {
	expires := a.start.Add(s.cfg.Minute)
	if !expires.After(time.Now()) {
		return
	}
	k := key(tableMinute, sensor, a.start)
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			var old agg
			if err := item.Value(func(v []byte) (err error) { old, err = decodeAgg(v); return err }); err == nil {
				old.add(a)
				a = old
			}
		}
		e := badger.NewEntry(k, encodeAgg(a))
		e.ExpiresAt = uint64(expires.Unix())
		return txn.SetEntry(e)
	})
	if err != nil {
		s.fail("a minute", err)
	}
}

// ErrClosed is returned by Range after Close.
var ErrClosed = errors.New("sensor history: closed")

// sync waits (at most wait) until the writer has committed what was
// added before it.
func (s *Store) sync(wait time.Duration) {
	done := make(chan struct{})
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case s.queue <- item{done: done}:
	case <-timer.C:
		return
	case <-s.done:
		return
	}
	select {
	case <-done:
	case <-timer.C:
	case <-s.done:
	}
}

// Close stops the writer, after it commits what is queued and writes
// every open minute, and closes the database. Readings added meanwhile
// are dropped. Safe to call twice.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		<-s.done
		err = s.db.Close()
	})
	return err
}
