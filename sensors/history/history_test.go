package history

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// open opens a store whose clock stands at now. Readings are stamped
// relative to the real time: Badger ends them by the wall clock.
func open(t *testing.T, dir string, now time.Time, raw, minute time.Duration) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := Open(Config{Dir: dir, Registerer: reg, Log: testrig.Logger(t), Raw: raw, Minute: minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.wait = time.Minute // a slow writer (-race, a busy machine) fails no test
	return s, reg
}

func point(sensor string, t time.Time, v float64) wire.SensorPoint {
	return wire.SensorPoint{Sensor: sensor, Time: t, Value: v}
}

// rangeOf is Range that fails the test on an error.
func rangeOf(t *testing.T, s *Store, sensor string, from, to time.Time) ([]wire.SensorPoint, string) {
	t.Helper()
	points, step, err := s.Range(sensor, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return points, step
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// A minute's aggregate is the mean, minimum, maximum and count of its
// readings, late ones included; other sensors (one whose ID starts with
// this one's) do not mix in; a short range returns every reading.
func TestMinutes(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	m0 := now.Add(-3 * time.Hour)
	s, reg := open(t, t.TempDir(), now, 0, 0)
	for _, name := range []string{"vigil_edge_sensor_history_dropped_total", "vigil_edge_sensor_history_written_total",
		"vigil_edge_sensor_history_write_errors_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s is not exported at start: %d %v", name, n, err)
		}
	}
	// Minute 0: 1..60 at one a second; minute 1: 100 and 50; then a
	// reading of minute 2 closes minute 1, and a late one joins minute 0.
	for i := range 60 {
		s.Keep(point("cable", m0.Add(time.Duration(i)*time.Second), float64(i+1)),
			point("cable-2", m0.Add(time.Duration(i)*time.Second), 1000))
	}
	s.Keep(point("cable", m0.Add(61*time.Second), 100), point("cable", m0.Add(90*time.Second), 50))
	s.Keep(point("cable", m0.Add(125*time.Second), 7))
	s.Keep(point("cable", m0.Add(59500*time.Millisecond), -5))
	got, step := rangeOf(t, s, "cable", m0.Add(-time.Hour), m0.Add(2*time.Hour))
	if step != StepMinute || len(got) != 3 {
		t.Fatalf("step %s, %d points %v; want 1m and 3", step, len(got), got)
	}
	want := []struct {
		mean, lo, hi float64
		n            int
	}{{(1830 - 5) / 61.0, -5, 60, 61}, {75, 50, 100, 2}, {7, 7, 7, 1}} // the last one still open
	for i, w := range want {
		p := got[i]
		if !p.Time.Equal(m0.Add(time.Duration(i)*time.Minute)) || p.Sensor != "cable" || !near(p.Value, w.mean) ||
			p.Min != w.lo || p.Max != w.hi || p.Count != w.n {
			t.Errorf("minute %d: %+v, want %+v", i, p, w)
		}
	}
	raw, step := rangeOf(t, s, "cable", m0.Add(30*time.Second), m0.Add(61*time.Second))
	if step != StepRaw || len(raw) != 31 || raw[0].Value != 31 || raw[29].Value != 60 || raw[30].Value != -5 || raw[0].Count != 1 {
		t.Errorf("raw: step %s, %d points %v", step, len(raw), raw)
	}
	if got, _ := rangeOf(t, s, "cable", m0.Add(time.Minute), m0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("an empty range: %v", got)
	}
	if w := testutil.ToFloat64(s.written); w != 124 {
		t.Errorf("%v readings written, want 124", w)
	}
}

// Range returns every reading up to 2 h, minutes beyond, and merges more
// than MaxPoints into wider buckets; Recent is bounded for an alert.
func TestRangeSelection(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	s, _ := open(t, t.TempDir(), now, 0, 0)
	// Two hours at 1 Hz before now, values 0..7199, added a minute at a
	// time (the queue holds Keep calls, not readings).
	start := now.Add(-2 * time.Hour)
	for m := range 120 {
		var minute []wire.SensorPoint
		for i := m * 60; i < (m+1)*60; i++ {
			minute = append(minute, point("gas", start.Add(time.Duration(i)*time.Second), float64(i)))
		}
		s.Keep(minute...)
	}
	got, step := rangeOf(t, s, "gas", start, now)
	if step != "5s" || len(got) != 1440 {
		t.Fatalf("2 h of 1 Hz: step %s, %d points; want 5s and 1440", step, len(got))
	}
	if p := got[7]; !p.Time.Equal(start.Add(35*time.Second)) || p.Value != 37 || p.Min != 35 || p.Max != 39 || p.Count != 5 {
		t.Errorf("bucket 7: %+v", p)
	}
	got, step = rangeOf(t, s, "gas", start, now.Add(time.Second))
	if step != StepMinute || len(got) != 120 || got[1].Value != 89.5 || got[1].Count != 60 {
		t.Errorf("over 2 h: step %s, %d points", step, len(got))
	}
	recent := s.Recent("gas", 15*time.Minute)
	if len(recent) != 450 || recent[449].Max != 7199 || recent[0].Min != 7200-900 {
		t.Errorf("recent: %d points, last %+v", len(recent), recent[len(recent)-1])
	}
	// Three days at a reading a minute: 4320 minutes, merged in twos.
	days := now.Truncate(2 * time.Minute).Add(-72 * time.Hour) // buckets of 2 minutes, each full
	var level []wire.SensorPoint
	for i := range 4320 {
		level = append(level, point("level", days.Add(time.Duration(i)*time.Minute), float64(i%2)))
	}
	s.Keep(level...)
	got, step = rangeOf(t, s, "level", days, now)
	if step != "2m" || len(got) != 2160 || got[5].Value != 0.5 || got[5].Count != 2 || got[5].Min != 0 || got[5].Max != 1 {
		t.Errorf("3 days: step %s, %d points, %+v", step, len(got), got[5])
	}
	// Readings older than Raw were never kept raw.
	if got, step := rangeOf(t, s, "level", days, days.Add(time.Hour)); step != StepMinute || len(got) != 60 {
		t.Errorf("an hour 3 days ago: step %s, %d points", step, len(got))
	}
}

// Readings and minutes end after Raw and Minute (Badger's TTL, from the
// reading's own time); a reading already that old is not kept at all.
func TestExpiry(t *testing.T) {
	now := time.Now().UTC()
	prev := now.Truncate(time.Minute).Add(-time.Minute)
	at := prev.Add(10 * time.Second)
	end := now.Add(4 * time.Second)
	s, _ := open(t, t.TempDir(), now, end.Sub(at), end.Sub(prev))
	s.Keep(point("rcd", at, 42), point("rcd", at.Add(-10*time.Second), 41)) // the second: too old already
	s.Keep(point("rcd", now, 43))                                           // closes the previous minute
	raw, step := rangeOf(t, s, "rcd", at.Add(-time.Second), at.Add(time.Second))
	if step != StepRaw || len(raw) != 1 || raw[0].Value != 42 || testutil.ToFloat64(s.written) != 2 {
		t.Fatalf("before expiry: step %s, %v, %v written", step, raw, testutil.ToFloat64(s.written))
	}
	minutes, step := rangeOf(t, s, "rcd", prev.Add(-3*time.Hour), prev.Add(time.Minute))
	if step != StepMinute || len(minutes) != 1 || minutes[0].Count != 2 || minutes[0].Min != 41 {
		t.Fatalf("before expiry: step %s, %v", step, minutes)
	}
	time.Sleep(time.Until(end) + 1100*time.Millisecond)
	if raw, _ := rangeOf(t, s, "rcd", at.Add(-time.Second), at.Add(time.Second)); len(raw) != 0 {
		t.Errorf("after expiry: %v", raw)
	}
	if minutes, _ := rangeOf(t, s, "rcd", prev.Add(-3*time.Hour), prev.Add(time.Minute)); len(minutes) != 0 {
		t.Errorf("after expiry: %v", minutes)
	}
}

// Readings and minutes outlive a restart; the minute open at Close is
// written and completed by the readings that follow the restart.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Minute)
	m0 := now.Add(-time.Hour)
	s, _ := open(t, dir, now, 0, 0)
	s.Keep(point("tank", m0, 10), point("tank", m0.Add(30*time.Second), 20))
	s.Keep(point("tank", m0.Add(70*time.Second), 30))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Range("tank", m0, now); err != ErrClosed {
		t.Errorf("Range after Close: %v", err)
	}
	s, _ = open(t, dir, now, 0, 0)
	s.Keep(point("tank", m0.Add(80*time.Second), 50))
	s.Keep(point("tank", m0.Add(130*time.Second), 0))
	if raw, step := rangeOf(t, s, "tank", m0, now); step != StepRaw || len(raw) != 5 {
		t.Errorf("raw after a restart: step %s, %v", step, raw)
	}
	got, _ := rangeOf(t, s, "tank", m0.Add(-2*time.Hour), now)
	if len(got) != 3 || got[0].Count != 2 || got[0].Value != 15 || got[1].Count != 2 || got[1].Value != 40 ||
		got[1].Min != 30 || got[1].Max != 50 {
		t.Errorf("minutes after a restart: %+v", got)
	}
}

// With the writer stopped, Add fills the queue and then drops, counting
// every reading dropped, and never blocks; invalid readings are dropped.
func TestAddNeverBlocks(t *testing.T) {
	s, _ := open(t, t.TempDir(), time.Now(), 0, 0)
	s.Keep(point("", time.Now(), 1), point("x", time.Time{}, 1), point("x", time.Now(), math.NaN()))
	if got := testutil.ToFloat64(s.dropped); got != 3 {
		t.Errorf("%v invalid readings dropped, want 3", got)
	}
	s.Close()
	done := make(chan struct{})
	go func() {
		for range queueLen + 10 {
			s.Keep(point("x", time.Now(), 1), point("y", time.Now(), 2))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked")
	}
	if got := testutil.ToFloat64(s.dropped); got != 3+20 {
		t.Errorf("%v dropped, want 23", got)
	}
	if s.Recent("x", time.Minute) != nil {
		t.Error("Recent after Close")
	}
}
