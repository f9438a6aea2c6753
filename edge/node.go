package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// Software is reported to central in hello.
const Software = "vigil-edge/0.1"

// Options are the parts of a node that are not configuration.
type Options struct {
	Log *slog.Logger
	// OnAlert, if set, sees every alert right after it is durably queued.
	OnAlert func(wire.Alert)
	// UplinkBackoffMin shortens the first reconnect wait (tests).
	UplinkBackoffMin time.Duration
	// CameraBackoffMax caps camera reconnect waits (tests).
	CameraBackoffMax time.Duration
	// OpenGPIOLine opens a gate input line (default gpio.OpenLine, the
	// Linux GPIO character device); tests pass simulated lines.
	OpenGPIOLine func(chip string, offset int, o gpio.LineOptions) (gpio.Line, error)
	// ConfigRevision names the running config revision (edge/revisions.go);
	// hello reports it to central.
	ConfigRevision string
	// ConfigPath is the config file the node runs (edge.yaml): revisions
	// applied from the setup page or central replace it (config_push.go).
	// Empty: the node cannot take new revisions.
	ConfigPath string
	// Restart, if set, restarts the node with its config file: called for a
	// revision that cannot take effect live (config_push.go).
	Restart func(reason string)

	// alertOwnerHook, if set (tests: export_test.go), runs on the alert
	// owner before each queued alert is raised: a test slows or blocks
	// the owner with it (alertowner.go).
	alertOwnerHook func(wire.Alert)
}

// Node is a running edge.
type Node struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	reg     *prometheus.Registry
	box     *outbox.Outbox
	clips   *clips.Store
	up      *uplink.Uplink
	live    *liveHub
	cams    []*camera.Camera
	camByID map[string]*camera.Camera
	byID    map[string]CameraConfig
	gates   *gateSide // nil without gates
	alerts  *prometheus.CounterVec
	// accessRecorded counts audited acts queued for central (access.go).
	accessRecorded *prometheus.CounterVec
	httpSrv        *http.Server
	ln             net.Listener

	// ctx ends when Close begins; every goroutine of the node watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines started by spawn; Close waits for them
	once   sync.Once

	spawnMu sync.Mutex
	closing bool // Close has begun: spawn refuses

	// boxMu guards the outbox against Close: users hold it for reading
	// (useBox), Close for writing while it closes the outbox.
	boxMu     sync.RWMutex
	boxClosed bool

	// camClock: each camera's newest stream time against its arrival (self-test).
	camClock camClocks

	evidence evidenceSide // the evidence exporter: central's evidence retrieval (evidence.go)

	// Camera, analysis-health and system alerts on their way to the
	// node's alert owner, which raises them in order (alertowner.go).
	alertQ       chan alertJob
	alertMu      sync.RWMutex // queueAlert holds it for reading; the owner sets alertsClosed under it
	alertsClosed bool         // the owner has drained the queue for Close: nothing more is taken
	alertDrops   *prometheus.CounterVec
	dropMu       sync.Mutex
	dropped      droppedAlerts // since the owner last reported drops

	conf     configState // the config in force, revisions applied live (config_push.go)
	gateFeed gateFeed    // gate events to the setup page (setup_backend.go)
	setup    *setup.Server
	// setupSide is the setup page's backend (setup_backend.go).
	setupSide *setupBackend

	selfTest *selfTester // the self-test (selftest.go)
}

