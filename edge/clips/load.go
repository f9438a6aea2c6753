package clips

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// load reads settings, cameras, bucket summaries and pins.
func (s *Store) load() error {
	return s.db.Update(func(txn *badger.Txn) error {
		s.bucketDur = s.cfg.BucketDuration
		item, err := txn.Get(settingsKey)
		switch {
		case err == nil:
			var st settings
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &st) }); err != nil {
				return fmt.Errorf("clips: settings: %w", err)
			}
			if st.BucketNS > 0 && time.Duration(st.BucketNS) != s.bucketDur {
				s.log.Warn("keeping the store's bucket duration", "stored", time.Duration(st.BucketNS), "configured", s.bucketDur)
				s.bucketDur = time.Duration(st.BucketNS)
			}
		case errors.Is(err, badger.ErrKeyNotFound):
			b, _ := json.Marshal(settings{BucketNS: int64(s.bucketDur)})
			if err := txn.Set(settingsKey, b); err != nil {
				return err
			}
		default:
			return err
		}

		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagName}, PrefetchValues: false})
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[1:])
			var id uint32
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 4 {
					return fmt.Errorf("clips: camera %q: bad ID", name)
				}
				id = binary.BigEndian.Uint32(v)
				return nil
			})
			if err != nil {
				it.Close()
				return err
			}
			s.addRecorder(name, id)
			s.nextID = max(s.nextID, id+1)
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagBucket}, PrefetchValues: false})
		for it.Rewind(); it.Valid(); it.Next() {
			cam, b, ok := parseBucketKey(it.Item().Key())
			r := s.byID[cam]
			if !ok || r == nil {
				continue
			}
			var sum bucketSum
			if err := it.Item().Value(func(v []byte) (err error) { sum, err = unmarshalBucket(v); return err }); err != nil {
				it.Close()
				return err
			}
			r.buckets = append(r.buckets, bucket{id: b, sum: sum})
			r.bytes += sum.Bytes
			r.lastStart = max(r.lastStart, sum.Last)
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagPin}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var p Pin
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
				return fmt.Errorf("clips: pin %q: %w", it.Item().Key()[1:], err)
			}
			s.pins[p.ID] = p
		}
		return nil
	})
}
