package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/vigil-perimeter/vigil/internal/atomicfile"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// The open sensor alerts outlive a restart: sensor-alerts.json in the
// data directory holds them, replaced whole (atomicfile) by the sensor
// side's goroutine after each raise and end — after the alert or update
// is durable in the outbox. At start the evaluator resumes each sensor
// from them (sensors.Evaluator.Resume), so a condition still present is
// the alert already open, not a second one, and one gone by the first
// reading ends it. Open alerts of a sensor no longer configured end at
// start ("removed from the configuration").
//
// A crash between an alert reaching the outbox and this file being
// replaced loses only the knowledge that it is open: its condition, if
// still present, raises a new alert and the old one stays open at
// central until a guard resolves it. A file that cannot be read is
// logged and set aside (.damaged); the node starts with none open.
const sensorOpenFile = "sensor-alerts.json"

// sensorOpenDoc is the file's content.
type sensorOpenDoc struct {
	Version int `json:"version"`
	// Open is by sensor, by state (warning, alarm, silent).
	Open map[string]map[sensors.State]openSensorAlert `json:"open"`
}

// load reads the open alerts kept by the last run.
func loadSensorOpen(path string) (map[string]map[sensors.State]openSensorAlert, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]map[sensors.State]openSensorAlert{}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc sensorOpenDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, want 1", path, doc.Version)
	}
	for sensor, m := range doc.Open {
		for st, a := range m {
			if a.ID == "" || !alertState(st) || !a.Sev.Valid() {
				return nil, fmt.Errorf("%s: sensor %q: bad open alert %q %+v", path, sensor, st, a)
			}
		}
	}
	if doc.Open == nil {
		doc.Open = map[string]map[sensors.State]openSensorAlert{}
	}
	return doc.Open, nil
}

func alertState(st sensors.State) bool {
	return st == sensors.StateWarning || st == sensors.StateAlarm || st == sensors.StateSilent
}

// saveOpen replaces the file with the open alerts (the run goroutine).
func (s *sensorSide) saveOpen() {
	doc := sensorOpenDoc{Version: 1, Open: map[string]map[sensors.State]openSensorAlert{}}
	for id, m := range s.open {
		if len(m) > 0 {
			doc.Open[id] = m
		}
	}
	b, err := json.Marshal(doc)
	if err == nil {
		err = atomicfile.Write(s.openPath, b, 0o600)
	}
	if err != nil {
		s.met.openSaves.Inc()
		s.log.Error("keeping the open sensor alerts (after a restart their conditions may raise them again)", "err", err)
	}
}

// resumeOpen starts the evaluator from the open alerts a restart found
// (newSensorSide, before any reading) and returns those of sensors no
// longer configured, for run to end.
func (s *sensorSide) resumeOpen() (orphans []orphanAlert) {
	ids := make([]string, 0, len(s.open))
	for id := range s.open {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := s.open[id]
		if _, ok := s.byID[id]; !ok {
			for _, a := range m {
				orphans = append(orphans, orphanAlert{sensor: id, alert: a})
			}
			delete(s.open, id)
			continue
		}
		r := resumedFrom(m)
		if last := s.hist.Recent(id, 24*time.Hour); len(last) > 0 {
			r.Value, r.At = last[len(last)-1].Value, last[len(last)-1].Time
		}
		if !s.eval.Resume(id, r) {
			s.log.Warn("open sensor alerts not resumed", "sensor", id, "state", r.State)
		}
	}
	return orphans
}

// resumedFrom is the verdict a sensor's open alerts say it had: the most
// urgent of alarm and warning, under silence if a silent alert is open.
func resumedFrom(m map[sensors.State]openSensorAlert) sensors.Resumed {
	r := sensors.Resumed{State: sensors.StateSilent, Level: sensors.StateNormal}
	for _, st := range []sensors.State{sensors.StateWarning, sensors.StateAlarm} {
		a, ok := m[st]
		if !ok {
			continue
		}
		r.Threshold = a.Threshold
		if a.Rule != sensors.RuleRateOfRise {
			r.Level = st
		}
		r.State = st
	}
	if _, ok := m[sensors.StateSilent]; ok {
		r.State, r.Threshold = sensors.StateSilent, 0
	}
	return r
}

// orphanAlert is an open alert of a sensor no longer configured.
type orphanAlert struct {
	sensor string
	alert  openSensorAlert
}

// endOrphans ends the open alerts of sensors no longer configured (run,
// at start).
func (s *sensorSide) endOrphans(orphans []orphanAlert) {
	if len(orphans) == 0 {
		return
	}
	now := time.Now().UTC()
	for _, o := range orphans {
		s.alerts.update(wire.AlertUpdate{ID: newAlertID(s.edgeID, now), AlertID: o.alert.ID, EdgeID: s.edgeID, Time: now, Ended: now,
			Summary: o.alert.Summary + "; sensor removed from the configuration"}, o.alert.Sev)
	}
	s.saveOpen()
}
