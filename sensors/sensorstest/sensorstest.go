// Package sensorstest helps the tests of sensor sources (sensors/modbus,
// sensors/mqttsrc): it runs a source, keeps what it emits, and records
// what it logs.
package sensorstest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/sensors"
)

// Wait bounds every wait of a Collector.
const Wait = 10 * time.Second

// Collector keeps what a running source emits: C is every reading in
// order, Last the last one of each sensor (filled by WaitFor).
type Collector struct {
	C    chan sensors.Reading
	Last map[string]sensors.Reading
}

// Run starts s with a fresh collector; the test's cleanup ends it and
// fails the test unless Run returns context.Canceled within Wait.
func Run(t testing.TB, s sensors.Source) *Collector {
	t.Helper()
	c := &Collector{C: make(chan sensors.Reading, 10000), Last: map[string]sensors.Reading{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(r sensors.Reading) { c.C <- r }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(Wait):
			t.Errorf("Run did not end %v after its context", Wait)
		}
	})
	return c
}

// WaitFor reads until every sensor in want last read its value, failing
// the test after Wait with what was read. Every reading's time must be UTC.
func (c *Collector) WaitFor(t testing.TB, want map[string]float64) {
	t.Helper()
	timeout := time.After(Wait)
	for {
		match := true
		for s, v := range want {
			if got, ok := c.Last[s]; !ok || got.Value != v {
				match = false
			}
		}
		if match {
			return
		}
		select {
		case r := <-c.C:
			if r.Time.Location() != time.UTC {
				t.Fatalf("reading time %v is not UTC", r.Time)
			}
			c.Last[r.Sensor] = r
		case <-timeout:
			t.Fatalf("readings %v, want %v", c.Last, want)
		}
	}
}

// None fails the test if a reading comes within d.
func (c *Collector) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-c.C:
		t.Fatalf("reading %+v while the source should be quiet", r)
	case <-time.After(d):
	}
}

// Drain drops the readings already emitted.
func (c *Collector) Drain() {
	for {
		select {
		case <-c.C:
		default:
			return
		}
	}
}

// LogRecorder is a slog handler that keeps the messages of records at
// Min and above, each prefixed with the value of the attribute Attr and
// ": " when Attr is set (e.g. "topic").
type LogRecorder struct {
	Min  slog.Level
	Attr string

	mu   sync.Mutex
	msgs []string
}

// Enabled implements slog.Handler.
func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level < l.Min {
		return nil
	}
	msg := r.Message
	if l.Attr != "" {
		var v string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == l.Attr {
				v = a.Value.String()
			}
			return true
		})
		msg = v + ": " + msg
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler.
func (l *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup implements slog.Handler.
func (l *LogRecorder) WithGroup(string) slog.Handler { return l }

// Count is how many kept messages start with prefix.
func (l *LogRecorder) Count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// Messages is every kept message, in order.
func (l *LogRecorder) Messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}
