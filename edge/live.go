package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/fmp4live"
	"github.com/vigil-perimeter/vigil/wire"
)

// Live view: central asks for a camera with live_start (and repeats it as
// a keep-alive while anyone watches); the edge fragments the camera's own
// access units into fMP4 (streams/fmp4live, no re-encoding) and sends them
// as binary frames on the uplink (wire.MarshalLive). A stream ends on
// live_stop, when the connection it was started on ends, or when no
// keep-alive came for liveKeepAlive.
//
// The recorder path is never held up: each stream has its own bounded
// queue of access units, filled without blocking from OnAccessUnit. When
// the queue (a slow fragmenter) or the uplink's binary queue (a slow link)
// is full, what does not fit is dropped and the stream resumes at the next
// keyframe.

// liveKeepAlive ends a stream central stopped renewing (central renews
// every 5 s).
var liveKeepAlive = 20 * time.Second

// liveQueue bounds the access units waiting for one stream's fragmenter.
const liveQueue = 60

// liveHub runs the live streams of one node (live_start, live_stop).
type liveHub struct {
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]*liveStream // by camera
	closed  bool
	wg      sync.WaitGroup

	fragments *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	starts    *prometheus.CounterVec
}

type liveItem struct {
	au     streams.AccessUnit
	resync bool // units were dropped before this one
}

type liveStream struct {
	cam      string
	q        chan liveItem
	out      *uplink.Stream
	skipping atomic.Bool  // feed side: dropping until the next keyframe
	alive    atomic.Int64 // keep-alive deadline, unix ns
	cancel   context.CancelFunc
	done     chan struct{}
}

func newLiveHub(cams []string, reg prometheus.Registerer, log *slog.Logger) *liveHub {
	h := &liveHub{log: log, streams: map[string]*liveStream{},
		fragments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_fragments_total", Help: "Live view fMP4 fragments sent to central, by camera."}, []string{"camera"}),
		bytes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_bytes_total", Help: "Live view bytes (headers included) sent to central, by camera."}, []string{"camera"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_dropped_total",
			Help: "Live view data dropped (then resumed at the next keyframe), by camera and where: queue (access units) or uplink (fragments)."}, []string{"camera", "where"}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_starts_total", Help: "Live view streams started, by camera."}, []string{"camera"}),
	}
	for _, cam := range cams { // exported at 0 before the first event
		for _, v := range []*prometheus.CounterVec{h.fragments, h.bytes, h.starts} {
			v.WithLabelValues(cam).Add(0)
		}
		h.dropped.WithLabelValues(cam, "queue").Add(0)
		h.dropped.WithLabelValues(cam, "uplink").Add(0)
	}
	reg.MustRegister(h.fragments, h.bytes, h.dropped, h.starts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_live_streams", Help: "Live view streams running."},
			func() float64 { return float64(len(h.running())) }))
	return h
}

func (h *liveHub) running() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	cams := make([]string, 0, len(h.streams))
	for c := range h.streams {
		cams = append(cams, c)
	}
	sort.Strings(cams)
	return cams
}

// feed offers one access unit to the camera's stream, if any; it never
// blocks.
func (h *liveHub) feed(cam string, au streams.AccessUnit) {
	h.mu.Lock()
	st := h.streams[cam]
	h.mu.Unlock()
	if st == nil {
		return
	}
	skipping := st.skipping.Load()
	if skipping && !au.Key {
		h.dropped.WithLabelValues(cam, "queue").Inc()
		return
	}
	select {
	case st.q <- liveItem{au: au, resync: skipping}:
		if skipping {
			st.skipping.Store(false)
		}
	default:
		st.skipping.Store(true)
		h.dropped.WithLabelValues(cam, "queue").Inc()
	}
}

// handleStart answers live_start (routed in rpc.go): start the camera's
// stream on this connection, or renew its keep-alive.
func (h *liveHub) handleStart(_ context.Context, req wire.Request, out *uplink.Responder) {
	running, err := h.start(req.Camera, out.Stream())
	if err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	b, _ := json.Marshal(wire.LiveStarted{Camera: req.Camera, KeepAliveS: int(liveKeepAlive / time.Second), Running: running})
	_ = out.Send("application/json", b, true)
}

// handleStop answers live_stop (routed in rpc.go).
func (h *liveHub) handleStop(_ context.Context, req wire.Request, out *uplink.Responder) {
	stopped := h.stop(req.Camera, nil)
	b, _ := json.Marshal(map[string]any{"camera": req.Camera, "stopped": stopped})
	_ = out.Send("application/json", b, true)
}

