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

	"github.com/vigil-perimeter/vigil/edge/boxlog"
	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// Software is reported to central in hello.
const Software = "vigil-edge/0.1"

// Options are the parts of a node that are not configuration.
type Options struct {
	Log *slog.Logger
	// OnAlert, if set, sees every alert right after it is durably queued.
	OnAlert func(wire.Alert)
	// OnUpdate, if set, sees every update the alert owner queues for its
	// alerts (motion incidents: later events, escalations, the end).
	OnUpdate func(wire.AlertUpdate)
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
	// noIncidents, if set (tests: export_test.go), makes every motion
	// event its own alert, as before motion incidents (incidents.go).
	noIncidents bool
}

// Node is a running edge: the composition root. Start builds each
// component with only what it needs and starts their goroutines; the
// node itself only answers the few questions asked of the running box
// (its address, its config, its live streams) and closes it.
//
// Components (each in its own file):
//
//	conf      configEngine   the one config in force, revisions (config_push.go)
//	alerts    alertOwner     camera and system alerts → outbox, in order (alertowner.go)
//	events    cameraEvents   camera callbacks → alerts, recorder, live (camevents.go)
//	gates     gateSide       gate engine, adapters, journal, worker (gates.go)
//	live      liveHub        live view streams (live.go)
//	evidence  evidenceSide   evidence export for central (evidence.go)
//	playback  playbackSide   recorded playback and its overlay (playback.go)
//	sensors   sensorSide     safety sensors: sources, verdicts → alerts, history, batches (sensors.go)
//	gb        gbSide         GB/T 28181 device: channels, health, alarms upstream (gb28181.go)
//	boxes     boxlog.Log     the analysers' motion boxes, for the overlay
//	selfTest  selfTester     the self-test (selftest.go)
//	api       localAPI       the local API's route table (api.go), audit (access.go)
//	setupSide setupBackend   the setup page's backend (setup_backend.go)
//	(run)     diskWatcher    the outbox's free-space floor → alerts (diskfloor.go)
//	(compose) rpcTable       central's requests → the components (rpc.go)
//	tasks, guard             goroutines Close waits for; the outbox guarded
//	                         against Close (lifecycle.go)
type Node struct {
	log   *slog.Logger
	reg   *prometheus.Registry
	tasks *tasks
	box   *outbox.Outbox
	guard *guardedBox // the outbox, guarded against Close
	audit *auditLog   // audited acts → central's audit log (access.go)
	clips *clips.Store
	boxes *boxlog.Log
	up    *uplink.Uplink
	cams  []*camera.Camera

	conf      *configEngine
	alerts    *alertOwner
	events    *cameraEvents
	gates     *gateSide   // nil without gates
	sensors   *sensorSide // nil without sensors
	gb        *gbSide     // nil without gb28181
	gateFeed  *gateFeed
	live      *liveHub
	evidence  *evidenceSide
	playback  *playbackSide
	selfTest  *selfTester
	setup     *setup.Server // nil if the page could not be made
	setupSide *setupBackend
	api       *localAPI

	httpSrv *http.Server
	ln      net.Listener
	once    sync.Once
}

