package clips

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Store. Zero fields take the defaults below.
type Config struct {
	// Dir holds the segments, their index and the pins journal (see
	// segments.go). It should be on the disk the video is meant to fill:
	// free space is measured there.
	Dir string
	// Default applies to cameras not listed in Cameras.
	Default CameraConfig
	// Cameras overrides Default per camera ID; a zero field inherits it.
	Cameras map[string]CameraConfig
	// MinFreeBytes is the global disk floor: the store evicts the oldest
	// unpinned video to keep this much free on Dir's file system, and
	// stops recording rather than go below it. Default 2 GiB. It must
	// cover Badger's own write-ahead (Footprint.Reserve), because Badger
	// writes through mmap and dies of SIGBUS when a disk fills under it.
	MinFreeBytes int64
	// MaxPinnedBytes refuses new pins once pinned video reaches it.
	// Default: half of what the store may use (its bytes plus free space
	// above the floor), measured at every maintenance pass.
	MaxPinnedBytes int64
	// EvidenceRetention releases a pin this long after it was made, if
	// nobody released it before. Default 30 days.
	EvidenceRetention time.Duration
	// ChunkDuration: a chunk, and with it its segment file, ends at the
	// first keyframe at least this long after its start; a codec or
	// parameter-set (picture size) change, a clock-source change or a
	// break in the camera's timestamps ends one sooner. Default 1 min:
	// 1,440 files a camera a day.
	ChunkDuration time.Duration
	// BucketDuration is the time bucket in video keys, the unit that
	// retention drops at once (DropPrefix). Default 10 min. Fixed when
	// the store is created; later values are ignored with a warning.
	BucketDuration time.Duration
	// FlushInterval: buffered access units are committed and fsynced at
	// least this often. Default 500 ms (so kill -9 or power loss loses at
	// most ~1 s).
	FlushInterval time.Duration
	// MaxPendingBytes bounds each camera's queue in front of the writer;
	// beyond it access units are dropped up to the next keyframe.
	// Default 4 MiB (8 s of a 4 Mbit/s stream).
	MaxPendingBytes int
	// MaxExportDuration bounds one export or HTTP request. Default 2 h.
	MaxExportDuration time.Duration
	// Footprint sizes Badger; zero fields take the edge defaults.
	Footprint Footprint
	// Clock is the wall clock for ages and pin expiry (tests advance it).
	// Default time.Now.
	Clock func() time.Time
	// Registerer receives the store's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// OnCondition is called whenever a system condition is raised or
	// cleared: from Open (disk_full when the disk is too full to open the
	// store), then from the store's goroutine. It must not block, nor call
	// Flush. A condition raised before a restart is remembered in Dir and
	// cleared through OnCondition once it no longer holds.
	OnCondition func(Condition)

	// writerGate, when set (tests), holds the writer goroutine at the start
	// of every flush until it is closed: a writer stalled as by a hung disk.
	writerGate chan struct{}
}

// CameraConfig is one camera's retention and evidence window.
type CameraConfig struct {
	// MaxBytes caps the camera's stored video (pinned included); the
	// oldest unpinned bucket goes first, a whole bucket at a time, and the
	// bucket being written is never dropped: keep it well above a bucket
	// of video (10 min at 4 Mbit/s ≈ 300 MB). 0: no byte budget.
	MaxBytes int64
	// MaxAge evicts unpinned video older than this (by bucket). 0: none.
	MaxAge time.Duration
	// PreRoll and PostRoll frame an alert's pin. Defaults 10 s and 30 s.
	PreRoll, PostRoll time.Duration
}

// Footprint is the index's (Badger's) memory and disk granularity. The
// defaults are sized for an edge box with 16 cameras: 2 × 8 MiB
// memtables, 8 MiB block cache, 4 MiB index cache, 16 MiB value-log
// files (which stay empty: the index keeps its values in the LSM).
type Footprint struct {
	MemTableSize     int64
	BlockCacheSize   int64
	IndexCacheSize   int64
	ValueLogFileSize int64
}

