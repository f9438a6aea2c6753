package central

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// edgeBook is where the edge registry is kept: central's Badger database
// (badgerEdges), or PostgreSQL shared by replicas (pgedges.go).
type edgeBook interface {
	loadEdges(f func(EdgeRecord)) error
	putEdge(e *EdgeRecord) error
	// putToken stores an enrolment token by the hex SHA-256 of its secret,
	// kept for ttl.
	putToken(hash string, t enrolToken, ttl time.Duration) error
	// spendToken runs use on the token (nil: unknown) and the edge's record
	// as stored (nil: none, or the book keeps no other writer's), in one
	// transaction; if use returns a record, the token (as use left it)
	// and the record are stored.
	spendToken(hash string, use func(t *enrolToken, current *EdgeRecord) (*EdgeRecord, error)) error
}

// sharedEdgeBook is an edgeBook other replicas write too: an edge
// unknown here is looked up before it is refused.
type sharedEdgeBook interface {
	edgeBook
	edge(id string) (EdgeRecord, bool, error)
}

// badgerEdges keeps the registry in central's Badger database.
type badgerEdges struct{ db *badger.DB }

func (b badgerEdges) loadEdges(f func(EdgeRecord)) error {
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixEdge), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e EdgeRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return fmt.Errorf("edge record %s: %w", it.Item().Key(), err)
			}
			f(e)
		}
		return nil
	})
}

func (b badgerEdges) putEdge(e *EdgeRecord) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixEdge+e.ID), v) })
}

func (b badgerEdges) putToken(hash string, t enrolToken, ttl time.Duration) error {
	v, _ := json.Marshal(t)
	return b.db.Update(func(txn *badger.Txn) error {
		return txn.SetEntry(badger.NewEntry([]byte(prefixToken+hash), v).WithTTL(ttl))
	})
}

func (b badgerEdges) spendToken(hash string, use func(*enrolToken, *EdgeRecord) (*EdgeRecord, error)) error {
	key := []byte(prefixToken + hash)
	return b.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			_, err := use(nil, nil)
			return err
		}
		if err != nil {
			return err
		}
		var t enrolToken
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &t) }); err != nil {
			return err
		}
		rec, err := use(&t, nil) // the registry in memory is the only writer's
		if err != nil || rec == nil {
			return err
		}
		v, _ := json.Marshal(t)
		if err := txn.SetEntry(badger.NewEntry(key, v).WithTTL(24 * time.Hour)); err != nil {
			return err
		}
		rv, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return txn.Set([]byte(prefixEdge+rec.ID), rv)
	})
}
