package setup

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// The sensors step: the safety sensors of edge.yaml (sensors:) and what
// they are read from (sensor_inputs: the Modbus devices and the MQTT
// broker). Like the gates step, the page edits the whole form and saves
// it as one config revision (Backend.SetupSaveSensors), validated whole
// (sensors.Problems through the config's own validation); a refused one
// changes nothing. The register maps of the Modbus models are shown but
// stay file-only; so do what the page does not show (a sensor's rate of
// rise, a device's timeout, the broker's client ID, user and password
// file), which is kept as the file has it.

// SensorsForm is sensors: and sensor_inputs: of edge.yaml as the page
// edits them.
type SensorsForm struct {
	Sensors []SensorForm       `json:"sensors"`
	Modbus  []ModbusDeviceForm `json:"modbus"`
	MQTT    *SensorBrokerForm  `json:"mqtt"` // nil: no broker

	// Answers only, ignored when saved: the register maps of
	// sensor_inputs.modbus.models (edited in edge.yaml) and every kind
	// with its defaults.
	Models []ModelForm `json:"models,omitempty"`
	Kinds  []KindForm  `json:"kinds,omitempty"`
}

// Sources of SensorForm.Source.
const (
	SourceModbus = "modbus" // a register of a Modbus device (Device, Register)
	SourceZigbee = "zigbee" // a Zigbee2MQTT device's expose (Device, Field)
	SourceTopic  = "topic"  // any MQTT topic and a JSON path (Topic, Path)
)

// SensorForm is one sensor. Thresholds left empty (nil) and durations
// left "" take the kind's defaults (KindForm).
type SensorForm struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Unit     string `json:"unit"`
	Location string `json:"location"`
	Site     string `json:"site"`
	// Source is SourceModbus, SourceZigbee or SourceTopic.
	Source   string `json:"source"`
	Device   string `json:"device"`   // the Modbus device's ID or the Zigbee2MQTT friendly_name
	Register string `json:"register"` // modbus: a register of the device's model
	Field    string `json:"field"`    // zigbee: the expose's property
	Topic    string `json:"topic"`    // topic: the MQTT topic
	Path     string `json:"path"`     // topic: the JSON path ("": the payload is the number)

	Warn       *float64 `json:"warn"`
	Alarm      *float64 `json:"alarm"`
	Below      bool     `json:"below"`
	Hysteresis *float64 `json:"hysteresis"`
	// MinDuration, Interval: Go durations ("5s", "1m"); "" the default.
	MinDuration string `json:"min_duration"`
	Interval    string `json:"interval"`
	StaleAfter  int    `json:"stale_after"` // 0: the default (3)
}

// ModbusDeviceForm is a Modbus TCP device.
type ModbusDeviceForm struct {
	ID      string `json:"id"`
	Address string `json:"address"` // host:port
	UnitID  int    `json:"unit_id"`
	Model   string `json:"model"` // one of the form's Models
	Poll    string `json:"poll"`  // "" the default (1s)
}

// SensorBrokerForm is the MQTT broker sensors are read from.
type SensorBrokerForm struct {
	Broker    string `json:"broker"`     // tcp://host:1883
	BaseTopic string `json:"base_topic"` // Zigbee2MQTT's, default zigbee2mqtt
}

// ModelForm is a model's register map, shown read-only.
type ModelForm struct {
	Name      string         `json:"name"`
	Registers []RegisterForm `json:"registers"`
}

// RegisterForm is one register of a model.
type RegisterForm struct {
	Name    string `json:"name"`
	Address uint16 `json:"address"`
	Table   string `json:"table"`
	Type    string `json:"type"`
	Unit    string `json:"unit,omitempty"`
}

// KindForm is a sensor kind and the defaults a sensor of it gets.
type KindForm struct {
	Name     string   `json:"name"`
	Unit     string   `json:"unit,omitempty"`
	Detector bool     `json:"detector,omitempty"`
	Warn     *float64 `json:"warn,omitempty"`
	Alarm    *float64 `json:"alarm,omitempty"`
	// Hysteresis with the default thresholds (0 without them: the
	// sensor's thresholds decide it).
	Hysteresis   float64 `json:"hysteresis"`
	MinDuration  string  `json:"min_duration"`
	MQTTInterval string  `json:"mqtt_interval"`
	StaleAfter   int     `json:"stale_after"`
}

