package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
	"github.com/vigil-perimeter/vigil/internal/fanout"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// The GB/T 28181 side (edge.yaml gb28181:) makes the edge a device of a
// police video platform: gb28181/device registers, keeps alive and answers
// the platform's queries; this file gives it the node's channels and
// health (the Provider, read at each query from the config in force and
// the node's live state) and sends the node's red and yellow alerts up as
// alarms.
//
// Alarms: the alert owner publishes every raised alert (raise, after it is
// stored) into a fanout.Hub; this side's forwarder goroutine subscribes
// (red and yellow only, drop-oldest) and sends those whose source maps to
// a channel with device.SendAlarm, one at a time, never holding up the
// alert owner. While the platform is unreachable the last gbPendingMax
// alarms of the last gbPendingAge wait and go out, oldest first, once the
// edge is registered again; older or surplus ones are dropped, logged and
// counted in vigil_edge_gb28181_alarms_dropped_total{reason}.
const (
	gbPendingMax = 100
	gbPendingAge = 10 * time.Minute
	// gbSubBuffer is the forwarder's subscription: alerts arriving while
	// it waits on the platform.
	gbSubBuffer = 256
	// gbSendTimeout bounds one alarm's round trip.
	gbSendTimeout = 10 * time.Second
	// gbRetry is how often waiting alarms look for a registration.
	gbRetry = time.Second
	// gbDescriptionMax bounds AlarmDescription (runes): platforms show a
	// line, and over UDP the MESSAGE must stay under the path MTU.
	gbDescriptionMax = 100
)

// Alarm priorities (GB/T 28181-2016 A.2.5.5, AlarmPriority: 1 一级警情 the
// most urgent … 4). Vigil's red is 1. Its yellow is 3, not 2: the
// platform's operators sort by level, and a held-open gate or a sensor's
// early warning must not sit right under a forced gate; 2 stays free for
// what a platform operator escalates by hand.
const (
	gbRed    = manscdp.PriorityFirst
	gbYellow = manscdp.PriorityThird
)

// gbSide is the node's GB/T 28181 device and its alarm forwarder.
type gbSide struct {
	dev     *device.Device
	live    *gbLive            // live calls: the device's Media (gblive.go)
	records *gbRecords         // RecordInfo answers (gbrecords.go); nil without recordings
	cfg     conf.GB28181Config // the section in force (a change restarts the node)
	conf    *configEngine
	cams    map[string]*camera.Camera
	gates   *gateSide   // nil without gates
	sensors *sensorSide // nil without sensors
	clips   gbClips
	log     *slog.Logger

	hub  *fanout.Hub[wire.Alert]
	sub  *fanout.Sub[wire.Alert]
	seen gbSeen // alerts sent up, for their escalations

	dropped      *prometheus.CounterVec
	pendingGauge prometheus.Gauge
	pending      atomic.Int64 // for the status: the forwarder owns the queue
	droppedN     atomic.Uint64
	// now is the clock of the queue's ages (tests move it).
	now func() time.Time
}

// gbClips is what the GB side reads of the clip store: whether recording
// works, for DeviceStatus.
type gbClips interface {
	Conditions() []clips.Condition
}

// gbRecordings is the clip store as recordings upstream read it.
type gbRecordings interface {
	gbUnits
	gbRecordStore
}

type gbDeps struct {
	conf    *configEngine
	cams    []*camera.Camera
	gates   *gateSide
	sensors *sensorSide
	clips   gbClips
	// recordings is the clip store as the platform's RecordInfo,
	// Playback and Download read it; nil refuses them.
	recordings gbRecordings
	// nodeDone ends the forwarder's subscription with the node, and
	// every live call; spawn runs a call's goroutines as node tasks.
	nodeDone context.Context
	spawn    func(func()) bool
	audit    gbAuditor
	reg      prometheus.Registerer
	log      *slog.Logger
}

