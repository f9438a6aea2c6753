// Package clips is the edge's clip store: a rolling buffer of every
// camera's original video in Badger, pinned evidence that retention never
// touches, MP4 export and JPEG thumbnails, and their HTTP API.
//
// Video is kept as it arrived (no re-encode) in keyframe-aligned chunks;
// each chunk carries its parameter sets and a keyframe index, and is
// written as sub-GOP parts at least every FlushInterval. One writer
// goroutine owns every write to Badger: it commits all cameras' queued
// parts in one transaction per flush, fsyncs once per flush, and applies
// retention (per-camera bytes and age, a global free-space floor) by
// dropping whole time buckets with DropPrefix followed by value-log GC,
// which is what actually frees disk in Badger.
package clips

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is the clip store. Its methods are safe for concurrent use.
//
// It composes one part per job, each in its own file: the cameras and
// their recorders (catalog, cameras.go), pins and leases (pinBook,
// pins.go), the read side (playback: timelines, exports, thumbnails,
// checks; read.go), the raised conditions (conditionSet, conditions.go)
// and the writer goroutine (writer, writer.go) with its retention
// (retention.go) and pin accounting (pinMeter, maintain.go). Their
// exported methods are the store's.
type Store struct {
	*catalog
	*pinBook
	*conditionSet
	*playback

	cfg       Config
	log       *slog.Logger
	db        *badger.DB
	m         *metrics
	reg       prometheus.Registerer
	bucketDur time.Duration
	parts     partPool

	// mu is the index lock: it guards the catalog, the recorders' bucket
	// indexes, the pin book and the fields below.
	mu     sync.RWMutex
	closed bool
	// waiting is non-nil (and wraps ErrDiskFull) while the disk is too
	// full for Badger to open: db is nil, recording drops everything and
	// pins are queued until the store's goroutine opens Badger.
	waiting error

	// dropMu: DropPrefix blocks all of Badger's writes and makes them
	// fail, so it holds dropMu exclusively and every other write shares it.
	dropMu sync.RWMutex

	poke   chan struct{}
	flushq chan chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

type settings struct {
	BucketNS int64 `json:"bucket_ns"`
}

// Open opens (or creates) the store in cfg.Dir, finishes any eviction a
// crash interrupted, and starts the writer goroutine.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("clips: config: dir: empty")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("clips: %w", err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("clips: %w", err)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg: cfg, log: cfg.Log.With("component", "clips"), m: newMetrics(), reg: cfg.Registerer,
		poke: make(chan struct{}, 1), flushq: make(chan chan struct{}), done: make(chan struct{}),
	}
	s.catalog, s.pinBook, s.playback = newCatalog(s), newPinBook(s), newPlayback(s)
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if err := s.m.register(s.reg); err != nil {
		return nil, fmt.Errorf("clips: metrics: %w", err)
	}
	if err := migrateV1(cfg, s.log); err != nil {
		// The v1 store stays as it was; the next start tries again.
		s.log.Error("CLIP STORE UPGRADE FAILED: the video recorded before the upgrade is not readable until it succeeds", "dir", dir, "err", err)
	}
	file, raised := openCondFile(dir, s.log)
	s.conditionSet = newConditionSet(s.log, s.m.condition, cfg.OnCondition, file)
	s.conditionSet.restore(raised)
	// Badger writes its memtable and value log through mmap: opening on a
	// full disk would kill the process with SIGBUS at the first write. So
	// below its reserve the store starts without it, and opens it as soon
	// as another program (or an operator) frees the space.
	free, err := freeBytes(dir)
	if err != nil {
		s.conditionSet.close()
		s.m.unregister(s.reg)
		return nil, fmt.Errorf("clips: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if need := cfg.Footprint.Reserve(); free < need {
		s.waiting = spaceError(free, need)
		s.m.diskFree.Set(float64(free))
		s.log.Error("clip store waiting for disk space: recording is stopped", "dir", dir, "free_bytes", free, "need_bytes", need)
		s.setCondition(CondDiskFull, true, s.waiting.Error())
		go func() {
			defer close(s.done)
			s.waitForSpace(ctx)
		}()
		return s, nil
	}
	w, err := s.openDB(free)
	if err != nil {
		cancel()
		s.conditionSet.close()
		s.m.unregister(s.reg)
		return nil, err
	}
	go func() {
		defer close(s.done)
		w.run(ctx)
	}()
	return s, nil
}

// spacePoll is how often a store waiting for space measures it.
const spacePoll = 2 * time.Second

func spaceError(free, need int64) error {
	return fmt.Errorf("%w: recording is stopped: %d MiB free, %d MiB needed to open the clip store", ErrDiskFull, free>>20, need>>20)
}

// waitErr is why the store cannot serve video yet, nil once Badger is open.
func (s *Store) waitErr() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.waiting
}

