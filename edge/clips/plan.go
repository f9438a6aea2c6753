package clips

import (
	"fmt"
	"math"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// sample locates one stored access unit.
type sample struct {
	part int    // index into rangePlan.parts
	off  uint32 // payload offset within the part
	size uint32
	t    int64 // Unix ns
	key  bool
}

// rangePlan is the access units of a range, read from the part tables
// only: no payload is touched until they are written out.
type rangePlan struct {
	codec   av.Codec
	params  [][]byte
	parts   []partLoc
	samples []sample
	end     int64 // end of the last sample: the next unit's time, or its chunk's end
	bytes   int64
	// rest is the start of the next chunk in the range when that chunk
	// has another codec or other parameter sets: the plan stops there,
	// and the rest of the range is planned from rest. Zero if none.
	rest int64
}

// partLoc is where a part's payloads lie in its segment.
type partLoc struct {
	path string
	at   int64
	size int64
}

// planRange collects the access units of a camera from the keyframe at
// or before lo (or the first keyframe after it, when lo falls in a gap)
// up to, not including, hi. Only units with the first chunk's codec and
// parameter sets are taken: an MP4 track has one sample description. At
// a chunk with others (the camera changed codec or picture size) the
// plan stops and rest says where.
//
// path names the segment of the camera's chunk that starts at a time.
func planRange(txn *badger.Txn, cam uint32, path func(int64) string, bucketDur time.Duration, lo, hi int64) (*rangePlan, error) {
	first, ok, err := chunkBefore(txn, cam, bucketDur, lo)
	if err != nil {
		return nil, err
	}
	seek := lo
	var kf keyframe
	if ok && first.end() > lo {
		seek = first.start
		kf = first.meta.keyframeAt(time.Duration(lo - first.start))
	}
	pl := &planner{txn: txn, cam: cam, path: path, hi: hi, p: &rangePlan{}, next: math.MaxInt64}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: camPrefix(tagMeta, cam)})
	defer it.Close()
	for it.Seek(chunkKey(tagMeta, cam, bucketOf(time.Unix(0, seek), bucketDur), seek)); it.Valid() && !pl.done; it.Next() {
		c, err := readChunk(it.Item())
		if err != nil {
			return nil, err
		}
		if !pl.takes(c) {
			break
		}
		from := keyframe{}
		if c.start == first.start && ok {
			from = kf
		}
		for seq := from.Part; seq < c.meta.Parts && !pl.done; seq++ {
			if err := pl.addPart(c, seq, from); err != nil {
				return nil, err
			}
		}
	}
	if err := pl.p.finish(hi, pl.next, pl.chunkEnd); err != nil {
		return nil, err
	}
	if err := pl.p.checkFiles(); err != nil {
		return nil, err
	}
	return pl.p, nil
}

// planner is one planRange's progress through the chunks.
type planner struct {
	txn   *badger.Txn
	cam   uint32
	path  func(int64) string
	hi    int64
	p     *rangePlan
	table []auEntry // scratch for part tables
	// next is the first unit at or after hi (MaxInt64 until seen);
	// chunkEnd the end of the last chunk a unit was taken from.
	next, chunkEnd int64
	done           bool // read far enough past hi
}

// takes reports whether the plan goes on into chunk c: not when c starts
// at or after hi, nor when its codec or parameter sets differ from the
// plan's (then rest says where the next plan starts).
func (pl *planner) takes(c chunkRef) bool {
	p := pl.p
	if c.start >= pl.hi {
		pl.next = min(pl.next, c.start)
		return false
	}
	if len(p.samples) == 0 {
		p.codec, p.params = c.meta.Codec, c.meta.Params
	} else if c.meta.Codec != p.codec || !equalParams(c.meta.Params, p.params) {
		p.rest = c.start
		pl.next = min(pl.next, c.start)
		return false
	}
	return true
}