// newGBSide makes the device from cfg's gb28181 section, or returns nil
// when there is none. It fails when the password file cannot be read or
// the device refuses the config (validated before: a bug).
func newGBSide(cfg conf.Config, d gbDeps) (*gbSide, error) {
	if cfg.GB28181 == nil {
		return nil, nil
	}
	gc := *cfg.GB28181
	password, err := gc.ResolvePassword()
	if err != nil {
		field := "gb28181.password_file"
		if gc.PasswordFile == "" {
			field = "gb28181.password"
		}
		return nil, fmt.Errorf("edge: %s: %w", field, err)
	}
	g := &gbSide{cfg: gc, conf: d.conf, cams: map[string]*camera.Camera{}, gates: d.gates, sensors: d.sensors, clips: d.clips,
		log: d.log.With("component", "gb28181"), now: time.Now}
	for _, c := range d.cams {
		g.cams[c.ID()] = c
	}
	var camIDs []string
	for _, c := range cfg.Cameras {
		camIDs = append(camIDs, c.ID)
	}
	mediaAddr := func(remote netip.Addr) netip.Addr { return mediaAddrToward(gc.ContactHost, remote) }
	live := gbLiveDeps{cameras: camIDs, camera: g.cameraOf, mediaAddr: mediaAddr, audit: d.audit, reg: d.reg, log: g.log}
	var rec *gbPlayback
	if d.recordings != nil {
		rec = newGBPlayback(d.nodeDone, d.spawn, gbPlaybackDeps{clips: d.recordings, camera: g.cameraOf, mediaAddr: mediaAddr,
			audit: d.audit, reg: d.reg, log: g.log})
		live.recorded = rec
		loc, err := time.LoadLocation(or(gc.TimeZone, "Asia/Shanghai"))
		if err != nil {
			return nil, fmt.Errorf("edge: gb28181.time_zone: %w", err)
		}
		g.records = &gbRecords{store: d.recordings, camera: g.cameraOf, loc: loc, recorderID: gc.DeviceID, log: g.log}
	}
	g.live = newGBLive(d.nodeDone, d.spawn, live)
	dev, err := device.New(gc.Device(password, displayName(cfg.Entrance, cfg.EdgeID)), g,
		device.Options{Media: g.live, Registerer: d.reg, Logger: d.log})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	g.dev = dev
	hangup := func(callID, why string) {
		if err := dev.Hangup(d.nodeDone, callID, why); err != nil && !errors.Is(err, device.ErrNoCall) {
			g.log.Warn("gb28181: hang-up not sent", "call", callID, "err", err)
		}
	}
	g.live.d.hangup = hangup
	if rec != nil {
		rec.d.hangup = hangup
		rec.d.mediaStatus = func(callID string) error { return dev.MediaStatus(d.nodeDone, callID) }
	}
	g.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_gb28181_alarms_dropped_total",
		Help: "Alerts never sent to the GB/T 28181 platform, by reason: queue_full (more than 100 waiting), expired (waited over 10 minutes), failed (refused by the platform)."},
		[]string{"reason"})
	g.pendingGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_edge_gb28181_alarms_pending",
		Help: "Alerts waiting to be sent to the GB/T 28181 platform (while it is unreachable)."})
	for _, r := range []string{"queue_full", "expired", "failed"} {
		g.dropped.WithLabelValues(r)
	}
	if err := d.reg.Register(g.dropped); err != nil {
		return nil, fmt.Errorf("edge: gb28181 metrics: %w", err)
	}
	if err := d.reg.Register(g.pendingGauge); err != nil {
		return nil, fmt.Errorf("edge: gb28181 metrics: %w", err)
	}
	g.hub = fanout.New[wire.Alert](fanout.DropOldest, fanout.WithDropHook(func() { g.drop("queue_full", 1) }))
	g.sub = g.hub.SubscribeWith(d.nodeDone, fanout.SubOptions[wire.Alert]{Buffer: gbSubBuffer,
		Filter: func(a wire.Alert) bool { return a.Severity == wire.Red || a.Severity == wire.Yellow }})
	return g, nil
}

// observe chains the alert owner's hook (Options.OnAlert) with the GB
// side's hub: every stored alert is published, never waited for.
func (g *gbSide) observe(next func(wire.Alert)) func(wire.Alert) {
	if g == nil {
		return next
	}
	return func(a wire.Alert) {
		if next != nil {
			next(a)
		}
		g.seen.remember(a)
		g.hub.Publish(a)
	}
}

// observeUpdates chains the alert owner's update hook (Options.OnUpdate)
// with the GB side: an update that raises an alert the platform was told
// of to red (a held-open gate turning red, a motion incident escalated by
// a forced gate) goes up again as a red alarm on the alert's channel,
// with the update's summary.
func (g *gbSide) observeUpdates(next func(wire.AlertUpdate)) func(wire.AlertUpdate) {
	if g == nil {
		return next
	}
	return func(u wire.AlertUpdate) {
		if next != nil {
			next(u)
		}
		if u.Severity != wire.Red {
			return
		}
		if a, ok := g.seen.escalate(u); ok {
			g.hub.Publish(a)
		}
	}
}

