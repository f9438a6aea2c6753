package central

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central/evidence"
	"github.com/vigil-perimeter/vigil/internal/atomicfile"
)

// requestStore is where evidence requests are kept: central's Badger
// database (badgerRequests) or PostgreSQL shared by the replicas
// (pgevidence.go). requestBook (retrieval.go) is the logic over it.
type requestStore interface {
	getRequest(id string) (EvidenceRequest, error) // ErrNotFound
	addRequest(r EvidenceRequest) error
	listRequests() ([]EvidenceRequest, error)
	// changeRequest runs f on the request as stored and stores what f
	// leaves, atomically against every other writer (replicas too); an
	// error from f stores nothing and is returned.
	changeRequest(id string, f func(*EvidenceRequest) error) (EvidenceRequest, error)
}

// evidenceFiles is where retrieved videos and contact sheets lie, by the
// paths RetrievalItem names: the data directory (dirFiles), or
// PostgreSQL shared by the replicas (pgevidence.go), where a video is
// kept in pieces as they are verified, so any replica resumes a
// retrieval from the last verified piece and serves the result.
type evidenceFiles interface {
	// partial opens the partial copy of path for writing pieces
	// (created empty if absent).
	partial(path string) (partialFile, error)
	// keep makes path's partial copy the kept file, durably.
	keep(path string) error
	// put keeps a small file whole (a contact sheet).
	put(path string, data []byte) error
	// open reads a kept file.
	open(path string) (evidence.File, error)
}

// partialFile is a video being retrieved: pieces written at their
// offsets, then read whole to be checked.
type partialFile interface {
	WriteAt(p []byte, off int64) (int, error)
	// Truncate drops what lies past size (pieces not verified).
	Truncate(size int64) error
	// Sync makes what was written durable.
	Sync() error
	// Reader reads the whole copy from its start.
	Reader() (interface {
		Read([]byte) (int, error)
	}, error)
	Close() error
}

// badgerRequests keeps requests in central's Badger database, one key
// per request; mu serialises read-modify-write (one central).
type badgerRequests struct {
	db *badger.DB
	mu sync.Mutex
}

func (b *badgerRequests) put(r EvidenceRequest) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixEvidence+r.ID), v) })
}

func (b *badgerRequests) addRequest(r EvidenceRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.put(r)
}

func (b *badgerRequests) getRequest(id string) (EvidenceRequest, error) {
	var r EvidenceRequest
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixEvidence + id))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &r) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return r, ErrNotFound
	}
	return r, err
}

func (b *badgerRequests) listRequests() ([]EvidenceRequest, error) {
	out := []EvidenceRequest{}
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte(prefixEvidence)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r EvidenceRequest
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func (b *badgerRequests) changeRequest(id string, f func(*EvidenceRequest) error) (EvidenceRequest, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.getRequest(id)
	if err != nil {
		return r, err
	}
	if err := f(&r); err != nil {
		return r, err
	}
	return r, b.put(r)
}

// dirFiles keeps evidence files under central's data directory.
type dirFiles struct{ dir string }

func (d dirFiles) path(p string) string { return filepath.Join(d.dir, p) }

// osPartial is a partial copy on disk.
type osPartial struct{ *os.File }

func (p osPartial) Reader() (interface{ Read([]byte) (int, error) }, error) {
	if _, err := p.Seek(0, 0); err != nil {
		return nil, err
	}
	return p.File, nil
}

func (d dirFiles) partial(path string) (partialFile, error) {
	part := d.path(path) + ".part"
	if err := os.MkdirAll(filepath.Dir(part), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return osPartial{f}, nil
}

func (d dirFiles) keep(path string) error {
	final := d.path(path)
	if err := os.Rename(final+".part", final); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(final)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

func (d dirFiles) put(path string, data []byte) error {
	return atomicfile.Write(d.path(path), data, 0o600)
}

func (d dirFiles) open(path string) (evidence.File, error) { return evidence.OpenFile(d.path(path)) }