// addPart takes the units of part seq of chunk c, from the keyframe from
// when seq is its part, until one past hi ends the plan.
func (pl *planner) addPart(c chunkRef, seq uint32, from keyframe) error {
	p := pl.p
	item, err := pl.txn.Get(c.partKey(pl.cam, seq))
	if err != nil {
		return fmt.Errorf("clips: part %d of chunk %v: %w", seq, time.Unix(0, c.start).UTC(), err)
	}
	var at int64
	err = item.Value(func(v []byte) (err error) {
		at, pl.table, err = parseRecord(v, pl.table[:0])
		return err
	})
	if err != nil {
		return err
	}
	loc := partLoc{path: pl.path(c.start), at: at}
	for _, a := range pl.table {
		loc.size += int64(a.Size)
	}
	partIdx := len(p.parts)
	p.parts = append(p.parts, loc)
	var off uint32
	for i, a := range pl.table {
		t := c.start + int64(a.Offset)
		if seq == from.Part && i < int(from.Index) {
			off += a.Size
			continue
		}
		if t >= pl.hi {
			pl.next = min(pl.next, t)
			// With B-frames, units shown before hi may follow one
			// shown after it in decode order: read on to the next
			// keyframe or a reorder window past hi, then trim.
			if a.Key || t >= pl.hi+int64(reorderWindow) {
				pl.done = true
				break
			}
		}
		p.samples = append(p.samples, sample{part: partIdx, off: off, size: a.Size, t: t, key: a.Key})
		pl.chunkEnd = c.end()
		off += a.Size
	}
	return nil
}

// finish trims the units shown at or after hi and sets the plan's size
// and end; next is the first unit at or after hi, chunkEnd the end of the
// last chunk read.
func (p *rangePlan) finish(hi, next, chunkEnd int64) error {
	// Drop the tail shown at or after hi; what stays before it in decode
	// order stays, being referenced.
	for n := len(p.samples); n > 0 && p.samples[n-1].t >= hi; n-- {
		p.samples = p.samples[:n-1]
	}
	if len(p.samples) == 0 {
		return ErrNoVideo
	}
	var last int64
	for _, s := range p.samples {
		p.bytes += int64(s.size)
		last = max(last, s.t)
	}
	// The range ends where the next frame starts, or with its chunk when
	// the next frame follows a gap (as Timeline draws one): the last
	// frame does not last across a camera's outage.
	p.end = chunkEnd
	if next < math.MaxInt64 && next > last && next-chunkEnd <= int64(gapTolerance) {
		p.end = next
	}
	if p.end <= last {
		p.end = last + int64(time.Millisecond)
	}
	return nil
}

// checkFiles makes sure every segment the plan reads holds the bytes the
// index says it does, before anything is written: a file cut or deleted
// by hand fails the export with ErrDamaged instead of mid-stream.
func (p *rangePlan) checkFiles() error {
	need := map[string]int64{}
	for _, loc := range p.parts {
		need[loc.path] = max(need[loc.path], loc.at+loc.size)
	}
	for path, n := range need {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		if fi.Size() < n {
			return fmt.Errorf("%w: %s holds %d bytes, the index %d", ErrDamaged, path, fi.Size(), n)
		}
	}
	return nil
}

// reorderWindow bounds how far past a range's end planRange reads for
// B-frames that are shown before it.
const reorderWindow = time.Second

// partCache reads payloads part by part from the segments: one pread
// per part, one part in memory at a time. Close it.
type partCache struct {
	f    *os.File
	path string
	loc  partLoc
	val  []byte
}

func (pc *partCache) payload(p *rangePlan, s sample) ([]byte, error) {
	loc := p.parts[s.part]
	if loc != pc.loc || pc.val == nil {
		if err := pc.read(loc); err != nil {
			return nil, err
		}
	}
	end := int64(s.off) + int64(s.size)
	if end > int64(len(pc.val)) {
		return nil, errBadPart
	}
	return pc.val[s.off:end], nil
}

// read loads a part's payloads.
func (pc *partCache) read(loc partLoc) error {
	if loc.path != pc.path {
		pc.close()
		f, err := os.Open(loc.path)
		if err != nil {
			return fmt.Errorf("clips: reading a segment: %w", err)
		}
		pc.f, pc.path = f, loc.path
	}
	if int64(cap(pc.val)) < loc.size {
		pc.val = make([]byte, loc.size)
	}
	pc.val = pc.val[:loc.size]
	if _, err := pc.f.ReadAt(pc.val, loc.at); err != nil {
		pc.val = nil
		return fmt.Errorf("clips: reading %s at %d: %w", loc.path, loc.at, err)
	}
	pc.loc = loc
	return nil
}

// close closes the segment being read.
func (pc *partCache) close() {
	if pc.f != nil {
		pc.f.Close()
		pc.f, pc.path = nil, ""
	}
}
