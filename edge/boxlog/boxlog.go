// Package boxlog keeps the motion boxes a camera's analyser found, so a
// recorded video can be played back with them drawn over it: per camera,
// only frames with motion, at most MaxRate frames a second, for as long
// as the video itself is kept (Badger's TTL ends them).
//
// Adding never blocks the analyser: frames go through a bounded queue to
// one writer goroutine, and what does not fit is dropped and counted.
package boxlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

const (
	// DefaultRetention is how long boxes are kept without a clip store
	// age limit.
	DefaultRetention = 31 * 24 * time.Hour
	// MaxRate bounds the frames kept per camera and second.
	MaxRate = 5
	// MaxRange bounds the frames one Range returns.
	MaxRange = 6000
	// queueLen is how many frames wait for the writer before Add drops.
	queueLen = 256
	// maxBatch is how many frames one write commits.
	maxBatch = 64
)

// The footprint of a small, append-mostly database.
const (
	memTableSize     = 2 << 20
	valueLogFileSize = 8 << 20
)

// Config says where the log lives and for how long it keeps boxes.
type Config struct {
	Dir        string
	Retention  time.Duration // 0: DefaultRetention
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Log is the motion box log. Open it, Add from the analysers, Range for
// playback, Close once.
type Log struct {
	db        *badger.DB
	retention time.Duration
	log       *slog.Logger
	queue     chan entry
	dropped   prometheus.Counter
	written   prometheus.Counter

	mu   sync.Mutex
	last map[string]time.Time // per camera: the last frame admitted

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// entry is one frame waiting for the writer.
type entry struct {
	camera string
	t      time.Time
	boxes  []wire.Box
}

// Open opens (or creates) the log in cfg.Dir and starts its writer.
func Open(cfg Config) (*Log, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	db, err := kv.Open(kv.Options{Dir: cfg.Dir, Logger: cfg.Log, MemTableSize: memTableSize, ValueLogFileSize: valueLogFileSize})
	if err != nil {
		return nil, fmt.Errorf("boxlog: %w", err)
	}
	l := &Log{db: db, retention: cfg.Retention, log: cfg.Log.With("component", "boxlog"), queue: make(chan entry, queueLen),
		last: map[string]time.Time{}, done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_motion_boxes_dropped_total",
			Help: "Analysed frames' motion boxes not kept for playback: the box log's queue was full."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_motion_boxes_written_total",
			Help: "Analysed frames' motion boxes kept for playback."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.dropped, l.written} {
			if err := cfg.Registerer.Register(c); err != nil {
				db.Close()
				return nil, fmt.Errorf("boxlog: metrics: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
	return l, nil
}

// Add keeps a frame's boxes (normalised coordinates) unless the camera's
// last kept frame is less than 1/MaxRate s older, or there are none. It
// never blocks: with the writer behind, the frame is dropped and counted.
func (l *Log) Add(camera string, t time.Time, boxes []wire.Box) {
	if len(boxes) == 0 || camera == "" || t.UnixNano() <= 0 {
		return
	}
	l.mu.Lock()
	last, seen := l.last[camera]
	due := !seen || t.Sub(last) >= time.Second/MaxRate || t.Before(last)
	if due {
		l.last[camera] = t
	}
	l.mu.Unlock()
	if !due {
		return
	}
	select {
	case l.queue <- entry{camera: camera, t: t, boxes: boxes}:
	default:
		l.dropped.Inc()
	}
}

// run is the writer: it commits queued frames in batches until ctx ends,
// then what is still queued.
func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	batch := make([]entry, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case e := <-l.queue:
					batch = append(batch, e)
				default:
					l.write(batch)
					return
				}
			}
		case e := <-l.queue:
			batch = append(batch[:0], e)
			for len(batch) < maxBatch && len(l.queue) > 0 {
				batch = append(batch, <-l.queue)
			}
			l.write(batch)
			batch = batch[:0]
		}
	}
}

// write commits frames, each expiring after the retention.
func (l *Log) write(batch []entry) {
	if len(batch) == 0 {
		return
	}
	wb := l.db.NewWriteBatch()
	defer wb.Cancel()
	for _, e := range batch {
		if err := wb.SetEntry(badger.NewEntry(key(e.camera, e.t), encodeFrame(e.boxes)).WithTTL(l.retention)); err != nil {
			l.log.Warn("motion boxes not kept", "camera", e.camera, "err", err)
			return
		}
	}
	if err := wb.Flush(); err != nil {
		l.log.Warn("motion boxes not kept", "frames", len(batch), "err", err)
		return
	}
	l.written.Add(float64(len(batch)))
}

// ErrClosed is returned by Range after Close.
var ErrClosed = errors.New("boxlog: closed")

// Range returns camera's frames in [from, to), in time order, at most
// MaxRange of them (the first ones).
func (l *Log) Range(camera string, from, to time.Time) ([]wire.BoxFrame, error) {
	select {
	case <-l.done:
		return nil, ErrClosed
	default:
	}
	out := []wire.BoxFrame{}
	prefix := append([]byte(camera), 0)
	hi := key(camera, to)
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(key(camera, from)); it.Valid() && len(out) < MaxRange; it.Next() {
			item := it.Item()
			k := item.Key()
			if string(k) >= string(hi) {
				break
			}
			t, ok := keyTime(k, len(prefix))
			if !ok {
				continue
			}
			var boxes []wire.Box
			if err := item.Value(func(v []byte) (err error) { boxes, err = decodeFrame(v); return err }); err != nil {
				return fmt.Errorf("boxlog: %s at %v: %w", camera, t, err)
			}
			out = append(out, wire.BoxFrame{Time: t, Boxes: boxes})
		}
		return nil
	})
	return out, err
}

// Close stops the writer, after it commits what is queued, and closes the
// database. Frames added meanwhile are dropped. Safe to call twice.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		<-l.done
		err = l.db.Close()
	})
	return err
}

// key is camera, a zero byte and the time in Unix nanoseconds, big-endian:
// a camera's frames sort by time.
func key(camera string, t time.Time) []byte {
	k := make([]byte, 0, len(camera)+9)
	k = append(k, camera...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(max(t.UnixNano(), 0)))
}

func keyTime(k []byte, at int) (time.Time, bool) {
	if len(k) != at+8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[at:]))).UTC(), true
}