// Start opens the outbox, binds the local API and starts every camera and
// the uplink. It returns once all are running.
func Start(cfg Config, opts Options) (*Node, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("edge", cfg.EdgeID)
	n := &Node{cfg: cfg, opts: opts, log: log, reg: prometheus.NewRegistry(), byID: map[string]CameraConfig{}, camByID: map[string]*camera.Camera{},
		alertQ: make(chan alertJob, alertQueue)}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_alerts_total", Help: "Alerts raised, by kind and severity."}, []string{"kind", "severity"})
	n.reg.MustRegister(n.alerts)
	n.alertDrops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_alerts_dropped_total",
		Help: "Alerts not raised because the alert owner's queue was full (alertowner.go), by kind and severity."}, []string{"kind", "severity"})
	n.reg.MustRegister(n.alertDrops)
	n.accessRecorded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_access_records_total",
		Help: "Audited acts on the box (video reads, setup changes) queued for central's audit log, by action."}, []string{"action"})
	for _, a := range accessActions {
		n.accessRecorded.WithLabelValues(a)
	}
	n.reg.MustRegister(n.accessRecorded)

	box, err := outbox.Open(filepath.Join(cfg.DataDir, "outbox"), log)
	if err != nil {
		return nil, err
	}
	n.box = box
	minFree := int64(cfg.Recording.MinFreeGiB * (1 << 30))
	store, err := clips.Open(clips.Config{
		Dir: filepath.Join(cfg.DataDir, "clips"), Default: cfg.Recording.clips(), Cameras: cameraIDs(cfg),
		MinFreeBytes: minFree, Registerer: n.reg, Log: log, OnCondition: n.onClipCondition,
	})
	if err != nil {
		box.Close()
		return nil, err
	}
	n.clips = store
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		store.Close()
		box.Close()
		return nil, fmt.Errorf("edge: listen %s: %w", cfg.Listen, err)
	}
	n.ln = ln

	metrics := camera.NewMetrics(n.reg)
	for _, cc := range cfg.Cameras {
		c := cc.camera()
		if opts.CameraBackoffMax > 0 {
			c.BackoffMax = opts.CameraBackoffMax
		}
		cam, err := camera.New(c, n, metrics, log)
		if err != nil {
			ln.Close()
			store.Close()
			box.Close()
			return nil, err
		}
		n.cams = append(n.cams, cam)
		n.camByID[cc.ID] = cam
		n.byID[cc.ID] = cc
	}
	if err := n.setupGates(); err != nil {
		ln.Close()
		store.Close()
		box.Close()
		return nil, err
	}
	n.conf.running = cfg
	n.live = newLiveHub(n)
	routes := uplink.NewRouter()
	n.up = uplink.New(uplink.Config{
		URL: cfg.Central.URL, Token: cfg.Central.Token, Pin: cfg.Central.pin(), EdgeID: cfg.EdgeID, SiteID: cfg.SiteID, DataDir: cfg.DataDir,
		Software: Software, ConfigRevision: opts.ConfigRevision, BackoffMin: opts.UplinkBackoffMin, BackoffMax: cfg.Central.BackoffMax.D(), Routes: routes,
	}, box, n.heartbeat, n.reg, log)
	n.evidence.clips, n.evidence.up, n.evidence.camClock, n.evidence.dataDir, n.evidence.log = store, n.up, &n.camClock, cfg.DataDir, log
	n.selfTest = newSelfTester(n)
	n.registerRoutes(routes) // rpc.go

	ctx, cancel := context.WithCancel(context.Background())
	n.ctx, n.cancel = ctx, cancel
	n.httpSrv = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second}
	n.spawn(func() {
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local API stopped", "err", err)
		}
	})
	for _, cam := range n.cams {
		n.spawn(func() { cam.Run(ctx) })
	}
	n.spawn(func() { n.up.Run(ctx) })
	n.spawn(func() { n.runAlertOwner(ctx) }) // alertowner.go
	n.spawn(func() { n.watchDisk(ctx) })     // diskfloor.go
	n.runGates(ctx)
	log.Info("edge running", "api", "http://"+ln.Addr().String(), "cameras", len(n.cams), "gates", len(cfg.Gates), "central", cfg.Central.URL, "pending_alerts", box.Len())
	return n, nil
}

// spawn runs f on a goroutine that Close waits for; f must end once n.ctx
// ends. Once Close has begun it refuses: f does not run and spawn returns
// false.
func (n *Node) spawn(f func()) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// errNodeClosed is what a write to the outbox gets after Close.
var errNodeClosed = errors.New("edge: node closed")

// useBox runs f with the outbox, unless Close has closed it
// (errNodeClosed); Close waits for f to return.
func (n *Node) useBox(f func(*outbox.Outbox) error) error {
	n.boxMu.RLock()
	defer n.boxMu.RUnlock()
	if n.boxClosed {
		return errNodeClosed
	}
	return f(n.box)
}

// Addr is the local API's address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Uplink exposes the connection to central (state, clock offset).
func (n *Node) Uplink() *uplink.Uplink { return n.up }

