// Package outbox is the edge's durable queue of what central must receive:
// alerts, alert updates and event batches. An item is fsynced to Badger
// before anyone is told it exists, and leaves only when central
// acknowledges that it has stored it (ARCHITECTURE.md, decision 4). Order
// is the order of Put.
//
// The queue is bounded by bytes. When an item would push it over the bound,
// queued items are dropped green first, then yellow, oldest first within a
// severity, and never one more severe than the incoming item. Red alerts
// are never dropped: a red item is stored even over the bound (counted as
// overflow), and an incoming green or yellow item that still does not fit
// is dropped itself. Every drop is counted by severity (Stats).
//
// An outbox in its own directory also keeps a free-space floor (kv.Floor):
// below it, green and yellow items are refused with ErrDiskFull while red
// ones are still stored from a preallocated reserve, so a disk filled by
// another program costs new events, never the process (Badger would die of
// SIGBUS) nor a red alert.
package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// ErrFull is returned by Put for a green or yellow item that does not fit
// even after dropping everything the policy allows; the item is counted as
// dropped and not stored.
var ErrFull = errors.New("outbox full of more severe items")

// ErrDiskFull is wrapped by Put for a green or yellow item refused because
// the disk is below the outbox's free-space floor (a *kv.DiskFullError
// carries the numbers).
var ErrDiskFull = kv.ErrDiskFull

// Disk defaults for an outbox in its own directory: keep DefaultMinFree
// bytes free for the rest of the box, hold DefaultReserve bytes back for
// red alerts, and map small Badger files (they are preallocated).
const (
	DefaultMinFree      = 64 << 20
	DefaultReserve      = 16 << 20
	outboxMemTable      = 4 << 20
	outboxValueLogBytes = 8 << 20
)

// DefaultMaxBytes bounds an outbox when Options.MaxBytes is zero: days of
// alerts with snapshots for a box whose link is down, a small part of its
// disk next to the clip store.
const DefaultMaxBytes = 256 << 20

// Item is one thing waiting for central.
type Item struct {
	Kind     string          // wire.TypeAlert, wire.TypeAlertUpdate or wire.TypeEventBatch
	ID       string          // unique per edge; central acknowledges by it
	Severity wire.Severity   // decides what the byte bound drops first
	Body     json.RawMessage // the wire body, sent as is
}

// Entry is one queued item with its place in the queue.
type Entry struct {
	Seq uint64
	Item
}

// Options configure an outbox.
type Options struct {
	// Dir is the outbox's own Badger directory. Leave it empty and set DB
	// to share one database (the load benchmark runs 500 edges on one).
	Dir       string
	DB        *badger.DB
	Namespace string // key prefix inside a shared DB, e.g. "edge-17/"
	MaxBytes  int64  // 0: DefaultMaxBytes
	// CacheBytes bounds the newest items kept in memory as well, so that
	// sending them needs no disk read (0: DefaultCacheBytes).
	CacheBytes int64
	// MinFree and Reserve set the free-space floor of an outbox in its
	// own directory (0: DefaultMinFree, DefaultReserve; negative: none).
	MinFree, Reserve int64
	Log              *slog.Logger
}

// DefaultCacheBytes is the in-memory copy of the newest items: everything
// queued while central keeps up, a small part of a long outage's backlog.
const DefaultCacheBytes = 8 << 20

// Stats describe the queue for metrics and heartbeats.
type Stats struct {
	Pending  int
	Bytes    int64
	MaxBytes int64
	// Dropped counts items discarded by the byte bound, by severity.
	DroppedGreen, DroppedYellow uint64
	// Overflow counts red items stored although the queue was full.
	Overflow uint64
	// DiskRefused counts items refused below the free-space floor.
	DiskRefused uint64
}

// Dropped is every item the byte bound discarded.
func (s Stats) Dropped() uint64 { return s.DroppedGreen + s.DroppedYellow }