// start starts the camera's stream on out, or renews its keep-alive if it
// already runs on that connection (running is then true).
func (h *liveHub) start(cam string, out *uplink.Stream) (running bool, err error) {
	if out == nil {
		return false, errors.New("live view needs the uplink's binary channel")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false, errors.New("edge is stopping")
	}
	if st := h.streams[cam]; st != nil {
		if st.out == out {
			st.alive.Store(time.Now().Add(liveKeepAlive).UnixNano())
			return true, nil
		}
		// Started on an older connection: that one is gone.
		st.cancel()
		delete(h.streams, cam)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &liveStream{cam: cam, q: make(chan liveItem, liveQueue), out: out, cancel: cancel, done: make(chan struct{})}
	st.alive.Store(time.Now().Add(liveKeepAlive).UnixNano())
	h.streams[cam] = st
	h.starts.WithLabelValues(cam).Inc()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(st.done)
		why := h.run(ctx, st)
		h.stop(cam, st)
		h.log.Info("live view stopped", "camera", cam, "why", why)
	}()
	h.log.Info("live view started", "camera", cam)
	return false, nil
}

// stop ends the camera's stream (only st, if given); false if none ran.
func (h *liveHub) stop(cam string, st *liveStream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.streams[cam]
	if cur == nil || (st != nil && cur != st) {
		return false
	}
	delete(h.streams, cam)
	cur.cancel()
	return true
}

// close ends every stream and waits for them.
func (h *liveHub) close() {
	h.mu.Lock()
	h.closed = true
	for cam, st := range h.streams {
		st.cancel()
		delete(h.streams, cam)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// liveSender sends one stream's segments: an init frame goes out with
// the next key fragment, so a viewer always starts on a keyframe.
type liveSender struct {
	h        *liveHub
	st       *liveStream
	init     []byte // the current init frame
	needInit bool
}

func (s *liveSender) send(seg fmp4live.Segment) error {
	h, st := s.h, s.st
	kind := byte(wire.LiveFragment)
	if seg.Init {
		kind = wire.LiveInit
	}
	frame, err := wire.MarshalLive(wire.LiveFrame{Kind: kind, Key: seg.Key, Camera: st.cam, Codec: seg.Codec,
		Seq: seg.Seq, Time: seg.Time, BaseTime: seg.BaseTime, Data: seg.Data})
	if err != nil {
		return err
	}
	if seg.Init {
		s.init, s.needInit = frame, true
		return nil // sent with the next key fragment
	}
	if s.needInit {
		if !seg.Key {
			return nil // waiting for a keyframe to go with the init
		}
		if err := st.out.TrySend(s.init); err != nil {
			return err
		}
		h.bytes.WithLabelValues(st.cam).Add(float64(len(s.init)))
		s.needInit = false
	}
	if err := st.out.TrySend(frame); err != nil {
		return err
	}
	h.fragments.WithLabelValues(st.cam).Inc()
	h.bytes.WithLabelValues(st.cam).Add(float64(len(frame)))
	return nil
}

// sendEnd tells central the stream ends (best effort).
func sendEnd(st *liveStream) {
	if end, err := wire.MarshalLive(wire.LiveFrame{Kind: wire.LiveEnd, Camera: st.cam}); err == nil {
		_ = st.out.TrySend(end)
	}
}

// run fragments the stream's access units until it is stopped, its
// connection ends or its keep-alive runs out, and says why it ended.
func (h *liveHub) run(ctx context.Context, st *liveStream) string {
	f := fmp4live.New(fmp4live.DefaultTarget)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	out := &liveSender{h: h, st: st, needInit: true}
	for {
		select {
		case <-ctx.Done():
			sendEnd(st)
			return "stopped"
		case <-st.out.Done():
			return "connection to central ended"
		case <-tick.C:
			if time.Now().UnixNano() > st.alive.Load() {
				sendEnd(st)
				return "no keep-alive from central"
			}
		case it := <-st.q:
			if it.resync {
				f.Resync()
			}
			segs, err := f.Push(it.au)
			if err != nil {
				h.log.Warn("live view: fragmenting", "camera", st.cam, "err", err)
				f.Resync()
				continue
			}
			for _, seg := range segs {
				switch err := out.send(seg); {
				case errors.Is(err, uplink.ErrStreamClosed):
					return "connection to central ended"
				case errors.Is(err, uplink.ErrStreamFull):
					// The link is slower than the camera: skip to the next
					// keyframe rather than queue seconds of delay.
					h.dropped.WithLabelValues(st.cam, "uplink").Inc()
					f.Resync()
				case err != nil:
					h.log.Warn("live view: frame", "camera", st.cam, "err", err)
				}
			}
		}
	}
}
