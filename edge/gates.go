package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/edgewire"
	"github.com/vigil-perimeter/vigil/gates/engine"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	"github.com/vigil-perimeter/vigil/gates/journal"
	"github.com/vigil-perimeter/vigil/gates/mqtt"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/wire"
)

// The gate side of a node: one engine owns the state machines of every
// gate in edge.yaml; the webhook (on the local API), MQTT and GPIO adapters
// feed it; its alerts are turned into wire messages by edgewire and handed
// to one worker goroutine, which adds what the cameras that see the gate
// saw (snapshots at the event instant, pinned video) and queues them in
// the outbox in the order the machines produced them.
//
// Durability: every adapter's event goes first into the gate journal
// (data_dir/gates/journal, fsynced, group-committed) and only then is it
// acknowledged (webhook 2xx, MQTT PUBACK, GPIO edge taken). The engine is
// fed from the journal's commits (runFeeder), in journal order. A journal
// record is done once the alerts its machine step produced are in the
// outbox (the worker marks it after its flush); on start, records not done
// are replayed into the engine before any adapter runs, after the records
// done within the journal's window have been replayed quietly to rebuild
// the machines' state (Engine.Replay). Outbox IDs of an
// alert raised by a journaled event derive from its sequence number, so
// an alert queued just before a crash and raised again on replay reaches
// central with the same ID (central keeps one).

const (
	// snapshotTimeout bounds how long a gate alert waits for its cameras'
	// pictures; a camera that is offline must not delay the alert.
	// pictureBudget: a gate alert waits for its cameras' pictures until
	// this long after its event (at least minPictureWait); a picture that
	// comes later follows as an update. With the 300 ms grant grace a
	// forced door is queued for central within ~0.7 s however busy the
	// cameras are.
	pictureBudget  = 700 * time.Millisecond
	minPictureWait = 100 * time.Millisecond
	// prefetchTimeout bounds a request for a picture.
	prefetchTimeout = 3 * time.Second
	// lateEvent: an event older than this when its alert is raised (a
	// controller that batched, a backlog after an outage) gets its
	// pictures from the clip store at the event time, not the live view.
	lateEvent        = 3 * time.Second
	recentGateAlerts = 50
)

// gateSide is the node's gate side: the engine, the adapters that feed
// it through the journal, and the worker that queues its outputs. It gets
// what it needs from the composition root (gateDeps), never the node.
type gateSide struct {
	edgeID string
	log    *slog.Logger
	conf   gateConfigs
	box    gateOutbox
	alerts gateAlerts
	clips  gateClips
	spawn  func(func()) bool
	feed   *gateFeed // the setup page's live gate events (setup_backend.go)
	pics   *gatePictures
	eng    *engine.Engine
	ids    *gateIDs    // used on the engine's goroutine only
	feeder *gateFeeder // journal → engine
	gateInputs
	work    chan gateJob
	journal *journal.Journal

	// ctx ends with the node (run) or closeLines: picture requests.
	ctx    context.Context
	cancel context.CancelFunc

	snapFailures *prometheus.CounterVec
	delay        prometheus.Histogram

	mu     sync.Mutex
	recent []GateAlertLink // newest last

	// statusCalls counts round trips to the engine (status): the camera
	// and heartbeat paths read its published snapshot instead (tests).
	statusCalls atomic.Int64
}

// gateInputs are the adapters gate_inputs configures.
type gateInputs struct {
	hook  *webhook.Handler // nil: webhook disabled
	mqtt  *mqtt.Adapter
	gpio  *gpio.Adapter
	lines []gpio.Line
}

// gateDeps is what the gate side takes from the node.
type gateDeps struct {
	conf     gateConfigs
	box      gateOutbox
	alerts   gateAlerts
	clips    gateClips
	cameras  map[string]gateCamera // the running cameras, by ID
	spawn    func(func()) bool
	nodeDone context.Context // ends when the node closes
	feed     *gateFeed
	openLine func(chip string, offset int, o gpio.LineOptions) (gpio.Line, error) // Options.OpenGPIOLine
	reg      prometheus.Registerer
	log      *slog.Logger
}

// gateConfigs is the gates' config in force (configEngine).
type gateConfigs interface {
	gate(id string) conf.GateConfig
	watching(cam string) []string
}

// gateOutbox is what the gate worker writes to the outbox besides alerts.
type gateOutbox interface {
	AppendEvents(wire.EventBatch) error
	AppendUpdate(wire.AlertUpdate, wire.Severity) error
}

// gateAlerts raises gate alerts (the node's alertOwner.raise, called on
// the gate worker's goroutine, in the machines' order).
type gateAlerts interface {
	links(cams []string, at time.Time) []wire.Link
	raise(wire.Alert) bool
	// gateForced escalates the motion incidents of cams (never waits).
	gateForced(cams []string, why string, at time.Time)
}

// gateClips is what the gate side uses of the clip store.
type gateClips interface {
	Pin(id, cam string, at time.Time, kind string) (clips.Pin, error)
	Flush(ctx context.Context) error
	Thumbnail(cam string, at time.Time, width int) (clips.Thumbnail, error)
}

// gateCamera is a running camera as a gate alert's picture comes from it.
type gateCamera interface {
	Snapshot(ctx context.Context) ([]byte, time.Time, error)
}

