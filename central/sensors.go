package central

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/wire"
)

// Safety sensors (wire/sensors.go): an edge forwards its readings in
// sensor batches through its outbox; central stores each batch once
// however often it is re-sent, keeps the readings for charts — raw for
// 24 hours, 1-minute min/mean/max for 30 days, both expiring by Badger
// TTL — and serves the sensors' current state (from each edge's latest
// heartbeat) and their history. Sensor alerts are ordinary alerts.

const (
	// sr/<edge>\0<sensor>\0<time ns> → value (float64 bits); TTL: 24 h after the reading
	prefixSensorRaw = "sr/"
	// sm/<edge>\0<sensor>\0<minute ns> → sum, min, max (float64 bits), n (uint64); TTL: 30 d after the minute
	prefixSensorMinute = "sm/"
	// sb/<edge>\0<batch id>\0<part> → nothing: the part of the batch is stored (TTL: 30 d)
	prefixSensorBatch = "sb/"

	sensorRawKeep    = 24 * time.Hour
	sensorMinuteKeep = 30 * 24 * time.Hour
	// sensorPartPoints bounds the points written in one transaction: a
	// batch (up to wire.MaxBatchReadings) is stored in parts, each with
	// its own marker, so a re-send after a crash between parts adds to
	// no minute twice.
	sensorPartPoints = 1000
	sensorConflicts  = 5 // retries of a part whose minutes another write changed

	// The steps of GET /api/v1/sensors/{edge}/{sensor}/history.
	stepRaw     = time.Duration(0)
	stepMinute  = time.Minute
	stepQuarter = 15 * time.Minute
	rawUpTo     = 2 * time.Hour
	minuteUpTo  = 7 * 24 * time.Hour
	// maxHistoryScan bounds the keys one history read examines: 30 days
	// of minutes (43 200), or 2 hours of readings at up to ~7 a second.
	maxHistoryScan  = 50_000
	sparklineWindow = time.Hour
)

// sensorPoint is one point of a sensor's history: a reading (N 1) or an
// interval of them (V the mean).
type sensorPoint struct {
	T   time.Time `json:"t"`
	V   float64   `json:"v"`
	Min float64   `json:"min"`
	Max float64   `json:"max"`
	N   int       `json:"n"`
}

// sensorStore keeps sensor readings.
type sensorStore interface {
	// addBatch stores an edge's batch; false: it was stored before.
	addBatch(edge string, b *wire.SensorBatch) (bool, error)
	// history reads a sensor's points in [from, to): raw readings
	// (step 0) or intervals of step (a multiple of a minute).
	history(edge, sensor string, from, to time.Time, step time.Duration) ([]sensorPoint, error)
}

// badgerSensors is the sensor store in central's Badger database. What
// edges send is written from the floor's reserve, like their alerts: an
// edge's outbox is bounded, so what central refuses may be lost.
type badgerSensors struct {
	db   *badger.DB
	disk *diskGuard
	now  func() time.Time
}

func sensorSeries(prefix, edge, sensor string) []byte {
	return []byte(prefix + edge + "\x00" + sensor + "\x00")
}

func timeKey(series []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), series...), uint64(max(t.UnixNano(), 0)))
}

func (s badgerSensors) addBatch(edge string, b *wire.SensorBatch) (bool, error) {
	if err := s.disk.Admit(true); err != nil {
		return false, err
	}
	defer s.disk.written()
	stored := false
	for part := 0; part*sensorPartPoints < len(b.Points); part++ {
		pts := b.Points[part*sensorPartPoints : min(len(b.Points), (part+1)*sensorPartPoints)]
		marker := []byte(fmt.Sprintf("%s%s\x00%s\x00%d", prefixSensorBatch, edge, b.ID, part))
		var added bool
		write := func(txn *badger.Txn) (err error) {
			added, err = s.addPart(txn, edge, marker, pts)
			return err
		}
		err := s.db.Update(write)
		for try := 1; errors.Is(err, badger.ErrConflict) && try < sensorConflicts; try++ {
			err = s.db.Update(write)
		}
		if err != nil {
			return false, fmt.Errorf("central: store sensor batch %s: %w", b.ID, err)
		}
		stored = stored || added
	}
	return stored, nil
}

