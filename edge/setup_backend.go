package edge

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/fanout"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/wire"
)

// newSetupBackend makes the backend of the installer's setup page
// (edge/setup), mounted under /setup on the local API. Its changes reach
// central's audit log through SetupAudit (access.go) before they are made.
func newSetupBackend(cfg conf.Config, opts Options, engine *configEngine, up setupUplink, cams []*camera.Camera, st *selfTester,
	g *gateSide, feed *gateFeed, audit *auditLog, log *slog.Logger) *setupBackend {
	byID := map[string]setupCamera{}
	for _, c := range cams {
		byID[c.ID()] = c
	}
	return &setupBackend{
		log: log, configPath: opts.ConfigPath, hasGates: len(cfg.Gates) > 0, fakeGPIO: opts.OpenGPIOLine != nil,
		conf: engine, up: up,
		camera:        func(id string) setupCamera { return byID[id] },
		enrolRevision: engine.editRevision,
		selfTest:      st.run, sendSelfTest: st.send, gateStates: g.states,
		gateEvents: feed.subscribe,
		audit: func(action, target, client string, details any) error {
			return audit.record(actorSetup, action, target, client, details)
		},
	}
}

// setupBackend implements setup.Backend: the setup page's form<->config
// mapping, over the few node pieces the page needs, held as narrow
// interfaces and funcs (never the Node itself).
type setupBackend struct {
	log        *slog.Logger
	configPath string // Options.ConfigPath: "" when there is no edge.yaml to revise
	hasGates   bool   // the node was started with gates (SetupGateEvents)
	fakeGPIO   bool   // Options.OpenGPIOLine is set: no GPIO chip is opened from /dev
	conf       setupConfig
	up         setupUplink
	// camera is a configured camera, nil if the box has none by that ID.
	camera func(id string) setupCamera
	// enrolRevision edits the config and applies it as one revision under
	// the config lock, as EditConfig does, with applyLocked's flags
	// (configEngine.editRevision).
	enrolRevision func(edit func(*conf.Config) error, enrolling, identity bool) (ApplyResult, error)
	selfTest      func(ctx context.Context, window time.Duration) SelfTestReport
	sendSelfTest  func(SelfTestReport) error
	gateStates    func(ctx context.Context) (map[string]any, error)
	gateEvents    func(ctx context.Context) <-chan any
	// sensorStatuses is every sensor's verdict and last reading
	// (Node.setupSensorStatuses); nil: none are known.
	sensorStatuses func() []wire.SensorStatus
	// gbStatus is the registration with the GB/T 28181 platform
	// (gbSide.status); nil, or answering nil: the box runs none.
	gbStatus func() *wire.GBStatus
	audit    func(action, target, client string, details any) error
}

// setupConfig is the config in force, revised live (config_push.go).
type setupConfig interface {
	RunningConfig() conf.Config
	EditConfig(edit func(*conf.Config) error) (ApplyResult, error)
}

// setupUplink is the uplink as the setup page sees it.
type setupUplink interface {
	Connected() bool
	LastError() string
	Enrolled() bool
	ConfigRevision() string
	SetCredential(uplink.Credential) error
}

// setupCamera is a camera as the setup page uses it.
type setupCamera interface {
	Status() camera.Status
	Snapshot(ctx context.Context) ([]byte, time.Time, error)
	MotionPreview(ctx context.Context, zones []motion.Zone, masks []motion.Polygon) (motion.Preview, time.Time, error)
}