// gateIDs gives the Converter's outputs their outbox IDs (outboxID); used
// on the engine's goroutine only.
type gateIDs struct {
	edgeID string
	conv   edgewire.Converter
	// The journal sequence number of the alert being converted, and how
	// many outbox IDs it has had.
	idSeq   uint64
	idN     int
	idTimer []byte // timerKey of a timer's output (idSeq 0)
	// folds maps open alerts' IDs to their folds (alert_closed).
	folds *foldIndex
}

// gateFeeder hands journaled events to the engine, oldest first.
type gateFeeder struct {
	eng     *engine.Engine
	journal *journal.Journal // set once the journal is open
	log     *slog.Logger
	mu      sync.Mutex
	q       []journal.Record
	kick    chan struct{}
}

// gateJob is one machine output on its way to the outbox, or (done != 0)
// the mark that a journaled event's outputs are all ahead of it.
type gateJob struct {
	alert gates.Alert
	out   edgewire.Out
	done  uint64
}

// GateAlertLink ties a gate alert to the cameras that see the gate: which
// sent a picture and which video is pinned for it. GET /api/v1/gates
// lists the latest.
type GateAlertLink struct {
	AlertID  string          `json:"alert_id"`
	Gate     string          `json:"gate"`
	Kind     string          `json:"kind"`
	Severity wire.Severity   `json:"severity"`
	Time     time.Time       `json:"time"`
	Cameras  []GateCameraRef `json:"cameras"`
}

// GateCameraRef is one camera's part of a gate alert.
type GateCameraRef struct {
	Camera       string    `json:"camera"`
	Snapshot     bool      `json:"snapshot"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	// ClipFrom..ClipTo is pinned in the clip store (pin ID PinID); MP4 is
	// its export on this box's API.
	PinID    string    `json:"pin_id,omitempty"`
	ClipFrom time.Time `json:"clip_from,omitzero"`
	ClipTo   time.Time `json:"clip_to,omitzero"`
	MP4      string    `json:"mp4,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// newGateSide builds the engine, the adapters and the journal for the
// gates of cfg (nil without gates); nothing runs until run.
func newGateSide(cfg conf.Config, d gateDeps) (*gateSide, error) {
	if len(cfg.Gates) == 0 {
		return nil, nil
	}
	g := &gateSide{edgeID: cfg.EdgeID, log: d.log, conf: d.conf, box: d.box, alerts: d.alerts, clips: d.clips, spawn: d.spawn, feed: d.feed,
		work: make(chan gateJob, 1024)}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.pics = &gatePictures{ctx: g.ctx, nodeDone: d.nodeDone, spawn: d.spawn, clips: d.clips, cameras: d.cameras, conf: d.conf, shots: map[string][]*prefetch{}}
	g.ids = &gateIDs{edgeID: cfg.EdgeID, folds: newFoldIndex()}
	g.ids.conv = edgewire.Converter{EdgeID: cfg.EdgeID, SiteID: cfg.SiteID, NewID: g.ids.outboxID}
	g.snapFailures, g.delay = gateMetrics(cfg)
	d.reg.MustRegister(g.snapFailures, g.delay, gateCollector{g})
	var mcs []gates.Config
	for _, gc := range cfg.ResolvedGates() {
		mcs = append(mcs, gc.Machine())
	}
	eng, err := engine.New(engine.Options{Gates: mcs, OnAlert: g.onAlert, OnDone: g.onDone, OnReplayed: func(a gates.Alert) { g.ids.convert(a) },
		Log: d.log, Registerer: d.reg})
	if err != nil {
		return nil, fmt.Errorf("edge: gates: %w", err)
	}
	g.eng = eng
	g.feeder = &gateFeeder{eng: eng, log: d.log, kick: make(chan struct{}, 1)}
	if g.gateInputs, err = openGateInputs(cfg, d, g.submit, g.submitBatch); err != nil {
		g.closeLines()
		return nil, err
	}
	if g.journal, err = openGateJournal(cfg, eng, g.feeder, d.log); err != nil {
		g.closeLines()
		return nil, err
	}
	return g, nil
}

// gateMetrics are the gate side's counters, each camera's series at 0
// from start-up until a picture fails.
func gateMetrics(cfg conf.Config) (snapFailures *prometheus.CounterVec, delay prometheus.Histogram) {
	snapFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_gate_snapshot_failures_total", Help: "Gate alerts that went out without a picture from one of the gate's cameras, by camera.",
	}, []string{"camera"})
	delay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vigil_gate_alert_delay_seconds", Help: "From a gate event's time to its alert being durably queued for central.",
		Buckets: []float64{.05, .1, .2, .3, .4, .5, .75, 1, 2, 5, 10, 30},
	})
	for _, gc := range cfg.ResolvedGates() {
		for _, cam := range gc.Cameras {
			snapFailures.WithLabelValues(cam).Add(0)
		}
	}
	return snapFailures, delay
}

// openGateInputs makes the adapters gate_inputs configures, each feeding
// submit (batch: the webhook's batches). On an error the GPIO lines
// opened are in the result, for closeLines.
func openGateInputs(cfg conf.Config, d gateDeps, submit gates.Sink, batch gates.BatchSink) (gateInputs, error) {
	in := cfg.GateInputs
	var gi gateInputs
	var err error
	if in.Webhook.Enabled {
		if gi.hook, err = openWebhook(in.Webhook, submit, batch, d.reg, d.log); err != nil {
			return gi, err
		}
	}
	if in.MQTT != nil {
		if gi.mqtt, err = openMQTT(*in.MQTT, cfg.EdgeID, submit, d.reg, d.log); err != nil {
			return gi, err
		}
	}
	if in.GPIO != nil {
		gi.gpio, gi.lines, err = openGPIO(in.GPIO, d.openLine, submit, d.log)
	}
	return gi, err
}

