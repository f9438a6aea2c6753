package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/gb28181/media"
	"github.com/vigil-perimeter/vigil/internal/fanout"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/ps"
)

// Live video for a GB/T 28181 platform (s=Play; device.Media). The
// platform's INVITE names a camera channel; the call gets its own RTP
// sender (gb28181/media: UDP, TCP active or passive, as the offer asks),
// fed with the camera's original access units — no re-encode — muxed as
// MPEG-PS (streams/ps). While a camera has viewers, its pipeline muxes
// each access unit once (one muxer per camera; a keyframe's pack carries
// the system header, the stream map and the parameter sets, so a viewer
// may join at any keyframe) and publishes the pack on the camera's
// fan-out hub (internal/fanout, DropOldest); one goroutine per call hands
// the packs to its sender. Several platform viewers of one camera share
// its single RTSP session and one muxing; a slow one costs the others
// nothing: it loses whole frames and resumes at the next keyframe.
// Cameras are expected without B-frames (surveillance profiles): a pack's
// DTS is its PTS, as streams.AccessUnit carries no DTS.
//
// A view is recorded in central's audit log (through the outbox) before
// the answer is sent: a view that cannot be recorded is refused (503),
// as on the edge's own API. Playback and Download INVITEs, and the
// in-dialog requests of their calls, go to the recorded side
// (gbplayback.go) when it is there, else they are refused with 488.
//
// Calls run until the platform's BYE, the node stopping (ctx), the
// viewer's connection failing, or no ACK within gbAckTimeout.
const (
	gbMaxCalls   = 16               // platform viewers at once, all cameras
	gbUnitBuffer = 64               // frames a call may lag behind its sender (≈2.5 s at 25 fps)
	gbAckTimeout = 32 * time.Second // RFC 3261 Timer H: 64 × T1
	gbViewerIdle = 10 * time.Second // a TCP viewer that takes nothing for this long is gone
)

// gbAuditor records an upstream view (auditLog.record).
type gbAuditor interface {
	record(who accessActor, action, target, client string, details any) error
}

// gbLiveDeps is what the upstream live side takes from the node.
type gbLiveDeps struct {
	cameras []string // of the config in force: one hub each
	// camera is the Vigil camera behind a GB channel ID.
	camera func(channel string) (string, bool)
	// mediaAddr is this box's address in an SDP answer to a platform at
	// remote (the platform sends nothing to it for UDP, but connects to
	// it for TCP passive).
	mediaAddr func(remote netip.Addr) netip.Addr
	// hangup sends the platform a BYE for a call that ended on our side
	// (the viewer's connection failed, no ACK); nil in tests.
	hangup func(callID, why string)
	audit  gbAuditor
	reg    prometheus.Registerer
	log    *slog.Logger
	// recorded serves Playback and Download offers and their calls
	// (gbplayback.go); nil refuses them (488).
	recorded *gbPlayback
}

// gbLive implements device.Media for live calls, and is the device's one
// Media: it hands recorded calls to the playback side (d.recorded).
type gbLive struct {
	ctx   context.Context // the node's: every call ends with it
	spawn func(func()) bool
	d     gbLiveDeps
	cams  map[string]*gbCamera // fixed at start: by camera ID

	mu    sync.Mutex
	calls map[string]*gbCall // by SIP Call-ID

	met gbLiveMetrics
}

type gbLiveMetrics struct {
	calls   *prometheus.CounterVec // result: started, refused, ended
	active  prometheus.Gauge
	frames  prometheus.Counter
	dropped prometheus.Counter
}

// gbCamera is one camera's muxing and its viewers.
type gbCamera struct {
	hub *fanout.Hub[media.Frame]
	mu  sync.Mutex // the camera's pipeline calls feed; held while muxing
	mux *ps.Muxer  // nil until a keyframe reaches a viewer
}

// gbCall is one platform viewer.
type gbCall struct {
	id, camera, channel, platform string
	sender                        *media.Sender
	ctx                           context.Context
	cancel                        context.CancelFunc
	acked                         bool
}

func newGBLive(ctx context.Context, spawn func(func()) bool, d gbLiveDeps) *gbLive {
	l := &gbLive{ctx: ctx, spawn: spawn, d: d, cams: map[string]*gbCamera{}, calls: map[string]*gbCall{}}
	l.met = gbLiveMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_gb28181_live_calls_total",
			Help: "GB/T 28181 live calls from the platform, by result: started (answered), refused, ended."}, []string{"result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_edge_gb28181_live_calls",
			Help: "GB/T 28181 live calls in progress."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_gb28181_live_frames_total",
			Help: "MPEG-PS frames handed to GB/T 28181 viewers' senders (all calls)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_gb28181_live_dropped_total",
			Help: "Frames GB/T 28181 viewers missed because they fell behind (each resumes at a keyframe)."}),
	}
	for _, r := range []string{"started", "refused", "ended"} {
		l.met.calls.WithLabelValues(r)
	}
	d.reg.MustRegister(l.met.calls, l.met.active, l.met.frames, l.met.dropped)
	for _, cam := range d.cameras {
		l.cams[cam] = &gbCamera{hub: fanout.New[media.Frame](fanout.DropOldest, fanout.WithDropHook(l.met.dropped.Inc))}
	}
	return l
}

