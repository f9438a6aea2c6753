// Package camera runs one camera end to end on the edge: a supervised RTSP
// session that reconnects by itself, and an analysis pipeline (decode,
// sample, motion) that lives across reconnects, so consumers subscribe once
// and never see a drop. Recording never waits for analysis: units reach the
// recorder straight from the session, and the analyser through a bounded
// queue that sheds whole GOPs when decoding falls behind.
package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/streams/rtsp"
	"github.com/vigil-perimeter/vigil/streams/tamper"
)

// Config describes one camera.
type Config struct {
	ID  string
	URL string // main stream: recorded, and analysed unless SubURL is set
	// SubURL is the camera's lower-resolution sub-stream, if it has one:
	// analysing it instead of the main stream costs a fraction of the CPU.
	SubURL    string
	Transport string
	// SignalLostAfter raises a signal_lost tamper event when the main
	// stream has delivered nothing for this long (default 10 s).
	SignalLostAfter time.Duration
	// AnalysisFPS and AnalysisWidth: analyse small, keep big (defaults 5, 320).
	AnalysisFPS   float64
	AnalysisWidth int
	// FullDecode: see AnalyzerConfig.FullDecode.
	FullDecode bool
	// SnapshotWidth caps the width of alert snapshots (default 1280).
	SnapshotWidth int
	Motion        motion.Config
	Tamper        tamper.Config
	// Perimeter is the camera's tripwires and dwell regions (none: no
	// perimeter analysis); see AnalyzerConfig.Perimeter.
	Perimeter    perimeter.Config
	StallTimeout time.Duration
	// Backoff bounds the wait between reconnects (defaults 1 s .. 3 s): a
	// failed attempt costs one TCP connect on the LAN, and a camera that
	// comes back must be watched again within seconds.
	BackoffMin, BackoffMax time.Duration
	// QueueLen is how many access units may wait for the decoder (default 90).
	QueueLen int
	// HealthWindow is how long analysis health is judged over (default
	// 10 s): see AnalysisStatus.
	HealthWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.AnalysisFPS <= 0 {
		c.AnalysisFPS = 5
	}
	if c.AnalysisWidth <= 0 {
		c.AnalysisWidth = 320
	}
	if c.SnapshotWidth <= 0 {
		c.SnapshotWidth = 1280
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 3 * time.Second
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 90
	}
	if c.SignalLostAfter <= 0 {
		c.SignalLostAfter = 10 * time.Second
	}
	if c.HealthWindow <= 0 {
		c.HealthWindow = defaultHealthWindow
	}
	return c
}

// Event is a motion event with the picture that confirmed it.
type Event struct {
	Camera       string
	Start        time.Time
	TimeSource   string
	Boxes        []motion.Box
	Zones        []string // zones the motion touched
	Snapshot     []byte   // JPEG
	SnapshotTime time.Time
}

// Tamper kinds: someone or something stopped the camera from seeing.
const (
	TamperCovered    = "covered"     // lens covered or sprayed: dark or featureless
	TamperBlinded    = "blinded"     // a light shone into it: saturated
	TamperDefocused  = "defocused"   // focus turned or lens smeared: detail gone
	TamperMoved      = "moved"       // turned away: the scene no longer matches its reference
	TamperSignalLost = "signal_lost" // no video from the camera
	TamperTooDark    = "dark"        // the scene darkened slowly until nothing can be seen (yellow, not tampering)
)

// TamperEvent reports a tamper condition starting, or clearing.
type TamperEvent struct {
	Camera       string
	Kind         string // one of the Tamper* constants
	Time         time.Time
	Cleared      bool   // the condition ended at Time
	Detail       string // measured values, for the log and the alert
	Snapshot     []byte // JPEG of the picture that showed it, if any
	SnapshotTime time.Time
}

