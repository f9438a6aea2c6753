package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/sensors/history"
	"github.com/vigil-perimeter/vigil/sensors/modbus"
	"github.com/vigil-perimeter/vigil/sensors/mqttsrc"
	"github.com/vigil-perimeter/vigil/wire"
)

// The sensor side is the node's safety sensors (package sensors): one
// source per Modbus device whose registers a sensor uses and one for the
// MQTT broker, each running until the node stops; one goroutine (run)
// that owns the evaluator's verdicts, the open sensor alerts and the
// readings not yet queued for central. Every reading goes to the edge's
// own history (sensors/history) and, a batch a second at most, through
// the outbox to central (wire.TypeSensorBatch): store-and-forward, so a
// central that is down misses nothing. Verdict changes become alerts
// raised through the alert owner, and all-clears end them.
//
// Outbox policy: sensor batches are green items, so under the outbox's
// byte bound they are dropped before any alert or alert update (oldest
// first, counted in the outbox's drop counters) and refused first below
// its free-space floor. The readings stay in the edge's own history
// either way; an alert never waits behind them.
//
// Readings reach run through a bounded channel; a source whose readings
// find it full waits (its next poll is late) rather than losing them.
const (
	sensorReadingQueue = 4096
	sensorTick         = time.Second // Tick: minimum durations and silence
	// sensorFlush is how often readings are queued for central: a
	// reading waits at most this long before it leaves (reading → console
	// p99 ≤ 1 s with the link's own latency; BENCHMARKS.md).
	sensorFlush        = 250 * time.Millisecond
	sensorRecent       = 10 * time.Minute // readings an alert carries (its chart)
	sensorDrainOnClose = time.Second
)

// sensorSide is the node's sensor component; nil without sensors.
type sensorSide struct {
	edgeID, siteID string
	byID           map[string]sensors.Resolved
	sources        []namedSource
	eval           *sensors.Evaluator
	hist           *history.Store
	box            sensorOutbox
	alerts         sensorAlerter
	readings       chan sensors.Reading
	log            *slog.Logger

	// Owned by run's goroutine.
	open      map[string]map[sensors.State]openSensorAlert // by sensor, by state (warning, alarm, silent)
	openPath  string                                       // where open is kept (sensoropen.go)
	openEdits uint64                                       // raises and ends of open alerts (saved when it moves)
	orphans   []orphanAlert                                // open alerts of sensors no longer configured, ended by run
	pending   []wire.SensorPoint

	met sensorMetrics
}

// namedSource is a source and what the log calls it.
type namedSource struct {
	name string
	src  sensors.Source
}

// openSensorAlert is a raised sensor alert whose condition has not ended
// (kept in sensorOpenFile).
type openSensorAlert struct {
	ID        string        `json:"id"`
	Summary   string        `json:"summary"`
	Sev       wire.Severity `json:"severity"`
	Rule      string        `json:"rule"`
	Threshold float64       `json:"threshold"`
}

type sensorMetrics struct {
	readings prometheus.Counter
	batches  *prometheus.CounterVec // result: queued, refused
	sources  *prometheus.CounterVec // source: stopped for good
	// openSaves counts failed writes of the open sensor alerts' file.
	openSaves prometheus.Counter
}

func newSensorMetrics(reg prometheus.Registerer) sensorMetrics {
	m := sensorMetrics{
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_sensor_readings_total", Help: "Sensor readings taken from every source."}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_sensor_batches_total",
			Help: "Sensor batches for central, by result: queued in the outbox, or refused (outbox full of more severe items, disk below its floor)."}, []string{"result"}),
		sources: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_edge_sensor_sources_failed_total",
			Help: "Sensor sources that stopped for good (bad configuration), by source."}, []string{"source"}),
		openSaves: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_edge_sensor_open_alerts_save_failures_total",
			Help: "Failed writes of the open sensor alerts kept across a restart."}),
	}
	for _, r := range []string{"queued", "refused"} {
		m.batches.WithLabelValues(r)
	}
	reg.MustRegister(m.readings, m.batches, m.sources, m.openSaves)
	return m
}