// Close stops everything and waits for every goroutine, then closes the
// outbox. Safe to call twice.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.spawnMu.Lock()
		n.closing = true
		n.spawnMu.Unlock()
		n.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.httpSrv.Shutdown(ctx)
		n.wg.Wait()
		n.live.close()
		n.evidence.close()
		if n.gates != nil {
			n.gates.closeLines()
		}
		if cerr := n.clips.Close(); cerr != nil {
			n.log.Error("closing the clip store", "err", cerr)
		}
		n.boxMu.Lock()
		n.boxClosed = true
		err = n.box.Close()
		n.boxMu.Unlock()
		n.log.Info("edge stopped")
	})
	return err
}

// OnMotion turns a camera's motion event into an alert for the alert
// owner to raise (alertowner.go). It runs on the camera's analysis
// goroutine and never waits: the gates' state comes from the engine's
// published snapshot, the outbox write and the video pin are the owner's.
func (n *Node) OnMotion(ev camera.Event) {
	cc := n.byID[ev.Camera]
	sev, what := wire.Yellow, "Motion"
	if cc.Armed {
		sev, what = wire.Red, "Intrusion: motion while armed"
	}
	name := cc.Name
	if name == "" {
		name = cc.ID
	}
	note, gate := n.watchedGates(ev.Camera)
	a := wire.Alert{
		ID: newAlertID(n.cfg.EdgeID, ev.Start), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID,
		Source: ev.Camera, Kind: "motion", Severity: sev, Time: ev.Start.UTC(), TimeSource: ev.TimeSource,
		Summary: fmt.Sprintf("%s at %s%s", what, name, note), Snapshot: ev.Snapshot, SnapshotTime: ev.SnapshotTime.UTC(),
		Zones: ev.Zones, Gate: gate,
	}
	for _, b := range ev.Boxes {
		a.Boxes = append(a.Boxes, wire.Box{X: b.X, Y: b.Y, W: b.W, H: b.H})
	}
	n.queueAlert(alertJob{a: a, pinCam: ev.Camera, pinAt: ev.Start})
}

// OnTamper turns a tamper condition into an alert: a camera that cannot
// see is red, one that sends nothing is yellow (ARCHITECTURE.md, decision
// 6), and the all-clear is green so the guard knows it is over. Like
// OnMotion it only queues the alert for the alert owner.
func (n *Node) OnTamper(ev camera.TamperEvent) {
	cc := n.byID[ev.Camera]
	name := cc.Name
	if name == "" {
		name = cc.ID
	}
	sev := wire.Red
	what := map[string]string{
		camera.TamperCovered:    "Camera covered",
		camera.TamperBlinded:    "Camera blinded by light",
		camera.TamperDefocused:  "Camera out of focus",
		camera.TamperMoved:      "Camera turned away from its scene",
		camera.TamperSignalLost: "Camera offline",
		camera.TamperTooDark:    "Camera too dark to see",
	}[ev.Kind]
	if what == "" {
		what = "Camera tampered (" + ev.Kind + ")"
	}
	// Offline and too dark (dusk before the IR switch, a lamp that
	// failed) mean "look", not "someone is attacking the camera".
	look := ev.Kind == camera.TamperSignalLost || ev.Kind == camera.TamperTooDark
	if look {
		sev = wire.Yellow
	}
	if ev.Cleared {
		sev, what = wire.Green, "Restored: "+strings.ToLower(what[:1])+what[1:]
	}
	summary := fmt.Sprintf("%s: %s", what, name)
	if ev.Detail != "" {
		summary += " (" + ev.Detail + ")"
	}
	a := wire.Alert{
		ID: newAlertID(n.cfg.EdgeID, ev.Time), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID,
		Source: ev.Camera, Kind: "tamper." + ev.Kind, Severity: sev, Time: ev.Time.UTC(),
		Summary: summary, Snapshot: ev.Snapshot, SnapshotTime: ev.SnapshotTime.UTC(),
	}
	j := alertJob{a: a}
	if !ev.Cleared && !look { // the video of an attack on the camera is kept
		j.pinCam, j.pinAt = ev.Camera, ev.Time
	}
	n.queueAlert(j)
}

// OnAccessUnit records every unit of every camera; it never blocks.
func (n *Node) OnAccessUnit(cam string, au streams.AccessUnit) {
	n.clips.Write(cam, au)
	n.camClock.observe(cam, au)
	n.live.feed(cam, au)
}

