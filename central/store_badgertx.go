package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// badgerTx is a Badger write transaction as an alertTx, in the key
// layout of store.go.
type badgerTx struct{ txn *badger.Txn }

var _ alertTx = badgerTx{}

func (t badgerTx) record(id string) (Record, error) { return getRecordByID(t.txn, id) }

func (t badgerTx) putRecord(rec Record, rb []byte, seq uint64, frame []byte) error {
	if err := t.txn.Set(seqKey(prefixSeq, rec.Seq), rb); err != nil {
		return err
	}
	return t.txn.Set(seqKey(prefixChange, seq), frame)
}

func (t badgerTx) insert(rec Record, snapshot []byte) error {
	if err := t.txn.Set([]byte(prefixID+rec.ID), binary.BigEndian.AppendUint64(nil, rec.Seq)); err != nil {
		return err
	}
	if rec.Kind == KindSelfTest {
		if err := t.txn.Set([]byte(prefixSelfTest+rec.EdgeID), []byte(rec.ID)); err != nil {
			return err
		}
	}
	if err := t.setOpen(rec, colourRank(&rec)); err != nil {
		return err
	}
	if tamperClear(rec) {
		if err := t.txn.Set(tamperClearKey(rec.EdgeID, rec.Source), binary.BigEndian.AppendUint64(nil, rec.Seq)); err != nil {
			return err
		}
	}
	if len(snapshot) == 0 {
		return nil
	}
	return t.txn.Set([]byte(prefixSnapshot+rec.ID), snapshot)
}

func (t badgerTx) setOpen(rec Record, rank int) error {
	return t.txn.Set(seqKey(prefixOpen, rec.Seq), openValue(rank, rec.SiteID))
}

func (t badgerTx) clearOpen(rec Record) error { return t.txn.Delete(seqKey(prefixOpen, rec.Seq)) }

func (t badgerTx) putUpdateSnapshot(alertID, updateID string, jpeg []byte) error {
	return t.txn.Set(updSnapKey(alertID, updateID), jpeg)
}

func (t badgerTx) update(id string) (bool, error) { return t.has([]byte(prefixUpdateID + id)) }

func (t badgerTx) markUpdate(id string, seq uint64) error {
	return t.txn.Set([]byte(prefixUpdateID+id), binary.BigEndian.AppendUint64(nil, seq))
}

func (t badgerTx) redirect(id string) (string, error) {
	item, err := t.txn.Get([]byte(prefixRedirect + id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return id, nil
	}
	if err != nil {
		return "", err
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func (t badgerTx) setRedirect(from, to string) error {
	return t.txn.Set([]byte(prefixRedirect+from), []byte(to))
}

func (t badgerTx) batch(id string) (bool, error) { return t.has([]byte(prefixBatchID + id)) }

func (t badgerTx) markBatch(id string) error { return t.txn.Set([]byte(prefixBatchID+id), nil) }

func (t badgerTx) putEvent(k eventKeyParts, e StoredEvent) (bool, error) {
	key := eventKey(k.time, k.edge, k.batch, k.idx)
	if seen, err := t.has(key); err != nil || seen {
		return false, err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	return true, t.txn.Set(key, v)
}

func (t badgerTx) has(key []byte) (bool, error) {
	_, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}
