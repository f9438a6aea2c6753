package clips

import (
	"bytes"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
)

// Why access units are not recorded (label of vigil_clips_dropped_total).
const (
	dropNoKeyframe = "no_keyframe" // waiting for a keyframe to start a chunk
	dropQueueFull  = "queue_full"  // the writer is behind: the camera's queue is full
	dropDiskFull   = "disk_full"   // no space above the floor and nothing left to evict
	dropWriteError = "write_error" // Badger refused the commit
)

const (
	// partTarget closes a part early so that high bitrates do not wait
	// for the flush tick with a large buffer.
	partTarget = 1 << 20
	// A PTS step beyond these, or a wall clock that strays from the PTS
	// by more than maxDrift, is a new session: the chunk ends there.
	maxGap     = 5 * time.Second
	maxReorder = 5 * time.Second
	maxDrift   = 2 * time.Second
)

// Recorder records one camera. Write is called from the camera's RTSP
// goroutine; it copies the access unit into the camera's queue and
// returns, and the store's writer goroutine commits the queue.
type Recorder struct {
	s    *Store
	name string
	id   uint32
	cfg  CameraConfig
	m    camMetrics

	// Recording state, owned by mu.
	mu         sync.Mutex
	cur        *chunk // nil while waiting for a keyframe
	open       *part  // part being filled; belongs to cur
	ready      []*part
	pending    int // payload bytes not yet committed or dropped
	lastPTS    time.Duration
	lastStart  int64 // newest chunk start, keeps chunk keys unique
	lastParams [][]byte
	waitReason string // why AUs are dropped until the next keyframe
	closed     bool

	bucketIndex // owned by Store.mu
}

// bucketIndex is what a camera has stored: its buckets' summaries and
// byte counts. Store.mu guards it (the writer also reads it unlocked, as
// its only writer), unlike the recording state, which Recorder.mu guards.
type bucketIndex struct {
	buckets []bucket // sorted by id
	bytes   int64
	pinned  int64
}

type bucket struct {
	id  uint64
	sum bucketSum
}

// chunk is a chunk being recorded.
type chunk struct {
	cam      *Recorder
	bucket   uint64
	start    int64 // Unix ns of its first keyframe
	startPTS time.Duration
	codec    av.Codec
	source   string
	params   [][]byte
	nextSeq  uint32 // under cam.mu

	// Owned by the writer goroutine: the state last committed.
	meta    chunkMeta
	written bool
	// broken is set by the writer when a part of the chunk was lost: no
	// later part may be stored after the hole, so the chunk ends.
	broken atomic.Pointer[string]
}

// camMetrics are a camera's counters, resolved once.
type camMetrics struct {
	in      prometheus.Counter
	written prometheus.Counter
	dropped map[string]prometheus.Counter
}

// Name is the camera's ID.
func (r *Recorder) Name() string { return r.name }

// Write queues one access unit for recording. It never waits for the
// disk: when the queue is full (MaxPendingBytes) the unit is dropped and
// counted, and recording resumes at the next keyframe. The NAL units are
// copied; the caller keeps its memory.
func (r *Recorder) Write(au streams.AccessUnit) {
	size := avccSize(au.NALUs)
	if size == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.m.in.Inc()
	if r.cur != nil {
		if reason := r.cur.broken.Load(); reason != nil {
			r.endChunk(*reason)
		} else if r.discontinuous(au) {
			r.endChunk(dropNoKeyframe)
		}
	}
	var params [][]byte
	if au.Key {
		params = paramSets(au.Codec, au.NALUs)
		if r.cur != nil && r.splitAt(au, params) {
			r.endChunk(dropNoKeyframe)
		}
	}
	if r.cur == nil {
		if !au.Key {
			r.m.dropped[r.waitReason].Inc()
			return
		}
		r.startChunk(au, params)
	}
	if r.pending+size > r.s.cfg.MaxPendingBytes {
		r.endChunk(dropQueueFull)
		r.m.dropped[dropQueueFull].Inc()
		return
	}
	r.appendAU(au, size)
}

// Pending returns the bytes queued and not yet committed.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

func (r *Recorder) discontinuous(au streams.AccessUnit) bool {
	d := au.PTS - r.lastPTS
	if d > maxGap || d < -maxReorder || au.Codec != r.cur.codec {
		return true
	}
	predicted := r.cur.start + int64(au.PTS-r.cur.startPTS)
	drift := au.Time.UnixNano() - predicted
	return drift > int64(maxDrift) || drift < -int64(maxDrift)
}

// splitAt reports whether a keyframe starts a new chunk.
func (r *Recorder) splitAt(au streams.AccessUnit, params [][]byte) bool {
	return au.PTS-r.cur.startPTS >= r.s.cfg.ChunkDuration ||
		au.TimeSource != r.cur.source ||
		(len(params) > 0 && !equalParams(params, r.cur.params))
}

