package edge

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// Sensor verdicts as alerts (the sensor side's run goroutine). A sensor
// has at most one open alert per condition — warning (yellow), alarm
// (red), silent (yellow) — and a change does this:
//
//   - to alarm: raise sensor.alarm; an open warning ends ("rose to alarm");
//   - to warning: raise sensor.warning, unless an alarm is open: then the
//     alarm alert is updated (back below alarm, still over warning) and
//     stays open until the value clears;
//   - to silent: raise sensor.silent; open warnings and alarms stay open
//     (nobody knows whether their condition ended);
//   - reporting again (from silent): the silent alert ends;
//   - to normal (RuleClear): every open alert of the sensor ends.
//
// An alert ends with an update carrying Ended (as a gate's cleared cause
// does): central shows that its condition is over; a guard still
// resolves it. Updates keep the alert's summary and add what happened
// ("Gas 27.5 %LEL over alarm 25 %LEL at Kitchen; back to normal at
// 8 %LEL"): the summary central shows is the update's. Alerts and their updates are written to the outbox on this
// goroutine, in order, so an update never arrives before its alert.

var sensorKindLabel = map[string]string{
	"residual_current": "Residual current", "cable_temperature": "Cable temperature", "current": "Current",
	"voltage": "Voltage", "power": "Power", "gas": "Gas", "temperature": "Temperature", "humidity": "Humidity",
	"water_level": "Water level", "smoke": "Smoke", "water_leak": "Water leak",
}

// changes turns verdict changes into alerts and updates, and keeps the
// open alerts for a restart when they changed.
func (s *sensorSide) changes(cs []sensors.Change) {
	if len(cs) == 0 {
		return
	}
	before := s.openEdits
	for _, c := range cs {
		r, ok := s.byID[c.Sensor]
		if !ok {
			continue
		}
		s.change(r, c)
	}
	if s.openEdits != before {
		s.saveOpen()
	}
}

func (s *sensorSide) change(r sensors.Resolved, c sensors.Change) {
	open := s.open[r.ID]
	if open == nil {
		open = map[sensors.State]openSensorAlert{}
		s.open[r.ID] = open
	}
	if c.From == sensors.StateSilent && c.To != sensors.StateSilent {
		s.end(c, sensors.StateSilent, "reporting again at "+reading(c.Value, r.Unit))
	}
	switch c.To {
	case sensors.StateAlarm:
		s.raise(r, c)
		s.end(c, sensors.StateWarning, "rose to alarm at "+reading(c.Value, r.Unit))
	case sensors.StateWarning:
		if a, ok := open[sensors.StateAlarm]; ok {
			s.alerts.update(wire.AlertUpdate{ID: newAlertID(s.edgeID, c.At), AlertID: a.ID, EdgeID: s.edgeID, Time: c.At.UTC(),
				Summary: a.Summary + "; back below alarm at " + reading(c.Value, r.Unit) + ", still a warning"}, a.Sev)
			return
		}
		s.raise(r, c)
	case sensors.StateSilent:
		s.raise(r, c)
	case sensors.StateNormal:
		for _, st := range []sensors.State{sensors.StateAlarm, sensors.StateWarning, sensors.StateSilent} {
			s.end(c, st, "back to normal at "+reading(c.Value, r.Unit))
		}
	}
}

// raise raises the alert of c's new state, unless one is open already.
func (s *sensorSide) raise(r sensors.Resolved, c sensors.Change) {
	if _, ok := s.open[r.ID][c.To]; ok {
		return
	}
	kind, sev := wire.KindSensorWarning, wire.Yellow
	switch c.To {
	case sensors.StateAlarm:
		kind, sev = wire.KindSensorAlarm, wire.Red
	case sensors.StateSilent:
		kind = wire.KindSensorSilent
	}
	recent := s.hist.Recent(r.ID, sensorRecent) // nil on an error (the history logs it)
	if len(recent) > wire.MaxSensorContext {
		recent = recent[len(recent)-wire.MaxSensorContext:]
	}
	a := wire.Alert{ID: newAlertID(s.edgeID, c.At), EdgeID: s.edgeID, SiteID: s.siteID, Source: r.ID, Kind: kind, Severity: sev,
		Time: c.At.UTC(), Summary: summary(r, c),
		Sensor: &wire.SensorAlert{Sensor: r.ID, Name: r.Name, Kind: r.Kind, Unit: r.Unit, Location: r.Location,
			Value: c.Value, Rule: c.Rule, Threshold: c.Threshold, Recent: recent}}
	if s.alerts.raise(a) {
		s.open[r.ID][c.To] = openSensorAlert{ID: a.ID, Sev: sev, Summary: a.Summary, Rule: c.Rule, Threshold: c.Threshold}
		s.openEdits++
	}
}

// end ends the open alert of state st, if any: its summary goes on
// saying what was measured, then how it ended ("…; back to normal at
// 5.3 %LEL").
func (s *sensorSide) end(c sensors.Change, st sensors.State, how string) {
	a, ok := s.open[c.Sensor][st]
	if !ok {
		return
	}
	delete(s.open[c.Sensor], st)
	s.openEdits++
	at := c.At.UTC()
	s.alerts.update(wire.AlertUpdate{ID: newAlertID(s.edgeID, at), AlertID: a.ID, EdgeID: s.edgeID, Time: at, Ended: at,
		Summary: a.Summary + "; " + how}, a.Sev)
}

// summary is an alert's one line, e.g. "Gas 27.5 %LEL over alarm
// 25 %LEL at Kitchen, No. 3 Lane".
func summary(r sensors.Resolved, c sensors.Change) string {
	label := sensorLabel(r)
	switch c.Rule {
	case sensors.RuleDetector:
		return fmt.Sprintf("%s detected at %s", label, place(r))
	case sensors.RuleSilent:
		return fmt.Sprintf("%s sensor silent: no reading for %s at %s", label, silentFor(r), place(r))
	case sensors.RuleRateOfRise:
		return fmt.Sprintf("%s %s rising faster than %s/min at %s", label, reading(c.Value, r.Unit), reading(c.Threshold, r.Unit), place(r))
	}
	dir := "over"
	if r.Below {
		dir = "under"
	}
	stage := "warning"
	if c.Rule == sensors.RuleAlarm {
		stage = "alarm"
	}
	return fmt.Sprintf("%s %s %s %s %s at %s", label, reading(c.Value, r.Unit), dir, stage, reading(c.Threshold, r.Unit), place(r))
}

func sensorLabel(r sensors.Resolved) string {
	if l, ok := sensorKindLabel[r.Kind]; ok {
		return l
	}
	return r.Kind
}

// place is where the sensor is: its name (or ID) and location.
func place(r sensors.Resolved) string {
	p := displayName(r.Name, r.ID)
	if r.Location != "" {
		p += ", " + r.Location
	}
	return p
}

// reading writes a value with its unit ("27.5 %LEL", "61 °C").
func reading(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i > 3 {
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// silentFor is the sensor's stale window as a person reads it: "400ms",
// "3s", "3 min", "3 h".
func silentFor(r sensors.Resolved) string {
	d := r.StaleWindow()
	switch {
	case d < time.Second:
		return d.String()
	case d < time.Minute || d%time.Minute != 0:
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	case d < time.Hour || d%time.Hour != 0:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/time.Hour)) + " h"
}