// addPart writes one part of a batch unless its marker says it is stored.
func (s badgerSensors) addPart(txn *badger.Txn, edge string, marker []byte, pts []wire.SensorPoint) (bool, error) {
	if _, err := txn.Get(marker); err == nil {
		return false, nil // a re-send
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return false, err
	}
	now := s.now()
	type minuteOf struct {
		at  time.Time
		agg minuteAgg
	}
	minutes := map[string]minuteOf{}
	for _, p := range pts {
		if strings.IndexByte(p.Sensor, 0) >= 0 {
			continue // would break the key layout; wire allows it, no edge sends it
		}
		t := p.Time.UTC()
		if p.Count <= 1 && now.Sub(t) < sensorRawKeep {
			v := binary.BigEndian.AppendUint64(nil, math.Float64bits(p.Value))
			e := badger.NewEntry(timeKey(sensorSeries(prefixSensorRaw, edge, p.Sensor), t), v)
			e.ExpiresAt = uint64(t.Add(sensorRawKeep).Unix())
			if err := txn.SetEntry(e); err != nil {
				return false, err
			}
		}
		minute := t.Truncate(time.Minute)
		if now.Sub(minute) >= sensorMinuteKeep {
			continue
		}
		k := string(timeKey(sensorSeries(prefixSensorMinute, edge, p.Sensor), minute))
		m, ok := minutes[k]
		if !ok {
			m.at = minute
			var err error
			if m.agg, err = readMinute(txn, []byte(k)); err != nil {
				return false, err
			}
		}
		m.agg = m.agg.add(p)
		minutes[k] = m
	}
	for k, m := range minutes {
		e := badger.NewEntry([]byte(k), m.agg.encode())
		e.ExpiresAt = uint64(m.at.Add(sensorMinuteKeep).Unix())
		if err := txn.SetEntry(e); err != nil {
			return false, err
		}
	}
	e := badger.NewEntry(marker, nil)
	e.ExpiresAt = uint64(now.Add(sensorMinuteKeep).Unix())
	return true, txn.SetEntry(e)
}

// minuteAgg is one minute of a sensor's readings.
type minuteAgg struct {
	sum, lo, hi float64
	n           uint64
}

func readMinute(txn *badger.Txn, k []byte) (minuteAgg, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return minuteAgg{}, nil
	} else if err != nil {
		return minuteAgg{}, err
	}
	var a minuteAgg
	err = item.Value(func(v []byte) error { a, err = decodeMinute(v); return err })
	return a, err
}

func decodeMinute(v []byte) (minuteAgg, error) {
	if len(v) != 32 {
		return minuteAgg{}, fmt.Errorf("sensor minute of %d bytes", len(v))
	}
	f := func(i int) float64 { return math.Float64frombits(binary.BigEndian.Uint64(v[i*8:])) }
	return minuteAgg{sum: f(0), lo: f(1), hi: f(2), n: binary.BigEndian.Uint64(v[24:])}, nil
}

func (a minuteAgg) encode() []byte {
	v := make([]byte, 0, 32)
	for _, f := range []float64{a.sum, a.lo, a.hi} {
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(f))
	}
	return binary.BigEndian.AppendUint64(v, a.n)
}

// add folds a point (a reading, or an interval the edge downsampled) in.
func (a minuteAgg) add(p wire.SensorPoint) minuteAgg {
	n, lo, hi := uint64(1), p.Value, p.Value
	if p.Count > 1 {
		n, lo, hi = uint64(p.Count), p.Min, p.Max
	}
	return a.merge(minuteAgg{sum: p.Value * float64(n), lo: lo, hi: hi, n: n})
}

func (a minuteAgg) merge(b minuteAgg) minuteAgg {
	if a.n == 0 {
		return b
	}
	return minuteAgg{sum: a.sum + b.sum, lo: min(a.lo, b.lo), hi: max(a.hi, b.hi), n: a.n + b.n}
}

func (a minuteAgg) point(t time.Time) sensorPoint {
	return sensorPoint{T: t.UTC(), V: a.sum / float64(a.n), Min: a.lo, Max: a.hi, N: int(a.n)}
}

