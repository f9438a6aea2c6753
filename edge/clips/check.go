package clips

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Check verifies the index's invariants: every chunk has all its parts,
// whose tables add up to its metadata and end where its segment's
// indexed bytes end; every segment is there and at least that long; no
// part exists without its chunk; every bucket summary matches its chunks. It reads every part's table,
// so it suits tests, crash drills and offline checks, not a busy box.
func (rd *playback) Check() error {
	s := rd.s
	if err := s.waitErr(); err != nil {
		return err
	}
	if err := rd.acquire(); err != nil {
		return err
	}
	defer rd.readers.Done()
	c := checker{sums: map[checkBucket]bucketSum{}, parts: map[checkChunk]uint32{}, path: func(cam uint32, start int64) string {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if r := s.byID[cam]; r != nil {
			return segmentPath(s.cfg.Dir, r.name, start)
		}
		return ""
	}}
	err := s.db.View(func(txn *badger.Txn) error {
		c.chunks(txn)
		c.orphanParts(txn)
		c.buckets(txn)
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(c.problems...)
}

type checkBucket struct {
	cam    uint32
	bucket uint64
}

type checkChunk struct {
	cam   uint32
	start int64
}

// checker is one Check: what the chunks say, to hold the parts and
// bucket summaries against, and the first problems found.
type checker struct {
	problems []error
	sums     map[checkBucket]bucketSum // bucket summaries as the chunks add up
	parts    map[checkChunk]uint32     // each chunk's part count
	// path names a camera's segment starting at a time ("" unknown).
	path func(cam uint32, start int64) string
}

func (c *checker) report(f string, a ...any) {
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Errorf(f, a...))
	}
}

// chunks checks every chunk against its parts and adds it to its bucket's
// expected summary.
func (c *checker) chunks(txn *badger.Txn) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagMeta}})
	defer it.Close()
	var table []auEntry
	for it.Rewind(); it.Valid(); it.Next() {
		cam, _, _, _ := parseChunkKey(it.Item().Key())
		ch, err := readChunk(it.Item())
		if err != nil {
			c.report("chunk %x: %v", it.Item().Key(), err)
			continue
		}
		c.parts[checkChunk{cam, ch.start}] = ch.meta.Parts
		table = c.chunkParts(txn, cam, ch, table)
		k := checkBucket{cam, ch.bucket}
		sum := c.sums[k]
		sum.add(true, ch.meta.Bytes, ch.start, ch.end())
		c.sums[k] = sum
	}
}

// chunkParts checks that ch's parts hold what its metadata says and that
// it starts with a keyframe; table is scratch space, returned for reuse.
func (c *checker) chunkParts(txn *badger.Txn, cam uint32, ch chunkRef, table []auEntry) []auEntry {
	name := fmt.Sprintf("camera %d chunk %v", cam, time.Unix(0, ch.start).UTC())
	var aus uint32
	var end int64
	for seq := uint32(0); seq < ch.meta.Parts; seq++ {
		item, err := txn.Get(ch.partKey(cam, seq))
		if err != nil {
			c.report("%s: part %d: %v", name, seq, err)
			continue
		}
		var at int64
		err = item.Value(func(v []byte) (err error) {
			at, table, err = parseRecord(v, table[:0])
			return err
		})
		if err != nil {
			c.report("%s: part %d: %v", name, seq, err)
		}
		if at < end {
			c.report("%s: part %d at %d overlaps the part before (ends %d)", name, seq, at, end)
		}
		end = at
		for _, a := range table {
			end += int64(a.Size)
		}
		aus += uint32(len(table))
	}
	if aus != ch.meta.AUs || end != ch.meta.Bytes {
		c.report("%s: parts hold %d access units ending at byte %d, metadata says %d in %d bytes", name, aus, end, ch.meta.AUs, ch.meta.Bytes)
	}
	if path := c.path(cam, ch.start); path != "" {
		if fi, err := os.Stat(path); err != nil {
			c.report("%s: segment: %v", name, err)
		} else if fi.Size() < ch.meta.Bytes {
			c.report("%s: segment %s holds %d bytes, the index %d", name, path, fi.Size(), ch.meta.Bytes)
		}
	}
	if len(ch.meta.Keyframes) == 0 || ch.meta.Keyframes[0] != (keyframe{}) {
		c.report("%s: does not start with a keyframe", name)
	}
	return table
}

// orphanParts reports parts whose chunk does not exist or has fewer parts.
func (c *checker) orphanParts(txn *badger.Txn) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagPart}, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		cam, _, start, seq, ok := parsePartKey(it.Item().Key())
		n, known := c.parts[checkChunk{cam, start}]
		if !ok || !known || seq >= n {
			c.report("part %x has no chunk", it.Item().Key())
		}
	}
}

// buckets holds every bucket summary against its chunks.
func (c *checker) buckets(txn *badger.Txn) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagBucket}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		cam, b, _ := parseBucketKey(it.Item().Key())
		var got bucketSum
		if err := it.Item().Value(func(v []byte) (err error) { got, err = unmarshalBucket(v); return err }); err != nil {
			c.report("bucket %x: %v", it.Item().Key(), err)
			continue
		}
		want := c.sums[checkBucket{cam, b}]
		delete(c.sums, checkBucket{cam, b})
		got.Evicting = false
		if got != want {
			c.report("camera %d bucket %d: summary %+v, chunks add up to %+v", cam, b, got, want)
		}
	}
	for k := range c.sums {
		c.report("camera %d bucket %d: chunks without a summary", k.cam, k.bucket)
	}
}
