package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/gb28181/media"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/ps"
)

// Recorded video for a GB/T 28181 platform: s=Playback (the recording of
// t= start..stop, watched at real time and steered with MANSRTSP in SIP
// INFO: pause, resume, seek, speed) and s=Download (the same range sent
// at a=downloadspeed times real time, or as fast as the platform takes
// it). The live side (gblive.go) is the device's one Media and hands
// these offers and their in-dialog requests here.
//
// A call reads the camera's recorded access units from the clip store
// (clips.Units: the exports' own planning, one short window and one part
// in memory at a time), muxes them as MPEG-PS (one muxer per call) and
// hands the packs to its own RTP sender (gb28181/media). One goroutine,
// the call's pump, owns the reader, the muxer and the clock: INFO
// requests reach it as messages with a reply, so a control is in force
// when the platform gets its 200. Pacing: a unit leaves at the instant
// its recording time, scaled, falls after the moment the pump last took
// its bearings (the start, a resume, a seek, a speed change, or the end
// of a gap in the recording, which is not waited out). Above 2× only
// keyframes are read and sent. A download with no speed is unpaced but
// never outruns the sender: the pump waits while half the sender's queue
// is in flight, so memory stays bounded whatever the platform's link.
//
// Presentation times are the recording's own: the wall time of each unit
// from the call's first one, in 90 kHz ticks (a gap in the recording is a
// jump in PTS, a seek a jump back or forth). As for live, cameras are
// expected without B-frames: DTS is PTS.
//
// At the end of the range the sender is told to finish; once the last
// pack is out the platform is told (MediaStatus, NotifyType 121) and is
// expected to hang up; if it does not within gbEndWait, the device hangs
// up itself. Every playback is recorded in the audit log as a view and
// every download as a download (accessView, accessDownload) before it is
// answered; one that cannot be recorded is refused (503).
const (
	gbMaxPlaybacks = 8                // playbacks and downloads at once, all cameras
	gbPlayQueue    = 64               // frames a call's sender may hold
	gbPlayWait     = 2 * time.Second  // an INFO waits this long for the pump's answer
	gbGapSkip      = 3 * time.Second  // a wait longer than this (a gap in the recording) is skipped
	gbEndWait      = 10 * time.Second // the platform's BYE after MediaStatus
	gbPollBusy     = 5 * time.Millisecond
	gbMinScale     = 0.25
	gbMaxScale     = 4.0
	gbKeyOnlyScale = 2.0 // above this, keyframes only
)

// gbUnits is what recorded calls read of the clip store.
type gbUnits interface {
	OpenUnits(camera string, from, to time.Time) (*clips.Units, error)
}

// gbPlaybackDeps is what the recorded side takes from the node.
type gbPlaybackDeps struct {
	clips  gbUnits
	camera func(channel string) (string, bool)
	// mediaAddr is this box's address in an SDP answer to a platform at
	// remote.
	mediaAddr func(remote netip.Addr) netip.Addr
	// hangup sends the platform a BYE for a call that ended on our side
	// (device.Hangup); mediaStatus tells it a call's range was sent to its
	// end (device.MediaStatus, NotifyType 121). Either may be nil (tests).
	hangup      func(callID, why string)
	mediaStatus func(callID string) error
	audit       gbAuditor
	reg         prometheus.Registerer
	log         *slog.Logger
}

// gbPlayback serves Playback and Download calls.
type gbPlayback struct {
	ctx   context.Context // the node's: every call ends with it
	spawn func(func()) bool
	d     gbPlaybackDeps

	mu    sync.Mutex
	calls map[string]*gbPlay // by SIP Call-ID

	met gbPlaybackMetrics
}

type gbPlaybackMetrics struct {
	calls  *prometheus.CounterVec // session (playback, download), result (started, refused, finished, ended)
	active prometheus.Gauge
	frames prometheus.Counter
}

// gbPlay is one playback or download.
type gbPlay struct {
	id, camera, channel, platform string
	session                       string // media.Playback or media.Download
	from, to                      time.Time
	speed                         float64 // download: a=downloadspeed; 0 unpaced
	units                         *clips.Units
	sender                        *media.Sender
	ctx                           context.Context
	cancel                        context.CancelFunc
	ctl                           chan gbPlayCtl // to the pump
	pumpDone                      chan struct{}
	acked                         bool
}

// gbPlayCtl is one MANSRTSP request for the pump, with its reply.
type gbPlayCtl struct {
	c     *media.Control
	reply chan error
}