func openWebhook(w conf.WebhookInputConfig, submit gates.Sink, batch gates.BatchSink, reg prometheus.Registerer, log *slog.Logger) (*webhook.Handler, error) {
	wc := webhook.Config{MaxBody: w.MaxBody, MaxSkew: w.Window.D()}
	for _, c := range w.Controllers {
		secrets, err := c.Secrets()
		if err != nil {
			return nil, fmt.Errorf("edge: gate_inputs.webhook: controller %q: %w", c.ID, err)
		}
		wc.Controllers = append(wc.Controllers, webhook.Controller{ID: c.ID, Secrets: secrets, Gates: c.Gates})
	}
	wc.Batch = batch
	h, err := webhook.New(wc, submit, reg, log)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return h, nil
}

func openMQTT(m conf.MQTTInputConfig, edgeID string, submit gates.Sink, reg prometheus.Registerer, log *slog.Logger) (*mqtt.Adapter, error) {
	password := m.Password
	if m.PasswordFile != "" {
		b, err := readSecretFile(m.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("edge: gate_inputs.mqtt.password_file: %w", err)
		}
		password = b
	}
	mc := mqtt.Config{Broker: m.Broker, ClientID: m.ClientID, Username: m.Username, Password: password,
		BaseTopic: m.BaseTopic, EventTopic: m.EventTopic, EventGates: m.EventGates}
	if mc.ClientID == "" {
		mc.ClientID = "vigil-" + edgeID
	}
	for _, d := range m.Devices {
		mc.Devices = append(mc.Devices, mqtt.Device{Name: d.Name, Gate: d.Gate, Actions: d.Actions})
	}
	a, err := mqtt.New(mc, submit, reg, log)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return a, nil
}

// openGPIO opens the configured lines (open: Options.OpenGPIOLine, else
// the Linux character device); on an error the lines opened are returned
// for closeLines.
func openGPIO(gp *conf.GPIOInputConfig, open func(chip string, offset int, o gpio.LineOptions) (gpio.Line, error), submit gates.Sink, log *slog.Logger) (*gpio.Adapter, []gpio.Line, error) {
	if open == nil {
		open = gpio.OpenLine
	}
	var lines []gpio.Line
	var inputs []gpio.Input
	for _, l := range gp.Lines {
		line, err := open(l.EffectiveChip(gp), l.Offset, gpio.LineOptions{ActiveLow: l.ActiveLow, Bias: l.Bias})
		if err != nil {
			return nil, lines, fmt.Errorf("edge: gate_inputs.gpio: %w", err)
		}
		lines = append(lines, line)
		inputs = append(inputs, gpio.Input{Gate: l.Gate, Device: l.Input, Role: gpio.Role(l.Role), Line: line})
	}
	a, err := gpio.New(gpio.Config{Inputs: inputs, Debounce: gp.Debounce.D()}, submit, log)
	if err != nil {
		return nil, lines, fmt.Errorf("edge: %w", err)
	}
	return a, lines, nil
}

// openGateJournal opens the gate journal and rebuilds the engine's
// machines from it; its commits go to the feeder. IDs are kept for twice
// the webhook's window: a request signed at T is accepted until
// T+window, its events were received from T-window.
func openGateJournal(cfg conf.Config, eng *engine.Engine, feeder *gateFeeder, log *slog.Logger) (*journal.Journal, error) {
	window := webhook.DefaultMaxSkew
	if w := cfg.GateInputs.Webhook; w.Enabled && w.Window.D() > 0 {
		window = w.Window.D()
	}
	j, err := journal.Open(filepath.Join(cfg.DataDir, "gates", "journal"), journal.Options{Window: 2 * window, OnCommit: feeder.enqueue, Log: log})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	feeder.journal = j
	// The machines' state is rebuilt from every record still in the
	// journal within its window, in order: those done before this start
	// quietly (their outputs are in the outbox), those not done as new
	// (with their stable IDs), before anything new. A grant done before a
	// crash thus admits the opening journaled after it, and a door opened
	// before it is known to be open.
	var past []engine.Past
	for _, r := range j.History() {
		past = append(past, engine.Past{Seq: r.Seq, At: r.At, Event: r.Event})
	}
	eng.Replay(past)
	feeder.enqueue(j.Pending())
	return j, nil
}

// run starts the engine, the feeder, the worker and the adapters, all
// ending with ctx.
func (g *gateSide) run(ctx context.Context) {
	if g == nil {
		return
	}
	context.AfterFunc(ctx, g.cancel)
	g.spawn(func() { g.eng.Run(ctx) })
	g.spawn(func() { g.feeder.run(ctx) })
	g.spawn(func() {
		g.runWorker(ctx)
		// What the worker queued is marked done; what the engine had not
		// handed over stays in the journal for the next start.
		if err := g.journal.Close(); err != nil {
			g.log.Error("gate journal close", "err", err)
		}
	})
	if g.mqtt != nil {
		g.spawn(func() { g.mqtt.Run(ctx) })
	}
	if g.gpio != nil {
		g.spawn(func() { g.gpio.Run(ctx) })
	}
}