// waitForSpace runs on the store's goroutine while the disk is too full
// for Badger: it measures the free space every spacePoll, opens Badger
// once it fits, and then becomes the writer.
func (s *Store) waitForSpace(ctx context.Context) {
	t := time.NewTicker(spacePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case reply := <-s.flushq:
			close(reply) // nothing is queued: every unit was dropped
			continue
		case <-t.C:
		}
		free, err := freeBytes(s.cfg.Dir)
		if err != nil {
			s.log.Error("free space", "err", err)
			continue
		}
		s.m.diskFree.Set(float64(free))
		if need := s.cfg.Footprint.Reserve(); free < need {
			err := spaceError(free, need)
			s.mu.Lock()
			s.waiting = err
			s.mu.Unlock()
			s.setCondition(CondDiskFull, true, err.Error())
			continue
		}
		w, err := s.openDB(free)
		if err != nil {
			s.log.Error("clip store: opening Badger; retrying", "err", err)
			continue
		}
		w.run(ctx)
		return
	}
}

// openDB opens Badger, loads the index, registers the configured cameras,
// writes the pins queued while waiting for space, clears what a restart
// or the wait left raised, and returns the writer, not yet running. free
// is the space measured just before.
func (s *Store) openDB(free int64) (*writer, error) {
	db, clean, err := openIndex(s.cfg.Dir, s.cfg.Footprint, s.log)
	if err != nil {
		return nil, err
	}
	journal, pins, err := openPinJournal(s.cfg.Dir, s.log)
	if err != nil {
		db.Close()
		return nil, err
	}
	// Readers may run while waiting (Pins, Stats): load under the lock.
	s.mu.Lock()
	s.db = db
	if err := s.load(); err != nil {
		s.db = nil
		s.cams, s.byID, s.nextID = map[string]*Recorder{}, map[uint32]*Recorder{}, 1
		s.mu.Unlock()
		db.Close()
		journal.close()
		return nil, err
	}
	s.pins, s.journal = pins, journal
	s.waiting = nil
	s.mu.Unlock()
	for name := range s.cfg.Cameras {
		if _, err := s.Recorder(name); err != nil {
			// The camera registers itself at its first Write.
			s.log.Error("clip store: registering a camera", "camera", name, "err", err)
		}
	}
	s.applyQueuedPins()
	w := newWriter(s)
	// Finish drops a crash interrupted before anything new is written,
	// then take back what the segments hold beyond the index.
	w.ret.resumeEvictions()
	if !clean {
		rep, err := s.reconcile()
		if err != nil {
			s.log.Error("clip store: reconciling the index with the segments", "err", err)
		}
		rep.log(s.log)
	}
	s.setCondition(CondWriteError, false, "the clip store opened")
	if free >= s.cfg.MinFreeBytes {
		s.setCondition(CondDiskFull, false, fmt.Sprintf("recording resumed: %d MiB free", free>>20))
	}
	s.log.Info("clip store open", "dir", s.cfg.Dir, "cameras", len(s.Cameras()), "pins", len(s.Pins()),
		"bucket", s.bucketDur, "min_free_bytes", s.cfg.MinFreeBytes)
	return w, nil
}

func (s *Store) pokeWriter() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// partPool recycles parts and their buffers: the recorders' append path
// takes one per part, the writer returns it once committed or dropped.
type partPool struct{ pool sync.Pool }

func (pp *partPool) get(c *chunk, seq uint32) *part {
	p, _ := pp.pool.Get().(*part)
	if p == nil {
		p = &part{buf: make([]byte, 0, 64<<10)}
	}
	p.chunk, p.seq, p.buf, p.aus, p.payload = c, seq, p.buf[:0], p.aus[:0], 0
	return p
}

func (pp *partPool) put(p *part) {
	p.chunk = nil
	if cap(p.buf) <= 4<<20 {
		pp.pool.Put(p)
	}
}

// Flush commits and fsyncs everything queued so far and applies
// retention, then returns: a durable point, e.g. before reporting a clip.
func (s *Store) Flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case s.flushq <- reply:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// durableUpdate commits a small change and fsyncs it.
func (s *Store) durableUpdate(f func(*badger.Txn) error) error {
	s.dropMu.RLock()
	defer s.dropMu.RUnlock()
	if err := s.db.Update(f); err != nil {
		return err
	}
	return s.db.Sync()
}

// Close stops recording, commits and fsyncs what is queued, ends the
// writer goroutine, stops exports in flight and closes Badger. Safe to
// call twice.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.playback.stop()
		for _, r := range s.recorders() {
			r.close()
		}
		s.cancel()
		<-s.done
		s.playback.wait()
		if s.db != nil {
			err = closeIndex(s.db)
		}
		if s.journal != nil {
			s.journal.close()
		}
		s.conditionSet.close()
		s.m.unregister(s.reg)
		s.log.Info("clip store closed")
	})
	return err
}

// segPath names the segments of camera r.
func (s *Store) segPath(r *Recorder) func(int64) string {
	return func(start int64) string { return segmentPath(s.cfg.Dir, r.name, start) }
}
