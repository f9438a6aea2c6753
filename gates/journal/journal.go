// Package journal makes gate events durable before anyone is told they
// were received: a webhook's 2xx, an MQTT PUBACK and a GPIO edge are
// answered only once the event is in an fsynced, append-only file in the
// edge's data directory. The state machines read from the journal, not
// from the adapters, so an event acknowledged and then lost to kill -9 is
// replayed on the next start.
//
// # Format
//
// The journal is a directory of segment files named by the sequence number
// of their first record ("00000000000000000001.log"). Each record is
//
//	uint32 length (little endian) | uint32 CRC-32C of payload | payload
//	payload: type byte | uint64 seq (little endian) | body
//
// An event record (type 1) has seq = its sequence number and a JSON body
// (receipt time and event). A done record (type 2) has seq = the highest
// sequence number up to which every event is done, and no body. A torn or
// corrupt tail (a short record, a bad length or a bad CRC after kill -9) is
// detected on open and cut off.
//
// # Group commit
//
// Append queues its records and waits; one committer goroutine writes
// whatever is queued in one write, fsyncs once and releases every waiter,
// so a burst of concurrent submissions costs one fsync.
//
// # Done, replay and compaction
//
// The consumer calls Done(seq) once the event's outputs are durable
// elsewhere (for an edge: the alerts its machine step produced are in the
// outbox). Done marks are written with the next commit, or within
// CheckpointEvery. On open, events after the last done mark are returned
// by Pending for replay, and the done events received within Window by
// History (to rebuild the consumer's state without repeating outputs). A segment is deleted once every record in it is
// done and its newest record is older than Window; until then its event
// IDs are remembered, so a retried or replayed event is recognised as a
// duplicate across restarts.
package journal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/gates"
)

// Record types.
const (
	typeEvent byte = 1
	typeDone  byte = 2
)

const (
	headerLen = 8
	// maxRecord bounds a record's payload: a larger length is corruption.
	maxRecord = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("gate journal closed")

// Options configure a Journal; zero fields take defaults.
type Options struct {
	// Window is how long event IDs are remembered after receipt (default
	// 10 m: twice the webhook's 5 m timestamp window, as a request signed
	// at T is accepted from T-window to T+window).
	Window time.Duration
	// SegmentSize is the size at which a new segment is started (default 4 MiB).
	SegmentSize int64
	// CheckpointEvery bounds how long a done mark waits for a commit to
	// ride with before it is written on its own (default 1 s).
	CheckpointEvery time.Duration
	// OnCommit receives newly durable records in sequence order, on the
	// committer goroutine, before their Append returns; it must not block.
	OnCommit func([]Record)
	Now      func() time.Time
	Log      *slog.Logger
	// NoSync skips fsync (benchmarks of everything else only).
	NoSync bool
}

// Record is one journaled event.
type Record struct {
	Seq   uint64      `json:"-"`
	At    time.Time   `json:"at"` // when this edge received it
	Event gates.Event `json:"event"`
}

// Journal is an open journal directory, safe for concurrent use.
type Journal struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	closed   bool
	queue    []*batch // waiting for the committer, oldest first
	nextSeq  uint64
	seen     map[string]time.Time // dedup key → receipt time
	doneSet  map[uint64]bool      // done above doneUpTo
	doneUpTo uint64
	pending  []Record // not done at open, for Pending
	history  []Record // done at open and received within Window, for History

	// Owned by the committer goroutine (and Open before it starts).
	f        *os.File
	size     int64
	segs     []segment // oldest first; the last is f
	written  uint64    // done mark last written
	pruned   time.Time // when seen was last pruned
	kick     chan struct{}
	stop     chan struct{}
	finished chan struct{}
}

type segment struct {
	path    string
	first   uint64
	last    uint64    // highest event seq in it (0: none)
	lastAt  time.Time // receipt time of its newest event
	hasDone bool
}

type batch struct {
	recs []Record
	buf  []byte
	err  error
	done chan struct{}
}

// Open opens (creating) the journal in dir, cuts a torn tail, rebuilds the
// set of recent event IDs and the list of events not done, and starts the
// committer.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.Window <= 0 {
		opts.Window = 10 * time.Minute
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 4 << 20
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.OnCommit == nil {
		opts.OnCommit = func([]Record) {}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gate journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts, log: opts.Log.With("component", "gates/journal"),
		seen: map[string]time.Time{}, doneSet: map[uint64]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), finished: make(chan struct{})}
	if err := j.load(); err != nil {
		return nil, err
	}
	go j.commit()
	return j, nil
}

