package gates

import (
	"sort"
	"time"
)

// Status is a gate at one instant, for the installer page and heartbeats.
type Status struct {
	Gate      string    `json:"gate"`
	Name      string    `json:"name"`
	Door      string    `json:"door"` // open, closed or unknown
	OpenSince time.Time `json:"open_since,omitzero"`
	Armed     bool      `json:"armed"`
	// Override is set while a keypad's arming is in force instead of the
	// schedule.
	Override *Override `json:"override,omitempty"`
	// LastGrant is the event time of the latest access grant and
	// LastCredential its credential (zero / empty: none since start).
	LastGrant      time.Time      `json:"last_grant,omitzero"`
	LastCredential string         `json:"last_credential,omitempty"`
	Alerts         []Alert        `json:"alerts,omitempty"` // open alerts, latest state
	Devices        []DeviceStatus `json:"devices,omitempty"`
}

// Override is an arming set from a keypad. It holds instead of the
// schedule until Until, the schedule's next change, or the next arm or
// disarm; Until is zero for a gate whose schedule never changes.
type Override struct {
	Armed  bool      `json:"armed"`
	Device string    `json:"device"`         // the keypad
	Mode   string    `json:"mode,omitempty"` // as the keypad said it: arm_all_zones, disarm, …
	Since  time.Time `json:"since"`          // the request's event time
	Until  time.Time `json:"until,omitzero"`
}

// DeviceStatus is one device of a gate.
type DeviceStatus struct {
	ID         string    `json:"id"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	Silent     bool      `json:"silent"`
	Tamper     bool      `json:"tamper,omitempty"`
	BatteryLow bool      `json:"battery_low,omitempty"`
	Alarms     []string  `json:"alarms,omitempty"` // sensors in alarm
}

// Status reports the gate's state at now without changing it.
func (m *Machine) Status(now time.Time) Status {
	s := Status{Gate: m.cfg.ID, Name: m.cfg.Name, Door: "unknown", Armed: m.arming.at(now),
		LastGrant: m.lastGrantEv, LastCredential: m.lastGrantCred}
	if o := m.arming.current(now); o != nil {
		c := *o
		s.Override = &c
	}
	if m.door.known {
		s.Door = "closed"
		if m.door.on {
			s.Door, s.OpenSince = "open", m.openedEv
		}
	}
	for _, f := range m.folds.open {
		if f.active || f.severity != "green" {
			a := Alert{Gate: m.cfg.ID, Key: f.key.cause, Device: f.key.device, Severity: f.severity, Count: f.count,
				Summary: f.summary, Time: f.evTime, First: f.first}
			s.Alerts = append(s.Alerts, a)
		}
	}
	sort.Slice(s.Alerts, func(i, j int) bool { return s.Alerts[i].First.Before(s.Alerts[j].First) })
	for _, id := range m.devices.ids() {
		d := m.devices[id]
		ds := DeviceStatus{ID: id, LastSeen: d.lastSeen, Silent: d.silent, Tamper: d.tamper.known && d.tamper.on, BatteryLow: d.battery.known && d.battery.on}
		for _, sensor := range []string{Gas, Smoke, WaterLeak} {
			if l := d.sensors[sensor]; l != nil && l.known && l.on {
				ds.Alarms = append(ds.Alarms, sensor)
			}
		}
		s.Devices = append(s.Devices, ds)
	}
	return s
}
