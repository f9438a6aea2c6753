package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"golang.org/x/sys/unix"
)

// writeResult is one run of writing the same video as fast as it goes.
type writeResult struct {
	bytes    int64
	elapsed  time.Duration
	cpu      time.Duration
	syncs    uint64        // the store's fdatasync rounds (its sync histogram)
	syncTime time.Duration // and their time
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
	reg := newRegistry()
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, Registerer: reg})
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
	n, sum := reg.hist("vigil_clips_sync_seconds")
	res.syncs, res.syncTime = n, time.Duration(sum*float64(time.Second))
	if st := s.Stats(); st.Bytes < res.bytes {
		return res, fmt.Errorf("store holds %d bytes of %d written", st.Bytes, res.bytes)
	}
	return res, nil
}

// partSize is the size the store closes a part at (edge/clips
// partTarget), and chunkDur where it starts a new segment (the default
// ChunkDuration): the units the plain reference writes.
const (
	partSize = 1 << 20
	chunkDur = time.Minute
)

// camPart is one part of one camera's video.
type camPart struct {
	cam int
	buf []byte
}

// produceParts cuts the same video as the store records into the same
// parts (each access unit as 4-byte length + NAL units; a part ends at
// 1 MiB or where the store starts a new segment), one producer per
// camera, and sends them on parts, which it closes. It returns the video
// bytes produced.
func produceParts(o options, clip *sim.Clip, video time.Duration, parts chan<- camPart, free *sync.Pool) int64 {
	var total atomic.Int64
	var wg sync.WaitGroup
	for c := range o.cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd := &feed{clip: clip, base: epoch}
			buf := free.Get().([]byte)
			var n int64
			var chunkStart time.Duration
			for fd.pts() < video {
				au := fd.next()
				newChunk := au.Key && au.PTS-chunkStart >= chunkDur
				if newChunk {
					chunkStart = au.PTS
				}
				if (newChunk || len(buf) >= partSize) && len(buf) > 0 {
					parts <- camPart{c, buf}
					buf = free.Get().([]byte)
				}
				buf = appendAVCC(buf, au.NALUs)
				n += int64(stored(au))
			}
			parts <- camPart{c, buf}
			total.Add(n)
		}()
	}
	wg.Wait()
	close(parts)
	return total.Load()
}

func appendAVCC(buf []byte, nalus [][]byte) []byte {
	for _, nalu := range nalus {
		buf = append(buf, byte(len(nalu)>>24), byte(len(nalu)>>16), byte(len(nalu)>>8), byte(len(nalu)))
		buf = append(buf, nalu...)
	}
	return buf
}

func partPool() *sync.Pool {
	return &sync.Pool{New: func() any { return make([]byte, 0, partSize+64<<10) }}
}

// plainFiles is the reference: one file per camera, each part appended
// with write(2), and the files written since the last sync fdatasynced
// once per flush interval: the store's durability, nothing else.
type plainFiles struct {
	files []*os.File
	dirty map[int]bool
	// drop: after each fdatasync, drop the file's pages from the page
	// cache (posix_fadvise DONTNEED), as the store does with its segments.
	drop bool
}

func newPlainFiles(dir string, cams int, drop bool) (*plainFiles, error) {
	p := &plainFiles{dirty: map[int]bool{}, drop: drop}
	for c := range cams {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cam%02d.bin", c)))
		if err != nil {
			p.close()
			return nil, err
		}
		p.files = append(p.files, f)
	}
	return p, nil
}

func (p *plainFiles) write(cam int, b []byte) error {
	_, err := p.files[cam].Write(b)
	p.dirty[cam] = true
	return err
}

func (p *plainFiles) sync() error {
	var first error
	for c := range p.dirty {
		if err := fdatasync(p.files[c]); err != nil && first == nil {
			first = err
		}
		if p.drop {
			unix.Fadvise(int(p.files[c].Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		delete(p.dirty, c)
	}
	return first
}

func (p *plainFiles) close() {
	for _, f := range p.files {
		f.Close()
	}
}

// plainWrite appends the parts to one plain file per camera from one
// goroutine, fdatasyncing the touched files every 500 ms (and with drop,
// dropping their pages from the page cache), until the last byte is
// durable.
func plainWrite(o options, clip *sim.Clip, video time.Duration, drop bool) (writeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "plain-")
	if err != nil {
		return writeResult{}, err
	}
	defer os.RemoveAll(dir)
	pf, err := newPlainFiles(dir, o.cams, drop)
	if err != nil {
		return writeResult{}, err
	}
	defer pf.close()
	parts := make(chan camPart, 64)
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
			keep(pf.write(p.cam, p.buf))
			free.Put(p.buf[:0])
			if time.Since(last) >= flushInterval {
				keep(pf.sync())
				last = time.Now()
			}
		}
		keep(pf.sync())
	}()
	total := produceParts(o, clip, video, parts, free)
	<-done
	return writeResult{bytes: total, elapsed: time.Since(start), cpu: cpuTime() - cpu0}, werr
}

