package clips

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Check verifies the store's invariants: every chunk has all its parts,
// whose tables add up to its metadata; no part exists without its chunk;
// every bucket summary matches its chunks. It reads every part's table,
// so it suits tests, crash drills and offline checks, not a busy box.
func (s *Store) Check() error {
	if err := s.waitErr(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.readers.Done()
	var problems []error
	report := func(f string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Errorf(f, a...))
		}
	}
	type bkey struct {
		cam    uint32
		bucket uint64
	}
	type ckey struct {
		cam   uint32
		start int64
	}
	sums := map[bkey]bucketSum{}
	parts := map[ckey]uint32{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagMeta}})
		var table []auEntry
		for it.Rewind(); it.Valid(); it.Next() {
			cam, _, _, _ := parseChunkKey(it.Item().Key())
			c, err := readChunk(it.Item())
			if err != nil {
				report("chunk %x: %v", it.Item().Key(), err)
				continue
			}
			name := fmt.Sprintf("camera %d chunk %v", cam, time.Unix(0, c.start).UTC())
			parts[ckey{cam, c.start}] = c.meta.Parts
			var aus uint32
			var bytes int64
			for seq := uint32(0); seq < c.meta.Parts; seq++ {
				item, err := txn.Get(c.partKey(cam, seq))
				if err != nil {
					report("%s: part %d: %v", name, seq, err)
					continue
				}
				err = item.Value(func(v []byte) (err error) {
					bytes += int64(len(v))
					table, err = parseTable(v, table[:0])
					return err
				})
				if err != nil {
					report("%s: part %d: %v", name, seq, err)
				}
				aus += uint32(len(table))
			}
			if aus != c.meta.AUs || bytes != c.meta.Bytes {
				report("%s: parts hold %d access units in %d bytes, metadata says %d in %d", name, aus, bytes, c.meta.AUs, c.meta.Bytes)
			}
			if len(c.meta.Keyframes) == 0 || c.meta.Keyframes[0] != (keyframe{}) {
				report("%s: does not start with a keyframe", name)
			}
			k := bkey{cam, c.bucket}
			sum := sums[k]
			sum.add(true, c.meta.Bytes, c.start, c.end())
			sums[k] = sum
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagPart}, PrefetchValues: false})
		for it.Rewind(); it.Valid(); it.Next() {
			cam, _, start, seq, ok := parsePartKey(it.Item().Key())
			n, known := parts[ckey{cam, start}]
			if !ok || !known || seq >= n {
				report("part %x has no chunk", it.Item().Key())
			}
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagBucket}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			cam, b, _ := parseBucketKey(it.Item().Key())
			var got bucketSum
			if err := it.Item().Value(func(v []byte) (err error) { got, err = unmarshalBucket(v); return err }); err != nil {
				report("bucket %x: %v", it.Item().Key(), err)
				continue
			}
			want := sums[bkey{cam, b}]
			delete(sums, bkey{cam, b})
			got.Evicting = false
			if got != want {
				report("camera %d bucket %d: summary %+v, chunks add up to %+v", cam, b, got, want)
			}
		}
		for k := range sums {
			report("camera %d bucket %d: chunks without a summary", k.cam, k.bucket)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(problems...)
}
