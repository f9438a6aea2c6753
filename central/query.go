package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/wire"
)

// scanBudget bounds the records one query examines, so a filter that
// matches little cannot make one request read the whole store; the caller
// continues from the returned cursor.
const scanBudget = 20_000

// AlertQuery selects alerts in creation order after Since, or with Desc
// newest first below Before (and still after Since).
type AlertQuery struct {
	Since      uint64
	Limit      int
	Desc       bool                   // newest first
	Before     uint64                 // with Desc: creation seqs below this one (0: from the newest)
	Site       string                 // this site and everything under it; "" for all
	Severities map[wire.Severity]bool // empty: all
	State      string                 // "" all, "open" (not resolved), or one state
	From, To   time.Time              // event time window; zero: open-ended
	Kind       string                 // one kind; "" all
	// HideSelfTest leaves out self-test alerts (KindSelfTest): a guard's
	// queue never shows them.
	HideSelfTest bool
	Edge         string // one edge's alerts; "" all
	Camera       string // the alert's source or one of its linked cameras; "" all
	Gate         string // the alert's source or the gate of its gate state; "" all
	HandledBy    string // a workflow step by this user; "" all
	// ReceivedSince, with Desc, ends the scan at the first record central
	// received before it: records are received in creation order, so
	// nothing older can match a time window starting after it (the
	// playback timeline's bound; zero: no bound).
	ReceivedSince time.Time
}

func (q *AlertQuery) matches(r *Record) bool {
	switch {
	case q.Site != "" && r.SiteID != q.Site && !strings.HasPrefix(r.SiteID, q.Site+"/"):
		return false
	case len(q.Severities) > 0 && !q.Severities[r.Severity]:
		return false
	case q.State == "open" && !open(r.State):
		return false
	case q.State != "" && q.State != "open" && r.State != q.State:
		return false
	case !q.From.IsZero() && r.Time.Before(q.From):
		return false
	case !q.To.IsZero() && !r.Time.Before(q.To):
		return false
	case q.Kind != "" && r.Kind != q.Kind:
		return false
	case q.HideSelfTest && r.Kind == KindSelfTest:
		return false
	case q.Edge != "" && r.EdgeID != q.Edge:
		return false
	case q.Camera != "" && r.Source != q.Camera && !slices.ContainsFunc(r.Links, func(l wire.Link) bool { return l.Camera == q.Camera }):
		return false
	case q.Gate != "" && r.Source != q.Gate && (r.Gate == nil || r.Gate.Gate != q.Gate):
		return false
	case q.HandledBy != "" && !slices.ContainsFunc(r.History, func(s Step) bool { return s.Actor == q.HandledBy && s.State != StateRaised }):
		return false
	}
	return true
}

// Query returns up to q.Limit matching records, oldest first (newest
// first with q.Desc), and the cursor to continue from: the last examined
// creation seq (it moves on even when nothing matched, so paging always
// progresses). Ascending, it is the Since of the next page; descending,
// the Before of the next page, 0 when nothing older is left.
func (s *Store) Query(q AlertQuery) ([]Record, uint64, error) {
	if out, next, done := q.empty(); done {
		return out, next, nil
	}
	// Open alerts have their own index; a query for them skips resolved ones unread.
	prefix := prefixSeq
	if q.State == "open" {
		prefix = prefixOpen
	}
	var out []Record
	var next uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: min(q.Limit, 100), Prefix: []byte(prefix), Reverse: q.Desc})
		defer it.Close()
		q.seek(it, prefix)
		var err error
		out, next, err = q.run(&badgerScan{q: &q, txn: txn, it: it, prefix: prefix})
		return err
	})
	if err != nil {
		return nil, q.Since, fmt.Errorf("central: query alerts since %d: %w", q.Since, err)
	}
	return out, next, nil
}

// empty answers a query that can match nothing (done true) without
// reading the store.
func (q *AlertQuery) empty() (out []Record, next uint64, done bool) {
	if q.Limit > 0 && !(!q.Desc && q.Since == math.MaxUint64) && !(q.Desc && q.Before == 1) {
		return nil, 0, false
	}
	if q.Desc {
		return []Record{}, 0, true
	}
	return []Record{}, q.Since, true
}

