// Package outbox is the edge's durable queue of alerts waiting for central.
// An alert is fsynced to Badger before anyone is told it exists, and leaves
// only when central acknowledges that it has stored it (ARCHITECTURE.md,
// decision 4). Order is the order of Append.
package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

var (
	prefixEntry = []byte("o/") // o/<seq:8> → alert JSON
	prefixID    = []byte("i/") // i/<alert id> → seq
)

// Entry is one queued alert.
type Entry struct {
	Seq   uint64
	Alert wire.Alert
}

// Outbox is safe for concurrent use.
type Outbox struct {
	db *badger.DB

	mu     sync.Mutex
	next   uint64
	count  int
	notify chan struct{} // closed and replaced on every Append
}

// Open opens the outbox in dir.
func Open(dir string, log *slog.Logger) (*Outbox, error) {
	db, err := kv.Open(kv.Options{Dir: dir, SyncWrites: true, Logger: log})
	if err != nil {
		return nil, err
	}
	o := &Outbox{db: db, notify: make(chan struct{})}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixEntry})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			o.count++
			o.next = seqOf(it.Item().Key()) + 1
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: scanning: %w", err)
	}
	if o.next == 0 {
		o.next = 1
	}
	return o, nil
}

// Close closes the database.
func (o *Outbox) Close() error { return o.db.Close() }

func entryKey(seq uint64) []byte {
	k := make([]byte, len(prefixEntry)+8)
	copy(k, prefixEntry)
	binary.BigEndian.PutUint64(k[len(prefixEntry):], seq)
	return k
}

func seqOf(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(prefixEntry):]) }

func idKey(id string) []byte { return append(append([]byte{}, prefixID...), id...) }

// Append stores a durably; when it returns nil the alert survives a crash.
// Appending an ID that is already queued is a no-op.
func (o *Outbox) Append(a wire.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	seq := o.next
	dup := false
	err = o.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(idKey(a.ID)); err == nil {
			dup = true
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], seq)
		if err := txn.Set(idKey(a.ID), s[:]); err != nil {
			return err
		}
		return txn.Set(entryKey(seq), body)
	})
	if err != nil {
		return fmt.Errorf("outbox: append %s: %w", a.ID, err)
	}
	if dup {
		return nil
	}
	o.next++
	o.count++
	close(o.notify)
	o.notify = make(chan struct{})
	return nil
}

// Changed returns a channel closed by the next Append.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notify
}

// Len is the number of unacknowledged alerts.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count
}

// After returns up to limit entries with Seq > after, in order.
func (o *Outbox) After(after uint64, limit int) ([]Entry, error) {
	var out []Entry
	err := o.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixEntry, PrefetchValues: true, PrefetchSize: limit})
		defer it.Close()
		for it.Seek(entryKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: seqOf(it.Item().Key())}
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e.Alert) })
			if err != nil {
				return fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: reading: %w", err)
	}
	return out, nil
}

// Ack removes acknowledged alerts; unknown IDs are ignored (an ack can
// arrive twice after a reconnect).
func (o *Outbox) Ack(ids ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	removed := 0
	err := o.db.Update(func(txn *badger.Txn) error {
		for _, id := range ids {
			item, err := txn.Get(idKey(id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			} else if err != nil {
				return err
			}
			var seq uint64
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("corrupt index for %s", id)
				}
				seq = binary.BigEndian.Uint64(v)
				return nil
			}); err != nil {
				return err
			}
			if err := txn.Delete(entryKey(seq)); err != nil {
				return err
			}
			if err := txn.Delete(idKey(id)); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: ack: %w", err)
	}
	o.count -= removed
	return nil
}
