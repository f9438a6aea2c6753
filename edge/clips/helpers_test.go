package clips

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// epoch is the synthetic wall clock of the first recorded frame.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// bursts is the default test clip: 640×480, 10 fps, a keyframe every 2 s,
// about 47 kB/s.
func bursts(t testing.TB) *sim.Clip {
	clip, _ := testrig.BurstsClip(t)
	return clip
}

func burstsH265(t testing.TB) *sim.Clip {
	spec := footage.DefaultBursts()
	spec.H265 = true
	return testrig.Clip(t, spec)
}

// clipBytes is what one loop of a clip stores.
func clipBytes(clip *sim.Clip) int {
	n := 0
	for _, p := range clip.Packets {
		n += avccSize(p.AU)
	}
	return n
}

// feed plays a clip in a loop as a camera would deliver it, with
// continuous PTS and a synthetic wall clock, so an hour of video takes
// seconds to write.
type feed struct {
	clip *sim.Clip
	base time.Time
	loop int
	i    int
}

func newFeed(clip *sim.Clip, base time.Time) *feed { return &feed{clip: clip, base: base} }

func (f *feed) next() streams.AccessUnit {
	p := f.clip.Packets[f.i]
	pts := time.Duration(f.loop)*f.clip.Duration + p.PTS
	f.i++
	if f.i == len(f.clip.Packets) {
		f.i, f.loop = 0, f.loop+1
	}
	return streams.AccessUnit{Codec: f.clip.Info.Codec, NALUs: p.AU, PTS: pts, Time: f.base.Add(pts),
		TimeSource: streams.TimeRTCP, Key: p.Key, Bytes: avccSize(p.AU)}
}

// peek returns the time of the next access unit.
func (f *feed) peek() time.Time {
	return f.base.Add(time.Duration(f.loop)*f.clip.Duration + f.clip.Packets[f.i].PTS)
}

// record writes the feed into r until its clock reaches until, never
// letting the queue fill (tests of retention must not lose frames to
// queue_full), and returns the number of access units written.
func record(t testing.TB, r *Recorder, f *feed, until time.Time) int {
	t.Helper()
	n := 0
	for f.peek().Before(until) {
		for r.Pending() > r.s.cfg.MaxPendingBytes/2 {
			time.Sleep(time.Millisecond)
		}
		r.Write(f.next())
		n++
	}
	return n
}

// clock is a settable wall clock for ages and pin expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// testConfig is a store small enough for tests: 1 MiB memtables and
// value-log files, 10 s buckets.
func testConfig(t testing.TB, dir string) Config {
	fp := Footprint{MemTableSize: 1 << 20, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20, ValueLogFileSize: 1 << 20}
	return Config{
		Dir: dir, Footprint: fp, MinFreeBytes: fp.Reserve(), BucketDuration: 10 * time.Second, ChunkDuration: 4 * time.Second,
		FlushInterval: 100 * time.Millisecond, Registerer: prometheus.NewRegistry(), Log: quietLogger(t),
	}
}

func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func recorder(t testing.TB, s *Store, name string) *Recorder {
	t.Helper()
	r, err := s.Recorder(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ffprobe is testrig.FFprobe: every frame decoded, the stream reported.
func ffprobe(t testing.TB, path string) testrig.Probe { return testrig.FFprobe(t, path) }

// exportOrErr exports a range into nothing.
func exportOrErr(s *Store, camera string, from, to time.Time) (ExportInfo, int64, error) {
	e, err := s.OpenExport(camera, from, to)
	if err != nil {
		return ExportInfo{}, 0, err
	}
	defer e.Close()
	n, err := e.WriteTo(context.Background(), io.Discard)
	return e.Info(), n, err
}

// exportFile exports a range into a file in the test's directory.
func exportFile(t testing.TB, s *Store, camera string, from, to time.Time) (string, ExportInfo) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := s.Export(context.Background(), f, camera, from, to)
	if err != nil {
		t.Fatalf("Export %s %v..%v: %v", camera, from, to, err)
	}
	return path, info
}