// SensorsSaved says what became of a saved form.
type SensorsSaved struct {
	Revision string   `json:"revision"`
	Applied  string   `json:"applied"` // live, unchanged, restarting, restart_needed
	Changed  []string `json:"changed,omitempty"`
	Message  string   `json:"message"`
}

// Kinds is every sensor kind with its defaults (sensors/kinds.go).
func Kinds() []KindForm {
	var out []KindForm
	for _, name := range sensors.Kinds() {
		k, _ := sensors.LookupKind(name)
		// The defaults as a sensor of the kind gets them over MQTT.
		r := sensors.Resolve(sensors.SensorConfig{Kind: name, Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{}}}, sensors.InputsConfig{})
		kf := KindForm{Name: name, Unit: k.Unit, Detector: k.Detector, Warn: k.Warn, Alarm: k.Alarm,
			MinDuration: formatDuration(r.MinDuration), MQTTInterval: formatDuration(r.Interval), StaleAfter: r.StaleAfter}
		if !k.Detector {
			kf.Hysteresis = r.Hysteresis
		}
		out = append(out, kf)
	}
	return out
}

// formatDuration writes d as the page shows it: "5s", "1m", "1h30m"; "0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// SensorsFormOf is the sensors form of c: the sensors as the box runs them.
func SensorsFormOf(c conf.Config) SensorsForm {
	f := SensorsForm{Sensors: []SensorForm{}, Modbus: []ModbusDeviceForm{}, Models: []ModelForm{}, Kinds: Kinds()}
	for _, sc := range c.Sensors {
		f.Sensors = append(f.Sensors, sensorFormOf(sc))
	}
	for _, d := range c.SensorInputs.Modbus.Devices {
		df := ModbusDeviceForm{ID: d.ID, Address: d.Address, UnitID: int(d.UnitID), Model: d.Model}
		if d.Poll != 0 {
			df.Poll = formatDuration(d.Poll.D())
		}
		f.Modbus = append(f.Modbus, df)
	}
	if m := c.SensorInputs.MQTT; m != nil {
		f.MQTT = &SensorBrokerForm{Broker: m.Broker, BaseTopic: m.BaseTopic}
		if f.MQTT.BaseTopic == "" {
			f.MQTT.BaseTopic = "zigbee2mqtt"
		}
	}
	names := make([]string, 0, len(c.SensorInputs.Modbus.Models))
	for name := range c.SensorInputs.Modbus.Models {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		mf := ModelForm{Name: name, Registers: []RegisterForm{}}
		for _, r := range c.SensorInputs.Modbus.Models[name] {
			rf := RegisterForm{Name: r.Name, Address: r.Address, Table: r.Table, Type: r.Type, Unit: r.Unit}
			if rf.Table == "" {
				rf.Table = "holding"
			}
			if rf.Type == "" {
				rf.Type = "uint16"
				if rf.Table == "coil" || rf.Table == "discrete" {
					rf.Type = "bool"
				}
			}
			mf.Registers = append(mf.Registers, rf)
		}
		f.Models = append(f.Models, mf)
	}
	return f
}

func sensorFormOf(sc sensors.SensorConfig) SensorForm {
	sf := SensorForm{ID: sc.ID, Name: sc.Name, Kind: sc.Kind, Unit: sc.Unit, Location: sc.Location, Site: sc.Site,
		Warn: sc.Warn, Alarm: sc.Alarm, Below: sc.Below, Hysteresis: sc.Hysteresis, StaleAfter: sc.StaleAfter}
	switch s := sc.Source; {
	case s.Modbus != nil:
		sf.Source, sf.Device, sf.Register = SourceModbus, s.Modbus.Device, s.Modbus.Register
	case s.MQTT != nil && (s.MQTT.Topic != "" || s.MQTT.Path != ""):
		sf.Source, sf.Topic, sf.Path = SourceTopic, s.MQTT.Topic, s.MQTT.Path
	case s.MQTT != nil:
		sf.Source, sf.Device, sf.Field = SourceZigbee, s.MQTT.Device, s.MQTT.Field
	}
	if sc.MinDuration != nil {
		sf.MinDuration = formatDuration(sc.MinDuration.D())
	}
	if sc.Interval != 0 {
		sf.Interval = formatDuration(sc.Interval.D())
	}
	return sf
}