func newGBPlayback(ctx context.Context, spawn func(func()) bool, d gbPlaybackDeps) *gbPlayback {
	p := &gbPlayback{ctx: ctx, spawn: spawn, d: d, calls: map[string]*gbPlay{}}
	p.met = gbPlaybackMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_gb28181_playback_calls_total",
			Help: "GB/T 28181 playback and download calls from the platform, by session and result: started (answered), refused, finished (the range sent to its end), ended."},
			[]string{"session", "result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_edge_gb28181_playback_calls",
			Help: "GB/T 28181 playback and download calls in progress."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_gb28181_playback_frames_total",
			Help: "Recorded MPEG-PS frames handed to GB/T 28181 playback and download senders."}),
	}
	for _, s := range []string{"playback", "download"} {
		for _, r := range []string{"started", "refused", "finished", "ended"} {
			p.met.calls.WithLabelValues(s, r)
		}
	}
	d.reg.MustRegister(p.met.calls, p.met.active, p.met.frames)
	return p
}

func sessionLabel(s string) string {
	if s == media.Download {
		return "download"
	}
	return "playback"
}

func (p *gbPlayback) refuse(session string, code int, reason string, log ...any) error {
	p.met.calls.WithLabelValues(sessionLabel(session), "refused").Inc()
	p.d.log.Warn("gb28181 recorded call refused", append([]any{"session", session, "code", code, "reason", reason}, log...)...)
	return &device.StatusError{Code: code, Reason: reason}
}