// Start opens the outbox, binds the local API and starts every camera and
// the uplink. It returns once all are running.
func Start(cfg conf.Config, opts Options) (*Node, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("edge", cfg.EdgeID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n := &Node{log: log, reg: reg, tasks: newTasks(), guard: &guardedBox{}, gateFeed: &gateFeed{}, conf: newConfigEngine(cfg, opts, log)}
	n.alerts = newAlertOwner(cfg.EdgeID, cfg.SiteID, n.guard, opts, log, reg)
	n.audit = newAuditLog(cfg.EdgeID, n.guard, reg, log)
	if n.alerts.incidents != nil {
		n.alerts.incidents.rules = func() motion.IncidentRules { return n.conf.running().Analysis.Motion.Rules() }
	}
	n.events = &cameraEvents{edgeID: cfg.EdgeID, siteID: cfg.SiteID, conf: n.conf, alerts: n.alerts, camClock: &camClocks{}}
	if err := n.open(cfg, opts); err != nil {
		return nil, err
	}
	n.compose(cfg, opts)
	n.run()
	log.Info("edge running", "api", "http://"+n.ln.Addr().String(), "cameras", len(n.cams), "gates", len(cfg.Gates), "central", cfg.Central.URL, "pending_alerts", n.box.Len())
	return n, nil
}

// open opens what can fail: the outbox, the clip store, the local API's
// listener, the cameras and the gate side; on an error it closes what it
// opened.
func (n *Node) open(cfg conf.Config, opts Options) (err error) {
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	if n.box, err = outbox.Open(filepath.Join(cfg.DataDir, "outbox"), n.log); err != nil {
		return err
	}
	closers = append(closers, n.box.Close)
	n.guard.box = n.box
	n.clips, err = clips.Open(clips.Config{
		Dir: filepath.Join(cfg.DataDir, "clips"), Default: clipsBudget(cfg.Recording), Cameras: cameraIDs(cfg),
		MinFreeBytes: int64(cfg.Recording.MinFreeGiB * (1 << 30)), Registerer: n.reg, Log: n.log, OnCondition: n.events.onClipCondition,
	})
	if err != nil {
		return err
	}
	closers = append(closers, n.clips.Close)
	n.alerts.clips, n.events.clips = n.clips, n.clips
	// The boxes last as long as the video they are drawn over.
	n.boxes, err = boxlog.Open(boxlog.Config{Dir: filepath.Join(cfg.DataDir, "boxes"), Retention: cfg.Recording.MaxAge.D(), Registerer: n.reg, Log: n.log})
	if err != nil {
		return err
	}
	closers = append(closers, n.boxes.Close)
	n.events.boxes = n.boxes
	if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("edge: listen %s: %w", cfg.Listen, err)
	}
	closers = append(closers, n.ln.Close)
	if n.cams, err = newCameras(cfg, opts, n.events, n.reg, n.log); err != nil {
		return err
	}
	camByID := map[string]*camera.Camera{}
	for _, c := range n.cams {
		camByID[c.ID()] = c
	}
	n.conf.cams = map[string]motionCamera{}
	gateCams := map[string]gateCamera{}
	for id, c := range camByID {
		n.conf.cams[id], gateCams[id] = c, c
	}
	n.gates, err = newGateSide(cfg, gateDeps{conf: n.conf, box: n.box, alerts: n.alerts, clips: n.clips, cameras: gateCams,
		spawn: n.tasks.spawn, nodeDone: n.tasks.ctx, feed: n.gateFeed, openLine: opts.OpenGPIOLine, reg: n.reg, log: n.log})
	if err != nil {
		return err
	}
	closers = append(closers, func() error { n.gates.closeLines(); return nil })
	if n.sensors, err = newSensorSide(cfg, sensorDeps{box: n.guard, alerts: n.alerts, reg: n.reg, log: n.log}); err != nil {
		return err
	}
	closers = append(closers, func() error { n.sensors.close(); return nil })
	n.gb, err = newGBSide(cfg, gbDeps{conf: n.conf, cams: n.cams, gates: n.gates, sensors: n.sensors, clips: n.clips,
		recordings: n.clips, nodeDone: n.tasks.ctx, spawn: n.tasks.spawn, audit: n.audit, reg: n.reg, log: n.log})
	n.events.upstream = n.gb.liveFeed()
	n.alerts.onAlert = n.gb.observe(n.alerts.onAlert)          // every stored alert also goes to the platform (gb28181.go)
	n.alerts.onUpdate = n.gb.observeUpdates(n.alerts.onUpdate) // and escalations to red
	return err
}

// newCameras makes the configured cameras, each reporting to parent.
func newCameras(cfg conf.Config, opts Options, parent camera.Parent, reg prometheus.Registerer, log *slog.Logger) ([]*camera.Camera, error) {
	metrics := camera.NewMetrics(reg)
	var cams []*camera.Camera
	for _, cc := range cfg.Cameras {
		c := cc.Camera()
		if opts.CameraBackoffMax > 0 {
			c.BackoffMax = opts.CameraBackoffMax
		}
		cam, err := camera.New(c, parent, metrics, log)
		if err != nil {
			return nil, err
		}
		cams = append(cams, cam)
	}
	return cams, nil
}