// pin keeps the video around an alert until central has it (or the
// evidence retention period ends). A refused pin is already a red
// condition of the store; the alert itself still goes out.
// links names each camera's clip for an alert at at: the range its pin
// covers (the pin itself is written once the alert is queued).
func (n *Node) links(cams []string, at time.Time) []wire.Link {
	var out []wire.Link
	for _, cam := range cams {
		l := wire.Link{Camera: cam}
		if from, to, err := n.clips.PinWindow(cam, at); err == nil {
			l.ClipFrom, l.ClipTo = from.UTC(), to.UTC()
		}
		out = append(out, l)
	}
	return out
}

func (n *Node) pin(a wire.Alert, cam string, at time.Time) {
	if _, err := n.clips.Pin(a.ID, cam, at, a.Kind); err != nil {
		n.log.Warn("video for alert not pinned", "alert", a.ID, "camera", cam, "err", err)
	}
}

// onClipCondition runs on the store's writer goroutine: raising goes
// through the outbox (an fsync), so it is queued for the node's alert
// owner (alertowner.go).
func (n *Node) onClipCondition(c clips.Condition) {
	sev := wire.Red
	if !c.Active {
		sev = wire.Green
	}
	a := wire.Alert{
		ID: newAlertID(n.cfg.EdgeID, c.Since), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID,
		Source: "recorder", Kind: "system.clips." + c.Kind, Severity: sev, Time: c.Since.UTC(), Summary: c.Message,
	}
	n.raiseInOrder(a)
}

func cameraIDs(cfg Config) map[string]clips.CameraConfig {
	m := map[string]clips.CameraConfig{}
	for _, c := range cfg.Cameras {
		m[c.ID] = cfg.Recording.clips()
	}
	return m
}

// raise queues an alert durably and reports whether it was stored.
func (n *Node) raise(a wire.Alert) bool {
	// Central refuses an invalid alert on every resend, and the outbox is
	// ordered: one bad alert would block all behind it. Never queue one.
	if err := a.Validate(); err != nil {
		n.log.Error("dropping malformed alert (a bug in this edge)", "alert", a.ID, "err", err)
		return false
	}
	if err := n.useBox(func(b *outbox.Outbox) error { return b.Append(a) }); errors.Is(err, errNodeClosed) {
		n.log.Warn("alert not raised: the edge is shutting down", "alert", a.ID, "source", a.Source, "kind", a.Kind)
		return false
	} else if err != nil {
		// The alert is not durable: say so loudly; the camera keeps running.
		n.log.Error("ALERT NOT STORED", "alert", a.ID, "source", a.Source, "err", err)
		return false
	}
	n.alerts.WithLabelValues(a.Kind, string(a.Severity)).Inc()
	n.log.Info("alert raised", "alert", a.ID, "source", a.Source, "kind", a.Kind, "severity", a.Severity, "time", a.Time)
	if n.opts.OnAlert != nil {
		n.opts.OnAlert(a)
	}
	return true
}

// heartbeat is the node's health for central, with every camera and gate
// under the name edge.yaml gives it: the edge owns its devices' names and
// central shows what the heartbeat says (central/devices.go).
func (n *Node) heartbeat() wire.Heartbeat {
	hb := wire.Heartbeat{Time: time.Now().UTC()}
	for _, c := range n.cams {
		s := c.Status()
		hb.Cameras = append(hb.Cameras, wire.CameraStatus{ID: c.ID(), Name: displayName(n.byID[c.ID()].Name, c.ID()),
			Online: s.Online, LastFrame: s.LastFrame, Error: s.Error})
	}
	hb.Gates = n.gateHealth()
	return hb
}

// displayName is a device's name, or its ID when it has none.
func displayName(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

// newAlertID is unique per edge and sorts by time: edge, UTC instant, and
// random bits so two events in one millisecond differ.
func newAlertID(edgeID string, t time.Time) string {
	var r [5]byte
	rand.Read(r[:])
	ts := strings.ReplaceAll(t.UTC().Format("20060102T150405.000Z"), ".", "")
	return edgeID + "-" + ts + "-" + hex.EncodeToString(r[:])
}

// Healthy reports whether the node's inner loops still answer: the clip
// store's writer takes a flush. systemd's watchdog (deploy/systemd) is
// pinged only while it does, so a stuck edge is restarted.
func (n *Node) Healthy(ctx context.Context) error {
	if err := n.clips.Flush(ctx); err != nil {
		return fmt.Errorf("clip store writer: %w", err)
	}
	return nil
}