// invite answers a Playback or Download offer (parsed by the live side's
// Invite) once the range is found recorded and the call is audited.
func (p *gbPlayback) invite(inv device.Invite, offer *media.Offer) ([]byte, error) {
	sess := offer.Session
	if offer.Start.IsZero() || offer.Stop.IsZero() || !offer.Stop.After(offer.Start) {
		return nil, p.refuse(sess, 488, "Not Acceptable Here", "call", inv.CallID, "err", "t= is not a time range")
	}
	cam, ok := p.d.camera(inv.ChannelID)
	if !ok {
		return nil, p.refuse(sess, 404, "Not Found", "call", inv.CallID, "channel", inv.ChannelID)
	}
	p.mu.Lock()
	_, dup := p.calls[inv.CallID]
	busy := len(p.calls) >= gbMaxPlaybacks
	p.mu.Unlock()
	switch {
	case dup:
		return nil, p.refuse(sess, 482, "Loop Detected", "call", inv.CallID)
	case busy:
		return nil, p.refuse(sess, 486, "Busy Here", "call", inv.CallID, "calls", gbMaxPlaybacks)
	}
	units, err := p.d.clips.OpenUnits(cam, offer.Start, offer.Stop)
	switch {
	case errors.Is(err, clips.ErrNoVideo), errors.Is(err, clips.ErrUnknownCamera):
		return nil, p.refuse(sess, 404, "Not Found", "call", inv.CallID, "camera", cam, "err", err)
	case err != nil:
		return nil, p.refuse(sess, 500, "Server Internal Error", "call", inv.CallID, "camera", cam, "err", err)
	}
	platform := offer.Addr.String()
	who := accessActor{User: "gb28181:" + inv.From, Role: "platform"}
	action, what := accessView, "playback"
	details := map[string]any{"channel": inv.ChannelID, "call": inv.CallID, "transport": offer.Transport.String(),
		"range": offer.Start.UTC().Format(time.RFC3339) + "/" + offer.Stop.UTC().Format(time.RFC3339)}
	if sess == media.Download {
		action, what = accessDownload, "download"
		details["speed"] = offer.Speed
	}
	details["gb28181"] = what
	if err := p.d.audit.record(who, action, cam, platform, details); err != nil {
		units.Close()
		return nil, p.refuse(sess, 503, "Service Unavailable", "call", inv.CallID, "err", fmt.Errorf("%s not recorded: %w", what, err))
	}
	addr := p.d.mediaAddr(offer.Addr)
	cfg := offer.SenderConfig(netip.AddrPortFrom(addr, 0))
	cfg.Log = p.d.log.With("call", inv.CallID, "camera", cam, "session", sess)
	cfg.QueueFrames = gbPlayQueue
	if offer.Transport != media.UDP {
		cfg.WriteTimeout = gbViewerIdle
	}
	snd, err := media.NewSender(cfg)
	if err != nil {
		units.Close()
		return nil, p.refuse(sess, 500, "Server Internal Error", "call", inv.CallID, "err", err)
	}
	answer, err := offer.Answer(media.AnswerParams{DeviceID: inv.ChannelID, Addr: addr, Port: snd.LocalPort()})
	if err != nil {
		units.Close()
		snd.Close()
		return nil, p.refuse(sess, 500, "Server Internal Error", "call", inv.CallID, "err", err)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	c := &gbPlay{id: inv.CallID, camera: cam, channel: inv.ChannelID, platform: platform, session: sess,
		from: offer.Start, to: offer.Stop, units: units, sender: snd, ctx: ctx, cancel: cancel,
		ctl: make(chan gbPlayCtl), pumpDone: make(chan struct{})}
	if sess == media.Download && offer.Speed > 0 {
		c.speed = float64(offer.Speed)
	}
	p.mu.Lock()
	p.calls[c.id] = c
	p.mu.Unlock()
	p.met.active.Inc()
	if !p.spawn(func() { p.expire(c) }) {
		p.end(c.id, "node stopping")
		return nil, &device.StatusError{Code: 503, Reason: "Service Unavailable"}
	}
	p.met.calls.WithLabelValues(sessionLabel(sess), "started").Inc()
	p.d.log.Info("gb28181 recorded call answered", "call", c.id, "session", sess, "camera", cam, "channel", c.channel,
		"from", c.from, "to", c.to, "speed", offer.Speed, "transport", offer.Transport.String(), "platform", platform)
	return answer, nil
}

// owns reports whether callID is a recorded call.
func (p *gbPlayback) owns(callID string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[callID] != nil
}

// expire ends a call that got no ACK within gbAckTimeout.
func (p *gbPlayback) expire(c *gbPlay) {
	t := time.NewTimer(gbAckTimeout)
	defer t.Stop()
	select {
	case <-t.C:
		p.mu.Lock()
		acked := c.acked
		p.mu.Unlock()
		if !acked {
			p.end(c.id, "no ACK")
		}
	case <-c.ctx.Done():
	}
}

// ack starts the call's sender and pump.
func (p *gbPlayback) ack(callID string) {
	p.mu.Lock()
	c := p.calls[callID]
	start := c != nil && !c.acked
	if start {
		c.acked = true
	}
	p.mu.Unlock()
	if !start {
		return
	}
	if !p.spawn(func() { p.pump(c) }) {
		c.units.Close() // the pump owns the reader from the ACK on, but never ran
		p.end(c.id, "node stopping")
		return
	}
	if !p.spawn(func() { p.send(c) }) {
		p.end(c.id, "node stopping")
	}
}

// send runs the call's sender. When it has sent the range to its end,
// the platform is told and given gbEndWait to hang up.
func (p *gbPlayback) send(c *gbPlay) {
	err := c.sender.Run(c.ctx)
	if c.ctx.Err() != nil {
		return
	}
	if err != nil {
		why := "viewer gone"
		if !errors.Is(err, media.ErrClosed) {
			why = err.Error()
		}
		p.hangup(c, why)
		return
	}
	// Run returns nil only after Finish: the range was sent.
	p.met.calls.WithLabelValues(sessionLabel(c.session), "finished").Inc()
	if p.d.mediaStatus == nil {
		return // the platform hangs up when it sees the stream end
	}
	if err := p.d.mediaStatus(c.id); err != nil && c.ctx.Err() == nil {
		p.d.log.Warn("gb28181 end of recording not told to the platform", "call", c.id, "err", err)
	}
	t := time.NewTimer(gbEndWait)
	defer t.Stop()
	select {
	case <-t.C:
		p.hangup(c, "end of recording")
	case <-c.ctx.Done():
	}
}

// hangup ends a call from the edge's side: locally, then a BYE (sent
// by a task of its own: the caller may be the device answering an INFO).
func (p *gbPlayback) hangup(c *gbPlay, why string) {
	if p.end(c.id, why) && p.d.hangup != nil {
		p.spawn(func() { p.d.hangup(c.id, why) })
	}
}

// info applies a MANSRTSP request to a call (device.Media.Info through
// the live side).
func (p *gbPlayback) info(callID string, body []byte) error {
	p.mu.Lock()
	c := p.calls[callID]
	acked := c != nil && c.acked
	p.mu.Unlock()
	if c == nil {
		return &device.StatusError{Code: 481, Reason: "Call/Transaction Does Not Exist"}
	}
	ctl, err := media.ParseMANSRTSP(body)
	if err != nil {
		p.d.log.Info("gb28181 playback control refused", "call", callID, "err", err)
		return &device.StatusError{Code: 400, Reason: "Bad Request"}
	}
	if ctl.Method == media.RTSPTeardown {
		p.hangup(c, "platform teardown")
		return nil
	}
	if ctl.Scale != 0 && (ctl.Scale < gbMinScale || ctl.Scale > gbMaxScale) {
		return &device.StatusError{Code: 488, Reason: "Not Acceptable Here"}
	}
	if ctl.HasRange && !ctl.RangeNow && !c.from.Add(ctl.Start).Before(c.to) {
		return &device.StatusError{Code: 488, Reason: "Not Acceptable Here"}
	}
	if !acked {
		return &device.StatusError{Code: 491, Reason: "Request Pending"}
	}
	req := gbPlayCtl{c: ctl, reply: make(chan error, 1)}
	t := time.NewTimer(gbPlayWait)
	defer t.Stop()
	select {
	case c.ctl <- req:
	case <-c.pumpDone:
		return &device.StatusError{Code: 488, Reason: "Not Acceptable Here"} // the range was sent to its end
	case <-c.ctx.Done():
		return &device.StatusError{Code: 481, Reason: "Call/Transaction Does Not Exist"}
	case <-t.C:
		return &device.StatusError{Code: 500, Reason: "Server Internal Error"}
	}
	select {
	case err := <-req.reply:
		return err
	case <-c.ctx.Done():
		return &device.StatusError{Code: 481, Reason: "Call/Transaction Does Not Exist"}
	}
}

// gbClock paces a call: the unit recorded at media is due at wall, and
// later units at their recording time's distance from it, divided by
// scale. An unset clock takes its bearings from the next unit.
type gbClock struct {
	wall, media time.Time
	scale       float64 // 0: unpaced
	set         bool
}

func (k *gbClock) due(t time.Time) time.Time {
	if !k.set {
		k.wall, k.media, k.set = time.Now(), t, true
	}
	return k.wall.Add(time.Duration(float64(t.Sub(k.media)) / k.scale))
}

// pump reads, paces, muxes and sends the call's units until the range
// ends (the sender then finishes), the call ends, or the store fails.
func (p *gbPlayback) pump(c *gbPlay) {
	defer close(c.pumpDone)
	defer c.units.Close()
	pm := gbPump{p: p, c: c, clock: gbClock{scale: 1}}
	if c.session == media.Download {
		pm.clock.scale = c.speed
	}
	err := pm.run()
	switch {
	case err == nil:
		c.sender.Finish()
		p.d.log.Info("gb28181 recorded call sent to its end", "call", c.id, "frames", pm.written)
	case c.ctx.Err() != nil:
	default:
		p.d.log.Warn("gb28181 recorded call failed", "call", c.id, "err", err)
		p.hangup(c, "recording unreadable")
	}
}

// gbPump is a pump's state; only the pump goroutine touches it.
type gbPump struct {
	p       *gbPlayback
	c       *gbPlay
	clock   gbClock
	mux     *ps.Muxer
	origin  time.Time // the first unit's recording time: PTS 0
	last    time.Time // the last unit sent's recording time
	paused  bool
	written int64 // frames the sender took
}

// gbMoved is what a control did to the unit in hand.
type gbMoved int

const (
	gbKept    gbMoved = iota // nothing: it goes out as planned
	gbRetimed                // pause, resume or speed: it goes out when due again
	gbSought                 // seek: it is dropped, the reader moved
)

// run is the pump's loop; nil at the end of the range. The unit in hand
// (au, until sent) survives a pause or a speed change and is dropped by
// a seek.
func (pm *gbPump) run() error {
	c := pm.c
	var au streams.AccessUnit
	have := false
	for {
		if pm.paused {
			if _, err := pm.wait(nil); err != nil {
				return err
			}
			continue
		}
		select { // a control waiting while the pump never waits (unpaced)
		case req := <-c.ctl:
			if pm.answer(req) == gbSought {
				have = false
			}
			continue
		default:
		}
		if !have {
			var err error
			au, err = c.units.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			have = true
			if !pm.last.IsZero() && pm.clock.scale > 0 {
				// A gap in the recording is not waited out.
				if gap := au.Time.Sub(pm.last); gap < 0 || time.Duration(float64(gap)/pm.clock.scale) > gbGapSkip {
					pm.clock.set = false
				}
			}
		}
		if pm.clock.scale > 0 {
			if d := time.Until(pm.clock.due(au.Time)); d > 0 {
				t := time.NewTimer(d)
				m, err := pm.wait(t.C)
				t.Stop()
				if err != nil {
					return err
				}
				if m == gbSought {
					have = false
				}
				if m != gbKept {
					continue
				}
			}
		}
		// Never outrun the viewer: at most half the sender's queue in
		// flight.
		if pm.written-c.sender.Stats().Frames >= gbPlayQueue/2 {
			t := time.NewTimer(gbPollBusy)
			m, err := pm.wait(t.C)
			t.Stop()
			if err != nil {
				return err
			}
			if m == gbSought {
				have = false
			}
			continue
		}
		pm.sendUnit(au)
		have = false
	}
}

// wait waits for the timer (nil: none), a control, or the end of the
// call; it says what a control did to the unit in hand.
func (pm *gbPump) wait(timer <-chan time.Time) (gbMoved, error) {
	select {
	case <-pm.c.ctx.Done():
		return gbKept, pm.c.ctx.Err()
	case <-timer:
		return gbKept, nil
	case req := <-pm.c.ctl:
		return pm.answer(req), nil
	}
}

// answer puts a control in force and replies to the INFO waiting on it.
func (pm *gbPump) answer(req gbPlayCtl) gbMoved {
	m := pm.apply(req.c)
	req.reply <- nil
	return m
}

// apply puts a control in force.
func (pm *gbPump) apply(ctl *media.Control) gbMoved {
	c := pm.c
	switch ctl.Method {
	case media.RTSPPause:
		pm.paused = true
		c.units.Release() // a pause may last: hold no snapshot meanwhile
		return gbRetimed
	case media.RTSPPlay:
		pm.paused = false
		pm.clock.set = false
		if ctl.Scale != 0 && c.session == media.Playback {
			pm.clock.scale = ctl.Scale
			c.units.KeyframesOnly(ctl.Scale > gbKeyOnlyScale)
		}
		if ctl.HasRange && !ctl.RangeNow {
			to := c.from.Add(ctl.Start)
			c.units.Seek(to)
			pm.last = time.Time{}
			pm.p.d.log.Info("gb28181 playback seek", "call", c.id, "to", to)
			return gbSought
		}
		return gbRetimed
	}
	return gbKept
}

// sendUnit muxes one unit and queues its pack.
func (pm *gbPump) sendUnit(au streams.AccessUnit) {
	c := pm.c
	nalus, key, at := au.NALUs, au.Key, au.Time
	pc, ok := psCodec(au.Codec)
	if !ok {
		return
	}
	if pm.mux == nil || pm.mux.Codec() != pc {
		if !key {
			return
		}
		var err error
		if pm.mux, err = ps.New(pc); err != nil {
			pm.p.d.log.Error("gb28181 playback: no muxer", "call", c.id, "err", err)
			return
		}
	}
	if pm.origin.IsZero() {
		pm.origin = at
	}
	pts := ps.Ticks(at.Sub(pm.origin))
	pack, isKey, err := pm.mux.Append(nil, nalus, pts, pts) // its own bytes: the sender keeps them until sent
	if err != nil {
		pm.p.d.log.Warn("gb28181 playback: access unit not muxed", "call", c.id, "err", err)
		return
	}
	pm.last = at
	if c.sender.WriteFrame(media.Frame{PS: pack, PTS: pts, Key: isKey}) {
		pm.written++
		pm.p.met.frames.Inc()
	}
}

// bye ends a call the platform hung up.
func (p *gbPlayback) bye(callID string) { p.end(callID, "platform hung up") }

// end ends a call once, whoever asks first; false when it had ended.
func (p *gbPlayback) end(callID, why string) bool {
	p.mu.Lock()
	c := p.calls[callID]
	delete(p.calls, callID)
	acked := c != nil && c.acked
	p.mu.Unlock()
	if c == nil {
		return false
	}
	c.cancel()
	c.sender.Close()
	if !acked {
		c.units.Close() // before the ACK the call owns the reader; after it, the pump
	}
	p.met.active.Dec()
	p.met.calls.WithLabelValues(sessionLabel(c.session), "ended").Inc()
	st := c.sender.Stats()
	p.d.log.Info("gb28181 recorded call ended", "call", c.id, "session", c.session, "camera", c.camera, "why", why,
		"frames", st.Frames, "dropped", st.Dropped, "bytes", st.Bytes)
	return true
}

// active is how many recorded calls are in progress (tests, health).
func (p *gbPlayback) active() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}