// gbSeenMax bounds the alerts the GB side remembers for escalations.
const gbSeenMax = 512

// gbSeen is the last gbSeenMax alerts published (their source, kind and
// severity), for the updates that escalate them. The alert owner's
// goroutine calls both methods; the mutex keeps it honest.
type gbSeen struct {
	mu    sync.Mutex
	byID  map[string]wire.Alert
	order []string // oldest first
}

func (s *gbSeen) remember(a wire.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]wire.Alert{}
	}
	if _, ok := s.byID[a.ID]; !ok {
		s.order = append(s.order, a.ID)
	}
	s.byID[a.ID] = wire.Alert{ID: a.ID, Source: a.Source, Kind: a.Kind, Severity: a.Severity}
	for len(s.order) > gbSeenMax {
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
}

// escalate is the alert an escalation to red makes of a remembered,
// not yet red alert (once: it is red from then on).
func (s *gbSeen) escalate(u wire.AlertUpdate) (wire.Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[u.AlertID]
	if !ok || a.Severity == wire.Red {
		return wire.Alert{}, false
	}
	a.Severity = wire.Red
	s.byID[u.AlertID] = a
	a.Time, a.Summary = u.Time, u.Summary
	return a, true
}

// start runs the device and the alarm forwarder under the node's context.
func (g *gbSide) start(ctx context.Context, spawn func(func()) bool) {
	if g == nil {
		return
	}
	spawn(func() {
		if err := g.dev.Run(ctx); err != nil {
			g.log.Error("GB/T 28181 device stopped", "err", err)
		}
	})
	spawn(func() { g.forward(ctx) })
}

// gbPending is an alarm waiting for the platform.
type gbPending struct {
	alarm  manscdp.Alarm
	queued time.Time
	alert  string // the alert's ID, for the log
}

// forward sends alarms until ctx ends; its queue is its own.
func (g *gbSide) forward(ctx context.Context) {
	defer g.hub.Close()
	retry := time.NewTicker(gbRetry)
	defer retry.Stop()
	var q []gbPending
	for {
		select {
		case <-ctx.Done():
			if len(q) > 0 {
				g.log.Warn("alarms not sent to the platform: the edge is shutting down", "alarms", len(q))
			}
			return
		case a, ok := <-g.sub.C():
			if !ok {
				return
			}
			al, ok := g.alarmFor(a)
			if !ok {
				continue
			}
			q = append(q, gbPending{alarm: al, queued: g.now(), alert: a.ID})
			if len(q) > gbPendingMax {
				g.log.Warn("alarm for the platform dropped: too many waiting", "alert", q[0].alert, "channel", q[0].alarm.DeviceID)
				q = q[1:]
				g.drop("queue_full", 1)
			}
		case <-retry.C:
		}
		q = g.flush(ctx, q)
		g.pending.Store(int64(len(q)))
		g.pendingGauge.Set(float64(len(q)))
	}
}

// flush drops what waited too long and sends the rest, oldest first, while
// the device is registered.
func (g *gbSide) flush(ctx context.Context, q []gbPending) []gbPending {
	for len(q) > 0 && g.now().Sub(q[0].queued) > gbPendingAge {
		g.log.Warn("alarm for the platform dropped: not registered for too long", "alert", q[0].alert, "channel", q[0].alarm.DeviceID)
		q = q[1:]
		g.drop("expired", 1)
	}
	for len(q) > 0 && g.dev.Status().Online && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, gbSendTimeout)
		err := g.dev.SendAlarm(sctx, q[0].alarm)
		cancel()
		switch {
		case err == nil:
			g.log.Info("alarm sent to the platform", "alert", q[0].alert, "channel", q[0].alarm.DeviceID,
				"priority", q[0].alarm.Priority, "method", q[0].alarm.Method, "type", q[0].alarm.Type)
		case errors.Is(err, device.ErrOffline) || !g.dev.Status().Online:
			return q // the platform went away: keep it for the next registration
		default:
			g.log.Error("alarm refused by the platform", "alert", q[0].alert, "channel", q[0].alarm.DeviceID, "err", err)
			g.drop("failed", 1)
		}
		q = q[1:]
	}
	return q
}

func (g *gbSide) drop(reason string, n int) {
	g.dropped.WithLabelValues(reason).Add(float64(n))
	g.droppedN.Add(uint64(n))
}

