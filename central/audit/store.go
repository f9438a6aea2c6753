package audit

import (
	"context"
	"encoding/binary"
	"errors"
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

// store is the Badger backend: its database and prefix and the key
// layout under it. It is a value: copies name the same records.
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

func (s store) shared() bool { return false }

func (s store) view(_ context.Context, fn func(reads) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(badgerTx{s: s, txn: txn}) })
}

func (s store) update(_ context.Context, fn func(writeTx) error) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := fn(badgerTx{s: s, txn: txn}); err != nil {
		return err
	}
	return txn.Commit()
}

// badgerTx is a Badger transaction over a store's keys.
type badgerTx struct {
	s   store
	txn *badger.Txn
}

func (b badgerTx) headRecord() ([]byte, bool, error) {
	item, err := b.txn.Get(b.s.headKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// lockHead needs no lock: a Badger log has one writer.
func (b badgerTx) lockHead() ([]byte, bool, error) { return b.headRecord() }

func (b badgerTx) last() (uint64, []byte, error) {
	pfx := b.s.entriesPrefix()
	it := b.txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: pfx})
	defer it.Close()
	for it.Seek(b.s.entryKey(math.MaxUint64)); it.Valid(); it.Next() {
		if k := it.Item().Key(); len(k) == len(pfx)+8 {
			v, err := it.Item().ValueCopy(nil)
			return binary.BigEndian.Uint64(k[len(pfx):]), v, err
		}
	}
	return 0, nil, nil
}

func (b badgerTx) entry(seq uint64) ([]byte, error) {
	item, err := b.txn.Get(b.s.entryKey(seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, errNoEntry
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (b badgerTx) scan(from, to uint64, fn func(uint64, []byte) error) error {
	pfx := b.s.entriesPrefix()
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	if from == 0 {
		it.Rewind()
	} else {
		it.Seek(b.s.entryKey(from))
	}
	for ; it.Valid(); it.Next() {
		key := it.Item().Key()
		if len(key) != len(pfx)+8 {
			if from != 0 {
				continue // not an entry; Verify (from 0) names it
			}
			return &strayKeyError{key: append([]byte(nil), key...)}
		}
		seq := binary.BigEndian.Uint64(key[len(pfx):])
		if seq > to {
			return nil
		}
		err := it.Item().Value(func(v []byte) error { return fn(seq, v) })
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b badgerTx) firstAtOrAfter(t time.Time, last uint64) uint64 {
	return searchAtOrAfter(b, t, last)
}

func (b badgerTx) putHead(v []byte) error { return b.txn.Set(b.s.headKey(), v) }

func (b badgerTx) putEntry(seq uint64, _ time.Time, v []byte) error {
	return b.txn.Set(b.s.entryKey(seq), v)
}

func (b badgerTx) replaceEntry(seq uint64, v []byte) error {
	return b.txn.Set(b.s.entryKey(seq), v)
}

func (b badgerTx) once(key string) (uint64, bool, error) {
	item, err := b.txn.Get(b.s.onceKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var seq uint64
	err = item.Value(func(v []byte) error {
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err == nil, err
}

func (b badgerTx) onces(fn func(string, uint64) error) error {
	pfx := b.s.onceKey("")
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(v) != 8 {
			continue
		}
		if err := fn(string(it.Item().Key()[len(pfx):]), binary.BigEndian.Uint64(v)); err != nil {
			return err
		}
	}
	return nil
}

func (b badgerTx) putOnce(key string, seq uint64) error {
	return b.txn.Set(b.s.onceKey(key), binary.BigEndian.AppendUint64(nil, seq))
}