func (r *Recorder) startChunk(au streams.AccessUnit, params [][]byte) {
	if len(params) == 0 {
		params = r.lastParams // sent once, out of band: keep using them
	}
	r.lastParams = params
	start := au.Time.UnixNano()
	if start <= r.lastStart && r.lastStart-start < int64(time.Second) {
		start = r.lastStart + 1 // jitter must not reuse a chunk's key
	}
	r.lastStart = start
	r.cur = &chunk{
		cam: r, bucket: bucketOf(time.Unix(0, start), r.s.bucketDur), start: start,
		startPTS: au.PTS, codec: au.Codec, source: au.TimeSource, params: params,
	}
	r.lastPTS = au.PTS
	r.waitReason = dropNoKeyframe
}

// endChunk hands the open part on and waits for a keyframe; units
// dropped meanwhile are counted under reason.
func (r *Recorder) endChunk(reason string) {
	r.closeOpen()
	r.cur = nil
	r.waitReason = reason
}

func (r *Recorder) appendAU(au streams.AccessUnit, size int) {
	if r.open == nil {
		r.open = r.s.parts.get(r.cur, r.cur.nextSeq)
		r.cur.nextSeq++
	}
	// Offsets are kept at the 90 kHz of the segments' MP4 clock, so the
	// index rebuilt from a segment is the index written with it.
	r.open.appendAU(au.NALUs, tickNS(segTicks(int64(au.PTS-r.cur.startPTS))), au.Key, size)
	r.pending += size
	r.lastPTS = au.PTS
	if r.open.payloadBytes() >= partTarget {
		r.closeOpen()
		r.s.pokeWriter()
	}
}

func (r *Recorder) closeOpen() {
	if r.open != nil && len(r.open.aus) > 0 {
		r.ready = append(r.ready, r.open)
	}
	r.open = nil
}

// take hands the writer everything queued, in order.
func (r *Recorder) take() []*part {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeOpen()
	parts := r.ready
	r.ready = nil
	return parts
}

// done releases the queue space of committed or dropped parts.
func (r *Recorder) done(bytes int) {
	r.mu.Lock()
	r.pending -= bytes
	r.mu.Unlock()
}

// protectedBucket is the oldest bucket the camera may still write to:
// that of its open chunk or of a queued part. Retention never drops it.
func (r *Recorder) protectedBucket() (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b uint64
	ok := false
	consider := func(c *chunk) {
		if c != nil && (!ok || c.bucket < b) {
			b, ok = c.bucket, true
		}
	}
	consider(r.cur)
	if r.open != nil {
		consider(r.open.chunk)
	}
	for _, p := range r.ready {
		consider(p.chunk)
	}
	return b, ok
}

func (r *Recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// paramSets copies the parameter sets found in an access unit.
func paramSets(c av.Codec, nalus [][]byte) [][]byte {
	var out [][]byte
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		var is bool
		switch c {
		case av.H264:
			t := h264.NALUType(n[0] & 0x1f)
			is = t == h264.NALUTypeSPS || t == h264.NALUTypePPS
		case av.H265:
			t := h265.NALUType((n[0] >> 1) & 0x3f)
			is = t == h265.NALUType_VPS_NUT || t == h265.NALUType_SPS_NUT || t == h265.NALUType_PPS_NUT
		}
		// A stream may repeat a parameter set within one access unit
		// (GStreamer's h265parse inserts them before a keyframe that
		// already carries them): the same sets, not a change.
		if is && !slices.ContainsFunc(out, func(o []byte) bool { return bytes.Equal(o, n) }) {
			out = append(out, bytes.Clone(n))
		}
	}
	return out
}

func equalParams(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// bucketSum returns a bucket's summary, zero if new. Writer or Store.mu.
func (r *bucketIndex) bucketSum(id uint64) bucketSum {
	i := sort.Search(len(r.buckets), func(i int) bool { return r.buckets[i].id >= id })
	if i < len(r.buckets) && r.buckets[i].id == id {
		return r.buckets[i].sum
	}
	return bucketSum{}
}

// setBucket inserts or replaces a bucket's summary. Caller holds Store.mu.
func (r *bucketIndex) setBucket(id uint64, sum bucketSum) {
	i := sort.Search(len(r.buckets), func(i int) bool { return r.buckets[i].id >= id })
	if i < len(r.buckets) && r.buckets[i].id == id {
		r.buckets[i].sum = sum
		return
	}
	r.buckets = append(r.buckets, bucket{})
	copy(r.buckets[i+1:], r.buckets[i:])
	r.buckets[i] = bucket{id: id, sum: sum}
}

// removeBucket forgets a dropped bucket. Caller holds Store.mu.
func (r *bucketIndex) removeBucket(id uint64) {
	i := sort.Search(len(r.buckets), func(i int) bool { return r.buckets[i].id >= id })
	if i < len(r.buckets) && r.buckets[i].id == id {
		r.buckets = append(r.buckets[:i], r.buckets[i+1:]...)
	}
}