// load reads every segment; it runs before the committer starts.
func (j *Journal) load() error {
	names, err := filepath.Glob(filepath.Join(j.dir, "*.log"))
	if err != nil {
		return fmt.Errorf("gate journal: %w", err)
	}
	sort.Strings(names)
	var events []Record
	var last uint64
	cutoff := j.opts.Now().Add(-j.opts.Window)
	for i, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), ".log"), 10, 64)
		if err != nil {
			continue
		}
		seg := segment{path: name, first: first}
		good, err := readSegment(name, func(typ byte, seq uint64, body []byte) error {
			switch typ {
			case typeEvent:
				var r Record
				if err := json.Unmarshal(body, &r); err != nil {
					return err
				}
				r.Seq = seq
				events = append(events, r)
				seg.last, seg.lastAt = seq, r.At
				last = max(last, seq)
			case typeDone:
				j.doneUpTo = max(j.doneUpTo, seq)
				seg.hasDone = true
			default:
				return fmt.Errorf("record type %d", typ)
			}
			return nil
		})
		if err != nil {
			j.log.Warn("gate journal: torn or corrupt tail cut off", "segment", name, "at", good, "err", err)
			if err := os.Truncate(name, good); err != nil {
				return fmt.Errorf("gate journal: cutting %s: %w", name, err)
			}
		}
		if i == len(names)-1 {
			j.size = good
		}
		last = max(last, first-1)
		j.segs = append(j.segs, seg)
	}
	j.nextSeq = max(last, j.doneUpTo) + 1
	j.written = j.doneUpTo
	for _, r := range events {
		if r.At.After(cutoff) {
			if k := key(r.Event); k != "" {
				j.seen[k] = r.At
			}
		}
		if r.Seq > j.doneUpTo {
			j.pending = append(j.pending, r)
		} else if r.At.After(cutoff) {
			j.history = append(j.history, r)
		}
	}
	if len(j.segs) == 0 {
		return j.newSegment()
	}
	f, err := os.OpenFile(j.segs[len(j.segs)-1].path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("gate journal: %w", err)
	}
	j.f = f
	if len(j.pending) > 0 {
		j.log.Info("gate journal: events to replay", "events", len(j.pending), "first", j.pending[0].Seq)
	}
	return nil
}

// readSegment calls fn for each intact record and returns the offset after
// the last one; err is non-nil if the file goes on past it (a torn tail).
func readSegment(name string, fn func(typ byte, seq uint64, body []byte) error) (good int64, err error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	for off := 0; off < len(b); {
		if len(b)-off < headerLen {
			return int64(off), io.ErrUnexpectedEOF
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		sum := binary.LittleEndian.Uint32(b[off+4:])
		if n < 9 || n > maxRecord || len(b)-off-headerLen < n {
			return int64(off), fmt.Errorf("bad record length %d", n)
		}
		p := b[off+headerLen : off+headerLen+n]
		if crc32.Checksum(p, castagnoli) != sum {
			return int64(off), errors.New("bad CRC")
		}
		if err := fn(p[0], binary.LittleEndian.Uint64(p[1:9]), p[9:]); err != nil {
			return int64(off), err
		}
		off += headerLen + n
	}
	return int64(len(b)), nil
}

func appendRecord(buf []byte, typ byte, seq uint64, body []byte) []byte {
	var h [headerLen + 9]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(9+len(body)))
	h[8] = typ
	binary.LittleEndian.PutUint64(h[9:], seq)
	sum := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, body)
	binary.LittleEndian.PutUint32(h[4:], sum)
	return append(append(buf, h[:]...), body...)
}

// key is an event's de-duplication key: its source and ID. Events without
// an ID (GPIO, Zigbee) are never duplicates.
func key(ev gates.Event) string {
	if ev.ID == "" {
		return ""
	}
	return ev.Source + "\x00" + ev.ID
}

// Pending returns the events that were not done when the journal was
// opened, in sequence order: the consumer replays them before any new one.
func (j *Journal) Pending() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.pending)
}

// History returns the events that were already done when the journal was
// opened and were received within Window, in sequence order. The consumer
// replays them, with their outputs suppressed (those are durable already),
// before Pending, so its state (a grant, an open door) is what it was
// before the restart. The first call hands the list over; later calls
// return nil.
func (j *Journal) History() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	h := j.history
	j.history = nil
	return h
}

// Append writes evs, each received at at, and returns once they are
// fsynced (and handed to OnCommit). recs[i].Seq is 0 for an event whose
// source and ID were journaled within Window (or earlier in evs): a
// duplicate, not written. On error nothing of this call is durable.
func (j *Journal) Append(ctx context.Context, at time.Time, evs []gates.Event) (recs []Record, err error) {
	recs = make([]Record, len(evs))
	b := &batch{done: make(chan struct{})}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, ErrClosed
	}
	var keys []string
	for i, ev := range evs {
		k := key(ev)
		if k != "" {
			if t, ok := j.seen[k]; ok && at.Sub(t) < j.opts.Window {
				continue
			}
			j.seen[k] = at
			keys = append(keys, k)
		}
		r := Record{Seq: j.nextSeq, At: at.UTC(), Event: ev}
		body, err := json.Marshal(r)
		if err != nil {
			panic(fmt.Sprintf("gate journal: encoding an event: %v", err))
		}
		j.nextSeq++
		b.buf = appendRecord(b.buf, typeEvent, r.Seq, body)
		b.recs = append(b.recs, r)
		recs[i] = r
	}
	if len(b.recs) == 0 {
		j.mu.Unlock()
		return recs, nil
	}
	j.queue = append(j.queue, b)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	<-b.done // bounded by one write and fsync; ctx does not cut it short
	if b.err != nil {
		j.mu.Lock()
		for _, k := range keys {
			delete(j.seen, k) // not durable: the sender's retry must pass
		}
		for _, r := range b.recs {
			j.markDone(r.Seq) // nothing to replay
		}
		j.mu.Unlock()
		return nil, b.err
	}
	return recs, nil
}