// recordScan is the records a query examines, in its order, in one
// engine's terms (badgerScan; pgScan, pgstore_query.go).
type recordScan interface {
	// peek is the creation seq of the next record; more is false at the
	// end.
	peek() (seq uint64, more bool, err error)
	// read reads that record and moves on; ok is false when an index
	// already rules it out (the record unread).
	read() (r Record, ok bool, err error)
}

// run is Query over sc, the same for every engine.
func (q *AlertQuery) run(sc recordScan) ([]Record, uint64, error) {
	out := []Record{}
	next := q.Since
	if q.Desc {
		next = q.Before
	}
	for examined := 0; len(out) < q.Limit && examined < scanBudget; examined++ {
		seq, more, err := sc.peek()
		if err != nil {
			return nil, q.Since, err
		}
		if !more || (q.Desc && seq <= q.Since) {
			break
		}
		next = seq
		r, ok, err := sc.read()
		if err != nil {
			return nil, q.Since, err
		}
		if ok && q.Desc && !q.ReceivedSince.IsZero() && r.ReceivedAt.Before(q.ReceivedSince) {
			return out, 0, nil // everything older was received earlier still
		}
		if ok && q.matches(&r) {
			out = append(out, r)
		}
	}
	if q.Desc {
		seq, more, err := sc.peek()
		if err != nil {
			return nil, q.Since, err
		}
		if !more || seq <= q.Since {
			next = 0 // nothing older left
		}
	}
	return out, next, nil
}

// badgerScan walks the s/ records or the o/ index with a Badger iterator.
type badgerScan struct {
	q      *AlertQuery
	txn    *badger.Txn
	it     *badger.Iterator
	prefix string
}

func (b *badgerScan) peek() (uint64, bool, error) {
	if !b.it.Valid() {
		return 0, false, nil
	}
	return binary.BigEndian.Uint64(b.it.Item().Key()[len(b.prefix):]), true, nil
}

func (b *badgerScan) read() (Record, bool, error) {
	seq := binary.BigEndian.Uint64(b.it.Item().Key()[len(b.prefix):])
	r, ok, err := b.q.read(b.txn, b.it.Item(), b.prefix, seq)
	b.it.Next()
	return r, ok, err
}

// seek puts it on the first key the query examines.
func (q *AlertQuery) seek(it *badger.Iterator, prefix string) {
	switch {
	case !q.Desc:
		it.Seek(seqKey(prefix, q.Since+1))
	case q.Before == 0:
		it.Seek(seqKey(prefix, math.MaxUint64))
	default:
		it.Seek(seqKey(prefix, q.Before-1))
	}
}

// read decodes the record at the iterator's item; ok is false when the
// open index's site and rank already rule it out.
func (q *AlertQuery) read(txn *badger.Txn, item *badger.Item, prefix string, seq uint64) (Record, bool, error) {
	var r Record
	if prefix == prefixOpen {
		var skip bool
		if err := item.Value(func(v []byte) error {
			skip = len(v) == 0 || !q.siteAndRank(string(v[1:]), int(v[0]))
			return nil
		}); err != nil || skip {
			return r, false, err
		}
		var err error
		if r, err = getRecordBySeq(txn, seq); err != nil {
			return r, false, err
		}
	} else if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
		return r, false, fmt.Errorf("record %d: %w", seq, err)
	}
	r.normalise()
	return r, true, nil
}

// siteAndRank pre-filters the open index without reading records.
func (q *AlertQuery) siteAndRank(site string, rank int) bool {
	if q.Site != "" && site != q.Site && !strings.HasPrefix(site, q.Site+"/") {
		return false
	}
	if len(q.Severities) > 0 {
		for sev := range q.Severities {
			if sev.Rank() == rank {
				return true
			}
		}
		return false
	}
	return true
}

// badgerView is a read-only Badger transaction as an alertView.
type badgerView struct {
	txn *badger.Txn
	seq uint64
}

// readView opens a read-only transaction: it sees the store as it is now
// (the writer calls it between batches, so seq is exact).
func (s *Store) readView() alertView {
	seq := s.LastSeq()
	return badgerView{s.db.NewTransaction(false), seq}
}