func (s badgerSensors) history(edge, sensor string, from, to time.Time, step time.Duration) ([]sensorPoint, error) {
	out := []sensorPoint{}
	prefix := prefixSensorMinute
	if step == stepRaw {
		prefix = prefixSensorRaw
	}
	series := sensorSeries(prefix, edge, sensor)
	h := historyFold{step: step, out: out}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: series})
		defer it.Close()
		examined := 0
		for it.Seek(timeKey(series, from)); it.Valid() && examined < maxHistoryScan; it.Next() {
			examined++
			k := it.Item().Key()
			t := time.Unix(0, int64(binary.BigEndian.Uint64(k[len(series):]))).UTC()
			if !t.Before(to) {
				return nil
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if step == stepRaw {
				if len(v) != 8 {
					return fmt.Errorf("sensor reading of %d bytes", len(v))
				}
				h.reading(t, math.Float64frombits(binary.BigEndian.Uint64(v)))
				continue
			}
			a, err := decodeMinute(v)
			if err != nil {
				return err
			}
			h.minute(t, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("central: sensor history %s/%s: %w", edge, sensor, err)
	}
	return h.points(), nil
}

// historyFold turns a sensor's stored readings (step raw) or minutes,
// in time order, into the points of a history at step: each store reads
// its rows, this folds them.
type historyFold struct {
	step   time.Duration
	out    []sensorPoint
	bucket time.Time
	acc    minuteAgg
}

// reading adds one raw reading.
func (h *historyFold) reading(t time.Time, v float64) {
	h.out = append(h.out, sensorPoint{T: t, V: v, Min: v, Max: v, N: 1})
}

// minute adds one minute's aggregate to the step it falls in.
func (h *historyFold) minute(t time.Time, a minuteAgg) {
	if b := t.Truncate(h.step); !b.Equal(h.bucket) {
		if h.acc.n > 0 {
			h.out = append(h.out, h.acc.point(h.bucket))
		}
		h.bucket, h.acc = b, minuteAgg{}
	}
	h.acc = h.acc.merge(a)
}

// points ends the fold.
func (h *historyFold) points() []sensorPoint {
	if h.acc.n > 0 {
		h.out = append(h.out, h.acc.point(h.bucket))
		h.acc = minuteAgg{}
	}
	return h.out
}

// historyStep is the step of a history range (the HTTP contract): raw
// up to 2 hours, 1-minute intervals up to 7 days, 15-minute beyond.
func historyStep(from, to time.Time) time.Duration {
	switch d := to.Sub(from); {
	case d <= rawUpTo:
		return stepRaw
	case d <= minuteUpTo:
		return stepMinute
	}
	return stepQuarter
}

func stepName(step time.Duration) string {
	switch step {
	case stepRaw:
		return "raw"
	case stepMinute:
		return "1m"
	}
	return "15m"
}

// sensorIngest takes edges' sensor batches (the edge hub's readers call
// it): stored once, counted.
type sensorIngest struct {
	store   sensorStore
	batches *prometheus.CounterVec // result: stored, duplicate, failed
	points  prometheus.Counter
}

func newSensorIngest(store sensorStore, reg prometheus.Registerer) *sensorIngest {
	in := &sensorIngest{store: store,
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_central_sensor_batches_total",
			Help: "Sensor batches received from edges, by result (stored, duplicate: a re-send stored before, failed)."}, []string{"result"}),
		points: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_central_sensor_points_total",
			Help: "Sensor readings stored (batches stored once; re-sends not counted)."}),
	}
	for _, r := range []string{"stored", "duplicate", "failed"} {
		in.batches.WithLabelValues(r)
	}
	reg.MustRegister(in.batches, in.points)
	return in
}

func (in *sensorIngest) take(edge string, b *wire.SensorBatch) error {
	added, err := in.store.addBatch(edge, b)
	switch {
	case err != nil:
		in.batches.WithLabelValues("failed").Inc()
		return err
	case added:
		in.batches.WithLabelValues("stored").Inc()
		in.points.Add(float64(len(b.Points)))
	default:
		in.batches.WithLabelValues("duplicate").Inc()
	}
	return nil
}

// handleSensors takes a sensor batch from the edge: stored (or found
// stored) before it is acknowledged; if it cannot be stored the
// connection ends unacknowledged and the edge re-sends it.
func (c *edgeReader) handleSensors(env wire.Envelope) bool {
	var b wire.SensorBatch
	if err := wire.DecodeBody(env, &b); err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := b.Validate(); err != nil {
		c.reject(rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("sensor_batch %q rejected: %v", b.ID, err))
		return false
	}
	if c.h.sensors == nil {
		c.stop(websocket.CloseInternalServerErr, "central keeps no sensor history; retry later")
		return false
	}
	if err := c.h.sensors.take(c.edge.ID, &b); err != nil {
		c.log.Error("sensor batch not stored; the edge re-sends it", "id", b.ID, "err", err)
		c.stop(websocket.CloseInternalServerErr, "central could not store the item; retry later")
		return false
	}
	c.acks.add(b.ID)
	return true
}

// edgeSensors is one edge's sensors as its latest heartbeat reported them.
type edgeSensors struct {
	edge, site string
	online     bool // connected now: else its sensors are as last heard
	sensors    []wire.SensorStatus
}

