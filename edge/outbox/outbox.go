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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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

// meta is what the outbox keeps in memory per queued item to enforce the
// bound without reading values back.
type meta struct {
	id   string
	rank int
	size int64
}

// Outbox is safe for concurrent use.
type Outbox struct {
	db     *badger.DB
	ownsDB bool
	floor  *kv.Floor // nil on a shared DB
	ns     []byte
	max    int64
	log    *slog.Logger

	mu       sync.Mutex
	next     uint64
	items    map[uint64]meta
	ids      map[string]uint64
	byRank   [4][]uint64 // per severity rank, seqs oldest first; acked seqs are skipped lazily
	order    []uint64    // every queued seq, oldest first; acked ones skipped lazily
	cache    map[uint64]Item
	cached   int64 // bytes in cache
	cacheMax int64
	bytes    int64
	stats    Stats
	notify   chan struct{} // closed and replaced on every Put
	// doomed are keys of acknowledged items not yet deleted on disk. An
	// acknowledgement needs no fsync of its own: losing it in a crash only
	// means the item is sent again and central recognises it. So deletes
	// ride along with the next Put's transaction, or go in a batch of
	// their own when many pile up or FlushAcks is called.
	doomed map[string]struct{}
}

// maxDoomed is how many keys of acknowledged items may wait for deletion.
const maxDoomed = 1024

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
	ob := &Outbox{db: o.DB, ns: []byte(o.Namespace), max: o.MaxBytes, log: o.Log.With("component", "outbox"),
		items: map[uint64]meta{}, ids: map[string]uint64{}, notify: make(chan struct{}), doomed: map[string]struct{}{},
		cache: map[uint64]Item{}, cacheMax: o.CacheBytes}
	if ob.db == nil {
		if o.MinFree == 0 {
			o.MinFree = DefaultMinFree
		}
		if o.Reserve == 0 {
			o.Reserve = DefaultReserve
		}
		if o.MinFree > 0 {
			f, err := kv.NewFloor(o.Dir, o.MinFree, max(o.Reserve, 0))
			if err != nil {
				return nil, err
			}
			ob.floor = f
		}
		db, err := kv.Open(kv.Options{Dir: o.Dir, SyncWrites: true, Logger: o.Log, Floor: ob.floor,
			MemTableSize: outboxMemTable, ValueLogFileSize: outboxValueLogBytes})
		if err != nil {
			return nil, err
		}
		ob.db, ob.ownsDB = db, true
	}
	if err := ob.load(); err != nil {
		ob.Close()
		return nil, err
	}
	return ob, nil
}