// parseDuration reads a form's duration ("" is none); problems name field.
func parseDuration(s, field string, probs *[]Problem) (config.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		*probs = append(*probs, Problem{Field: field, Msg: fmt.Sprintf("%q is not a duration (e.g. 5s, 1m, 2h)", s)})
		return 0, false
	}
	return config.Duration(d), true
}

// Problems are what is wrong with the form itself, before it is applied:
// a source that is none of the three, a duration that is not one.
// Everything else is the config's validation's (sensors.Problems).
func (f SensorsForm) Problems() []Problem {
	var c conf.Config
	return ApplySensorsForm(&c, f)
}

// ApplySensorsForm puts the sensors form into c, keeping what the page
// does not show (a sensor's rate of rise, a device's timeout, the
// broker's client ID, user and password file, the register maps), and
// returns the form's own problems (Problems); c is then to be validated
// whole.
func ApplySensorsForm(c *conf.Config, f SensorsForm) []Problem {
	var probs []Problem
	oldSensor := map[string]sensors.SensorConfig{}
	for _, sc := range c.Sensors {
		oldSensor[sc.ID] = sc
	}
	list := []sensors.SensorConfig{}
	for i, sf := range f.Sensors {
		field := fmt.Sprintf("sensors[%d]", i)
		sc := sensors.SensorConfig{ID: strings.TrimSpace(sf.ID), Name: strings.TrimSpace(sf.Name), Kind: strings.TrimSpace(sf.Kind),
			Unit: strings.TrimSpace(sf.Unit), Location: strings.TrimSpace(sf.Location), Site: strings.TrimSpace(sf.Site),
			Warn: sf.Warn, Alarm: sf.Alarm, Below: sf.Below, Hysteresis: sf.Hysteresis, StaleAfter: sf.StaleAfter}
		if old, ok := oldSensor[sc.ID]; ok && sc.ID != "" {
			sc.RateOfRise = old.RateOfRise
		}
		switch sf.Source {
		case SourceModbus:
			sc.Source.Modbus = &sensors.ModbusRef{Device: strings.TrimSpace(sf.Device), Register: strings.TrimSpace(sf.Register)}
		case SourceZigbee:
			sc.Source.MQTT = &sensors.MQTTRef{Device: strings.TrimSpace(sf.Device), Field: strings.TrimSpace(sf.Field)}
		case SourceTopic:
			sc.Source.MQTT = &sensors.MQTTRef{Topic: strings.TrimSpace(sf.Topic), Path: strings.TrimSpace(sf.Path)}
		default:
			probs = append(probs, Problem{Field: field + ".source", Msg: "choose Modbus, Zigbee2MQTT or an MQTT topic"})
		}
		if d, ok := parseDuration(sf.MinDuration, field+".min_duration", &probs); ok {
			sc.MinDuration = &d
		}
		sc.Interval, _ = parseDuration(sf.Interval, field+".interval", &probs)
		list = append(list, sc)
	}
	c.Sensors = list
	if len(list) == 0 {
		c.Sensors = nil
	}

	oldDev := map[string]sensors.ModbusDeviceConfig{}
	for _, d := range c.SensorInputs.Modbus.Devices {
		oldDev[d.ID] = d
	}
	var devs []sensors.ModbusDeviceConfig
	for i, df := range f.Modbus {
		field := fmt.Sprintf("sensor_inputs.modbus.devices[%d]", i)
		d := sensors.ModbusDeviceConfig{ID: strings.TrimSpace(df.ID), Address: strings.TrimSpace(df.Address), Model: strings.TrimSpace(df.Model)}
		if df.UnitID < 0 || df.UnitID > 255 {
			probs = append(probs, Problem{Field: field + ".unit_id", Msg: "must be between 0 and 255"})
		} else {
			d.UnitID = uint8(df.UnitID)
		}
		d.Poll, _ = parseDuration(df.Poll, field+".poll", &probs)
		if old, ok := oldDev[d.ID]; ok {
			d.Timeout = old.Timeout
		}
		devs = append(devs, d)
	}
	c.SensorInputs.Modbus.Devices = devs

	if f.MQTT == nil {
		c.SensorInputs.MQTT = nil
	} else {
		m := sensors.MQTTInputConfig{}
		if c.SensorInputs.MQTT != nil {
			m = *c.SensorInputs.MQTT
		}
		base := strings.TrimSpace(f.MQTT.BaseTopic)
		if base == "zigbee2mqtt" && m.BaseTopic == "" {
			base = "" // the default, as the file had it
		}
		m.Broker, m.BaseTopic = strings.TrimSpace(f.MQTT.Broker), base
		c.SensorInputs.MQTT = &m
	}
	return probs
}