// Parent receives what a camera produces. Calls come from the camera's
// goroutines and must return quickly.
type Parent interface {
	// OnMotion is called once when a motion event starts.
	OnMotion(Event)
	// OnTamper is called when a tamper condition starts and when it clears.
	OnTamper(TamperEvent)
	// OnAccessUnit sees every access unit, in order, for recording.
	OnAccessUnit(camera string, au streams.AccessUnit)
	// OnAnalysis is called when analysis becomes degraded (video arrives
	// but too little of it is analysed) and when it recovers.
	OnAnalysis(AnalysisEvent)
	// OnPerimeter is called once per line crossing and once per dwell
	// time reached (see PerimeterEvent), on the analysis goroutine.
	OnPerimeter(PerimeterEvent)
}

// BoxSink is a Parent that also keeps the moving objects of analysed
// frames (recorded playback draws them): OnMotionBoxes is called for every
// analysed frame with any (normalised boxes, not garbled), on the analysis
// goroutine, and must not wait.
type BoxSink interface {
	OnMotionBoxes(camera string, t time.Time, boxes []motion.Box)
}

// Status is a snapshot of the camera's health.
type Status struct {
	Online    bool
	LastFrame time.Time
	Error     string
	Analysis  AnalysisStatus
}

// Camera is one supervised camera. Create with New, run with Run.
type Camera struct {
	cfg       Config
	parent    Parent
	log       *slog.Logger
	count     *counters // exported by the node's Metrics, read by Counts
	queue     chan streams.AccessUnit
	snapshots chan chan snapshotReply
	previews  chan previewRequest // motion previews (reconfigure.go)
	// perimPreviews: installers' draft lines (perimeter_preview.go)
	perimPreviews chan perimeterPreviewRequest
	reconf        chan struct{} // motionNext or perimeterNext is set (reconfigure.go)
	stats         rtsp.Stats
	received      atomic.Uint64 // units offered to analysis (health)

	mu          sync.Mutex
	status      Status
	lastArrival time.Time // local clock of the last main-stream unit
	resync      bool      // analysis dropped units: skip to the next keyframe
	motionNext  *motion.Config
	// perimeterNext: new lines and dwell regions for the analyser
	// (SetPerimeter).
	perimeterNext *perimeter.Config
}

// Counts are the camera's counters now (what /metrics exports).
func (c *Camera) Counts() Counts { return c.count.snapshot() }

// New makes a camera; it does nothing until Run.
func New(cfg Config, parent Parent, metrics *Metrics, log *slog.Logger) (*Camera, error) {
	cfg = cfg.withDefaults()
	if cfg.ID == "" {
		return nil, errors.New("camera: empty id")
	}
	if err := cfg.Motion.Defaults().Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: %w", cfg.ID, err)
	}
	if err := cfg.Tamper.Defaults().Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: tamper: %w", cfg.ID, err)
	}
	if err := cfg.Perimeter.Defaults().Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: perimeter: %w", cfg.ID, err)
	}
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Camera{
		status:        Status{Analysis: AnalysisStatus{State: AnalysisStarting}},
		cfg:           cfg,
		parent:        parent,
		log:           log.With("camera", cfg.ID),
		count:         metrics.counters(cfg.ID),
		queue:         make(chan streams.AccessUnit, cfg.QueueLen),
		snapshots:     make(chan chan snapshotReply),
		previews:      make(chan previewRequest),
		perimPreviews: make(chan perimeterPreviewRequest),
		reconf:        make(chan struct{}, 1),
	}, nil
}

// ID is the camera's configured ID.
func (c *Camera) ID() string { return c.cfg.ID }

// Status reports the camera's health.
func (c *Camera) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Run supervises the session and the analysis pipeline until ctx ends.
func (c *Camera) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	var analyseErr error
	spawn(func() { analyseErr = c.analyse(ctx) })
	spawn(func() { c.watchSignal(ctx) })
	if c.cfg.SubURL != "" {
		spawn(func() { c.supervise(ctx, c.cfg.SubURL, "sub", c.analyseAU) })
	}
	c.supervise(ctx, c.cfg.URL, "main", c.onAU)
	cancel()
	wg.Wait()
	return analyseErr
}

