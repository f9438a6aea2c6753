package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// backend is where a log's records live: Badger under a key prefix
// (store) or PostgreSQL tables (pgStore). What the records mean — the
// numbering, hashing, MACs, clamped times, AppendOnce, Verify, List and
// Export — is written once, over these operations.
type backend interface {
	// view runs fn on a consistent snapshot.
	view(ctx context.Context, fn func(reads) error) error
	// update runs fn in one write transaction, which sees its own
	// writes, and commits it if fn returns nil; nothing is kept if fn
	// or the commit fails.
	update(ctx context.Context, fn func(writeTx) error) error
	// shared reports whether other processes may append to the same log
	// (PostgreSQL replicas): then the head is read, under a lock, in
	// every commit, and Head reads it from the database. A Badger log
	// has one writer, whose head in memory is the truth.
	shared() bool
}

// reads are the reads a view and a write transaction share.
type reads interface {
	// headRecord returns the head record as stored; ok is false if
	// there is none.
	headRecord() (v []byte, ok bool, err error)
	// last returns the highest seq stored and its entry (0 for none).
	last() (seq uint64, v []byte, err error)
	// entry returns the stored entry seq, or errNoEntry.
	entry(seq uint64) ([]byte, error)
	// scan calls fn for the stored entries with from <= seq <= to, in
	// seq order. From 0 it covers everything under the log and reports
	// a record that is not an entry (a stray Badger key) as a
	// *strayKeyError; from 1 on it skips such records. fn returning
	// errStop ends the scan without error.
	scan(from, to uint64, fn func(seq uint64, v []byte) error) error
	// firstAtOrAfter returns a seq at or before the first entry whose
	// time is at or after t (last: the highest seq stored); 1 is always
	// right.
	firstAtOrAfter(t time.Time, last uint64) uint64
	// onces calls fn for every AppendOnce key and its seq (CopyTo).
	onces(fn func(key string, seq uint64) error) error
}

// writeTx is a write transaction.
type writeTx interface {
	reads
	// lockHead returns the head record like headRecord and, where
	// several processes share the log, holds it locked until the
	// transaction ends: appends of all of them are serialised on it.
	lockHead() (v []byte, ok bool, err error)
	putHead(v []byte) error
	// putEntry writes a new entry seq, stamped t.
	putEntry(seq uint64, t time.Time, v []byte) error
	// replaceEntry rewrites the stored entry seq (its time unchanged).
	replaceEntry(seq uint64, v []byte) error
	// once returns the seq AppendOnce recorded under key.
	once(key string) (seq uint64, ok bool, err error)
	putOnce(key string, seq uint64) error
}

var (
	// errNoEntry: reads.entry found no such seq.
	errNoEntry = errors.New("audit: no such entry")
	// errStop ends a scan early.
	errStop = errors.New("audit: stop scan")
)

// strayKeyError is a record under the log's entries that is not an entry
// (a key of the wrong shape in Badger).
type strayKeyError struct{ key []byte }

func (e *strayKeyError) Error() string { return fmt.Sprintf("stray key %q in the log", e.key) }

// scanAll is the seq bound meaning "to the end".
const scanAll = math.MaxUint64

// getEntry reads and decodes the entry seq.
func getEntry(r reads, seq uint64) (Entry, error) {
	var e Entry
	v, err := r.entry(seq)
	if err != nil {
		return e, err
	}
	err = json.Unmarshal(v, &e)
	return e, err
}

// continueHead finds where the chain continues: after the head record
// rec, or after the newest entry if that is further (a head lost with a
// crash cannot happen, as both are written together, but an empty head
// with entries means the head was removed).
func continueHead(r reads, rec []byte, ok bool) (head, error) {
	var h head
	if ok {
		if err := json.Unmarshal(rec, &h); err != nil {
			return head{}, fmt.Errorf("audit: head record: %w", err)
		}
	}
	seq, v, err := r.last()
	if err != nil {
		return head{}, err
	}
	if seq > h.Seq {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			// Continue after it all the same; Verify names the damage.
			h = head{Seq: seq, Hash: GenesisHash, Time: h.Time}
		} else {
			h = head{Seq: seq, Hash: e.Hash, Time: e.Time}
		}
	}
	if h.Seq == 0 {
		h.Hash = GenesisHash
	}
	return h, nil
}

// readHead reads where the chain continues from a snapshot.
func readHead(ctx context.Context, be backend) (head, error) {
	var h head
	err := be.view(ctx, func(r reads) error {
		rec, ok, err := r.headRecord()
		if err != nil {
			return err
		}
		h, err = continueHead(r, rec, ok)
		return err
	})
	return h, err
}

// recorded reports whether AppendOnce's key is already recorded, with its
// entry when that can still be read.
func recorded(tx writeTx, key string) (Entry, bool, error) {
	seq, ok, err := tx.once(key)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err := getEntry(tx, seq)
	if err != nil {
		return Entry{}, true, nil // recorded; the entry is Verify's business
	}
	return e, true, nil
}

// searchAtOrAfter binary-searches the first seq up to last whose time is
// at or after t (entry times never decrease with seq). A damaged entry on
// the way makes it answer 1: a full scan is always correct.
func searchAtOrAfter(r reads, t time.Time, last uint64) uint64 {
	lo, hi := uint64(1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := getEntry(r, mid)
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