// Outbox is safe for concurrent use. It is the queue's front: Put and Ack
// change the in-memory index (index.go) and the items on disk (store.go)
// together, under one lock.
type Outbox struct {
	disk  store
	floor *kv.Floor // nil on a shared DB
	max   int64
	log   *slog.Logger

	mu     sync.Mutex
	next   uint64
	idx    index
	stats  Stats
	notify chan struct{} // closed and replaced on every Put
}

// Open opens the outbox in its own Badger directory with the default bound.
func Open(dir string, log *slog.Logger) (*Outbox, error) {
	return OpenWith(Options{Dir: dir, Log: log})
}

// OpenWith opens an outbox as o says and loads its index.
func OpenWith(o Options) (*Outbox, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	ob := &Outbox{disk: newStore(o.DB, o.Namespace), max: o.MaxBytes, log: o.Log.With("component", "outbox"),
		idx: newIndex(o.CacheBytes), notify: make(chan struct{})}
	if ob.disk.db == nil {
		db, floor, err := openOwnDB(o)
		if err != nil {
			return nil, err
		}
		ob.disk.db, ob.disk.owns, ob.floor = db, true, floor
	}
	if err := ob.load(); err != nil {
		ob.Close()
		return nil, err
	}
	return ob, nil
}

// openOwnDB opens the outbox's own Badger directory behind its free-space
// floor (nil with a negative MinFree).
func openOwnDB(o Options) (*badger.DB, *kv.Floor, error) {
	var floor *kv.Floor
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	if o.MinFree > 0 {
		f, err := kv.NewFloor(o.Dir, o.MinFree, max(o.Reserve, 0))
		if err != nil {
			return nil, nil, err
		}
		floor = f
	}
	db, err := kv.Open(kv.Options{Dir: o.Dir, SyncWrites: true, Logger: o.Log, Floor: floor,
		MemTableSize: outboxMemTable, ValueLogFileSize: outboxValueLogBytes})
	if err != nil {
		return nil, nil, err
	}
	return db, floor, nil
}

// load rebuilds the in-memory index from the stored items.
func (o *Outbox) load() error {
	err := o.disk.scan(func(seq uint64, s stored, valueSize int64) {
		o.idx.track(seq, meta{id: s.ID, rank: s.Severity.Rank(), size: itemSize(len(o.disk.ns), s.ID, valueSize)})
		o.next = seq
	})
	if err != nil {
		return fmt.Errorf("outbox: scanning: %w", err)
	}
	o.next++
	return nil
}

// Close deletes acknowledged items and closes the database if the outbox
// opened it.
func (o *Outbox) Close() error {
	return errors.Join(o.FlushAcks(), o.disk.close())
}

// Append queues an alert durably; when it returns nil the alert survives a
// crash. Appending an ID that is already queued is a no-op.
func (o *Outbox) Append(a wire.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.Put(Item{Kind: wire.TypeAlert, ID: a.ID, Severity: a.Severity, Body: body})
}

// AppendUpdate queues an alert update. class is the severity it is kept
// as under the byte bound, normally the updated alert's.
func (o *Outbox) AppendUpdate(u wire.AlertUpdate, class wire.Severity) error {
	body, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.Put(Item{Kind: wire.TypeAlertUpdate, ID: u.ID, Severity: class, Body: body})
}

// AppendEvents queues a batch of green events, the first to go when the
// queue is full.
func (o *Outbox) AppendEvents(b wire.EventBatch) error {
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.Put(Item{Kind: wire.TypeEventBatch, ID: b.ID, Severity: wire.Green, Body: body})
}

