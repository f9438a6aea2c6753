package audit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout under the log's prefix P:
//
//	P e/<seq, 8 bytes big-endian> → entry JSON (as exported)
//	P head                       → {"seq":…,"hash":…,"mac":…} of the newest entry
//	P once/<key>                 → seq, 8 bytes big-endian (AppendOnce)
//
// The head is written in the same transaction as the entries; it lets
// Verify see entries removed from the end of the log, and Open continues
// the chain after the head, so a removed or rewritten tail stays visible.
const (
	keyEntries = "e/"
	keyHead    = "head"
	keyOnce    = "once/"
)

// store is where a log lives: its database and prefix, the key layout
// under it, and the reads every part of the log shares. It is a value:
// copies name the same records.
type store struct {
	db     *badger.DB
	prefix []byte
}

// head is the head record: the newest entry.
type head struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	MAC  string    `json:"mac,omitempty"` // headMAC, with a key
}

func (s store) entryKey(seq uint64) []byte {
	k := make([]byte, 0, len(s.prefix)+len(keyEntries)+8)
	k = append(k, s.prefix...)
	k = append(k, keyEntries...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func (s store) entriesPrefix() []byte {
	return append(append([]byte(nil), s.prefix...), keyEntries...)
}

func (s store) headKey() []byte { return append(append([]byte(nil), s.prefix...), keyHead...) }

func (s store) onceKey(key string) []byte {
	k := make([]byte, 0, len(s.prefix)+len(keyOnce)+len(key))
	k = append(k, s.prefix...)
	k = append(k, keyOnce...)
	return append(k, key...)
}

// readHead finds where the chain continues: after the head record, or
// after the newest entry if that is further (a head lost with a crash
// cannot happen, as both are written together, but an empty head with
// entries means the head was removed).
func (s store) readHead() (head, error) {
	var h head
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(s.headKey())
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &h) }); err != nil {
				return fmt.Errorf("audit: head record: %w", err)
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: s.entriesPrefix()})
		defer it.Close()
		it.Seek(s.entryKey(math.MaxUint64))
		if !it.Valid() || len(it.Item().Key()) != len(s.entriesPrefix())+8 {
			return nil
		}
		seq := binary.BigEndian.Uint64(it.Item().Key()[len(s.entriesPrefix()):])
		if seq <= h.Seq {
			return nil
		}
		var e Entry
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
			// Continue after it all the same; Verify names the damage.
			h = head{Seq: seq, Hash: GenesisHash, Time: h.Time}
			return nil
		}
		h = head{Seq: seq, Hash: e.Hash, Time: e.Time}
		return nil
	})
	if err != nil {
		return head{}, fmt.Errorf("audit: open: %w", err)
	}
	if h.Seq == 0 {
		h.Hash = GenesisHash
	}
	return h, nil
}

func (s store) get(txn *badger.Txn, seq uint64) (Entry, error) {
	var e Entry
	item, err := txn.Get(s.entryKey(seq))
	if err != nil {
		return e, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &e) })
	return e, err
}

// recorded reports whether AppendOnce's key is already recorded, with its
// entry when that can still be read.
func (s store) recorded(txn *badger.Txn, key string) (Entry, bool, error) {
	item, err := txn.Get(s.onceKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	var seq uint64
	if err := item.Value(func(v []byte) error {
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		return Entry{}, false, err
	}
	e, err := s.get(txn, seq)
	if err != nil {
		return Entry{}, true, nil // recorded; the entry is Verify's business
	}
	return e, true, nil
}

// end returns the highest seq stored (0 for none).
func (s store) end() (uint64, error) {
	var end uint64
	err := s.db.View(func(txn *badger.Txn) error {
		pfx := s.entriesPrefix()
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: pfx})
		defer it.Close()
		for it.Seek(s.entryKey(math.MaxUint64)); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) == len(pfx)+8 {
				end = binary.BigEndian.Uint64(k[len(pfx):])
				return nil
			}
		}
		return nil
	})
	return end, err
}

// firstAtOrAfter binary-searches the first seq up to last whose time is
// at or after t (entry times never decrease with seq). A damaged entry on
// the way makes it answer 1: a full scan is always correct.
func (s store) firstAtOrAfter(txn *badger.Txn, t time.Time, last uint64) uint64 {
	lo, hi := uint64(1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := s.get(txn, mid)
		if err != nil {
			return 1
		}
		if e.Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
