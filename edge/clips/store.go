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
type Store struct {
	cfg       Config
	log       *slog.Logger
	db        *badger.DB
	m         *metrics
	reg       prometheus.Registerer
	bucketDur time.Duration
	parts     sync.Pool

	mu       sync.RWMutex
	cams     map[string]*Recorder
	byID     map[uint32]*Recorder
	nextID   uint32
	pins     map[string]Pin
	leases   map[uint64]lease
	leaseSeq uint64
	conds    map[string]Condition
	pinVer   uint64 // bumped when pins or leases change
	pinCap   int64
	closed   bool

	regMu sync.Mutex // serialises camera registration

	// dropMu: DropPrefix blocks all of Badger's writes and makes them
	// fail, so it holds dropMu exclusively and every other write shares it.
	dropMu sync.RWMutex

	// readers counts exports and other reads in flight: Close cancels
	// them (closing) and waits before closing Badger under them.
	readers sync.WaitGroup
	closing chan struct{}

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
	if cfg.Footprint.ValueLogFileSize == 0 {
		total, err := totalBytes(dir)
		if err != nil {
			return nil, fmt.Errorf("clips: %w", err)
		}
		cfg.Footprint.ValueLogFileSize = vlogFileSize(total)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Badger writes its memtable and value log through mmap: opening on a
	// full disk would kill the process with SIGBUS at the first write.
	free, err := freeBytes(dir)
	if err != nil {
		return nil, fmt.Errorf("clips: %w", err)
	}
	if need := cfg.Footprint.Reserve(); free < need {
		return nil, fmt.Errorf("%w: %d bytes free in %s, Badger needs %d to open", ErrDiskFull, free, dir, need)
	}
	s := &Store{
		cfg: cfg, log: cfg.Log.With("component", "clips"), m: newMetrics(), reg: cfg.Registerer,
		cams: map[string]*Recorder{}, byID: map[uint32]*Recorder{}, nextID: 1,
		pins: map[string]Pin{}, leases: map[uint64]lease{}, conds: map[string]Condition{},
		poke: make(chan struct{}, 1), flushq: make(chan chan struct{}), done: make(chan struct{}), closing: make(chan struct{}),
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if err := s.m.register(s.reg); err != nil {
		return nil, fmt.Errorf("clips: metrics: %w", err)
	}
	s.db, err = badger.Open(badgerOptions(dir, cfg.Footprint, s.log))
	if err != nil {
		s.m.unregister(s.reg)
		return nil, fmt.Errorf("clips: open %s: %w", dir, err)
	}
	if err := s.load(); err != nil {
		s.db.Close()
		s.m.unregister(s.reg)
		return nil, err
	}
	for name := range cfg.Cameras {
		if _, err := s.Recorder(name); err != nil {
			s.db.Close()
			s.m.unregister(s.reg)
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	w := newWriter(s)
	// Finish drops a crash interrupted before anything new is written.
	w.resumeEvictions()
	go func() {
		defer close(s.done)
		w.run(ctx)
	}()
	s.log.Info("clip store open", "dir", dir, "cameras", len(s.cams), "pins", len(s.pins),
		"bucket", s.bucketDur, "min_free_bytes", cfg.MinFreeBytes)
	return s, nil
}

func (s *Store) pokeWriter() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *Store) newPart(c *chunk, seq uint32) *part {
	p, _ := s.parts.Get().(*part)
	if p == nil {
		p = &part{buf: make([]byte, 0, 64<<10)}
	}
	p.chunk, p.seq, p.buf, p.aus, p.payload = c, seq, p.buf[:0], p.aus[:0], 0
	return p
}

func (s *Store) freePart(p *part) {
	p.chunk = nil
	if cap(p.buf) <= 4<<20 {
		s.parts.Put(p)
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

// acquire registers a read; release it with s.readers.Done.
func (s *Store) acquire() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.readers.Add(1)
	return nil
}

// Close stops recording, commits and fsyncs what is queued, ends the
// writer goroutine, stops exports in flight and closes Badger. Safe to
// call twice.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		cams := make([]*Recorder, 0, len(s.cams))
		for _, r := range s.cams {
			cams = append(cams, r)
		}
		s.mu.Unlock()
		close(s.closing)
		for _, r := range cams {
			r.close()
		}
		s.cancel()
		<-s.done
		s.readers.Wait()
		err = s.db.Close()
		s.m.unregister(s.reg)
		s.log.Info("clip store closed")
	})
	return err
}