// sensorStatuses lists every edge's sensors from its latest heartbeat
// (since central started), edges in ID order.
func (h *edgeHub) sensorStatuses() []edgeSensors {
	recs := h.reg.list()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []edgeSensors
	for _, e := range recs {
		if st := h.state[e.ID]; st != nil && len(st.hb.Sensors) > 0 {
			out = append(out, edgeSensors{edge: e.ID, site: e.SiteID, online: st.online, sensors: append([]wire.SensorStatus(nil), st.hb.Sensors...)})
		}
	}
	return out
}

// sensorsAPI is the sensor pages' component. New (server.go) builds it.
type sensorsAPI struct {
	store sensorStore
	edges interface {
		sensorStatuses() []edgeSensors
		statuses() []EdgeStatus
	}
	now func() time.Time
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// sensorOut is one sensor of GET /api/v1/sensors.
type sensorOut struct {
	Edge     string       `json:"edge"`
	SiteID   string       `json:"site_id"`
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Kind     string       `json:"kind"`
	Unit     string       `json:"unit"`
	Location string       `json:"location"`
	State    string       `json:"state"`
	Value    float64      `json:"value"`
	Time     time.Time    `json:"time,omitzero"`
	Warn     *float64     `json:"warn"`
	Alarm    *float64     `json:"alarm"`
	Spark    []sparkPoint `json:"spark"`
	// EdgeOnline: the edge is connected. When it is not, State and Value
	// are its last heartbeat's: nobody knows the sensor's state now.
	EdgeOnline bool `json:"edge_online"`
}

// sparkPoint is one minute's mean of a sparkline.
type sparkPoint struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// handleSensors serves GET /api/v1/sensors[?site=S]: every sensor as
// its edge's latest heartbeat reports it, with the last hour's 1-minute
// means.
func (sa *sensorsAPI) handleSensors(w http.ResponseWriter, r *http.Request) {
	site := r.URL.Query().Get("site")
	now := sa.now().UTC()
	out := []sensorOut{}
	for _, es := range sa.edges.sensorStatuses() {
		for _, st := range es.sensors {
			row := sensorOut{Edge: es.edge, SiteID: st.SiteID, ID: st.ID, Name: st.Name, Kind: st.Kind, Unit: st.Unit,
				Location: st.Location, State: st.State, Value: st.Value, Time: st.Time, Warn: st.Warn, Alarm: st.Alarm, Spark: []sparkPoint{},
				EdgeOnline: es.online}
			if row.SiteID == "" {
				row.SiteID = es.site
			}
			if site != "" && row.SiteID != site && !strings.HasPrefix(row.SiteID, site+"/") {
				continue
			}
			pts, err := sa.store.history(es.edge, st.ID, now.Add(-sparklineWindow), now.Add(time.Minute), stepMinute)
			if err != nil {
				sa.internalError(w, r, err)
				return
			}
			for _, p := range pts {
				row.Spark = append(row.Spark, sparkPoint{T: p.T, V: p.V})
			}
			out = append(out, row)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sensors": out})
}

// handleHistory serves GET /api/v1/sensors/{edge}/{sensor}/history?from=&to=
// (default: the last 24 hours): the step follows the range (historyStep).
func (sa *sensorsAPI) handleHistory(w http.ResponseWriter, r *http.Request) {
	edge, sensor := r.PathValue("edge"), r.PathValue("sensor")
	if !knownEdge(sa.edges, edge) {
		writeError(w, http.StatusNotFound, "edge", fmt.Sprintf("edge %q is not an edge central knows", edge))
		return
	}
	from, ok := queryTime(w, r, "from")
	if !ok {
		return
	}
	to, ok := queryTime(w, r, "to")
	if !ok {
		return
	}
	if to.IsZero() {
		to = sa.now().UTC()
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	if !from.Before(to) {
		writeError(w, http.StatusBadRequest, "from", "from must be before to")
		return
	}
	step := historyStep(from, to)
	pts, err := sa.store.history(edge, sensor, from, to, step)
	if err != nil {
		sa.internalError(w, r, err)
		return
	}
	unit := ""
	for _, es := range sa.edges.sensorStatuses() {
		for _, st := range es.sensors {
			if es.edge == edge && st.ID == sensor {
				unit = st.Unit
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"edge": edge, "sensor": sensor, "unit": unit, "step": stepName(step),
		"from": from.UTC(), "to": to.UTC(), "points": pts})
}