// compose makes the components that cannot fail and wires them: the
// uplink and its request table, live view, evidence, self-test, the setup
// page and the local API.
func (n *Node) compose(cfg conf.Config, opts Options) {
	routes := uplink.NewRouter()
	n.up = uplink.New(uplink.Config{
		URL: cfg.Central.URL, Token: cfg.Central.Token, Pin: cfg.Central.PinBytes(), EdgeID: cfg.EdgeID, SiteID: cfg.SiteID, DataDir: cfg.DataDir,
		Software: Software, ConfigRevision: opts.ConfigRevision, BackoffMin: opts.UplinkBackoffMin, BackoffMax: cfg.Central.BackoffMax.D(), Routes: routes,
		OnAlertClosed: onAlertClosed(n.alerts, n.gates, n.log),
	}, n.box, func() wire.Heartbeat { return heartbeat(n.cams, n.conf, n.gates, n.sensors, n.gb) }, n.reg, n.log)
	n.conf.rev, n.conf.spawn, n.conf.done = n.up, n.tasks.spawn, n.tasks.ctx.Done()
	var camIDs []string
	for _, c := range n.cams {
		camIDs = append(camIDs, c.ID())
	}
	n.live = newLiveHub(camIDs, n.reg, n.log)
	n.events.gates, n.events.live = n.gates, n.live
	n.evidence = &evidenceSide{clips: n.clips, up: n.up, camClock: n.events.camClock, dataDir: cfg.DataDir, log: n.log}
	n.playback = &playbackSide{clips: n.clips, boxes: n.boxes, conf: n.conf}
	n.selfTest = newSelfTester(n.conf, n.cams, n.events.camClock, n.clips, n.up, n.gates, n.alerts.raise)
	n.setupSide = newSetupBackend(cfg, opts, n.conf, n.up, n.cams, n.selfTest, n.gates, n.gateFeed, n.audit, n.log)
	n.setupSide.sensorStatuses = n.setupSensorStatuses // setup_sensors.go
	n.setupSide.gbStatus = n.gb.status                 // setup_gb28181.go
	if st, err := setup.New(setup.Config{DataDir: cfg.DataDir, Backend: n.setupSide, Log: n.log, OpenFor: cfg.Setup.OpenFor(),
		EdgeID: func() string { return n.conf.running().EdgeID }}); err != nil {
		n.log.Error("setup page unavailable", "err", err)
	} else {
		n.setup = st
	}
	registerRoutes(routes, rpcTable{conf: n.conf, live: n.live, clips: n.clips, evidence: n.evidence, playback: n.playback, setup: n.setup, up: n.up, log: n.log})
	n.api = &localAPI{conf: n.conf, reg: n.reg, clips: n.clips, up: n.up, cams: n.cams, gates: n.gates, selfTest: n.selfTest,
		audit: n.audit, setup: n.setup, gb: n.gb, log: n.log}
	n.httpSrv = &http.Server{Handler: n.api.handler(), ReadHeaderTimeout: 10 * time.Second}
}

// run starts every goroutine of the node (tasks.spawn: Close waits for
// them).
func (n *Node) run() {
	ctx, spawn := n.tasks.ctx, n.tasks.spawn
	spawn(func() {
		if err := n.httpSrv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("local API stopped", "err", err)
		}
	})
	for _, cam := range n.cams {
		spawn(func() { cam.Run(ctx) })
	}
	spawn(func() { n.up.Run(ctx) })
	spawn(func() { n.alerts.run(ctx) }) // alertowner.go
	disk := &diskWatcher{box: n.box, raise: n.alerts.raise, edgeID: n.conf.running().EdgeID, siteID: n.conf.running().SiteID, log: n.log}
	spawn(func() { disk.run(ctx) }) // diskfloor.go
	n.gates.run(ctx)
	n.sensors.start(ctx, spawn) // sensors.go
	n.gb.start(ctx, spawn)      // gb28181.go
}