// feed muxes a camera's access unit for its viewers, if it has any, and
// hands them the pack; it never blocks.
func (l *gbLive) feed(cam string, au streams.AccessUnit) {
	if l == nil {
		return
	}
	c := l.cams[cam]
	if c == nil || c.hub.Len() == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	codec, ok := psCodec(au.Codec)
	if !ok {
		return // cameras give H.264 or H.265 (streams/av)
	}
	if c.mux == nil || c.mux.Codec() != codec {
		if !au.Key {
			return
		}
		var err error
		if c.mux, err = ps.New(codec); err != nil {
			l.d.log.Error("gb28181 live: no muxer", "camera", cam, "err", err)
			return
		}
	}
	pts := ps.Ticks(au.PTS)
	pack, key, err := c.mux.Append(nil, au.NALUs, pts, pts) // its own bytes: senders keep them until sent
	if err != nil {
		l.d.log.Warn("gb28181 live: access unit not muxed", "camera", cam, "err", err)
		return
	}
	c.hub.Publish(media.Frame{PS: pack, PTS: pts, Key: key})
}

// refuse counts a refused INVITE and says why with a SIP status.
func (l *gbLive) refuse(code int, reason string, log ...any) error {
	l.met.calls.WithLabelValues("refused").Inc()
	l.d.log.Warn("gb28181 live call refused", append([]any{"code", code, "reason", reason}, log...)...)
	return &device.StatusError{Code: code, Reason: reason}
}

// Invite implements device.Media: it answers a live offer for a camera
// channel with our side of the stream, once the view is recorded.
func (l *gbLive) Invite(_ context.Context, inv device.Invite) ([]byte, error) {
	offer, err := media.ParseOffer(inv.SDP)
	if err != nil {
		return nil, l.refuse(400, "Bad Request", "call", inv.CallID, "err", err)
	}
	if (offer.Session == media.Playback || offer.Session == media.Download) && l.d.recorded != nil {
		return l.d.recorded.invite(inv, offer)
	}
	if offer.Session != "Play" {
		return nil, l.refuse(488, "Not Acceptable Here", "call", inv.CallID, "session", offer.Session,
			"err", "only live (s=Play) is served upstream")
	}
	cam, ok := l.d.camera(inv.ChannelID)
	if !ok || l.cams[cam] == nil {
		return nil, l.refuse(404, "Not Found", "call", inv.CallID, "channel", inv.ChannelID)
	}
	l.mu.Lock()
	_, dup := l.calls[inv.CallID]
	busy := len(l.calls) >= gbMaxCalls
	l.mu.Unlock()
	switch {
	case dup:
		return nil, l.refuse(482, "Loop Detected", "call", inv.CallID)
	case busy:
		return nil, l.refuse(486, "Busy Here", "call", inv.CallID, "calls", gbMaxCalls)
	}
	platform := offer.Addr.String()
	who := accessActor{User: "gb28181:" + inv.From, Role: "platform"}
	if err := l.d.audit.record(who, accessView, cam, platform, map[string]any{
		"gb28181": "live", "channel": inv.ChannelID, "call": inv.CallID, "transport": offer.Transport.String()}); err != nil {
		return nil, l.refuse(503, "Service Unavailable", "call", inv.CallID, "err", fmt.Errorf("view not recorded: %w", err))
	}
	addr := l.d.mediaAddr(offer.Addr)
	cfg := offer.SenderConfig(netip.AddrPortFrom(addr, 0))
	cfg.Log = l.d.log.With("call", inv.CallID, "camera", cam)
	if offer.Transport != media.UDP {
		cfg.WriteTimeout = gbViewerIdle
	}
	snd, err := media.NewSender(cfg)
	if err != nil {
		return nil, l.refuse(500, "Server Internal Error", "call", inv.CallID, "err", err)
	}
	answer, err := offer.Answer(media.AnswerParams{DeviceID: inv.ChannelID, Addr: addr, Port: snd.LocalPort()})
	if err != nil {
		snd.Close()
		return nil, l.refuse(500, "Server Internal Error", "call", inv.CallID, "err", err)
	}
	ctx, cancel := context.WithCancel(l.ctx)
	c := &gbCall{id: inv.CallID, camera: cam, channel: inv.ChannelID, platform: platform, sender: snd, ctx: ctx, cancel: cancel}
	l.mu.Lock()
	l.calls[c.id] = c
	l.mu.Unlock()
	l.met.active.Inc()
	// No ACK in time: the platform never took the answer.
	if !l.spawn(func() { l.expire(c) }) {
		l.end(c.id, "node stopping")
		return nil, &device.StatusError{Code: 503, Reason: "Service Unavailable"}
	}
	l.met.calls.WithLabelValues("started").Inc()
	l.d.log.Info("gb28181 live call answered", "call", c.id, "camera", cam, "channel", c.channel,
		"transport", offer.Transport.String(), "platform", platform)
	return answer, nil
}