// Done marks the event seq as handled: its outputs are durable elsewhere.
// Records need not be marked in order.
func (j *Journal) Done(seq uint64) {
	j.mu.Lock()
	j.markDone(seq)
	j.mu.Unlock()
}

func (j *Journal) markDone(seq uint64) {
	if seq <= j.doneUpTo {
		return
	}
	j.doneSet[seq] = true
	for j.doneSet[j.doneUpTo+1] {
		delete(j.doneSet, j.doneUpTo+1)
		j.doneUpTo++
	}
}

// DoneUpTo returns the sequence number up to which every event is done.
func (j *Journal) DoneUpTo() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.doneUpTo
}

// Close writes the last done mark, syncs and stops the committer. Appends
// waiting then are committed first; later ones fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.finished
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	<-j.finished
	return j.f.Close()
}

// commit is the committer goroutine: it batches whatever is queued, writes
// it with any new done mark, fsyncs once and releases the waiters.
func (j *Journal) commit() {
	defer close(j.finished)
	tick := time.NewTicker(j.opts.CheckpointEvery)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-j.kick:
		case <-tick.C:
		case <-j.stop:
			stopping = true
		}
		j.mu.Lock()
		queue := j.queue
		j.queue = nil
		done := j.doneUpTo
		j.mu.Unlock()
		if len(queue) > 0 || done > j.written {
			j.write(queue, done)
		}
		if stopping {
			return
		}
		j.compact(done)
	}
}

// write appends queue and a done mark in one write and one fsync.
func (j *Journal) write(queue []*batch, done uint64) {
	var buf []byte
	var recs []Record
	for _, b := range queue {
		buf = append(buf, b.buf...)
		recs = append(recs, b.recs...)
	}
	if done > j.written {
		buf = appendRecord(buf, typeDone, done, nil)
	}
	n, err := j.f.Write(buf)
	j.size += int64(n)
	if err == nil && !j.opts.NoSync {
		err = j.f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("gate journal: %w", err)
		j.log.Error("GATE EVENTS NOT JOURNALED", "events", len(recs), "err", err)
		// A partial write would be a torn record in the middle of the
		// file: cut it so later records stay readable.
		if n > 0 {
			if terr := j.f.Truncate(j.size - int64(n)); terr == nil {
				j.size -= int64(n)
			}
		}
	} else {
		seg := &j.segs[len(j.segs)-1]
		if len(recs) > 0 {
			seg.last, seg.lastAt = recs[len(recs)-1].Seq, recs[len(recs)-1].At
			j.opts.OnCommit(recs)
		}
		if done > j.written {
			j.written, seg.hasDone = done, true
		}
	}
	for _, b := range queue {
		b.err = err
		close(b.done)
	}
}

// compact starts a new segment when the current one is full, and deletes
// old segments whose records are all done and older than Window.
func (j *Journal) compact(done uint64) {
	if j.size >= j.opts.SegmentSize {
		if err := j.newSegment(); err != nil {
			j.log.Error("gate journal: new segment", "err", err)
		}
	}
	cutoff := j.opts.Now().Add(-j.opts.Window)
	for len(j.segs) > 1 {
		s := j.segs[0]
		if s.last != 0 && (s.last > done || s.lastAt.After(cutoff)) {
			break
		}
		if err := os.Remove(s.path); err != nil {
			j.log.Error("gate journal: removing a done segment", "segment", s.path, "err", err)
			return
		}
		j.segs = j.segs[1:]
	}
	if time.Since(j.pruned) < j.opts.CheckpointEvery {
		return
	}
	j.pruned = time.Now()
	j.mu.Lock()
	for k, t := range j.seen {
		if t.Before(cutoff) {
			delete(j.seen, k)
		}
	}
	j.mu.Unlock()
}

// newSegment starts a segment at nextSeq, carrying the done mark so the
// newest segment alone says how far events are done.
func (j *Journal) newSegment() error {
	j.mu.Lock()
	first := j.nextSeq
	j.mu.Unlock()
	// Records queued but not yet written have seqs < nextSeq and go into
	// the new segment; name it by the first seq it may hold.
	if n := len(j.segs); n > 0 {
		first = j.segs[n-1].last + 1
		if first <= j.segs[n-1].first {
			first = j.segs[n-1].first + 1
		}
	}
	path := filepath.Join(j.dir, fmt.Sprintf("%020d.log", first))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	buf := appendRecord(nil, typeDone, j.written, nil)
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if !j.opts.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if d, err := os.Open(j.dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size = f, int64(len(buf))
	j.segs = append(j.segs, segment{path: path, first: first, hasDone: true})
	return nil
}