// closeLines releases GPIO lines (after every goroutine has stopped).
func (g *gateSide) closeLines() {
	if g == nil {
		return
	}
	g.cancel()
	g.gateInputs.closeLines()
}

func (g *gateInputs) closeLines() {
	for _, l := range g.lines {
		l.Close()
	}
	g.lines = nil
}

// alertClosed runs on the uplink's reader when central says a guard
// closed alert id: if it is a gate alert, the engine forgets its fold
// (on another goroutine: the engine may be busy), so the cause's next
// occurrence raises a new alert with its own picture and clip.
func (g *gateSide) alertClosed(id string) {
	if g == nil {
		return
	}
	r, ok := g.ids.folds.take(id)
	if !ok {
		return
	}
	g.spawn(func() { forgetFold(g.ctx, g.eng, r, id, g.log) })
}

// onAlert runs on the engine's goroutine, in order: convert, hand on.
func (g *gateSide) onAlert(a gates.Alert) {
	g.work <- gateJob{alert: a, out: g.ids.convert(a)}
}

// convert maps an alert with the ID scheme of outboxID.
func (g *gateIDs) convert(a gates.Alert) edgewire.Out {
	if a.Seq != g.idSeq || a.Seq == 0 {
		g.idSeq, g.idN = a.Seq, 0
	}
	g.idTimer = nil
	if a.Seq == 0 {
		g.idTimer = timerKey(a)
	}
	out := g.conv.Convert(a)
	if out.Alert != nil {
		g.folds.opened(out.Alert.ID, a)
	}
	if out.Event != nil {
		// A passage keeps its ID across a replay, so central stores it once.
		out.Event.ID = g.outboxID(a.Time)
	}
	return out
}

// timerKey identifies a timer's output (held open, silent, a forced
// verdict after the grant grace, a folded count) by what it says and the
// machine time it is due at. A timer due after the last record done
// before a crash fires again after the restart (the engine cannot know
// whether it fired before the crash): with the same key it gets the same
// outbox ID, and central keeps one.
func timerKey(a gates.Alert) []byte {
	b, _ := json.Marshal(a)
	return append([]byte("timer\x00"), b...)
}

// onDone runs on the engine's goroutine after a journaled event's step:
// the worker marks it done once everything before this mark is stored.
func (g *gateSide) onDone(seq uint64) { g.work <- gateJob{done: seq} }

// outboxID is the Converter's ID scheme: for an alert raised by a
// journaled event, a stable ID from the event's sequence number (the
// same on a replay after a crash); for a timer's output, a stable ID
// from its content (timerKey); else a fresh one.
func (g *gateIDs) outboxID(t time.Time) string {
	if g.idSeq == 0 && g.idTimer == nil {
		return newAlertID(g.edgeID, t)
	}
	g.idN++
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], g.idSeq)
	binary.BigEndian.PutUint64(b[8:], uint64(g.idN))
	in := append([]byte(g.edgeID+"\x00gate-journal\x00"), b[:]...)
	if g.idTimer != nil {
		in = append(append(in, 0), g.idTimer...)
	}
	sum := sha256.Sum256(in)
	ts := strings.ReplaceAll(t.UTC().Format("20060102T150405.000Z"), ".", "")
	return g.edgeID + "-" + ts + "-" + hex.EncodeToString(sum[:5])
}