// sensorDeps is what the sensor side takes from the node.
type sensorDeps struct {
	box    sensorOutbox
	alerts sensorAlerter
	reg    prometheus.Registerer
	log    *slog.Logger
}

// sensorOutbox is the node's outbox, guarded against Close (guardedBox).
type sensorOutbox interface {
	use(func(*outbox.Outbox) error) error
}

// sensorAlerter raises alerts and their updates, durably and in order,
// on the caller's goroutine (alertOwner.raise and update).
type sensorAlerter interface {
	raise(wire.Alert) bool
	update(wire.AlertUpdate, wire.Severity) bool
}

// newSensorSide builds the sources and opens the history; nil, nil
// without sensors. The caller closes it (close) once run has ended.
func newSensorSide(cfg conf.Config, d sensorDeps) (*sensorSide, error) {
	if len(cfg.Sensors) == 0 {
		return nil, nil
	}
	log := d.log.With("component", "sensors")
	s := &sensorSide{edgeID: cfg.EdgeID, siteID: cfg.SiteID, byID: map[string]sensors.Resolved{}, box: d.box, alerts: d.alerts,
		readings: make(chan sensors.Reading, sensorReadingQueue), log: log,
		openPath: filepath.Join(cfg.DataDir, sensorOpenFile), met: newSensorMetrics(d.reg)}
	list := sensors.ResolveAll(cfg.Sensors, cfg.SensorInputs)
	for i := range list {
		if list[i].Site == "" {
			list[i].Site = cfg.SiteID
		}
		s.byID[list[i].ID] = list[i]
	}
	s.eval = sensors.New(list)
	var err error
	if s.sources, err = sensorSources(cfg, d.reg, log); err != nil {
		return nil, err
	}
	for _, ns := range s.sources {
		s.met.sources.WithLabelValues(ns.name)
	}
	if s.hist, err = history.Open(history.Config{Dir: filepath.Join(cfg.DataDir, "sensors"), Registerer: d.reg, Log: log}); err != nil {
		return nil, fmt.Errorf("edge: sensor history: %w", err)
	}
	if s.open, err = loadSensorOpen(s.openPath); err != nil {
		log.Error("open sensor alerts of the last run unreadable: set aside, starting with none open", "err", err)
		if rerr := os.Rename(s.openPath, s.openPath+".damaged"); rerr != nil {
			log.Error("setting the open sensor alerts aside", "err", rerr)
		}
		s.open = map[string]map[sensors.State]openSensorAlert{}
	}
	s.orphans = s.resumeOpen()
	return s, nil
}

// sensorSources makes one Modbus source per device a sensor reads and
// one MQTT source if any sensor reads MQTT.
func sensorSources(cfg conf.Config, reg prometheus.Registerer, log *slog.Logger) ([]namedSource, error) {
	registers := map[string]map[string]string{} // device → register → sensor
	mqttRefs := map[string]sensors.MQTTRef{}
	for _, c := range cfg.Sensors {
		switch {
		case c.Source.Modbus != nil:
			m := registers[c.Source.Modbus.Device]
			if m == nil {
				m = map[string]string{}
				registers[c.Source.Modbus.Device] = m
			}
			m[c.Source.Modbus.Register] = c.ID
		case c.Source.MQTT != nil:
			mqttRefs[c.ID] = *c.Source.MQTT
		}
	}
	var out []namedSource
	for _, dev := range cfg.SensorInputs.Modbus.Devices {
		if registers[dev.ID] == nil {
			continue
		}
		d, err := modbus.New(dev, cfg.SensorInputs.Modbus.Models[dev.Model], registers[dev.ID], modbus.Options{Registerer: reg, Log: log})
		if err != nil {
			return nil, fmt.Errorf("edge: sensor_inputs.modbus: %w", err)
		}
		out = append(out, namedSource{name: "modbus:" + dev.ID, src: d})
	}
	if len(mqttRefs) > 0 && cfg.SensorInputs.MQTT != nil { // Validate asks for the broker
		src, err := mqttsrc.New(*cfg.SensorInputs.MQTT, mqttRefs, mqttsrc.Options{Registerer: reg, Log: log})
		if err != nil {
			return nil, fmt.Errorf("edge: sensor_inputs.mqtt: %w", err)
		}
		out = append(out, namedSource{name: "mqtt", src: src})
	}
	return out, nil
}