// flushInterval is the store's default FlushInterval.
const flushInterval = 500 * time.Millisecond

// plainLive is the plain reference recording at frame rate: each
// camera's access units queue in memory; every flush interval one
// goroutine appends each camera's queue to its file with write(2) and
// fdatasyncs the files it wrote, as the store's writer does.
type plainLive struct {
	pf    *plainFiles
	mu    []sync.Mutex
	queue [][]byte
	bytes atomic.Int64
}

func (p *plainLive) add(cam int, au streams.AccessUnit) {
	p.mu[cam].Lock()
	p.queue[cam] = appendAVCC(p.queue[cam], au.NALUs)
	p.mu[cam].Unlock()
	p.bytes.Add(int64(stored(au)))
}

func (p *plainLive) flush(spare [][]byte) error {
	for c := range p.queue {
		p.mu[c].Lock()
		b := p.queue[c]
		p.queue[c] = spare[c][:0]
		p.mu[c].Unlock()
		spare[c] = b
		if len(b) > 0 {
			if err := p.pf.write(c, b); err != nil {
				return err
			}
		}
	}
	return p.pf.sync()
}

// realtimePlain records o.cams cameras at frame rate into plain files
// (plainLive) for o.warmup + o.realtime, and measures the process's CPU
// over the last o.realtime.
func realtimePlain(o options, clip *sim.Clip) (writeResult, error) {
	dir, err := os.MkdirTemp(o.dir, "plainlive-")
	if err != nil {
		return writeResult{}, err
	}
	defer os.RemoveAll(dir)
	pf, err := newPlainFiles(dir, o.cams, false)
	if err != nil {
		return writeResult{}, err
	}
	defer pf.close()
	p := &plainLive{pf: pf, mu: make([]sync.Mutex, o.cams), queue: make([][]byte, o.cams)}
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.realtime)
	defer cancel()
	var wg sync.WaitGroup
	base := time.Now()
	for c := range o.cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &feed{clip: clip, base: base.UTC()}
			for ctx.Err() == nil {
				if d := time.Until(base.Add(f.pts())); d > 0 {
					time.Sleep(d)
				}
				p.add(c, f.next())
			}
		}()
	}
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(flushInterval)
		defer t.Stop()
		spare := make([][]byte, o.cams)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := p.flush(spare); err != nil && werr == nil {
					werr = err
				}
			}
		}
	}()
	time.Sleep(o.warmup)
	start, cpu0, b0 := time.Now(), cpuTime(), p.bytes.Load()
	time.Sleep(o.realtime)
	res := writeResult{bytes: p.bytes.Load() - b0, elapsed: time.Since(start), cpu: cpuTime() - cpu0}
	cancel()
	wg.Wait()
	return res, werr
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
	bytes      int64 // video recorded while measured
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
	// 1-minute buckets (one segment each) and 32 MiB a camera: the two
	// minutes filled below overflow it, and recording evicts again within
	// seconds of the measurement's start.
	s, err := clips.Open(clips.Config{Dir: dir, Log: o.log, Registerer: reg, BucketDuration: time.Minute,
		Default: clips.CameraConfig{MaxBytes: 32 << 20}})
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
	var written atomic.Int64
	recordLive(ctx, &wg, recs, clip, &written)
	time.Sleep(o.warmup)
	dropped0, evicted0 := reg.sum("vigil_clips_dropped_total"), reg.sum("vigil_clips_evicted_bytes_total")
	b0 := written.Load()
	res.measure(o)
	res.bytes = written.Load() - b0
	res.drops = reg.sum("vigil_clips_dropped_total") - dropped0
	res.evicted = reg.sum("vigil_clips_evicted_bytes_total") - evicted0
	cancel()
	wg.Wait()
	res.mbitPerCam = float64(clipBytes(clip)) * 8 / 1e6 / clip.Duration.Seconds()
	res.keptMiB = mib(s.Stats().Bytes)
	return res, nil
}

// fillBudgets records two minutes of video per camera an hour before now,
// as fast as the store takes it.
func fillBudgets(recs []*clips.Recorder, clip *sim.Clip, now time.Time) {
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &feed{clip: clip, base: now.Add(-time.Hour)}
			for f.pts() < 2*time.Minute {
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
func recordLive(ctx context.Context, wg *sync.WaitGroup, recs []*clips.Recorder, clip *sim.Clip, written *atomic.Int64) {
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
				au := f.next()
				r.Write(au)
				written.Add(int64(stored(au)))
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
