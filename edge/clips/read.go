package clips

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// playback is the store's read side: timelines, exports, thumbnails and
// checks, each reading a Badger snapshot. It counts the reads in flight,
// which Close cancels (closing) and waits for before closing Badger
// under them.
type playback struct {
	s       *Store
	readers sync.WaitGroup
	closing chan struct{}
}

func newPlayback(s *Store) *playback { return &playback{s: s, closing: make(chan struct{})} }

// acquire registers a read; release it with readers.Done.
func (rd *playback) acquire() error {
	rd.s.mu.RLock()
	defer rd.s.mu.RUnlock()
	if rd.s.closed {
		return ErrClosed
	}
	rd.readers.Add(1)
	return nil
}

// stop cancels the reads in flight; Close calls it once.
func (rd *playback) stop() { close(rd.closing) }

// wait waits for the reads in flight to end.
func (rd *playback) wait() { rd.readers.Wait() }

// chunkRef is a stored chunk.
type chunkRef struct {
	bucket uint64
	start  int64 // Unix ns
	meta   chunkMeta
}

func (c chunkRef) end() int64 { return c.meta.end(c.start) }

func (c chunkRef) partKey(cam uint32, seq uint32) []byte {
	return partKey(cam, c.bucket, c.start, seq)
}

func readChunk(item *badger.Item) (chunkRef, error) {
	_, b, start, ok := parseChunkKey(item.Key())
	if !ok {
		return chunkRef{}, fmt.Errorf("clips: bad chunk key %x", item.Key())
	}
	c := chunkRef{bucket: b, start: start}
	err := item.Value(func(v []byte) (err error) {
		c.meta, err = unmarshalMeta(v)
		return err
	})
	return c, err
}

// forEachChunk visits the chunks of one bucket in time order until fn
// returns false.
func forEachChunk(txn *badger.Txn, cam uint32, b uint64, fn func(chunkRef) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: bucketKey(tagMeta, cam, b)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		c, err := readChunk(it.Item())
		if err != nil {
			return err
		}
		if more, err := fn(c); err != nil || !more {
			return err
		}
	}
	return nil
}

// chunkBefore returns the last chunk that starts at or before t.
func chunkBefore(txn *badger.Txn, cam uint32, bucketDur time.Duration, t int64) (chunkRef, bool, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: camPrefix(tagMeta, cam), Reverse: true})
	defer it.Close()
	it.Seek(chunkKey(tagMeta, cam, bucketOf(time.Unix(0, t), bucketDur), t))
	if !it.Valid() {
		return chunkRef{}, false, nil
	}
	c, err := readChunk(it.Item())
	return c, err == nil, err
}

// forEachChunkIn visits, in time order, the chunks that overlap [from,
// to]: the one running at from, then every one starting up to to.
func forEachChunkIn(txn *badger.Txn, cam uint32, bucketDur time.Duration, from, to int64, fn func(chunkRef) (bool, error)) error {
	seek := from
	if c, ok, err := chunkBefore(txn, cam, bucketDur, from); err != nil {
		return err
	} else if ok && c.end() > from {
		seek = c.start
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: camPrefix(tagMeta, cam)})
	defer it.Close()
	for it.Seek(chunkKey(tagMeta, cam, bucketOf(time.Unix(0, seek), bucketDur), seek)); it.Valid(); it.Next() {
		c, err := readChunk(it.Item())
		if err != nil {
			return err
		}
		if c.start > to {
			return nil
		}
		if more, err := fn(c); err != nil || !more {
			return err
		}
	}
	return nil
}

// Span is a stretch of continuous recording.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bytes int64     `json:"bytes"`
}

// Timeline is what a camera has recorded in a window: spans of video and
// the gaps between them.
type Timeline struct {
	Camera string `json:"camera"`
	Spans  []Span `json:"spans"`
	Gaps   []Span `json:"gaps"`
}

// gapTolerance: chunks closer than this are one span; a lost keyframe
// interval or a reconnect shows as a gap.
const gapTolerance = time.Second

// Timeline lists the spans and gaps of a camera's video overlapping
// [from, to]; zero times mean unbounded.
func (rd *playback) Timeline(camera string, from, to time.Time) (Timeline, error) {
	s := rd.s
	r, err := s.recorder(camera)
	if err != nil {
		return Timeline{}, err
	}
	if err := rd.acquire(); err != nil {
		return Timeline{}, err
	}
	defer rd.readers.Done()
	lo, hi := int64(0), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	tl := Timeline{Camera: camera, Spans: []Span{}, Gaps: []Span{}}
	err = s.db.View(func(txn *badger.Txn) error {
		return forEachChunkIn(txn, r.id, s.bucketDur, lo, hi, func(c chunkRef) (bool, error) {
			start, end := max(c.start, lo), min(c.end(), hi)
			if end < start {
				return true, nil
			}
			if n := len(tl.Spans); n > 0 && start-tl.Spans[n-1].End.UnixNano() <= int64(gapTolerance) {
				last := &tl.Spans[n-1]
				if e := time.Unix(0, end).UTC(); e.After(last.End) {
					last.End = e
				}
				last.Bytes += c.meta.Bytes
				return true, nil
			}
			tl.Spans = append(tl.Spans, Span{Start: time.Unix(0, start).UTC(), End: time.Unix(0, end).UTC(), Bytes: c.meta.Bytes})
			return true, nil
		})
	})
	for i := 1; i < len(tl.Spans); i++ {
		tl.Gaps = append(tl.Gaps, Span{Start: tl.Spans[i-1].End, End: tl.Spans[i].Start})
	}
	return tl, err
}
