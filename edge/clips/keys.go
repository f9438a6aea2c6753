package clips

import (
	"encoding/binary"
	"time"
)

// Key layout. Every number is big-endian so that keys sort by camera,
// then time; a camera is a 4-byte ID so that keys have fixed widths.
//
//	n<name>                                → camera ID (4)
//	b<cam:4><bucket:8>                     → bucket summary
//	m<cam:4><bucket:8><start:8>            → chunk metadata (inline in the LSM)
//	p<cam:4><bucket:8><start:8><seq:4>     → part: access units + their table (value log)
//	q<pin id>                              → pin (JSON)
//	s                                      → store settings (JSON)
//
// bucket = start / BucketDuration, start = the chunk's first keyframe in
// Unix nanoseconds. Retention drops a whole bucket of a camera with one
// DropPrefix of its b, m and p prefixes; a bucket that holds pinned
// chunks loses only its unpinned chunks (their m and p prefixes).
const (
	tagName     = 'n'
	tagBucket   = 'b'
	tagMeta     = 'm'
	tagPart     = 'p'
	tagPin      = 'q'
	tagSettings = 's'
)

func nameKey(name string) []byte { return append([]byte{tagName}, name...) }

func pinKey(id string) []byte { return append([]byte{tagPin}, id...) }

var settingsKey = []byte{tagSettings}

func camPrefix(tag byte, cam uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{tag}, cam)
}

func bucketKey(tag byte, cam uint32, bucket uint64) []byte {
	return binary.BigEndian.AppendUint64(camPrefix(tag, cam), bucket)
}

// chunkKey is the meta key of a chunk, and the prefix of its parts with
// tag p.
func chunkKey(tag byte, cam uint32, bucket uint64, start int64) []byte {
	return binary.BigEndian.AppendUint64(bucketKey(tag, cam, bucket), uint64(start))
}

func partKey(cam uint32, bucket uint64, start int64, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(chunkKey(tagPart, cam, bucket, start), seq)
}

// parseChunkKey reads an m key.
func parseChunkKey(k []byte) (cam uint32, bucket uint64, start int64, ok bool) {
	if len(k) != 21 || k[0] != tagMeta {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]), int64(binary.BigEndian.Uint64(k[13:])), true
}

// parseBucketKey reads a b key.
func parseBucketKey(k []byte) (cam uint32, bucket uint64, ok bool) {
	if len(k) != 13 || k[0] != tagBucket {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]), true
}

// parsePartKey reads a p key.
func parsePartKey(k []byte) (cam uint32, bucket uint64, start int64, seq uint32, ok bool) {
	if len(k) != 25 || k[0] != tagPart {
		return 0, 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]),
		int64(binary.BigEndian.Uint64(k[13:])), binary.BigEndian.Uint32(k[21:]), true
}

// bucketOf returns the bucket of an instant. Video before 1970 does not
// exist here; it goes to bucket 0.
func bucketOf(t time.Time, d time.Duration) uint64 {
	ns := t.UnixNano()
	if ns < 0 {
		return 0
	}
	return uint64(ns / int64(d))
}