// channelOf is the channel an alert's source maps to: gate.* alerts come
// from gates, sensor.* from sensors, every other from a camera.
func (g *gbSide) channelOf(a wire.Alert) (conf.GBChannelConfig, string, bool) {
	kind := "camera"
	switch {
	case strings.HasPrefix(a.Kind, "gate."):
		kind = "gate"
	case strings.HasPrefix(a.Kind, "sensor."):
		kind = "sensor"
	}
	for _, ch := range g.cfg.Channels {
		if k, id := ch.Source(); k == kind && id == a.Source {
			return ch, kind, true
		}
	}
	return conf.GBChannelConfig{}, "", false
}

// alarmFor maps a red or yellow alert to the platform's alarm, if its
// source has a channel. Codes: GB/T 28181-2016 A.2.5.5 (Notify Alarm,
// 报警通知) and its table of AlarmMethod and AlarmType (the 2022 edition
// keeps these codes; manscdp/alarm.go lists them):
// method 2 设备报警 for alarm inputs (gates, sensors) with type 2 设备防拆 for
// a tamper, method 5 视频报警 for what a camera's analysis saw (type 6
// 入侵检测 for motion while armed, 5 绊线检测 for a tripwire, 8 徘徊检测 for
// loitering, 11 视频异常检测 for a covered, moved or blurred camera),
// and method 6 设备故障报警 for a silent gate device or sensor and for a
// camera whose analysis degraded. (A camera offline is central's alert,
// not the edge's; the catalog shows the channel OFF.)
func (g *gbSide) alarmFor(a wire.Alert) (manscdp.Alarm, bool) {
	ch, kind, ok := g.channelOf(a)
	if !ok {
		return manscdp.Alarm{}, false
	}
	al := manscdp.Alarm{DeviceID: ch.ID, Time: a.Time, Description: shorten(a.Summary, gbDescriptionMax)}
	switch a.Severity {
	case wire.Red:
		al.Priority = gbRed
	case wire.Yellow:
		al.Priority = gbYellow
	default:
		return manscdp.Alarm{}, false
	}
	switch kind {
	case "gate":
		al.Method = manscdp.MethodDevice
		switch a.Kind {
		case "gate.tamper":
			al.Type = manscdp.DeviceTamper
		case "gate.silent":
			al.Method = manscdp.MethodDeviceFault
		}
	case "sensor":
		al.Method = manscdp.MethodDevice
		if a.Kind == wire.KindSensorSilent {
			al.Method = manscdp.MethodDeviceFault
		}
	default: // camera
		al.Method = manscdp.MethodVideo
		switch {
		case a.Kind == "motion":
			// Motion is an intrusion only while the camera is armed (red);
			// a disarmed camera's motion (yellow) is daytime life.
			if a.Severity != wire.Red {
				return manscdp.Alarm{}, false
			}
			al.Type, al.EventType = manscdp.VideoIntrusion, 1 // 1: entering the area
		case a.Kind == wire.KindPerimeterCrossing:
			al.Type = manscdp.VideoTripwire
		case a.Kind == wire.KindPerimeterLoiter:
			al.Type = manscdp.VideoLoitering
		case strings.HasPrefix(a.Kind, "tamper."):
			al.Type = manscdp.VideoAbnormal
		default: // camera.analysis_degraded and the like: a fault of the channel
			al.Method = manscdp.MethodDeviceFault
		}
	}
	return al, true
}

// shorten cuts s to at most n runes.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Channels implements device.Provider: the configured channels with the
// names in force and their live state.
func (g *gbSide) Channels() []device.Channel {
	cfg := g.conf.running()
	address := displayName(cfg.Entrance, cfg.SiteID)
	var gateSt map[string]gateDuty
	var sensorSt map[string]wire.SensorStatus
	out := make([]device.Channel, 0, len(g.cfg.Channels))
	for _, ch := range g.cfg.Channels {
		kind, id := ch.Source()
		c := device.Channel{ID: ch.ID, Name: ch.Name, Kind: conf.ChannelKind(kind), Address: address}
		switch kind {
		case "camera":
			cc, _ := g.conf.camera(id)
			c.Name = or(c.Name, displayName(cc.Name, id))
			if cam := g.cams[id]; cam != nil {
				c.Online = cam.Status().Online
			}
		case "gate":
			if gateSt == nil {
				gateSt = g.gateDuties()
			}
			gc := g.conf.gate(id)
			c.Name = or(c.Name, displayName(gc.Name, id))
			st, ok := gateSt[id]
			c.Online, c.Armed, c.Alarming = ok && st.online, st.armed, st.alarming
		case "sensor":
			if sensorSt == nil {
				sensorSt = map[string]wire.SensorStatus{}
				for _, s := range g.sensors.statuses() {
					sensorSt[s.ID] = s
				}
			}
			s, ok := sensorSt[id]
			c.Name = or(c.Name, displayName(s.Name, id))
			if s.Location != "" {
				c.Address = s.Location
			}
			// A sensor is always on duty; it is online once it reports
			// (not before its first reading, nor once silent).
			c.Online = ok && (s.State == "normal" || s.State == "warning" || s.State == "alarm")
			c.Armed = true
			c.Alarming = s.State == "alarm" || s.State == "warning"
		}
		out = append(out, c)
	}
	return out
}

