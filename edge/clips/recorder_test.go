package clips

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// TestWriteNeverWaits floods a small queue while the store's writer is
// stalled (as by a hung disk): every Write returns although nothing is
// written, what does not fit is dropped and counted; once the writer
// moves again recording resumes at a keyframe, and what was stored is
// consistent and plays.
func TestWriteNeverWaits(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxPendingBytes = 256 << 10
	cfg.FlushInterval = 200 * time.Millisecond
	gate := make(chan struct{})
	cfg.writerGate = gate
	s := openStore(t, cfg)
	r := recorder(t, s, "gate")
	f := newFeed(bursts(t), epoch)
	for range 5 { // joined mid-GOP
		f.next()
	}
	feed := func(n int) {
		for i := range n {
			r.Write(f.next())
			if i%4 == 3 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	// A minute of video against the stalled writer: if Write waited for
	// it, this would never end (the bound only turns a hang into a
	// failure).
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed(600)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(gate)
		t.Fatal("Write waited for the stalled writer")
	}
	if n := testutil.ToFloat64(r.m.dropped[dropQueueFull]); n == 0 {
		t.Error("nothing dropped while the writer was stalled and the queue full")
	}
	close(gate) // the disk is back
	feed(600)
	flush(t, s)
	if n := testutil.ToFloat64(r.m.dropped[dropNoKeyframe]); n != 15 {
		t.Errorf("%v units dropped before the first keyframe, want 15", n)
	}
	if n := testutil.ToFloat64(r.m.dropped[dropQueueFull]); n == 0 {
		t.Error("nothing dropped for the full queue")
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	tl, err := s.Timeline("gate", time.Time{}, time.Time{})
	if err != nil || len(tl.Spans) < 2 {
		t.Errorf("timeline %+v (%v): want recording resumed after a drop", tl, err)
	}
	path, info := exportFile(t, s, "gate", epoch, epoch.Add(2*time.Minute))
	p := ffprobe(t, path)
	if !p.FirstKey || p.Frames != info.Frames {
		t.Errorf("export of what was kept: %+v, info %+v", p, info)
	}
	t.Logf("kept %d of 1200 frames", p.Frames)
}

// TestChunking: chunks start at keyframes at least ChunkDuration apart,
// end at a new session, and keep their parameter sets.
func TestChunking(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	r := recorder(t, s, "gate")
	f := newFeed(bursts(t), epoch)
	record(t, r, f, epoch.Add(21*time.Second))
	// A reconnect: PTS starts again from 0 and the clock moves on.
	g := newFeed(bursts(t), epoch.Add(30*time.Second))
	record(t, r, g, epoch.Add(35*time.Second))
	flush(t, s)

	var starts []time.Duration
	params := 2
	s.mu.RLock()
	buckets := append([]bucket(nil), r.buckets...)
	s.mu.RUnlock()
	for _, b := range buckets {
		s.db.View(func(txn *badger.Txn) error {
			return forEachChunk(txn, r.id, b.id, func(c chunkRef) (bool, error) {
				starts = append(starts, time.Duration(c.start-epoch.UnixNano()))
				params = min(params, len(c.meta.Params))
				return true, nil
			})
		})
	}
	want := []time.Duration{0, 4 * time.Second, 8 * time.Second, 12 * time.Second, 16 * time.Second, 20 * time.Second, 30 * time.Second, 34 * time.Second}
	if !reflect.DeepEqual(starts, want) {
		t.Errorf("chunks start at %v, want %v", starts, want)
	}
	if params != 2 {
		t.Errorf("a chunk carries %d parameter sets, want SPS and PPS", params)
	}
}

// TestClose ends every goroutine; a closed store refuses work politely.
func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Open(testConfig(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	r := recorder(t, s, "gate")
	record(t, r, newFeed(bursts(t), epoch), epoch.Add(5*time.Second))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r.Write(streams.AccessUnit{Codec: av.H264, NALUs: [][]byte{{0x65, 1}}, Key: true, Time: epoch})
	if err := s.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
	if _, err := s.Pin("a", "gate", epoch, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Pin after Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before Open, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestEncodings round-trips parts, chunk metadata and bucket summaries.
func TestEncodings(t *testing.T) {
	p := &part{}
	p.appendAU([][]byte{{0x67, 1, 2}, {0x68, 3}, {0x65, 4, 5, 6}}, 0, true, 4+3+4+2+4+4)
	p.appendAU([][]byte{{0x41, 7}}, 100*time.Millisecond, false, 6)
	rec := p.record(12345)
	at, table, err := parseRecord(rec, nil)
	if err != nil || at != 12345 || len(table) != 2 || table[0].Size != 21 || !table[0].Key || table[1].Offset != 100*time.Millisecond {
		t.Fatalf("record at %d table %+v: %v", at, table, err)
	}
	nalus, err := splitAVCC(p.buf[:21], nil)
	if err != nil || len(nalus) != 3 || nalus[2][3] != 6 {
		t.Fatalf("nalus %v: %v", nalus, err)
	}
	if _, _, err := parseRecord(rec[:len(rec)-1], nil); err == nil {
		t.Error("a truncated part record parsed")
	}
	if _, _, err := parseRecord(append([]byte{partMagic}, rec[1:]...), nil); err == nil {
		t.Error("a record with the wrong tag parsed")
	}

	m := chunkMeta{Codec: av.H265, Source: streams.TimeRTCP, StartPTS: -3, Parts: 2, AUs: 30, Bytes: 1 << 20,
		LastOffset: 2900 * time.Millisecond, FrameDur: 100 * time.Millisecond, Params: [][]byte{{1}, {2, 3}},
		Keyframes: []keyframe{{0, 0, 0}, {2 * time.Second, 1, 5}}}
	got, err := unmarshalMeta(m.marshal())
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("meta %+v: %v, want %+v", got, err, m)
	}
	b := bucketSum{Chunks: 3, Bytes: 5, First: 7, Last: 9, Evicting: true}
	if got, err := unmarshalBucket(b.marshal()); err != nil || got != b {
		t.Errorf("bucket %+v: %v", got, err)
	}
}
