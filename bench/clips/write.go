package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// writeResult is one run of writing the same video as fast as it goes.
type writeResult struct {
	bytes   int64
	elapsed time.Duration
	cpu     time.Duration
}

func (r writeResult) mbps() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

// storeWrite records video of cams cameras into a fresh store as fast as
// the store takes it (never dropping: a producer waits while its queue is
// half full), until the last byte is durable.
func storeWrite(o options, clip *sim.Clip, video time.Duration) (writeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "store-")
	if err != nil {
		return writeResult{}, err
	}
	defer os.RemoveAll(dir)
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log})
	if err != nil {
		return writeResult{}, err
	}
	defer s.Close()
	var total atomic.Int64
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for c := range o.cams {
		r, err := s.Recorder(fmt.Sprintf("cam%02d", c))
		if err != nil {
			return writeResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &feed{clip: clip, base: epoch}
			var n int64
			for f.pts() < video {
				au := f.next()
				for r.Pending() > 2<<20 {
					time.Sleep(200 * time.Microsecond)
				}
				r.Write(au)
				n += int64(stored(au))
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		return writeResult{}, err
	}
	res := writeResult{bytes: total.Load(), elapsed: time.Since(start), cpu: cpuTime() - cpu0}
	if st := s.Stats(); st.Bytes < res.bytes {
		return res, fmt.Errorf("store holds %d bytes of %d written", st.Bytes, res.bytes)
	}
	return res, nil
}

// partSize is the size the store closes a part at (edge/clips
// partTarget): the unit both references write.
const partSize = 1 << 20

// produceParts cuts the same video as the store records into the same
// parts (each access unit as 4-byte length + NAL units, parts of up to
// 1 MiB or one chunk), one producer per camera, and sends them on parts,
// which it closes. It returns the video bytes produced.
func produceParts(o options, clip *sim.Clip, video time.Duration, parts chan<- []byte, free *sync.Pool) int64 {
	var total atomic.Int64
	var wg sync.WaitGroup
	for range o.cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd := &feed{clip: clip, base: epoch}
			buf := free.Get().([]byte)
			var n int64
			for fd.pts() < video {
				au := fd.next()
				if au.Key && len(buf) > 0 || len(buf) >= partSize {
					parts <- buf
					buf = free.Get().([]byte)
				}
				for _, nalu := range au.NALUs {
					buf = append(buf, byte(len(nalu)>>24), byte(len(nalu)>>16), byte(len(nalu)>>8), byte(len(nalu)))
					buf = append(buf, nalu...)
				}
				n += int64(stored(au))
			}
			parts <- buf
			total.Add(n)
		}()
	}
	wg.Wait()
	close(parts)
	return total.Load()
}

func partPool() *sync.Pool {
	return &sync.Pool{New: func() any { return make([]byte, 0, partSize+64<<10) }}
}

// partSink is where a reference puts the parts: put takes one (last: no
// other part waits behind it) and returns it to free once done with it,
// flush writes what put held back, sync makes everything durable.
type partSink interface {
	put(p []byte, last bool, free *sync.Pool) error
	flush() error
	sync() error
}

// writeParts feeds the parts of produceParts to sink from one goroutine,
// syncing every 500 ms like the store, until the last byte is durable.
func writeParts(o options, clip *sim.Clip, video time.Duration, sink partSink) (writeResult, error) {
	parts := make(chan []byte, 64)
	free := partPool()
	var werr error
	keep := func(err error) {
		if err != nil && werr == nil {
			werr = err
		}
	}
	done := make(chan struct{})
	start, cpu0 := time.Now(), cpuTime()
	go func() {
		defer close(done)
		last := time.Now()
		for p := range parts {
			keep(sink.put(p, len(parts) == 0, free))
			if time.Since(last) >= 500*time.Millisecond {
				keep(sink.sync())
				last = time.Now()
			}
		}
		keep(sink.flush())
		keep(sink.sync())
	}()
	total := produceParts(o, clip, video, parts, free)
	<-done
	return writeResult{bytes: total, elapsed: time.Since(start), cpu: cpuTime() - cpu0}, werr
}

// fileSink appends parts to one file with write(2).
type fileSink struct{ f *os.File }

func (s fileSink) put(p []byte, _ bool, free *sync.Pool) error {
	_, err := s.f.Write(p)
	free.Put(p[:0])
	return err
}

func (s fileSink) flush() error { return nil }
func (s fileSink) sync() error  { return s.f.Sync() }

// plainWrite appends the parts to one plain file.
func plainWrite(o options, clip *sim.Clip, video time.Duration) (writeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "plain-")
	if err != nil {
		return writeResult{}, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "video.bin"))
	if err != nil {
		return writeResult{}, err
	}
	defer f.Close()
	return writeParts(o, clip, video, fileSink{f})
}

// badgerSink commits parts as values under sequence keys, 16 per
// transaction (fewer when no more wait).
type badgerSink struct {
	db    *badger.DB
	seq   uint64
	batch [][]byte
	free  *sync.Pool
}

func (s *badgerSink) put(p []byte, last bool, free *sync.Pool) error {
	s.free = free
	s.batch = append(s.batch, p)
	if len(s.batch) < 16 && !last {
		return nil
	}
	return s.flush()
}