// enqueue is the journal's OnCommit: durable records go to the feeder.
func (f *gateFeeder) enqueue(recs []journal.Record) {
	if len(recs) == 0 {
		return
	}
	f.mu.Lock()
	f.q = append(f.q, recs...)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// run hands journaled events to the engine in journal order. It
// blocks on a busy engine without holding up acknowledgements: those
// waited only for the journal.
func (f *gateFeeder) run(ctx context.Context) {
	for {
		f.mu.Lock()
		q := f.q
		f.q = nil
		f.mu.Unlock()
		for _, r := range q {
			if err := f.eng.SubmitRecord(ctx, r.Seq, r.At, r.Event); err != nil {
				if ctx.Err() != nil || errors.Is(err, engine.ErrStopped) {
					return // not done: replayed on the next start
				}
				// A replayed event of a gate no longer configured.
				f.log.Warn("journaled gate event dropped", "seq", r.Seq, "gate", r.Event.Gate, "err", err)
				f.journal.Done(r.Seq)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
	}
}

// runWorker queues gate outputs in order. Passages are batched: whatever
// is waiting when the queue runs dry goes as one event batch.
func (g *gateSide) runWorker(ctx context.Context) {
	var events []wire.Event
	var done []uint64 // journal records whose outputs are all queued above
	lost := false     // an output was not stored: leave those records to replay
	flush := func() {
		for len(events) > 0 {
			k := min(len(events), wire.MaxBatchEvents)
			b := wire.EventBatch{ID: newAlertID(g.edgeID, events[0].Time), EdgeID: g.edgeID, Events: events[:k]}
			if err := g.box.AppendEvents(b); err != nil {
				g.log.Error("GATE EVENTS NOT STORED", "batch", b.ID, "events", k, "err", err)
				lost = true
			}
			events = events[k:]
		}
		events = nil
		if !lost {
			for _, seq := range done {
				g.journal.Done(seq)
			}
		}
		done, lost = done[:0], false
	}
	handle := func(ctx context.Context, j gateJob) {
		if ev := gateEvent(j.alert, j.out); ev != nil {
			events = append(events, *ev) // every alert output is in central's event log too
		}
		switch {
		case j.done != 0:
			done = append(done, j.done)
		case j.out.Event != nil:
			events = append(events, *j.out.Event)
		case j.out.Update != nil:
			u := *j.out.Update
			if err := g.box.AppendUpdate(u, u.Severity); err != nil {
				g.log.Error("GATE ALERT UPDATE NOT STORED", "update", u.ID, "alert", u.AlertID, "err", err)
				lost = true
			}
		case j.out.Alert != nil:
			if !g.raise(ctx, j.alert, *j.out.Alert) {
				lost = true
			}
		}
		escalateWatchers(g.alerts, g.conf, j.alert)
	}
	for {
		select {
		case <-ctx.Done():
			// The engine has stopped or is stopping: queue what it gave,
			// without pictures (the cameras are going down too).
			for {
				select {
				case j := <-g.work:
					handle(ctx, j)
				default:
					flush()
					return
				}
			}
		case j := <-g.work:
			handle(ctx, j)
			if len(g.work) == 0 {
				flush()
			}
		}
	}
}

// pictured says which causes are about something at the gate a camera
// can see; a device's battery or silence is not.
func pictured(c gates.Cause) bool {
	return c != gates.CauseSilent && c != gates.CauseBatteryLow
}

// raise queues a new gate alert with the first camera's picture, then pins
// every camera's video around it and sends the other cameras' pictures as
// updates of the alert (an alert carries one snapshot on the wire). The
// alert waits for pictures until pictureBudget after its event at most; a
// picture that comes later follows as an update. It reports whether the
// alert was stored.
func (g *gateSide) raise(ctx context.Context, ga gates.Alert, a wire.Alert) bool {
	gc := g.conf.gate(ga.Gate)
	link := GateAlertLink{AlertID: a.ID, Gate: ga.Gate, Kind: a.Kind, Severity: a.Severity, Time: a.Time}
	a.Links = g.alerts.links(gc.Cameras, a.Time)
	var p *prefetch
	var shots []shot
	if pictured(ga.Key) && len(gc.Cameras) > 0 {
		p = g.pics.pictures(ctx, gc, ga.Time)
		shots = p.snapshot()
		for i, cam := range gc.Cameras {
			ref := GateCameraRef{Camera: cam}
			if s := shots[i]; s.ok() {
				ref.Snapshot, ref.SnapshotTime = true, s.at.UTC()
				if len(a.Snapshot) == 0 {
					a.Snapshot, a.SnapshotTime = s.jpg, s.at.UTC()
				}
			} else if s.done {
				g.snapFailures.WithLabelValues(cam).Inc()
				ref.Error = fmt.Sprint(s.err)
				g.log.Warn("gate alert without this camera's picture", "alert", a.ID, "gate", ga.Gate, "camera", cam, "err", s.err)
			} else {
				ref.Error = "picture still coming"
			}
			link.Cameras = append(link.Cameras, ref)
		}
	}
	if !g.alerts.raise(a) {
		return false
	}
	g.delay.Observe(time.Since(a.Time).Seconds())
	for i := range link.Cameras {
		ref := &link.Cameras[i]
		ref.PinID = a.ID
		if i > 0 {
			ref.PinID = a.ID + "/" + ref.Camera
		}
		pin, err := g.clips.Pin(ref.PinID, ref.Camera, a.Time, a.Kind)
		if err != nil {
			g.log.Warn("video for gate alert not pinned", "alert", a.ID, "camera", ref.Camera, "err", err)
			ref.PinID = ""
			continue
		}
		ref.ClipFrom, ref.ClipTo = pin.From, pin.To
		ref.MP4 = fmt.Sprintf("/api/v1/recordings/%s/mp4?start=%s&duration=%s", ref.Camera, pin.From.Format(time.RFC3339Nano), pin.To.Sub(pin.From))
	}
	withAlert := len(a.Snapshot) > 0
	late := false
	for i, s := range shots {
		switch {
		case !s.ok():
			late = true // not answered yet, or failed: followUp tries again
		case s.ok() && (!withAlert || !bytes.Equal(s.jpg, a.Snapshot)):
			g.sendPicture(a, gc.Cameras[i], s)
		}
	}
	g.mu.Lock()
	g.recent = append(g.recent, link)
	if len(g.recent) > recentGateAlerts {
		g.recent = g.recent[len(g.recent)-recentGateAlerts:]
	}
	g.mu.Unlock()
	if late {
		// A camera has not answered yet, or failed: its picture (live, or
		// else recorded) follows as an update (the alert did not wait).
		g.spawn(func() { g.followUp(a, gc, p, shots) })
	}
	return true
}

// sendPicture queues a camera's picture as an update of alert a.
func (g *gateSide) sendPicture(a wire.Alert, cam string, s shot) {
	u := wire.AlertUpdate{ID: newAlertID(g.edgeID, s.at), AlertID: a.ID, EdgeID: a.EdgeID, Time: a.Time,
		Snapshot: s.jpg, SnapshotTime: s.at.UTC(), Camera: cam}
	if err := g.box.AppendUpdate(u, a.Severity); err != nil {
		g.log.Error("picture of gate alert not stored", "alert", a.ID, "camera", cam, "err", err)
	}
}

// followUp waits for the pictures an alert went without and sends them.
func (g *gateSide) followUp(a wire.Alert, gc conf.GateConfig, p *prefetch, before []shot) {
	select {
	case <-p.done:
	case <-g.ctx.Done():
		return
	}
	after := p.snapshot()
	for i, s := range after {
		if before[i].ok() {
			continue
		}
		cam := gc.Cameras[i]
		if !s.ok() {
			// The live camera did not answer in time (a busy box, a camera
			// reconnecting): the recording of the event instant is the
			// next best picture.
			rec, err := g.pics.recorded(cam, a.Time)
			if err != nil {
				g.snapFailures.WithLabelValues(cam).Inc()
				g.log.Warn("gate alert without this camera's picture", "alert", a.ID, "gate", a.Source, "camera", cam, "err", s.err, "recorded", err)
				continue
			}
			s = rec
		}
		if len(a.Snapshot) == 0 { // the alert went without any picture: this is its first
			g.log.Info("picture of gate alert sent after it", "alert", a.ID, "camera", cam, "after", time.Since(a.Time).Round(time.Millisecond))
		}
		g.sendPicture(a, cam, s)
		g.mu.Lock()
		for j := range g.recent {
			if g.recent[j].AlertID == a.ID && i < len(g.recent[j].Cameras) {
				ref := &g.recent[j].Cameras[i]
				ref.Snapshot, ref.SnapshotTime, ref.Error = true, s.at.UTC(), ""
			}
		}
		g.mu.Unlock()
	}
}

// shot is one camera's picture for a gate alert.
type shot struct {
	jpg  []byte
	at   time.Time
	err  error
	done bool // the camera answered (with a picture or an error)
}

func (s shot) ok() bool { return s.done && s.err == nil && len(s.jpg) > 0 }

// prefetch is a request for the gate's cameras' pictures, made the moment
// an event that may raise an alert arrived: the picture is of the event
// instant, not of the moment the machine decided (a forced door waits out
// the grant grace first), and a busy camera has had that time to answer.
type prefetch struct {
	evTime time.Time
	done   chan struct{} // closed when every camera has answered
	mu     sync.Mutex
	shots  []shot
}

// snapshot copies the answers so far.
func (p *prefetch) snapshot() []shot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.shots)
}

// gatePictures takes the pictures of a gate's cameras for its alerts:
// prefetched the moment an event arrives, else taken when its alert is
// raised; each camera's request runs on a goroutine of the node.
type gatePictures struct {
	ctx      context.Context // the gate side's
	nodeDone context.Context // ends when the node closes: waits end at once
	spawn    func(func()) bool
	clips    gateClips
	cameras  map[string]gateCamera
	conf     gateConfigs
	mu       sync.Mutex
	shots    map[string][]*prefetch // by gate, newest last
}

// prefetchKinds are the events whose alert shows the gate; an arming
// notice shows who stood at the keypad.
var prefetchKinds = map[gates.Kind]bool{gates.Opened: true, gates.Button: true, gates.Presence: true, gates.Tamper: true, gates.Alarm: true,
	gates.Arm: true, gates.Disarm: true}

// submit is the MQTT and GPIO adapters' sink: one event, durable on return.
func (g *gateSide) submit(ctx context.Context, ev gates.Event) error {
	return g.submitBatch(ctx, []gates.Event{ev})[0]
}

// submitBatch is the adapters' sink: it journals the events (one fsync
// for the batch, shared with concurrent callers) and returns once they are
// durable; the feeder hands them to the engine. It starts taking the
// pictures their alerts may need. An event whose source and ID the
// journal already holds is gates.ErrDuplicate.
func (g *gateSide) submitBatch(ctx context.Context, evs []gates.Event) []error {
	errs := make([]error, len(evs))
	var take []gates.Event
	var idx []int
	for i, ev := range evs {
		if err := ev.Validate(); err != nil {
			errs[i] = err
			continue
		}
		if !g.eng.Known(ev.Gate) {
			errs[i] = fmt.Errorf("%w %q", engine.ErrUnknownGate, ev.Gate)
			continue
		}
		take, idx = append(take, ev), append(idx, i)
	}
	if len(take) == 0 {
		return errs
	}
	recs, err := g.journal.Append(ctx, time.Now(), take)
	if err != nil {
		for _, i := range idx {
			errs[i] = fmt.Errorf("%w: %w", gates.ErrNotTaken, err)
		}
		return errs
	}
	for k, r := range recs {
		if r.Seq == 0 {
			errs[idx[k]] = gates.ErrDuplicate
			continue
		}
		g.feed.publish(r.Event) // the setup page's live gate events (setup_backend.go)
		g.pics.prefetch(r.Event)
	}
	return errs
}

// prefetch starts taking the pictures an event's alert may need.
func (g *gatePictures) prefetch(ev gates.Event) {
	gc := g.conf.gate(ev.Gate)
	if !prefetchKinds[ev.Kind] || ev.Initial || len(gc.Cameras) == 0 || time.Since(ev.Time) > lateEvent {
		return
	}
	p := g.take(gc, ev.Time)
	g.mu.Lock()
	list := append(g.shots[ev.Gate], p)
	if len(list) > 8 {
		list = list[len(list)-8:]
	}
	g.shots[ev.Gate] = list
	g.mu.Unlock()
}

// pictures returns the request for an alert's pictures, having waited
// for them until pictureBudget after the event (at least minPictureWait):
// the one made when its event arrived, else one made now. A request that
// failed early (a camera busy, or this box stalled) is made once more.
func (g *gatePictures) pictures(ctx context.Context, gc conf.GateConfig, evTime time.Time) *prefetch {
	deadline := evTime.Add(pictureBudget)
	if min := time.Now().Add(minPictureWait); deadline.Before(min) {
		deadline = min
	}
	var p *prefetch
	g.mu.Lock()
	for _, c := range g.shots[gc.ID] {
		if c.evTime.Equal(evTime.UTC()) {
			p = c
		}
	}
	g.mu.Unlock()
	if p == nil {
		p = g.take(gc, evTime)
	}
	wait := func(p *prefetch) bool {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-p.done:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
		return false
	}
	if !wait(p) {
		return p
	}
	if slices.IndexFunc(p.snapshot(), func(s shot) bool { return !s.ok() }) < 0 || time.Until(deadline) < 50*time.Millisecond {
		return p
	}
	again := g.take(gc, evTime)
	wait(again)
	// Keep the first request's pictures, fill in from the second.
	first, second := p.snapshot(), again.snapshot()
	merged := &prefetch{evTime: p.evTime, done: again.done, shots: first}
	for i := range merged.shots {
		if !first[i].ok() {
			merged.shots[i] = second[i]
		}
	}
	// Answers the second request gives after this are seen by followUp
	// through merged.done; it reads again's results then.
	if !isClosed(again.done) {
		merged.done = make(chan struct{})
		fill := func() {
			<-again.done
			late := again.snapshot()
			merged.mu.Lock()
			for i := range merged.shots {
				if !merged.shots[i].done {
					merged.shots[i] = late[i]
				}
			}
			merged.mu.Unlock()
			close(merged.done)
		}
		if !g.spawn(fill) {
			merged.done = again.done // the node is closing: nobody waits for the late answers
		}
	}
	return merged
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// take asks every camera of the gate for its picture at once; each answer
// is recorded as it comes, done is closed after the last (prefetchTimeout
// at most).
func (g *gatePictures) take(gc conf.GateConfig, evTime time.Time) *prefetch {
	p := &prefetch{evTime: evTime.UTC(), done: make(chan struct{}), shots: make([]shot, len(gc.Cameras))}
	ctx, cancel := context.WithTimeout(g.ctx, prefetchTimeout)
	stop := context.AfterFunc(g.nodeDone, cancel) // Close ends the wait at once
	// Each camera's goroutine is the node's (Close waits for it); the last
	// to finish closes done.
	var left atomic.Int32
	left.Store(int32(len(gc.Cameras)))
	finish := func(i int, s shot) {
		p.mu.Lock()
		p.shots[i] = s
		p.mu.Unlock()
		if left.Add(-1) == 0 {
			stop()
			cancel()
			close(p.done)
		}
	}
	if len(gc.Cameras) == 0 {
		stop()
		cancel()
		close(p.done)
	}
	for i, cam := range gc.Cameras {
		if !g.spawn(func() {
			jpg, at, err := g.snapshot(ctx, cam, evTime)
			finish(i, shot{jpg: jpg, at: at, err: err, done: true})
		}) {
			finish(i, shot{err: errNodeClosed, done: true})
		}
	}
	return p
}

// snapshot is the camera's picture at the event: the live picture for a
// fresh event, the recorded one for a late event.
// recorded is the recorded frame of camera cam at instant at,
// once the recorder has flushed past it.
func (g *gatePictures) recorded(cam string, at time.Time) (shot, error) {
	ctx, cancel := context.WithTimeout(g.ctx, prefetchTimeout)
	defer cancel()
	if err := g.clips.Flush(ctx); err != nil {
		return shot{}, err
	}
	th, err := g.clips.Thumbnail(cam, at, 1280)
	if err != nil {
		return shot{}, err
	}
	return shot{jpg: th.JPEG, at: th.Time, done: true}, nil
}

func (g *gatePictures) snapshot(ctx context.Context, cam string, at time.Time) ([]byte, time.Time, error) {
	if time.Since(at) > lateEvent {
		th, err := g.clips.Thumbnail(cam, at, 1280)
		if err == nil {
			return th.JPEG, th.Time, nil
		}
	}
	c := g.cameras[cam]
	if c == nil {
		return nil, time.Time{}, fmt.Errorf("camera %q not running", cam)
	}
	return c.Snapshot(ctx)
}

// status is a round trip to the engine's goroutine for every gate's state
// (the local API, /metrics). It waits while the engine does: a path the
// engine may wait on (a camera's analysis goroutine, through the gate
// worker's picture requests) reads eng.Snapshot instead.
func (g *gateSide) status(ctx context.Context) ([]gates.Status, error) {
	g.statusCalls.Add(1)
	return g.eng.Status(ctx)
}

// watched is what a camera alert says of the gates the camera sees:
// a note for its summary ("· North gate: closed, armed, …", the gate's
// local time) and the first gate's state as a field, when the alert
// began. It runs on the camera's analysis goroutine: the state is the
// snapshot the engine published after its latest step (no round trip, no
// wait).
func (g *gateSide) watched(cam string) (note string, first *wire.GateState) {
	if g == nil || len(g.conf.watching(cam)) == 0 {
		return "", nil
	}
	for _, st := range g.eng.Snapshot() {
		if !contains(g.conf.watching(cam), st.Gate) {
			continue
		}
		note += " · " + gateState(st, g.conf.gate(st.Gate))
		if first == nil {
			first = &wire.GateState{Gate: st.Gate, Name: st.Name, Door: st.Door, Armed: st.Armed,
				LastGrant: st.LastGrant.UTC(), LastCredential: st.LastCredential}
			if st.LastGrant.IsZero() {
				first.LastGrant = time.Time{}
			}
		}
	}
	return note, first
}

// health is each gate's line in the heartbeat: its door, or the worst
// open alert's cause when one is red or yellow; offline while any of its
// devices is silent; when it was last heard from.
func (g *gateSide) health() []wire.GateStatus {
	if g == nil {
		return nil
	}
	sts := g.eng.Snapshot() // the uplink's goroutine does not wait on the engine
	out := make([]wire.GateStatus, 0, len(sts))
	for _, st := range sts {
		gs := wire.GateStatus{ID: st.Gate, Name: displayName(st.Name, st.Gate), State: st.Door, Online: true}
		worst := 0
		for _, a := range st.Alerts {
			if r := a.Severity.Rank(); !a.Cleared && r > worst && a.Severity != wire.Green {
				worst, gs.State = r, string(a.Key)
			}
		}
		for _, d := range st.Devices {
			if d.Silent {
				gs.Online, gs.Error = false, "device "+d.ID+" silent"
			}
			if d.LastSeen.After(gs.LastSeen) {
				gs.LastSeen = d.LastSeen.UTC()
			}
		}
		out = append(out, gs)
	}
	return out
}

// gateState says a gate's state in a few words:
// "North gate: closed, armed, last grant 21:14:05 card:04A2B9C1".
func gateState(st gates.Status, gc conf.GateConfig) string {
	s := st.Name + ": " + st.Door
	switch st.Door {
	case "unknown":
		s = st.Name + ": door not reported yet"
	case "open":
		s += fmt.Sprintf(" for %s", time.Since(st.OpenSince).Round(time.Second))
	}
	if st.Armed {
		s += ", armed"
	} else {
		s += ", disarmed"
	}
	if o := st.Override; o != nil {
		s += " from keypad " + o.Device
	}
	if !st.LastGrant.IsZero() {
		loc, err := gates.LoadLocation(gc.Arming.TimeZone)
		if err != nil {
			loc = time.UTC
		}
		s += ", last grant " + st.LastGrant.In(loc).Format("15:04:05")
		if st.LastCredential != "" {
			s += " " + st.LastCredential
		}
	}
	return s
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// readSecretFile reads a one-line secret (a password file, mode 0600).
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// states is every gate's state, its cameras, the recent gate alerts
// and the inputs' health.
func (g *gateSide) states(ctx context.Context) (map[string]any, error) {
	type gateOut struct {
		gates.Status
		Cameras []string `json:"cameras"`
	}
	if g == nil {
		return map[string]any{"gates": []gateOut{}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sts, err := g.status(ctx)
	if err != nil {
		return nil, fmt.Errorf("gate engine: %w", err)
	}
	list := []gateOut{}
	for _, st := range sts {
		cams := g.conf.gate(st.Gate).Cameras
		if cams == nil {
			cams = []string{}
		}
		list = append(list, gateOut{Status: st, Cameras: cams})
	}
	g.mu.Lock()
	recent := append([]GateAlertLink(nil), g.recent...)
	g.mu.Unlock()
	inputs := map[string]any{"webhook": g.hook != nil}
	if g.mqtt != nil {
		inputs["mqtt_connected"] = g.mqtt.Connected()
	}
	if g.gpio != nil {
		inputs["gpio_lines"] = len(g.lines)
	}
	return map[string]any{"gates": list, "recent_alerts": recent, "inputs": inputs}, nil
}

// gateCollector exports each gate's state on /metrics at scrape time.
type gateCollector struct{ g *gateSide }

var (
	gateOpenDesc   = prometheus.NewDesc("vigil_gate_open", "1 while the gate's door is open, 0 closed, -1 unknown.", []string{"gate"}, nil)
	gateArmedDesc  = prometheus.NewDesc("vigil_gate_armed", "1 while the gate is armed.", []string{"gate"}, nil)
	gateAlertsDesc = prometheus.NewDesc("vigil_gate_open_alerts", "Gate alerts not yet cleared or folded away, by gate and severity.", []string{"gate", "severity"}, nil)
)

func (c gateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gateOpenDesc
	ch <- gateArmedDesc
	ch <- gateAlertsDesc
}

func (c gateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	sts, err := c.g.status(ctx)
	if err != nil {
		return
	}
	for _, st := range sts {
		open := map[string]float64{"open": 1, "closed": 0}[st.Door]
		if st.Door == "unknown" {
			open = -1
		}
		armed := 0.0
		if st.Armed {
			armed = 1
		}
		ch <- prometheus.MustNewConstMetric(gateOpenDesc, prometheus.GaugeValue, open, st.Gate)
		ch <- prometheus.MustNewConstMetric(gateArmedDesc, prometheus.GaugeValue, armed, st.Gate)
		bySev := map[wire.Severity]float64{wire.Red: 0, wire.Yellow: 0}
		for _, a := range st.Alerts {
			if a.Severity != wire.Green {
				bySev[a.Severity]++
			}
		}
		for sev, v := range bySev {
			ch <- prometheus.MustNewConstMetric(gateAlertsDesc, prometheus.GaugeValue, v, st.Gate, string(sev))
		}
	}
}
