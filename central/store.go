package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// Key layout. Records are keyed by big-endian sequence number so a prefix
// scan returns them in arrival order; the id index makes re-sent alerts
// cheap to recognise; snapshots live apart so listing alerts never reads
// JPEG bytes.
const (
	prefixSeq      = "s/" // s/<seq uint64 BE>  → Record JSON
	prefixID       = "i/" // i/<alert id>       → seq uint64 BE
	prefixSnapshot = "p/" // p/<alert id>       → JPEG bytes
)

// ErrNotFound is returned by Get and Snapshot for an unknown alert ID.
var ErrNotFound = errors.New("central: alert not found")

// Record is a stored alert as the API and consoles see it: the edge's alert
// without its snapshot bytes, plus central's sequence number, arrival time
// and the URL of the snapshot if there is one.
type Record struct {
	ID           string        `json:"id"`
	EdgeID       string        `json:"edge_id"`
	SiteID       string        `json:"site_id"`
	Source       string        `json:"source"`
	Kind         string        `json:"kind"`
	Severity     wire.Severity `json:"severity"`
	Time         time.Time     `json:"time"`
	TimeSource   string        `json:"time_source"`
	Summary      string        `json:"summary"`
	Boxes        []wire.Box    `json:"boxes"`
	Zones        []string      `json:"zones"`
	SnapshotTime time.Time     `json:"snapshot_time,omitzero"`
	SnapshotURL  string        `json:"snapshot_url,omitempty"`
	Seq          uint64        `json:"seq"`
	ReceivedAt   time.Time     `json:"received_at"`
}

// Store keeps alerts in Badger, once per alert ID, each with a sequence
// number that only grows, across restarts too.
type Store struct {
	db *badger.DB

	mu      sync.Mutex // serialises Put so sequence numbers are gap-free and unique
	lastSeq uint64
}

// OpenStore opens (or creates) the alert store in dir. Writes are synced:
// an ack to an edge promises the alert survives a power cut.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	db, err := kv.Open(kv.Options{Dir: dir, SyncWrites: true, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &Store{db: db}
	if s.lastSeq, err = s.maxSeq(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// maxSeq finds the highest stored sequence number by seeking to the end of
// the record prefix, so numbering continues after a restart.
func (s *Store) maxSeq() (uint64, error) {
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixSeq)})
		defer it.Close()
		it.Seek(seqKey(math.MaxUint64))
		if it.Valid() {
			last = binary.BigEndian.Uint64(it.Item().Key()[len(prefixSeq):])
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("central: read last sequence: %w", err)
	}
	return last, nil
}

// LastSeq returns the sequence number of the newest stored alert (0 if none).
func (s *Store) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// Put stores a validated alert, stamping it with central's arrival time. If its ID is already
// stored it returns the existing record and inserted=false; edges re-send
// unacknowledged alerts after every reconnect. The id check, the new sequence
// number and all three keys are one transaction.
func (s *Store) Put(a wire.Alert) (rec Record, inserted bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.Update(func(txn *badger.Txn) error {
		old, err := getRecordByID(txn, a.ID)
		if err == nil {
			rec = old
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		rec = newRecord(a, s.lastSeq+1, time.Now())
		val, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := txn.Set(seqKey(rec.Seq), val); err != nil {
			return err
		}
		if err := txn.Set([]byte(prefixID+a.ID), binary.BigEndian.AppendUint64(nil, rec.Seq)); err != nil {
			return err
		}
		if len(a.Snapshot) > 0 {
			if err := txn.Set([]byte(prefixSnapshot+a.ID), a.Snapshot); err != nil {
				return err
			}
		}
		inserted = true
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("central: store alert %s: %w", a.ID, err)
	}
	if inserted {
		s.lastSeq = rec.Seq
	}
	return rec, inserted, nil
}

// Since returns up to limit records with a sequence number above seq, oldest
// first.
func (s *Store) Since(seq uint64, limit int) ([]Record, error) {
	out := []Record{}
	if limit <= 0 || seq == math.MaxUint64 {
		return out, nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: min(limit, 100), Prefix: []byte(prefixSeq)})
		defer it.Close()
		for it.Seek(seqKey(seq + 1)); it.Valid() && len(out) < limit; it.Next() {
			var r Record
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("record %x: %w", it.Item().Key(), err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("central: list alerts since %d: %w", seq, err)
	}
	return out, nil
}

// Get returns the record of one alert, or ErrNotFound.
func (s *Store) Get(id string) (Record, error) {
	var rec Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = getRecordByID(txn, id)
		return err
	})
	return rec, err
}

// Snapshot returns an alert's JPEG, or ErrNotFound if the alert or its
// snapshot does not exist.
func (s *Store) Snapshot(id string) ([]byte, error) {
	var jpeg []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixSnapshot + id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		jpeg, err = item.ValueCopy(nil)
		return err
	})
	return jpeg, err
}

// Close closes the database and releases its directory lock.
func (s *Store) Close() error {
	return s.db.Close()
}

func getRecordByID(txn *badger.Txn, id string) (Record, error) {
	var rec Record
	item, err := txn.Get([]byte(prefixID + id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	seqBytes, err := item.ValueCopy(nil)
	if err != nil {
		return rec, err
	}
	if len(seqBytes) != 8 {
		return rec, fmt.Errorf("central: corrupt id index for %q", id)
	}
	item, err = txn.Get(seqKey(binary.BigEndian.Uint64(seqBytes)))
	if err != nil {
		return rec, fmt.Errorf("central: id %q indexes a missing record: %w", id, err)
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
	return rec, err
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixSeq), seq)
}

// newRecord turns a received alert into its stored form. Times are kept in
// UTC; empty lists become [] so consoles need no null checks.
func newRecord(a wire.Alert, seq uint64, now time.Time) Record {
	r := Record{
		ID:         a.ID,
		EdgeID:     a.EdgeID,
		SiteID:     a.SiteID,
		Source:     a.Source,
		Kind:       a.Kind,
		Severity:   a.Severity,
		Time:       a.Time.UTC(),
		TimeSource: a.TimeSource,
		Summary:    a.Summary,
		Boxes:      a.Boxes,
		Zones:      a.Zones,
		Seq:        seq,
		ReceivedAt: now.UTC(),
	}
	if r.Boxes == nil {
		r.Boxes = []wire.Box{}
	}
	if r.Zones == nil {
		r.Zones = []string{}
	}
	if !a.SnapshotTime.IsZero() {
		r.SnapshotTime = a.SnapshotTime.UTC()
	}
	if len(a.Snapshot) > 0 {
		r.SnapshotURL = snapshotURL(a.ID)
	}
	return r
}

func snapshotURL(id string) string {
	return "/api/v1/alerts/" + url.PathEscape(id) + "/snapshot.jpg"
}
