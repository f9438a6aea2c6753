package outbox

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/wire"
)

// maxDoomed is how many keys of acknowledged items may wait for deletion.
const maxDoomed = 1024

// store is the outbox's items on disk: one key per item under "o/" + seq
// holding the stored item, one under "i/" + ID holding its seq, both
// behind the namespace of a shared database. The Outbox's lock guards it.
type store struct {
	db   *badger.DB
	owns bool // the outbox opened db and closes it
	ns   []byte
	// doomed are keys of acknowledged items not yet deleted on disk. An
	// acknowledgement needs no fsync of its own: losing it in a crash only
	// means the item is sent again and central recognises it. So deletes
	// ride along with the next Put's write, or go in a batch of their own
	// when many pile up or FlushAcks is called.
	doomed map[string]struct{}
}

func newStore(db *badger.DB, namespace string) store {
	return store{db: db, ns: []byte(namespace), doomed: map[string]struct{}{}}
}

// stored is an item as kept in Badger.
type stored struct {
	Kind     string          `json:"k"`
	ID       string          `json:"id"`
	Severity wire.Severity   `json:"s"`
	Body     json.RawMessage `json:"b"`
}

// decodeStored reads an item; a bare alert is an item written by the first
// outbox, which queued alerts only.
func decodeStored(v []byte) (stored, error) {
	var s stored
	if err := json.Unmarshal(v, &s); err != nil {
		return s, err
	}
	if s.Kind != "" {
		return s, nil
	}
	var a wire.Alert
	if err := json.Unmarshal(v, &a); err != nil {
		return s, err
	}
	return stored{Kind: wire.TypeAlert, ID: a.ID, Severity: a.Severity, Body: append(json.RawMessage{}, v...)}, nil
}

// itemSize is what one item costs on disk, roughly: its value and both keys.
func itemSize(nsLen int, id string, valueLen int64) int64 {
	return valueLen + int64(2*nsLen+len("o/")+8+len("i/")+len(id)+8)
}

func (s *store) key(parts ...string) []byte {
	k := append([]byte{}, s.ns...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (s *store) entryKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(s.key("o/"), seq) }
func (s *store) idKey(id string) []byte     { return s.key("i/", id) }

// scan calls f for every stored item, in queue order.
func (s *store) scan(f func(seq uint64, st stored, valueSize int64)) error {
	return s.db.View(func(txn *badger.Txn) error {
		prefix := s.key("o/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])
			var st stored
			if err := it.Item().Value(func(v []byte) (err error) { st, err = decodeStored(v); return err }); err != nil {
				return fmt.Errorf("entry %d: %w", seq, err)
			}
			f(seq, st, it.Item().ValueSize())
		}
		return nil
	})
}

// readAfter reads up to limit entries with Seq > after from disk.
func (s *store) readAfter(after uint64, limit int) ([]Entry, error) {
	var out []Entry
	prefix := s.key("o/")
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: max(1, min(limit, 100))})
		defer it.Close()
		for it.Seek(s.entryKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])}
			var st stored
			if err := it.Item().Value(func(v []byte) (err error) { st, err = decodeStored(v); return err }); err != nil {
				return fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			e.Item = Item{Kind: st.Kind, ID: st.ID, Severity: st.Severity, Body: st.Body}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: reading: %w", err)
	}
	return out, nil
}

// commit writes the new item, deletes the evicted ones and any doomed keys,
// and returns once that is on disk. It uses a write batch, not a
// transaction: the outbox needs no reads here (its index is in memory),
// and a Badger transaction would first wait for every commit in flight in
// the database (its read mark), which serialises edges sharing one.
func (s *store) commit(seq uint64, id string, val []byte, evict []meta) error {
	delete(s.doomed, string(s.idKey(id))) // an ID queued again after its ack
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for k := range s.doomed {
		if err := wb.Delete([]byte(k)); err != nil {
			return err
		}
	}
	for _, v := range evict {
		if err := wb.Delete(s.entryKey(v.seq)); err != nil {
			return err
		}
		if err := wb.Delete(s.idKey(v.id)); err != nil {
			return err
		}
	}
	if err := wb.Set(s.idKey(id), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return err
	}
	if err := wb.Set(s.entryKey(seq), val); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	clear(s.doomed)
	return nil
}

// doom marks an acknowledged item's keys for deletion with the next write.
func (s *store) doom(seq uint64, id string) {
	s.doomed[string(s.entryKey(seq))] = struct{}{}
	s.doomed[string(s.idKey(id))] = struct{}{}
}

// flush deletes the doomed keys now.
func (s *store) flush() error {
	if len(s.doomed) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for k := range s.doomed {
		if err := wb.Delete([]byte(k)); err != nil {
			return fmt.Errorf("outbox: ack: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("outbox: ack: %w", err)
	}
	clear(s.doomed)
	return nil
}

// close closes the database if the outbox opened it.
func (s *store) close() error {
	if s.owns {
		return s.db.Close()
	}
	return nil
}