// load rebuilds the in-memory index from the stored items.
func (o *Outbox) load() error {
	err := o.db.View(func(txn *badger.Txn) error {
		prefix := o.key("o/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])
			var s stored
			if err := it.Item().Value(func(v []byte) (err error) { s, err = decodeStored(v); return err }); err != nil {
				return fmt.Errorf("entry %d: %w", seq, err)
			}
			o.track(seq, meta{id: s.ID, rank: s.Severity.Rank(), size: itemSize(len(o.ns), s.ID, it.Item().ValueSize())})
			o.next = seq
		}
		return nil
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
	err := o.FlushAcks()
	if o.ownsDB {
		return errors.Join(err, o.db.Close())
	}
	return err
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

func (o *Outbox) key(parts ...string) []byte {
	k := append([]byte{}, o.ns...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (o *Outbox) entryKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(o.key("o/"), seq) }
func (o *Outbox) idKey(id string) []byte     { return o.key("i/", id) }

// itemSize is what one item costs on disk, roughly: its value and both keys.
func itemSize(nsLen int, id string, valueLen int64) int64 {
	return valueLen + int64(2*nsLen+len("o/")+8+len("i/")+len(id)+8)
}

func (o *Outbox) track(seq uint64, m meta) {
	o.items[seq] = m
	o.ids[m.id] = seq
	o.byRank[m.rank] = append(o.byRank[m.rank], seq)
	o.order = append(o.order, seq)
	o.bytes += m.size
}

func (o *Outbox) untrack(seq uint64) {
	m, ok := o.items[seq]
	if !ok {
		return
	}
	delete(o.items, seq)
	delete(o.ids, m.id)
	o.bytes -= m.size
	if _, ok := o.cache[seq]; ok {
		delete(o.cache, seq)
		o.cached -= m.size
	}
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
	if _, dup := o.ids[it.ID]; dup {
		return nil
	}
	m := meta{id: it.ID, rank: it.Severity.Rank(), size: itemSize(len(o.ns), it.ID, int64(len(val)))}
	evict, fits := o.victims(m)
	if !fits && it.Severity != wire.Red {
		o.countDrop(m.rank)
		return fmt.Errorf("outbox: %s %s (%s): %w", it.Kind, it.ID, it.Severity, ErrFull)
	}
	if o.floor != nil {
		if err := o.floor.Admit(it.Severity == wire.Red); err != nil {
			o.stats.DiskRefused++
			return fmt.Errorf("outbox: %s %s (%s) refused: %w", it.Kind, it.ID, it.Severity, err)
		}
	}
	seq := o.next
	delete(o.doomed, string(o.idKey(it.ID))) // an ID queued again after its ack
	if err := o.commit(seq, it.ID, val, evict); err != nil {
		return fmt.Errorf("outbox: put %s: %w", it.ID, err)
	}
	if o.floor != nil {
		if err := o.floor.Written(); err != nil {
			o.log.Warn("outbox: preallocating Badger files", "err", err)
		}
	}
	clear(o.doomed)
	for _, v := range evict {
		o.countDrop(o.items[v].rank)
		o.untrack(v)
	}
	if len(evict) > 0 {
		o.compact()
		o.log.Warn("outbox full: dropped oldest lower-severity items", "count", len(evict), "bytes", o.bytes, "max_bytes", o.max)
	}
	if !fits {
		o.stats.Overflow++
		o.log.Error("outbox over its byte bound: red alert kept anyway", "id", it.ID, "bytes", o.bytes+m.size, "max_bytes", o.max)
	}
	o.next++
	o.track(seq, m)
	if o.cached+m.size <= o.cacheMax {
		it.Body = append(json.RawMessage{}, it.Body...)
		o.cache[seq] = it
		o.cached += m.size
	}
	close(o.notify)
	o.notify = make(chan struct{})
	return nil
}

// victims picks the queued items to drop so that m fits: lowest severity
// first, oldest first, never one more severe than m itself. fits is false
// if even dropping all of those would not make room.
func (o *Outbox) victims(m meta) (evict []uint64, fits bool) {
	need := o.bytes + m.size - o.max
	if need <= 0 {
		return nil, true
	}
	for rank := 1; rank <= min(m.rank, wire.Yellow.Rank()) && need > 0; rank++ {
		for _, seq := range o.byRank[rank] {
			v, ok := o.items[seq]
			if !ok {
				continue // acknowledged already
			}
			evict = append(evict, seq)
			need -= v.size
			if need <= 0 {
				break
			}
		}
	}
	if need > 0 {
		return nil, false
	}
	return evict, true
}

func (o *Outbox) countDrop(rank int) {
	if rank == wire.Green.Rank() {
		o.stats.DroppedGreen++
	} else {
		o.stats.DroppedYellow++
	}
}

// commit writes the new item, deletes the evicted ones and any doomed keys,
// and returns once that is on disk. It uses a write batch, not a
// transaction: the outbox needs no reads here (its index is in memory),
// and a Badger transaction would first wait for every commit in flight in
// the database (its read mark), which serialises edges sharing one.
func (o *Outbox) commit(seq uint64, id string, val []byte, evict []uint64) error {
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	for k := range o.doomed {
		if err := wb.Delete([]byte(k)); err != nil {
			return err
		}
	}
	for _, v := range evict {
		if err := wb.Delete(o.entryKey(v)); err != nil {
			return err
		}
		if err := wb.Delete(o.idKey(o.items[v].id)); err != nil {
			return err
		}
	}
	if err := wb.Set(o.idKey(id), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return err
	}
	if err := wb.Set(o.entryKey(seq), val); err != nil {
		return err
	}
	return wb.Flush()
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
	return len(o.items)
}

// Stats returns the queue's size and drop counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.stats
	s.Pending, s.Bytes, s.MaxBytes = len(o.items), o.bytes, o.max
	return s
}

// After returns up to limit entries with Seq > after, in order: from
// memory while the newest items are cached, from disk for older ones.
func (o *Outbox) After(after uint64, limit int) ([]Entry, error) {
	out, disk := o.cachedAfter(after, limit)
	if !disk {
		return out, nil
	}
	if len(out) > 0 {
		after = out[len(out)-1].Seq
	}
	more, err := o.readAfter(after, limit-len(out))
	return append(out, more...), err
}

// cachedAfter serves After from memory; disk reports that an item it
// needs is only on disk.
func (o *Outbox) cachedAfter(after uint64, limit int) ([]Entry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Entry
	i := sort.Search(len(o.order), func(i int) bool { return o.order[i] > after })
	for ; i < len(o.order) && len(out) < limit; i++ {
		seq := o.order[i]
		if _, ok := o.items[seq]; !ok {
			continue
		}
		it, ok := o.cache[seq]
		if !ok {
			return out, true
		}
		out = append(out, Entry{Seq: seq, Item: it})
	}
	return out, false
}

func (o *Outbox) readAfter(after uint64, limit int) ([]Entry, error) {
	var out []Entry
	prefix := o.key("o/")
	err := o.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: max(1, min(limit, 100))})
		defer it.Close()
		for it.Seek(o.entryKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])}
			var s stored
			if err := it.Item().Value(func(v []byte) (err error) { s, err = decodeStored(v); return err }); err != nil {
				return fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			e.Item = Item{Kind: s.Kind, ID: s.ID, Severity: s.Severity, Body: s.Body}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: reading: %w", err)
	}
	return out, nil
}