func (v badgerView) last() uint64 { return v.seq }

func (v badgerView) newestOpen(limit int) ([]Record, error) { return newestOpenIn(v.txn, limit) }
func (v badgerView) changes(after, upto uint64, limit int) ([]consoleFrame, error) {
	return changesIn(v.txn, after, upto, limit)
}
func (v badgerView) Discard() { v.txn.Discard() }

// changesIn reads up to limit change log entries in (after, upto] within
// txn, the view a console's subscription was taken at, as the console
// messages they are stored as.
func changesIn(txn *badger.Txn, after, upto uint64, limit int) ([]consoleFrame, error) {
	var out []consoleFrame
	if after >= upto {
		return out, nil
	}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: min(limit, 100), Prefix: []byte(prefixChange)})
	defer it.Close()
	for it.Seek(seqKey(prefixChange, after+1)); it.Valid() && len(out) < limit; it.Next() {
		seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefixChange):])
		if seq > upto {
			break
		}
		b, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", seq, err)
		}
		out = append(out, consoleFrame{seq: seq, data: b})
	}
	return out, nil
}

// newestOpenIn reads the newest limit open alerts within txn, newest first.
func newestOpenIn(txn *badger.Txn, limit int) ([]Record, error) {
	out := []Record{}
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(prefixOpen)})
	defer it.Close()
	for it.Seek(seqKey(prefixOpen, math.MaxUint64)); it.Valid() && len(out) < limit; it.Next() {
		r, err := getRecordBySeq(txn, binary.BigEndian.Uint64(it.Item().Key()[len(prefixOpen):]))
		if err != nil {
			return nil, err
		}
		r.normalise()
		out = append(out, r)
	}
	return out, nil
}

// openIndex calls f for every open alert's seq, site and rank (startup:
// colours).
func (s *Store) openIndex(f func(seq uint64, site string, rank int)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte(prefixOpen)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error {
				if k := it.Item().Key(); len(v) > 0 && len(k) == len(prefixOpen)+8 {
					f(binary.BigEndian.Uint64(k[len(prefixOpen):]), string(v[1:]), int(v[0]))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// tamperState reads the tamper all-clear marks (tamper.go keys them) and
// then every open alert in sequence order, in one transaction.
func (s *Store) tamperState(clear func(edge, camera string, seq uint64), open func(Record)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte(prefixTamperClear)})
		for it.Rewind(); it.Valid(); it.Next() {
			edge, cam, ok := strings.Cut(strings.TrimPrefix(string(it.Item().Key()), prefixTamperClear), "\x00")
			if !ok {
				continue
			}
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					clear(edge, cam, binary.BigEndian.Uint64(v))
				}
				return nil
			}); err != nil {
				it.Close()
				return err
			}
		}
		it.Close()

		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixOpen)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(prefixOpen)+8 {
				continue
			}
			rec, err := getRecordBySeq(txn, binary.BigEndian.Uint64(k[len(prefixOpen):]))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			rec.normalise()
			open(rec)
		}
		return nil
	})
}

// EventQuery selects stored edge events by time.
type EventQuery struct {
	From, To time.Time // To zero: now on
	Site     string
	Edge     string
	Limit    int
}

// Events lists stored edge events in time order from q.From, and the time
// to continue from when the limit was reached (zero otherwise).
func (s *Store) Events(q EventQuery) ([]StoredEvent, time.Time, error) {
	out := []StoredEvent{}
	var next time.Time
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: []byte(prefixEvent)})
		defer it.Close()
		examined := 0
		for it.Seek(eventKey(q.From, "", "", 0)[:len(prefixEvent)+8]); it.Valid() && examined < scanBudget; it.Next() {
			examined++
			var e StoredEvent
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			if !q.To.IsZero() && !e.Time.Before(q.To) {
				return nil
			}
			if (q.Edge != "" && e.EdgeID != q.Edge) || (q.Site != "" && e.SiteID != q.Site && !strings.HasPrefix(e.SiteID, q.Site+"/")) {
				continue
			}
			if len(out) == q.Limit {
				next = e.Time
				return nil
			}
			out = append(out, e)
		}
		return nil
	})
	return out, next, err
}