// Put queues an item durably, enforcing the byte bound.
func (o *Outbox) Put(it Item) error {
	if it.ID == "" || it.Kind == "" || !it.Severity.Valid() {
		return fmt.Errorf("outbox: item needs kind, id and a valid severity (got %q %q %q)", it.Kind, it.ID, it.Severity)
	}
	val, err := json.Marshal(stored{Kind: it.Kind, ID: it.ID, Severity: it.Severity, Body: it.Body})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.idx.has(it.ID) {
		return nil
	}
	m := meta{id: it.ID, rank: it.Severity.Rank(), size: itemSize(len(o.disk.ns), it.ID, int64(len(val)))}
	evict, fits := o.idx.victims(m, o.max)
	if !fits && it.Severity != wire.Red {
		o.stats.countDrop(m.rank)
		return fmt.Errorf("outbox: %s %s (%s): %w", it.Kind, it.ID, it.Severity, ErrFull)
	}
	if o.floor != nil {
		if err := o.floor.Admit(it.Severity == wire.Red); err != nil {
			o.stats.DiskRefused++
			return fmt.Errorf("outbox: %s %s (%s) refused: %w", it.Kind, it.ID, it.Severity, err)
		}
	}
	seq := o.next
	if err := o.disk.commit(seq, it.ID, val, evict); err != nil {
		return fmt.Errorf("outbox: put %s: %w", it.ID, err)
	}
	if o.floor != nil {
		if err := o.floor.Written(); err != nil {
			o.log.Warn("outbox: preallocating Badger files", "err", err)
		}
	}
	o.dropEvicted(evict)
	if !fits {
		o.stats.Overflow++
		o.log.Error("outbox over its byte bound: red alert kept anyway", "id", it.ID, "bytes", o.idx.bytes+m.size, "max_bytes", o.max)
	}
	o.next++
	o.idx.track(seq, m)
	o.idx.cacheItem(seq, it, m.size)
	close(o.notify)
	o.notify = make(chan struct{})
	return nil
}

// dropEvicted forgets the items the byte bound evicted (already deleted on
// disk), counting each as dropped.
func (o *Outbox) dropEvicted(evict []meta) {
	if len(evict) == 0 {
		return
	}
	for _, v := range evict {
		o.stats.countDrop(v.rank)
		o.idx.untrack(v.seq)
	}
	o.idx.compact()
	o.log.Warn("outbox full: dropped oldest lower-severity items", "count", len(evict), "bytes", o.idx.bytes, "max_bytes", o.max)
}

// countDrop counts an item the byte bound discarded.
func (s *Stats) countDrop(rank int) {
	if rank == wire.Green.Rank() {
		s.DroppedGreen++
	} else {
		s.DroppedYellow++
	}
}

// Disk re-reads free space against the outbox's floor (recreating the red
// reserve when space has returned). ok is false for an outbox without a
// floor (a shared DB).
func (o *Outbox) Disk() (st kv.FloorState, ok bool, err error) {
	if o.floor == nil {
		return st, false, nil
	}
	st, err = o.floor.Check()
	return st, true, err
}

// Changed returns a channel closed by the next Put.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notify
}

// Len is the number of unacknowledged items.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.idx.items)
}

// Stats returns the queue's size and drop counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.stats
	s.Pending, s.Bytes, s.MaxBytes = len(o.idx.items), o.idx.bytes, o.max
	return s
}

// After returns up to limit entries with Seq > after, in order: from
// memory while the newest items are cached, from disk for older ones.
func (o *Outbox) After(after uint64, limit int) ([]Entry, error) {
	o.mu.Lock()
	out, disk := o.idx.cachedAfter(after, limit)
	o.mu.Unlock()
	if !disk {
		return out, nil
	}
	if len(out) > 0 {
		after = out[len(out)-1].Seq
	}
	more, err := o.disk.readAfter(after, limit-len(out))
	return append(out, more...), err
}

// Ack removes acknowledged items; unknown IDs are ignored (an ack can
// arrive twice after a reconnect, or for an item the bound dropped). They
// leave the queue at once and the disk with the next write (see
// store.doomed).
func (o *Outbox) Ack(ids ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		seq, ok := o.idx.seqs[id]
		if !ok {
			continue
		}
		o.disk.doom(seq, id)
		o.idx.untrack(seq)
	}
	o.idx.compact()
	if len(o.disk.doomed) >= maxDoomed {
		return o.disk.flush()
	}
	return nil
}

// FlushAcks deletes acknowledged items from disk now (the uplink calls it
// with every heartbeat, so a quiet box does not keep them).
func (o *Outbox) FlushAcks() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.disk.flush()
}
