package clips

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// load reads settings, cameras and bucket summaries. Caller holds s.mu.
func (s *Store) load() error {
	return s.db.Update(func(txn *badger.Txn) error {
		var err error
		if s.bucketDur, err = loadSettings(txn, s.cfg.BucketDuration, s.log); err != nil {
			return err
		}
		if err := s.catalog.loadCameras(txn); err != nil {
			return err
		}
		return s.catalog.loadBuckets(txn)
	})
}

// loadSettings returns the store's bucket duration: the stored one, or
// the configured one, which a new store stores (and which it returns
// with an error too).
func loadSettings(txn *badger.Txn, configured time.Duration, log *slog.Logger) (time.Duration, error) {
	item, err := txn.Get(settingsKey)
	switch {
	case err == nil:
		var st settings
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &st) }); err != nil {
			return configured, fmt.Errorf("clips: settings: %w", err)
		}
		if st.BucketNS > 0 && time.Duration(st.BucketNS) != configured {
			log.Warn("keeping the store's bucket duration", "stored", time.Duration(st.BucketNS), "configured", configured)
			return time.Duration(st.BucketNS), nil
		}
		return configured, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		b, _ := json.Marshal(settings{BucketNS: int64(configured)})
		return configured, txn.Set(settingsKey, b)
	default:
		return configured, err
	}
}

// loadCameras registers the stored cameras.
func (cat *catalog) loadCameras(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagName}, PrefetchValues: false})
	defer it.Close()
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
			return err
		}
		cat.addRecorder(name, id)
		cat.nextID = max(cat.nextID, id+1)
	}
	return nil
}

// loadBuckets reads the bucket summaries into the cameras' indexes.
func (cat *catalog) loadBuckets(txn *badger.Txn) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagBucket}, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		cam, b, ok := parseBucketKey(it.Item().Key())
		r := cat.byID[cam]
		if !ok || r == nil {
			continue
		}
		var sum bucketSum
		if err := it.Item().Value(func(v []byte) (err error) { sum, err = unmarshalBucket(v); return err }); err != nil {
			return err
		}
		r.buckets = append(r.buckets, bucket{id: b, sum: sum})
		r.bytes += sum.Bytes
		r.lastStart = max(r.lastStart, sum.Last)
	}
	return nil
}