// expire ends a call that got no ACK within gbAckTimeout.
func (l *gbLive) expire(c *gbCall) {
	t := time.NewTimer(gbAckTimeout)
	defer t.Stop()
	select {
	case <-t.C:
		l.mu.Lock()
		acked := c.acked
		l.mu.Unlock()
		if !acked {
			l.end(c.id, "no ACK")
		}
	case <-c.ctx.Done():
	}
}

// Ack implements device.Media: the platform took the answer, the
// stream starts.
func (l *gbLive) Ack(_ context.Context, callID string) {
	if l.d.recorded.owns(callID) {
		l.d.recorded.ack(callID)
		return
	}
	l.mu.Lock()
	c := l.calls[callID]
	start := c != nil && !c.acked
	if start {
		c.acked = true
	}
	l.mu.Unlock()
	if !start {
		return
	}
	sub := l.cams[c.camera].hub.Subscribe(c.ctx, gbUnitBuffer)
	if !l.spawn(func() { l.send(c) }) || !l.spawn(func() { l.forward(c, sub) }) {
		l.end(c.id, "node stopping")
	}
}

// send runs the call's sender until the call ends or the viewer fails.
func (l *gbLive) send(c *gbCall) {
	err := c.sender.Run(c.ctx)
	if c.ctx.Err() == nil {
		why := "viewer gone"
		if err != nil && !errors.Is(err, media.ErrClosed) {
			why = err.Error()
		}
		l.end(c.id, why)
	}
}

// forward hands the camera's packs to the call's sender, from a keyframe
// on, and again from the next keyframe after packs were missed.
func (l *gbLive) forward(c *gbCall, sub *fanout.Sub[media.Frame]) {
	defer sub.Close()
	missed, waitKey := uint64(0), true
	for f := range sub.C() {
		if d := sub.Dropped(); d != missed {
			missed, waitKey = d, true
		}
		if waitKey && !f.Key {
			continue
		}
		waitKey = false
		if c.sender.WriteFrame(f) {
			l.met.frames.Inc()
		}
	}
}

// psCodec is the program stream's stream type of a camera's codec.
func psCodec(c av.Codec) (ps.Codec, bool) {
	switch c {
	case av.H264:
		return ps.H264, true
	case av.H265:
		return ps.H265, true
	}
	return 0, false
}

// byPlatform is why a call ends when the platform says so (its BYE, or
// the device's dialog ended): nothing to tell it.
const byPlatform = "platform hung up"

// Bye implements device.Media: the platform hung up.
func (l *gbLive) Bye(_ context.Context, callID string) {
	if l.d.recorded.owns(callID) {
		l.d.recorded.bye(callID)
		return
	}
	l.end(callID, byPlatform)
}

// Info implements device.Media: playback control (MANSRTSP) for recorded
// calls; live calls take none.
func (l *gbLive) Info(_ context.Context, callID, _ string, body []byte) error {
	if l.d.recorded.owns(callID) {
		return l.d.recorded.info(callID, body)
	}
	return &device.StatusError{Code: 488, Reason: "Not Acceptable Here"}
}

// end ends a call once, whoever asks first.
func (l *gbLive) end(callID, why string) {
	l.mu.Lock()
	c := l.calls[callID]
	delete(l.calls, callID)
	l.mu.Unlock()
	if c == nil {
		return
	}
	c.cancel()
	c.sender.Close()
	l.met.active.Dec()
	l.met.calls.WithLabelValues("ended").Inc()
	st := c.sender.Stats()
	l.d.log.Info("gb28181 live call ended", "call", c.id, "camera", c.camera, "why", why,
		"frames", st.Frames, "dropped", st.Dropped, "bytes", st.Bytes)
	if why != byPlatform && l.d.hangup != nil {
		l.spawn(func() { l.d.hangup(c.id, why) })
	}
}

// active is how many calls are in progress (tests, health).
func (l *gbLive) active() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// close ends every hub once the node's tasks have stopped.
func (l *gbLive) close() {
	if l == nil {
		return
	}
	for _, c := range l.cams {
		c.hub.Close()
	}
}