// supervise owns reconnect policy for one stream: capped exponential
// backoff with jitter that grows only while the camera is unreachable — a
// session that delivered video starts the next wait from BackoffMin, so a
// camera that drops again right after coming back is retried at once.
func (c *Camera) supervise(ctx context.Context, url, stream string, onAU func(streams.AccessUnit)) {
	log := c.log.With("stream", stream)
	stats := &c.stats
	if stream != "main" {
		stats = &rtsp.Stats{}
	}
	var onLost func(uint64)
	if stream == "main" {
		onLost = func(n uint64) { c.count.packetsLost.Add(n) }
	}
	wait := c.cfg.BackoffMin
	for attempt := 0; ctx.Err() == nil; attempt++ {
		var delivered atomic.Bool
		err := rtsp.Run(ctx, rtsp.Config{
			URL: url, Transport: c.cfg.Transport, StallTimeout: c.cfg.StallTimeout, OnPacketsLost: onLost, Log: log,
		}, stats, func(au streams.AccessUnit) {
			delivered.Store(true)
			onAU(au)
		})
		if ctx.Err() != nil {
			return
		}
		if stream == "main" {
			c.setOffline(err)
		}
		c.count.reconnects.Add(1)
		if delivered.Load() {
			wait = c.cfg.BackoffMin
		}
		jittered := wait/2 + rand.N(wait/2+1)
		log.Warn("camera unavailable, retrying", "err", err, "retry_in", jittered.Round(time.Millisecond), "attempt", attempt+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(jittered):
		}
		wait = min(wait*2, c.cfg.BackoffMax)
	}
}

func (c *Camera) setOffline(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Online = false
	if err != nil {
		c.status.Error = err.Error()
	}
}

// onAU receives the main stream on gortsplib's goroutine: hand on, never
// block.
func (c *Camera) onAU(au streams.AccessUnit) {
	c.mu.Lock()
	c.status.Online, c.status.LastFrame, c.status.Error = true, au.Time, ""
	c.lastArrival = time.Now()
	c.mu.Unlock()
	c.count.framesIn.Add(1)
	c.count.bytesIn.Add(uint64(au.Bytes))
	c.count.lastFrame.Store(au.Time.UnixNano())
	if c.parent != nil {
		c.parent.OnAccessUnit(c.cfg.ID, au)
	}
	if c.cfg.SubURL == "" {
		c.analyseAU(au)
	}
}

// analyseAU queues a unit for the analyser without ever blocking.
func (c *Camera) analyseAU(au streams.AccessUnit) {
	c.received.Add(1)
	select {
	case c.queue <- au:
	default:
		// The decoder is behind: shed what waits (the oldest) and restart
		// at the next keyframe, since P-frames without their GOP are noise.
		n := c.drain()
		c.count.dropped.Add(uint64(n + 1))
		c.mu.Lock()
		c.resync = true
		c.mu.Unlock()
	}
}

// watchSignal raises signal_lost when the main stream has delivered
// nothing for SignalLostAfter (also when it never came up), and clears it
// when video flows again.
func (c *Camera) watchSignal(ctx context.Context) {
	start := time.Now()
	tick := time.NewTicker(min(time.Second, c.cfg.SignalLostAfter/4))
	defer tick.Stop()
	lost := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c.mu.Lock()
			last, reason := c.lastArrival, c.status.Error
			c.mu.Unlock()
			if last.IsZero() {
				last = start
			}
			silent := now.Sub(last)
			switch {
			case !lost && silent >= c.cfg.SignalLostAfter:
				lost = true
				c.log.Warn("camera signal lost", "silent_for", silent.Round(time.Second), "reason", reason)
				if c.parent != nil {
					c.parent.OnTamper(TamperEvent{Camera: c.cfg.ID, Kind: TamperSignalLost, Time: last.UTC(),
						Detail: fmt.Sprintf("no video for %v: %s", silent.Round(time.Second), reason)})
				}
			case lost && silent < c.cfg.SignalLostAfter:
				lost = false
				c.log.Info("camera signal back")
				if c.parent != nil {
					c.parent.OnTamper(TamperEvent{Camera: c.cfg.ID, Kind: TamperSignalLost, Time: last.UTC(), Cleared: true})
				}
			}
		}
	}
}

func (c *Camera) drain() int {
	n := 0
	for {
		select {
		case <-c.queue:
			n++
		default:
			return n
		}
	}
}