func (s *badgerSink) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	var err error
	for _, p := range s.batch {
		s.seq++
		if err == nil {
			err = txn.SetEntry(badger.NewEntry(binary.BigEndian.AppendUint64(nil, s.seq), p))
		}
	}
	if err == nil {
		err = txn.Commit()
	}
	for _, p := range s.batch {
		s.free.Put(p[:0])
	}
	s.batch = s.batch[:0]
	return err
}

func (s *badgerSink) sync() error { return s.db.Sync() }

// badgerWrite commits the parts straight into a Badger opened with the
// store's options: Badger's own write path with nothing of the store
// around it, the ceiling for any store that keeps its video in Badger.
func badgerWrite(o options, clip *sim.Clip, video time.Duration) (writeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "badger-")
	if err != nil {
		return writeResult{}, err
	}
	defer os.RemoveAll(dir)
	// The v1 store's options: video values in the value log.
	opts := badger.DefaultOptions(dir).WithSyncWrites(false).WithValueThreshold(1 << 10).
		WithMemTableSize(8 << 20).WithNumMemtables(2).WithValueLogFileSize(64 << 20).
		WithMetricsEnabled(false).WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		return writeResult{}, err
	}
	defer db.Close()
	return writeParts(o, clip, video, &badgerSink{db: db})
}

// realtimeResult is the store recording cameras at their real rate.
type realtimeResult struct {
	cams       int
	mbitPerCam float64
	wall       time.Duration
	cpu        time.Duration
	mem        memory
	afterFill  memory
	heap       int64 // Go heap in use, max
	live       int64 // Go heap after a GC at the end
	drops      float64
	evicted    float64
	keptMiB    float64
}

// realtime records cams cameras at their frame rate into a store whose
// retention is busy (budgets already full, 10 s buckets), and measures
// the process's CPU and resident memory.
func realtime(o options, clip *sim.Clip) (realtimeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "realtime-")
	if err != nil {
		return realtimeResult{}, err
	}
	defer os.RemoveAll(dir)
	reg := newRegistry()
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, Registerer: reg, BucketDuration: 10 * time.Second,
		Default: clips.CameraConfig{MaxBytes: 24 << 20}})
	if err != nil {
		return realtimeResult{}, err
	}
	defer s.Close()
	recs := make([]*clips.Recorder, o.cams)
	for c := range recs {
		if recs[c], err = s.Recorder(fmt.Sprintf("cam%02d", c)); err != nil {
			return realtimeResult{}, err
		}
	}
	// Fill the budgets first (an hour ago, as fast as it goes), so that
	// eviction runs all along the measurement.
	fillBudgets(recs, clip, time.Now().UTC())
	if err := s.Flush(context.Background()); err != nil {
		return realtimeResult{}, err
	}
	// The catch-up above is not the steady state: give its buffers back.
	debug.FreeOSMemory()
	res := realtimeResult{afterFill: readMemory()}

	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.realtime)
	defer cancel()
	var wg sync.WaitGroup
	recordLive(ctx, &wg, recs, clip)
	time.Sleep(o.warmup)
	dropped0, evicted0 := reg.sum("vigil_clips_dropped_total"), reg.sum("vigil_clips_evicted_bytes_total")
	res.measure(o)
	res.drops = reg.sum("vigil_clips_dropped_total") - dropped0
	res.evicted = reg.sum("vigil_clips_evicted_bytes_total") - evicted0
	cancel()
	wg.Wait()
	res.mbitPerCam = float64(clipBytes(clip)) * 8 / 1e6 / clip.Duration.Seconds()
	res.keptMiB = mib(s.Stats().Bytes)
	return res, nil
}

// fillBudgets records a minute of video per camera an hour before now,
// as fast as the store takes it.
func fillBudgets(recs []*clips.Recorder, clip *sim.Clip, now time.Time) {
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &feed{clip: clip, base: now.Add(-time.Hour)}
			for f.pts() < time.Minute {
				for r.Pending() > 2<<20 {
					time.Sleep(time.Millisecond)
				}
				r.Write(f.next())
			}
		}()
	}
	wg.Wait()
}

// recordLive records every camera at its frame rate from now until ctx
// ends; wg counts the writers.
func recordLive(ctx context.Context, wg *sync.WaitGroup, recs []*clips.Recorder, clip *sim.Clip) {
	base := time.Now()
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &feed{clip: clip, base: base.UTC()}
			for ctx.Err() == nil {
				if d := time.Until(base.Add(f.pts())); d > 0 {
					time.Sleep(d)
				}
				r.Write(f.next())
			}
		}()
	}
}

// measure samples the process's memory every 250 ms for o.realtime and
// its CPU over that time, then the live heap after a GC (and, as o says,
// the largest mappings and a heap profile).
func (res *realtimeResult) measure(o options) {
	start, cpu0 := time.Now(), cpuTime()
	var ms runtime.MemStats
	for time.Since(start) < o.realtime {
		time.Sleep(250 * time.Millisecond)
		res.mem = res.mem.max(readMemory())
		runtime.ReadMemStats(&ms)
		res.heap = max(res.heap, int64(ms.HeapInuse))
	}
	res.cams, res.wall, res.cpu = o.cams, time.Since(start), cpuTime()-cpu0
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.live = int64(ms.HeapAlloc)
	if o.verbose {
		topMappings(os.Stderr, 8)
	}
	if o.memProfile != "" {
		if f, err := os.Create(o.memProfile); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}