// gateDuty is a gate's duty as an alarm input.
type gateDuty struct{ online, armed, alarming bool }

// gateDuties reads the gate engine's published snapshot (no round trip).
func (g *gbSide) gateDuties() map[string]gateDuty {
	out := map[string]gateDuty{}
	if g.gates == nil {
		return out
	}
	for _, st := range g.gates.eng.Snapshot() {
		d := gateDuty{online: true, armed: st.Armed}
		for _, a := range st.Alerts {
			if !a.Cleared && (a.Severity == wire.Red || a.Severity == wire.Yellow) {
				d.alarming = true
			}
		}
		for _, dv := range st.Devices {
			if dv.Silent {
				d.online = false
			}
		}
		out[st.Gate] = d
	}
	return out
}

// Health implements device.Provider: encoding while a camera delivers
// video, recording while the clip store has no active condition.
func (g *gbSide) Health() device.Health {
	h := device.Health{OK: true, Recording: true}
	for _, c := range g.cams {
		if c.Status().Online {
			h.Encoding = true
		}
	}
	for _, c := range g.clips.Conditions() {
		if c.Active {
			h.Recording, h.OK, h.Reason = false, false, c.Message
		}
	}
	if !h.Encoding && len(g.cams) > 0 {
		h.OK, h.Reason = false, or(h.Reason, "no camera delivers video")
	}
	return h
}

// status is the registration for the edge's health and central's
// heartbeat; nil without gb28181.
func (g *gbSide) status() *wire.GBStatus {
	if g == nil {
		return nil
	}
	st := g.dev.Status()
	out := &wire.GBStatus{State: string(st.State), Online: st.Online, DeviceID: g.cfg.DeviceID, Server: g.cfg.ServerAddr,
		RegisteredSince: st.RegisteredSince.UTC(), LastError: st.LastError, LastErrorAt: st.LastErrorAt.UTC(),
		ClockOffsetMS: st.ClockOffset.Milliseconds(), ClockSampledAt: st.ClockSampledAt.UTC(),
		PendingAlarms: int(g.pending.Load()), DroppedAlarms: g.droppedN.Load()}
	return out
}

// healthReason is why the registration makes the box degraded ("" while
// registered or without gb28181).
func (g *gbSide) healthReason() string {
	if g == nil {
		return ""
	}
	st := g.dev.Status()
	if st.Online {
		return ""
	}
	if st.LastError != "" {
		return "GB/T 28181 platform: not registered: " + st.LastError
	}
	return "GB/T 28181 platform: not registered yet"
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cameraOf is the camera behind a camera channel ID of the section in
// force.
func (g *gbSide) cameraOf(channel string) (string, bool) {
	for _, ch := range g.cfg.Channels {
		if ch.ID == channel && ch.Camera != "" {
			return ch.Camera, true
		}
	}
	return "", false
}

// liveFeed is where the cameras' access units go for platform viewers
// (nil without gb28181).
func (g *gbSide) liveFeed() *gbLive {
	if g == nil {
		return nil
	}
	return g.live
}

// close ends the live side's hubs once the node's tasks have stopped.
func (g *gbSide) close() {
	if g != nil {
		g.live.close()
	}
}

// mediaAddrToward is this box's address in an SDP answer to a platform
// at remote: contact_host when it is an address (behind NAT), else the
// local address the kernel routes towards remote (no packet is sent).
func mediaAddrToward(contactHost string, remote netip.Addr) netip.Addr {
	if a, err := netip.ParseAddr(contactHost); err == nil {
		return a
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(remote, 9)))
	if err != nil {
		return netip.IPv4Unspecified()
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// Records implements device.Records: RecordInfo from the clip store.
func (g *gbSide) Records(ctx context.Context, channelID string, start, end time.Time, typ string) ([]manscdp.RecordItem, error) {
	if g.records == nil {
		return nil, &device.StatusError{Code: 501, Reason: "Not Implemented"}
	}
	return g.records.Records(ctx, channelID, start, end, typ)
}