// SetupStatus implements setup.Backend.
func (s *setupBackend) SetupStatus() any {
	type cam struct {
		ID              string            `json:"id"`
		Name            string            `json:"name,omitempty"`
		Online          bool              `json:"online"`
		Error           string            `json:"error,omitempty"`
		Zones           []conf.ZoneConfig `json:"zones"`
		Masks           []conf.Polygon    `json:"masks"`
		Motion          map[string]any    `json:"motion,omitempty"`
		setup.Perimeter                   // lines and dwell, as the page draws them
	}
	run := s.conf.RunningConfig()
	cams := []cam{}
	for _, cc := range run.Cameras {
		c := s.camera(cc.ID)
		if c == nil {
			continue
		}
		s := c.Status()
		cams = append(cams, cam{ID: cc.ID, Name: cc.Name, Online: s.Online, Error: s.Error,
			Zones: append([]conf.ZoneConfig{}, cc.Motion.Zones...), Masks: append([]conf.Polygon{}, cc.Motion.Masks...),
			Perimeter: setup.PerimeterOf(cc)})
	}
	gates := []string{}
	for _, g := range run.Gates {
		gates = append(gates, g.ID)
	}
	return map[string]any{
		"edge_id": run.EdgeID, "site_id": run.SiteID, "central_url": run.Central.URL,
		"entrance": run.Entrance, "time_zone": run.TimeZone, "ntp": run.NTP,
		"enrolled": s.enrolled(), "central_connected": s.up.Connected(), "central_error": s.up.LastError(),
		"config_revision": s.up.ConfigRevision(), "cameras": cams, "gates": gates,
		"live_config": s.configPath != "",
	}
}

// SetupSelfTest implements setup.Backend: the self-test, kept on the box
// and sent to central like POST /api/v1/selftest.
func (s *setupBackend) SetupSelfTest(ctx context.Context, window time.Duration) any {
	rep := s.selfTest(ctx, window)
	// Before the installer leaves, every sensor has reported
	// (setup_sensors.go).
	for _, c := range sensorsReported(s.conf.RunningConfig(), s.SetupSensorStates()) {
		rep.Checks = append(rep.Checks, c)
		rep.OK = rep.OK && c.Status == Green
	}
	if err := s.sendSelfTest(rep); err != nil {
		s.log.Warn("self-test result not sent", "err", err)
	}
	return rep
}

// SetupEnrolled implements setup.Backend.
func (s *setupBackend) SetupEnrolled() bool { return s.enrolled() }

// SetupSaveZones implements setup.Backend: the camera's zones and masks,
// tripwires and loitering areas (replacing the ones it had) become a
// config revision, in force at once; a refused one names its fields.
func (s *setupBackend) SetupSaveZones(camID string, zones []setup.Zone, masks [][][2]float64, per setup.Perimeter) (any, error) {
	res, err := s.conf.EditConfig(func(c *conf.Config) error {
		if err := setup.ApplyZones(c, camID, zones, masks); err != nil {
			return err
		}
		return setup.ApplyPerimeter(c, camID, per)
	})
	if err != nil {
		return nil, setup.RefusalOf(err)
	}
	return res, nil
}