// sensorsConfig is GET /setup/api/sensors/config: the form as the box runs it.
func (s *steps) sensorsConfig(w http.ResponseWriter, r *http.Request) {
	f, err := s.backend.SetupSensors()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// sensorStates is GET /setup/api/sensors/state: every sensor's verdict
// and last reading as the box judges them now.
func (s *steps) sensorStates(w http.ResponseWriter, r *http.Request) {
	st := s.backend.SetupSensorStates()
	if st == nil {
		st = []wire.SensorStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sensors": st})
}

// saveSensors is POST /setup/api/sensors/save: the form becomes a config
// revision, validated whole; 422 with the problems field by field if not.
func (s *steps) saveSensors(w http.ResponseWriter, r *http.Request) {
	var f SensorsForm
	if !decodeForm(w, r, &f) {
		return
	}
	f.Models, f.Kinds = nil, nil // answers only
	if probs := f.Problems(); len(probs) > 0 {
		writeRefused(w, Refused(probs))
		return
	}
	if !s.audit(w, r, ActionConfigChange, "sensors", sensorsDetails(f)) {
		return
	}
	res, err := s.backend.SetupSaveSensors(f)
	if err != nil {
		s.refuseSave(w, "sensors from the setup page refused", err)
		return
	}
	s.log.Info("sensors saved from the setup page", "sensors", len(f.Sensors), "modbus_devices", len(f.Modbus), "revision", res.Revision, "applied", res.Applied)
	writeJSON(w, http.StatusOK, res)
}

// sensorsDetails is a saved form in short for the audit log: each
// sensor's ID, kind, source and thresholds, the devices and the broker;
// only counts if that would not fit.
func sensorsDetails(f SensorsForm) map[string]any {
	type sensor struct {
		ID     string   `json:"id"`
		Kind   string   `json:"kind"`
		Source string   `json:"source"`
		Warn   *float64 `json:"warn,omitempty"`
		Alarm  *float64 `json:"alarm,omitempty"`
	}
	ss := []sensor{}
	for _, sf := range f.Sensors {
		ss = append(ss, sensor{ID: short(sf.ID), Kind: short(sf.Kind), Source: short(sf.Source), Warn: sf.Warn, Alarm: sf.Alarm})
	}
	devs := []string{}
	for _, d := range f.Modbus {
		devs = append(devs, short(d.ID))
	}
	d := map[string]any{"sensors": ss, "modbus_devices": devs, "mqtt": f.MQTT != nil}
	if f.MQTT != nil {
		d["mqtt_broker"] = short(f.MQTT.Broker)
	}
	if b, _ := json.Marshal(d); len(b) > 1800 {
		kinds := map[string]int{}
		for _, sf := range f.Sensors {
			k := "other"
			if _, ok := sensors.LookupKind(sf.Kind); ok {
				k = sf.Kind
			}
			kinds[k]++
		}
		d = map[string]any{"sensors": len(f.Sensors), "by_kind": kinds, "modbus_devices": len(f.Modbus), "mqtt": f.MQTT != nil, "truncated": true}
	}
	return d
}
