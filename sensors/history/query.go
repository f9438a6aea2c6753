package history

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/wire"
)

const (
	// RawSpan is the longest range Range answers with every reading.
	RawSpan = 2 * time.Hour
	// MaxPoints bounds the points Range returns: more are merged into
	// wider buckets.
	MaxPoints = 3000
	// StepRaw and StepMinute are Range's steps of every reading and of the
	// minute aggregates; wider buckets are named by their width ("5s",
	// "15m", "1h").
	StepRaw    = "raw"
	StepMinute = "1m"
)

// steps are the widths of merged buckets, narrowest first.
var steps = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Range returns a sensor's history in [from, to), oldest first: every
// reading (step "raw") when the span is at most RawSpan and starts
// within Raw of now, else the minute aggregates (step "1m", the minute
// still open included); beyond MaxPoints, buckets as wide as needed
// (Count > 1: Value the mean, Min and Max the extremes). It sees every
// reading added before it (waiting at most a second for the writer).
func (s *Store) Range(sensor string, from, to time.Time) ([]wire.SensorPoint, string, error) {
	return s.query(sensor, from, to, MaxPoints, s.wait)
}

// Recent returns the readings of the last d before now, oldest first,
// at most wire.MaxSensorContext points: the chart an alert carries. It
// waits at most a fifth of a second for the writer (an alert should not
// wait on a slow disk) and returns nil after Close or on an error (logged).
func (s *Store) Recent(sensor string, d time.Duration) []wire.SensorPoint {
	now := s.cfg.Now()
	points, _, err := s.query(sensor, now.Add(-d), now.Add(time.Nanosecond), wire.MaxSensorContext, s.wait/5)
	if err != nil {
		s.log.Warn("sensor history: recent readings", "sensor", sensor, "err", err)
		return nil
	}
	return points
}

func (s *Store) query(sensor string, from, to time.Time, limit int, wait time.Duration) ([]wire.SensorPoint, string, error) {
	select {
	case <-s.done:
		return nil, "", ErrClosed
	default:
	}
	from, to = from.UTC(), to.UTC()
	if sensor == "" || strings.IndexByte(sensor, 0) >= 0 || !to.After(from) {
		return []wire.SensorPoint{}, StepRaw, nil
	}
	s.sync(wait)
	var aggs []agg
	var base time.Duration
	var err error
	if to.Sub(from) <= RawSpan && from.After(s.cfg.Now().Add(-s.cfg.Raw)) {
		aggs, err = s.scan(tableRaw, sensor, from, to)
	} else {
		base = time.Minute
		aggs, err = s.scan(tableMinute, sensor, from, to)
		aggs = s.withOpen(aggs, sensor, from, to)
	}
	if err != nil {
		return nil, "", err
	}
	aggs, step := downsample(aggs, to.Sub(from), base, limit)
	out := make([]wire.SensorPoint, len(aggs))
	for i, a := range aggs {
		out[i] = wire.SensorPoint{Sensor: sensor, Time: a.start, Value: a.mean, Min: a.lo, Max: a.hi, Count: a.n}
	}
	return out, step, nil
}

// scan reads a sensor's entries of a table in [from, to).
func (s *Store) scan(table byte, sensor string, from, to time.Time) ([]agg, error) {
	var out []agg
	pre := prefix(table, sensor)
	hi := key(table, sensor, to)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pre, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(key(table, sensor, from)); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if bytes.Compare(k, hi) >= 0 {
				break
			}
			t, ok := keyTime(k, len(pre))
			if !ok {
				continue
			}
			a, err := decode(table, item)
			if err != nil {
				return fmt.Errorf("sensor history: %s at %v: %w", sensor, t, err)
			}
			a.start = t
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

func decode(table byte, item *badger.Item) (a agg, err error) {
	err = item.Value(func(v []byte) error {
		if table == tableMinute {
			a, err = decodeAgg(v)
			return err
		}
		var x float64
		x, err = decodeRaw(v)
		a = agg{mean: x, lo: x, hi: x, n: 1}
		return err
	})
	return a, err
}

// withOpen merges the sensor's open minute, if it is in [from, to), into
// the stored minutes.
func (s *Store) withOpen(aggs []agg, sensor string, from, to time.Time) []agg {
	s.mu.Lock()
	var open agg
	if o := s.open[sensor]; o != nil {
		open = *o
	}
	s.mu.Unlock()
	if open.n == 0 || open.start.Before(from) || !open.start.Before(to) {
		return aggs
	}
	i, found := slices.BinarySearchFunc(aggs, open.start, func(a agg, t time.Time) int { return a.start.Compare(t) })
	if found {
		aggs[i].add(open)
		return aggs
	}
	return slices.Insert(aggs, i, open)
}

// downsample merges aggs (of a span, each base wide, 0: readings) into
// the narrowest buckets that leave at most limit of them.
func downsample(aggs []agg, span, base time.Duration, limit int) ([]agg, string) {
	if len(aggs) <= limit {
		if base == 0 {
			return aggs, StepRaw
		}
		return aggs, StepMinute
	}
	step := steps[len(steps)-1]
	for _, d := range steps {
		if d > base && int(span/d)+2 <= limit {
			step = d
			break
		}
	}
	var out []agg
	for _, a := range aggs {
		b := a.start.Truncate(step)
		if len(out) > 0 && out[len(out)-1].start.Equal(b) {
			out[len(out)-1].add(a)
			continue
		}
		a.start = b
		out = append(out, a)
	}
	return out, stepName(step)
}

// stepName writes a bucket width as "5s", "15m" or "1h".
func stepName(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