// onAlertClosed is the uplink's handler for central saying a guard
// closed one of this edge's alerts (it runs on the uplink's reader): the
// gate side forgets the fold the alert came from and the alert owner ends
// its motion incident, so a recurrence raises a new alert. Neither waits
// here.
func onAlertClosed(alerts *alertOwner, gs *gateSide, log *slog.Logger) func(wire.AlertClosed) {
	return func(c wire.AlertClosed) {
		log.Info("central closed an alert", "alert", c.AlertID, "state", c.State, "by", c.By)
		alerts.control("alert_closed", func(m *motionIncidents) { m.alertClosed(c.AlertID) })
		gs.alertClosed(c.AlertID)
	}
}

// Addr is the local API's address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Uplink exposes the connection to central (state, clock offset).
func (n *Node) Uplink() *uplink.Uplink { return n.up }

// RunningConfig is the config in force.
func (n *Node) RunningConfig() conf.Config { return n.conf.running() }

// ConfigRevision names the revision in force ("" before the first).
func (n *Node) ConfigRevision() string { return n.up.ConfigRevision() }

// ApplyConfig validates data (a whole edge.yaml), stores it as the next
// revision and puts it in force, live where possible (configEngine).
func (n *Node) ApplyConfig(data []byte) (ApplyResult, error) { return n.conf.ApplyConfig(data) }

// EditConfig applies the running config file changed by edit, keeping
// the file's comments (configEngine.EditConfig).
func (n *Node) EditConfig(edit func(*conf.Config) error) (ApplyResult, error) {
	return n.conf.EditConfig(edit)
}

// CameraMotion is the motion config a camera's analyser runs now.
func (n *Node) CameraMotion(id string) (motion.Config, bool) { return n.conf.cameraMotion(id) }

// OnAccessUnit records an access unit as if camera cam had sent it, the
// way every camera's units reach the node (cameraEvents.OnAccessUnit):
// central's retrieval tests play recorded video into an edge with it.
func (n *Node) OnAccessUnit(cam string, au streams.AccessUnit) { n.events.OnAccessUnit(cam, au) }

// LiveStreams lists the cameras streaming live view now.
func (n *Node) LiveStreams() []string { return n.live.running() }

// LastSelfTest reads the report the last POST kept, if any.
func (n *Node) LastSelfTest() (SelfTestReport, bool) { return n.selfTest.last() }

// Close stops everything and waits for every goroutine, then closes the
// outbox. Safe to call twice.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.tasks.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The setup pages' gate event streams end first: a restart on a
		// new revision must not wait for the pages watching its gates.
		n.gateFeed.closeAll()
		n.httpSrv.Shutdown(ctx)
		n.tasks.wait()
		n.live.close()
		n.gb.close() // its live calls ended with the tasks
		n.evidence.close()
		n.gates.closeLines()
		// The sensor side's goroutines have ended: nothing adds to its history.
		n.sensors.close()
		if cerr := n.boxes.Close(); cerr != nil { // the cameras have stopped: nothing adds
			n.log.Error("closing the motion box log", "err", cerr)
		}
		if cerr := n.clips.Close(); cerr != nil {
			n.log.Error("closing the clip store", "err", cerr)
		}
		err = n.guard.close()
		n.log.Info("edge stopped")
	})
	return err
}

func cameraIDs(cfg conf.Config) map[string]clips.CameraConfig {
	m := map[string]clips.CameraConfig{}
	for _, c := range cfg.Cameras {
		m[c.ID] = clipsBudget(cfg.Recording)
	}
	return m
}

// heartbeat is the node's health for central, with every camera and gate
// under the name edge.yaml gives it: the edge owns its devices' names and
// central shows what the heartbeat says (central/devices.go).
func heartbeat(cams []*camera.Camera, engine *configEngine, g *gateSide, ss *sensorSide, gb *gbSide) wire.Heartbeat {
	hb := wire.Heartbeat{Time: time.Now().UTC()}
	for _, c := range cams {
		s := c.Status()
		hb.Cameras = append(hb.Cameras, wire.CameraStatus{ID: c.ID(), Name: engine.cameraName(c.ID()),
			Online: s.Online, LastFrame: s.LastFrame, Error: s.Error})
	}
	hb.Gates = g.health()
	hb.Sensors = ss.statuses()
	hb.GB28181 = gb.status()
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