// Ack removes acknowledged items; unknown IDs are ignored (an ack can
// arrive twice after a reconnect, or for an item the bound dropped). They
// leave the queue at once and the disk with the next write (see doomed).
func (o *Outbox) Ack(ids ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		seq, ok := o.ids[id]
		if !ok {
			continue
		}
		o.doomed[string(o.entryKey(seq))] = struct{}{}
		o.doomed[string(o.idKey(id))] = struct{}{}
		o.untrack(seq)
	}
	o.compact()
	if len(o.doomed) >= maxDoomed {
		return o.flushLocked()
	}
	return nil
}

// FlushAcks deletes acknowledged items from disk now (the uplink calls it
// with every heartbeat, so a quiet box does not keep them).
func (o *Outbox) FlushAcks() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.flushLocked()
}

func (o *Outbox) flushLocked() error {
	if len(o.doomed) == 0 {
		return nil
	}
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	for k := range o.doomed {
		if err := wb.Delete([]byte(k)); err != nil {
			return fmt.Errorf("outbox: ack: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("outbox: ack: %w", err)
	}
	clear(o.doomed)
	return nil
}

// compact drops acknowledged seqs from the front of the queues so they do
// not grow without bound on a box that is never full.
func (o *Outbox) compact() {
	for r := range o.byRank {
		o.byRank[r] = o.dropAcked(o.byRank[r])
	}
	o.order = o.dropAcked(o.order)
}

func (o *Outbox) dropAcked(q []uint64) []uint64 {
	i := 0
	for i < len(q) {
		if _, ok := o.items[q[i]]; ok {
			break
		}
		i++
	}
	return q[i:] // later appends reallocate and free the front
}