// SetupSnapshot implements setup.Backend.
func (s *setupBackend) SetupSnapshot(ctx context.Context, camID string) ([]byte, error) {
	c := s.camera(camID)
	if c == nil {
		return nil, fmt.Errorf("no camera %q on this box", camID)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	jpg, _, err := c.Snapshot(ctx)
	return jpg, err
}

// SetupMotionPreview implements setup.Backend: the camera's detector
// output with the draft zones, as a PNG the page lays over the picture.
func (s *setupBackend) SetupMotionPreview(ctx context.Context, camID string, zones []setup.Zone, masks [][][2]float64) ([]byte, error) {
	c := s.camera(camID)
	if c == nil {
		return nil, fmt.Errorf("no camera %q on this box", camID)
	}
	mz, mm := setup.PreviewZones(zones, masks)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p, _, err := c.MotionPreview(ctx, mz, mm)
	if err != nil {
		return nil, err
	}
	return previewPNG(p)
}

// SetupPerimeterPreview implements setup.Backend: the tracks and recent
// crossings of the camera's perimeter watcher run with the draft lines
// and loitering areas (setup.ErrNoPerimeterPreview when the camera has
// no such preview).
func (s *setupBackend) SetupPerimeterPreview(ctx context.Context, camID string, lines []setup.Line, dwell []setup.Dwell) (setup.PerimeterPreview, error) {
	c := s.camera(camID)
	if c == nil {
		return setup.PerimeterPreview{}, fmt.Errorf("no camera %q on this box", camID)
	}
	pp, ok := c.(perimeterPreviewer)
	if !ok {
		return setup.PerimeterPreview{}, setup.ErrNoPerimeterPreview
	}
	cfg, probs := setup.PerimeterConfig(setup.Perimeter{Lines: lines, Dwell: dwell})
	if len(probs) > 0 {
		return setup.PerimeterPreview{}, setup.Refused(probs)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p, err := pp.PerimeterPreview(ctx, cfg)
	if err != nil {
		return setup.PerimeterPreview{}, err
	}
	return setup.PerimeterPreviewOf(0, 0, p.At, p.Tracks, p.Crossings, p.Loiters), nil
}

// perimeterPreviewer is a camera that runs a perimeter watcher with draft
// lines and areas beside its own, for the setup page's preview
// ((*camera.Camera).PerimeterPreview).
type perimeterPreviewer interface {
	PerimeterPreview(context.Context, perimeter.Config) (camPerimeterPreview, error)
}

// camPerimeterPreview is what (*camera.Camera).PerimeterPreview answers.
type camPerimeterPreview = camera.PerimeterPreview

// The node's cameras have the perimeter preview.
var _ perimeterPreviewer = (*camera.Camera)(nil)

// previewPNG draws a preview: moving pixels red, unwatched ones dimmed,
// the rest transparent.
func previewPNG(p motion.Preview) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, p.W, p.H))
	moving, dim := color.NRGBA{255, 32, 32, 200}, color.NRGBA{0, 0, 0, 110}
	for i := range p.W * p.H {
		switch {
		case p.Fore[i] != 0:
			img.SetNRGBA(i%p.W, i/p.W, moving)
		case p.Watch[i] == 0:
			img.SetNRGBA(i%p.W, i/p.W, dim)
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// gateFeed fans gate events out to setup pages; it never blocks the
// gate adapters (a page that does not keep up loses events, not them): a
// fanout.Hub with policy DropNewest, gateFeedQueue events per page.
type gateFeed struct {
	once sync.Once
	hub  *fanout.Hub[any] // made on first use
}

// gateFeedQueue bounds the events waiting for one setup page.
const gateFeedQueue = 32

func (f *gateFeed) out() *fanout.Hub[any] {
	f.once.Do(func() { f.hub = fanout.New[any](fanout.DropNewest) })
	return f.hub
}

// GateEventView is a gate event as the setup page shows it.
type GateEventView struct {
	Gate       string    `json:"gate"`
	Device     string    `json:"device,omitempty"`
	Kind       string    `json:"kind"`
	Sensor     string    `json:"sensor,omitempty"`
	Credential string    `json:"credential,omitempty"`
	Time       time.Time `json:"time"`
	Initial    bool      `json:"initial,omitempty"`
	Source     string    `json:"source,omitempty"`
}

func (f *gateFeed) publish(ev gates.Event) {
	hub := f.out()
	if hub.Len() == 0 {
		return
	}
	hub.Publish(GateEventView{Gate: ev.Gate, Device: ev.Device, Kind: string(ev.Kind), Sensor: ev.Sensor, Credential: ev.Credential,
		Time: ev.Time.UTC(), Initial: ev.Initial, Source: ev.Source})
}

// subscribe returns a page's events until ctx ends (the channel is then
// closed) or the node stops; closed at once if it has stopped.
func (f *gateFeed) subscribe(ctx context.Context) <-chan any {
	return f.out().Subscribe(ctx, gateFeedQueue).C()
}

// closeAll ends every stream: the node is stopping (a restart on a new
// revision must not wait for the pages watching its gates).
func (f *gateFeed) closeAll() { f.out().Close() }

// SetupGateEvents implements setup.Backend.
func (s *setupBackend) SetupGateEvents(ctx context.Context) <-chan any {
	if !s.hasGates {
		return nil
	}
	return s.gateEvents(ctx)
}

// SetupGateStates implements setup.Backend: what GET /api/v1/gates shows.
func (s *setupBackend) SetupGateStates(ctx context.Context) (any, error) { return s.gateStates(ctx) }
