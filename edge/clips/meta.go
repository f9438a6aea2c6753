package clips

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// chunkMeta describes one chunk: access units from a keyframe up to the
// next chunk, stored as parts. It is rewritten in the same transaction as
// every part, so it never points at a part that is not there.
type chunkMeta struct {
	Codec      av.Codec
	Source     string        // streams.TimeRTCP, TimeArrival, ...
	StartPTS   time.Duration // PTS of the first access unit
	Parts      uint32
	AUs        uint32
	Bytes      int64         // stored bytes of all parts
	LastOffset time.Duration // last access unit, from the chunk's start
	FrameDur   time.Duration // mean frame interval, for the chunk's end
	Params     [][]byte      // SPS, PPS (and VPS): the chunk decodes on its own
	Keyframes  []keyframe
}

// keyframe locates a random-access point inside a chunk: the seek index.
type keyframe struct {
	Offset time.Duration
	Part   uint32
	Index  uint32 // access unit within the part
}

// end is the instant the chunk's video ends: its last frame plus one
// frame interval.
func (m *chunkMeta) end(start int64) int64 {
	return start + int64(m.LastOffset+m.FrameDur)
}

// keyframeAt returns the last keyframe at or before offset, or the first.
func (m *chunkMeta) keyframeAt(offset time.Duration) keyframe {
	kf := keyframe{}
	if len(m.Keyframes) > 0 {
		kf = m.Keyframes[0]
	}
	for _, k := range m.Keyframes {
		if k.Offset > offset {
			break
		}
		kf = k
	}
	return kf
}

const metaVersion = 1

func (m *chunkMeta) marshal() []byte {
	b := make([]byte, 0, 96+len(m.Keyframes)*8)
	b = append(b, metaVersion, byte(m.Codec))
	b = binary.AppendUvarint(b, uint64(len(m.Source)))
	b = append(b, m.Source...)
	b = binary.AppendVarint(b, int64(m.StartPTS))
	b = binary.AppendUvarint(b, uint64(m.Parts))
	b = binary.AppendUvarint(b, uint64(m.AUs))
	b = binary.AppendUvarint(b, uint64(m.Bytes))
	b = binary.AppendVarint(b, int64(m.LastOffset))
	b = binary.AppendUvarint(b, uint64(m.FrameDur))
	b = binary.AppendUvarint(b, uint64(len(m.Params)))
	for _, p := range m.Params {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Keyframes)))
	for _, k := range m.Keyframes {
		b = binary.AppendVarint(b, int64(k.Offset))
		b = binary.AppendUvarint(b, uint64(k.Part))
		b = binary.AppendUvarint(b, uint64(k.Index))
	}
	return b
}

func unmarshalMeta(b []byte) (chunkMeta, error) {
	var m chunkMeta
	if len(b) < 2 || b[0] != metaVersion {
		return m, errors.New("clips: chunk meta: unknown version")
	}
	m.Codec = av.Codec(b[1])
	r := reader{b: b[2:]}
	m.Source = string(r.bytes())
	m.StartPTS = time.Duration(r.varint())
	m.Parts = uint32(r.uvarint())
	m.AUs = uint32(r.uvarint())
	m.Bytes = int64(r.uvarint())
	m.LastOffset = time.Duration(r.varint())
	m.FrameDur = time.Duration(r.uvarint())
	n := r.count(2)
	for i := 0; i < n; i++ {
		m.Params = append(m.Params, r.bytes())
	}
	n = r.count(3)
	m.Keyframes = make([]keyframe, 0, n)
	for i := 0; i < n; i++ {
		m.Keyframes = append(m.Keyframes, keyframe{Offset: time.Duration(r.varint()), Part: uint32(r.uvarint()), Index: uint32(r.uvarint())})
	}
	if r.err != nil {
		return m, fmt.Errorf("clips: chunk meta: %w", r.err)
	}
	return m, nil
}

// bucketSum is a bucket's summary, kept next to its chunks so that Open
// reads one key per bucket instead of every chunk.
type bucketSum struct {
	Chunks uint32
	Bytes  int64
	First  int64 // earliest chunk start, Unix ns
	Last   int64 // latest chunk end, Unix ns
	// Evicting is set (and synced) before retention drops from the
	// bucket, so that Open finishes a drop a crash interrupted.
	Evicting bool
}

func (s bucketSum) marshal() []byte {
	b := []byte{metaVersion, 0}
	if s.Evicting {
		b[1] = 1
	}
	b = binary.AppendUvarint(b, uint64(s.Chunks))
	b = binary.AppendUvarint(b, uint64(s.Bytes))
	b = binary.AppendVarint(b, s.First)
	b = binary.AppendVarint(b, s.Last)
	return b
}

func unmarshalBucket(b []byte) (bucketSum, error) {
	var s bucketSum
	if len(b) < 2 || b[0] != metaVersion {
		return s, errors.New("clips: bucket summary: unknown version")
	}
	s.Evicting = b[1]&1 != 0
	r := reader{b: b[2:]}
	s.Chunks = uint32(r.uvarint())
	s.Bytes = int64(r.uvarint())
	s.First = r.varint()
	s.Last = r.varint()
	if r.err != nil {
		return s, fmt.Errorf("clips: bucket summary: %w", r.err)
	}
	return s, nil
}

// add accounts a new chunk or part; first and last widen the span.
func (s *bucketSum) add(newChunk bool, bytes, first, last int64) {
	if newChunk {
		s.Chunks++
	}
	s.Bytes += bytes
	if s.First == 0 || first < s.First {
		s.First = first
	}
	if last > s.Last {
		s.Last = last
	}
}

// reader decodes varints and remembers the first error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

// count reads a length whose elements take at least minSize bytes each,
// so corrupt input cannot make us allocate without bound.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/minSize+1) {
		r.err = errShort
		return 0
	}
	return int(n)
}