// start runs every source and the evaluator's goroutine until ctx ends.
func (s *sensorSide) start(ctx context.Context, spawn func(func()) bool) {
	if s == nil {
		return
	}
	for _, ns := range s.sources {
		spawn(func() {
			err := ns.src.Run(ctx, func(r sensors.Reading) { s.emit(ctx, r) })
			if err != nil && ctx.Err() == nil {
				s.met.sources.WithLabelValues(ns.name).Inc()
				s.log.Error("sensor source stopped for good", "source", ns.name, "err", err)
			}
		})
	}
	spawn(func() { s.run(ctx) })
}

// emit hands a reading to run; it waits while the queue is full, so a
// reading is never lost (the node stopping ends the wait).
func (s *sensorSide) emit(ctx context.Context, r sensors.Reading) {
	select {
	case s.readings <- r:
	case <-ctx.Done():
	}
}

// run owns the verdicts: readings and Tick go to the evaluator, changes
// to alerts, readings to the history and the next batch. It flushes the
// batch every sensorFlush and once more as the node stops.
func (s *sensorSide) run(ctx context.Context) {
	t := time.NewTicker(sensorTick)
	defer t.Stop()
	f := time.NewTicker(sensorFlush)
	defer f.Stop()
	s.endOrphans(s.orphans)
	s.orphans = nil
	for {
		select {
		case r := <-s.readings:
			s.observe(r)
		case now := <-t.C:
			s.changes(s.eval.Tick(now.UTC()))
		case <-f.C:
			s.flush()
		case <-ctx.Done():
			s.drain()
			s.flush()
			return
		}
	}
}

// drain takes the readings still queued as the node stops (for
// sensorDrainOnClose at most: the sources have stopped or are stopping).
func (s *sensorSide) drain() {
	deadline := time.Now().Add(sensorDrainOnClose)
	for time.Now().Before(deadline) {
		select {
		case r := <-s.readings:
			s.observe(r)
		default:
			return
		}
	}
}

// observe takes one reading.
func (s *sensorSide) observe(r sensors.Reading) {
	r.Time = r.Time.UTC()
	s.met.readings.Inc()
	p := wire.SensorPoint{Sensor: r.Sensor, Time: r.Time, Value: r.Value}
	s.hist.Keep(p) // never blocks; the history counts what it drops
	s.pending = append(s.pending, p)
	if len(s.pending) >= wire.MaxBatchReadings {
		s.flush()
	}
	s.changes(s.eval.Observe(r))
}

// flush queues the pending readings for central, a batch of at most
// wire.MaxBatchReadings each.
func (s *sensorSide) flush() {
	for len(s.pending) > 0 {
		k := min(len(s.pending), wire.MaxBatchReadings)
		b := wire.SensorBatch{ID: newAlertID(s.edgeID, s.pending[0].Time), Points: s.pending[:k]}
		body, err := json.Marshal(b)
		if err == nil {
			err = s.box.use(func(o *outbox.Outbox) error {
				return o.Put(outbox.Item{Kind: wire.TypeSensorBatch, ID: b.ID, Severity: wire.Green, Body: body})
			})
		}
		if err != nil {
			s.met.batches.WithLabelValues("refused").Inc()
			s.log.Warn("sensor readings not queued for central (kept in the edge's history)", "batch", b.ID, "readings", k, "err", err)
		} else {
			s.met.batches.WithLabelValues("queued").Inc()
		}
		s.pending = s.pending[k:]
	}
	s.pending = nil
}

// statuses is every sensor's verdict and last reading (heartbeat).
func (s *sensorSide) statuses() []wire.SensorStatus {
	if s == nil {
		return nil
	}
	return s.eval.Status()
}

// close closes the history once run has ended.
func (s *sensorSide) close() {
	if s == nil {
		return
	}
	if err := s.hist.Close(); err != nil {
		s.log.Error("closing the sensor history", "err", err)
	}
}