func (f Footprint) withDefaults() Footprint {
	if f.MemTableSize == 0 {
		f.MemTableSize = 8 << 20
	}
	if f.BlockCacheSize == 0 {
		f.BlockCacheSize = 8 << 20
	}
	if f.IndexCacheSize == 0 {
		f.IndexCacheSize = 4 << 20
	}
	if f.ValueLogFileSize == 0 {
		f.ValueLogFileSize = 16 << 20 // the index keeps its values in the LSM
	}
	return f
}

// Reserve is the most Badger may write on its own between two of the
// store's free-space checks: memtable flushes, a value-log file rewritten
// by GC, compaction output.
func (f Footprint) Reserve() int64 {
	f = f.withDefaults()
	return 3*f.MemTableSize + 2*f.ValueLogFileSize + 16<<20
}

const (
	defaultMinFree           = 2 << 30
	defaultEvidenceRetention = 30 * 24 * time.Hour
	defaultChunk             = time.Minute
	defaultBucket            = 10 * time.Minute
	defaultFlush             = 500 * time.Millisecond
	defaultMaxPending        = 4 << 20
	defaultMaxExport         = 2 * time.Hour
	defaultPreRoll           = 10 * time.Second
	defaultPostRoll          = 30 * time.Second
)

func (c Config) withDefaults() Config {
	c.Footprint = c.Footprint.withDefaults()
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = max(defaultMinFree, c.Footprint.Reserve())
	}
	if c.EvidenceRetention == 0 {
		c.EvidenceRetention = defaultEvidenceRetention
	}
	if c.ChunkDuration == 0 {
		c.ChunkDuration = defaultChunk
	}
	if c.BucketDuration == 0 {
		c.BucketDuration = defaultBucket
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = defaultFlush
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = defaultMaxPending
	}
	if c.MaxExportDuration == 0 {
		c.MaxExportDuration = defaultMaxExport
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Default.PreRoll == 0 {
		c.Default.PreRoll = defaultPreRoll
	}
	if c.Default.PostRoll == 0 {
		c.Default.PostRoll = defaultPostRoll
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: empty"))
	}
	if r := c.Footprint.Reserve(); c.MinFreeBytes < r {
		errs = append(errs, fmt.Errorf("min_free_bytes: %d is below Badger's reserve of %d bytes for this footprint", c.MinFreeBytes, r))
	}
	if c.Footprint.ValueLogFileSize < 1<<20 || c.Footprint.ValueLogFileSize >= 2<<30 {
		errs = append(errs, fmt.Errorf("footprint.value_log_file_size: %d is outside [1 MiB, 2 GiB)", c.Footprint.ValueLogFileSize))
	}
	if c.BucketDuration < time.Second {
		errs = append(errs, fmt.Errorf("bucket_duration: %v is below 1s", c.BucketDuration))
	}
	if c.FlushInterval > time.Second {
		errs = append(errs, fmt.Errorf("flush_interval: %v exceeds 1s, the most video a crash may lose", c.FlushInterval))
	}
	check := func(name string, cc CameraConfig) {
		if cc.MaxBytes < 0 || cc.MaxAge < 0 || cc.PreRoll < 0 || cc.PostRoll < 0 {
			errs = append(errs, fmt.Errorf("cameras[%s]: negative budget or roll", name))
		}
	}
	check("default", c.Default)
	for id, cc := range c.Cameras {
		if id == "" {
			errs = append(errs, errors.New("cameras: empty camera ID"))
		}
		check(id, cc)
	}
	if len(errs) > 0 {
		return fmt.Errorf("clips: config: %w", errors.Join(errs...))
	}
	return nil
}

// camera returns the effective configuration of a camera.
func (c Config) camera(id string) CameraConfig {
	cc, d := c.Cameras[id], c.Default
	if cc.MaxBytes == 0 {
		cc.MaxBytes = d.MaxBytes
	}
	if cc.MaxAge == 0 {
		cc.MaxAge = d.MaxAge
	}
	if cc.PreRoll == 0 {
		cc.PreRoll = d.PreRoll
	}
	if cc.PostRoll == 0 {
		cc.PostRoll = d.PostRoll
	}
	return cc
}
