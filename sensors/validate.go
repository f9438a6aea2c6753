package sensors

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-perimeter/vigil/internal/config"
)

// idPattern is the form of sensor and Modbus device IDs, as every other
// ID in edge.yaml (edge/conf).
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// namePattern is the form of model and register names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// hostPort is a host name, an IPv4 address or [IPv6], optionally :port.
var hostPort = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// Bounds of the configuration.
const (
	maxNameLen     = 120
	maxLocationLen = 200
	maxUnitLen     = 16
	maxTopicLen    = 256
	maxFieldLen    = 128
	maxStaleAfter  = 1000
	minInterval    = 100 * time.Millisecond
	maxInterval    = 24 * time.Hour
	maxMinDuration = time.Hour
	maxRatePer     = time.Hour
)

// problems collects field errors in edge.yaml's order.
type problems []config.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, config.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks sensors: and sensor_inputs: as a whole and returns
// every problem (errors.Join of config.FieldError values), or nil.
func Validate(list []SensorConfig, in InputsConfig) error {
	var errs []error
	for _, fe := range Problems(list, in) {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// Problems is Validate as field errors, for edge/conf to place in the
// file (config.Place).
func Problems(list []SensorConfig, in InputsConfig) []config.FieldError {
	var p problems
	modelProblems(in.Modbus.Models, &p)
	deviceProblems(in.Modbus, &p)
	if in.MQTT != nil {
		mqttInputProblems(*in.MQTT, &p)
	}
	seen := map[string]bool{}
	for i, c := range list {
		f := fmt.Sprintf("sensors[%d]", i)
		if !idPattern.MatchString(c.ID) {
			p.add(f+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
		} else if seen[c.ID] {
			p.add(f+".id", "%q is used twice", c.ID)
		}
		seen[c.ID] = true
		describeProblems(f, c, &p)
		sourceProblems(f+".source", c.Source, in, &p)
		k, ok := LookupKind(c.Kind)
		if !ok {
			p.add(f+".kind", "%q is not a sensor kind (%s)", c.Kind, strings.Join(Kinds(), ", "))
			continue
		}
		if k.Detector {
			detectorProblems(f, c, &p)
		} else {
			thresholdProblems(f, c, k, &p)
		}
		timingProblems(f, c, &p)
	}
	return p
}

// describeProblems checks what a person reads: name, unit, location.
func describeProblems(f string, c SensorConfig, p *problems) {
	if len(c.Name) > maxNameLen || !utf8.ValidString(c.Name) {
		p.add(f+".name", "at most %d bytes of UTF-8", maxNameLen)
	}
	if len(c.Unit) > maxUnitLen || !utf8.ValidString(c.Unit) {
		p.add(f+".unit", "at most %d bytes of UTF-8", maxUnitLen)
	}
	if len(c.Location) > maxLocationLen || !utf8.ValidString(c.Location) {
		p.add(f+".location", "at most %d bytes of UTF-8", maxLocationLen)
	}
	if len(c.Site) > maxNameLen {
		p.add(f+".site", "at most %d bytes", maxNameLen)
	}
}

// sourceProblems checks that a sensor has exactly one source and that
// it names what sensor_inputs declares.
func sourceProblems(f string, s SourceRef, in InputsConfig, p *problems) {
	switch {
	case s.Modbus == nil && s.MQTT == nil:
		p.add(f, "give modbus: or mqtt:")
	case s.Modbus != nil && s.MQTT != nil:
		p.add(f, "give modbus: or mqtt:, not both")
	case s.Modbus != nil:
		modbusRefProblems(f+".modbus", *s.Modbus, in.Modbus, p)
	default:
		mqttRefProblems(f+".mqtt", *s.MQTT, in.MQTT, p)
	}
}

func modbusRefProblems(f string, r ModbusRef, in ModbusConfig, p *problems) {
	i := slices.IndexFunc(in.Devices, func(d ModbusDeviceConfig) bool { return d.ID == r.Device })
	if i < 0 {
		p.add(f+".device", "%q is not a device of sensor_inputs.modbus.devices", r.Device)
		return
	}
	regs, ok := in.Models[in.Devices[i].Model]
	if !ok {
		return // the device's own error says so
	}
	if !slices.ContainsFunc(regs, func(rc RegisterConfig) bool { return rc.Name == r.Register }) {
		p.add(f+".register", "%q is not a register of model %q", r.Register, in.Devices[i].Model)
	}
}

func mqttRefProblems(f string, r MQTTRef, in *MQTTInputConfig, p *problems) {
	if in == nil {
		p.add(f, "needs sensor_inputs.mqtt (the broker)")
	}
	zigbee, topic := r.Device != "" || r.Field != "", r.Topic != "" || r.Path != ""
	switch {
	case zigbee && topic:
		p.add(f, "give device and field (Zigbee2MQTT) or topic and path, not both")
	case zigbee:
		if !topicPart(r.Device) {
			p.add(f+".device", "must be the device's Zigbee2MQTT friendly_name (1-%d characters, no + or #)", maxTopicLen)
		}
		if r.Field == "" || len(r.Field) > maxFieldLen {
			p.add(f+".field", "must be the expose's property (1-%d characters), e.g. temperature", maxFieldLen)
		}
	case topic:
		if !topicPart(r.Topic) {
			p.add(f+".topic", "must be a topic of 1-%d characters without wildcards (+ or #)", maxTopicLen)
		}
		if _, err := ParsePath(r.Path); err != nil {
			p.add(f+".path", "%v", err)
		}
	default:
		p.add(f, "give device and field (Zigbee2MQTT) or topic (and path)")
	}
}

// topicPart is a topic or a part of one without wildcards.
func topicPart(s string) bool {
	return s != "" && len(s) <= maxTopicLen && utf8.ValidString(s) && !strings.ContainsAny(s, "+#\x00")
}

// detectorProblems refuses the rules of measured values on a detector.
func detectorProblems(f string, c SensorConfig, p *problems) {
	const msg = "a %s detector has no thresholds (1 alarms, 0 clears)"
	for _, x := range []struct {
		field string
		set   bool
	}{{"warn", c.Warn != nil}, {"alarm", c.Alarm != nil}, {"below", c.Below},
		{"hysteresis", c.Hysteresis != nil}, {"rate_of_rise", c.RateOfRise != nil}} {
		if x.set {
			p.add(f+"."+x.field, msg, c.Kind)
		}
	}
}

// thresholdProblems checks a measured value's thresholds, hysteresis and
// rate of rise, with the kind's defaults where the sensor gives none.
func thresholdProblems(f string, c SensorConfig, k Kind, p *problems) {
	for _, x := range []struct {
		field string
		v     *float64
	}{{"warn", c.Warn}, {"alarm", c.Alarm}, {"hysteresis", c.Hysteresis}} {
		if x.v != nil && !finite(*x.v) {
			p.add(f+"."+x.field, "must be a number")
			return
		}
	}
	warn, alarm := thresholds(c, k)
	switch {
	case warn == nil && alarm == nil && c.RateOfRise == nil && c.Below && k.Alarm != nil:
		p.add(f+".alarm", "with below: true, give warn and/or alarm (the %s defaults are upper limits)", k.Name)
	case warn == nil && alarm == nil && c.RateOfRise == nil:
		p.add(f+".alarm", "kind %s has no default thresholds: give warn and/or alarm (or a rate_of_rise)", k.Name)
	case warn != nil && alarm != nil && !c.Below && *warn >= *alarm:
		p.add(orderField(f, c), "warn %g%s must be below alarm %g%s", *warn, defaultNote(c.Warn), *alarm, defaultNote(c.Alarm))
	case warn != nil && alarm != nil && c.Below && *warn <= *alarm:
		p.add(orderField(f, c), "warn %g must be above alarm %g with below: true", *warn, *alarm)
	case c.Hysteresis != nil && *c.Hysteresis < 0:
		p.add(f+".hysteresis", "must not be negative")
	case c.Hysteresis != nil && warn != nil && alarm != nil && *c.Hysteresis >= abs(*alarm-*warn):
		p.add(f+".hysteresis", "%g must be less than the gap between warn and alarm (%g)", *c.Hysteresis, abs(*alarm-*warn))
	}
	if r := c.RateOfRise; r != nil {
		if !finite(r.Delta) || r.Delta <= 0 {
			p.add(f+".rate_of_rise.delta", "must be a positive number (the rise per 'per')")
		}
		if d := r.Per.D(); d != 0 && (d < time.Second || d > maxRatePer) {
			p.add(f+".rate_of_rise.per", "must be between 1s and %v", maxRatePer)
		}
	}
}

func defaultNote(set *float64) string {
	if set == nil {
		return " (the kind's default)"
	}
	return ""
}

// orderField is the threshold the sensor gave, to blame for an order
// that is wrong.
func orderField(f string, c SensorConfig) string {
	if c.Warn == nil {
		return f + ".alarm"
	}
	return f + ".warn"
}

// timingProblems checks interval, stale_after and min_duration.
func timingProblems(f string, c SensorConfig, p *problems) {
	if d := c.Interval.D(); d != 0 && (d < minInterval || d > maxInterval) {
		p.add(f+".interval", "must be between %v and %v", minInterval, maxInterval)
	}
	if c.StaleAfter < 0 || c.StaleAfter > maxStaleAfter {
		p.add(f+".stale_after", "must be between 1 and %d intervals (leave it out for %d)", maxStaleAfter, DefaultStaleAfter)
	}
	if c.MinDuration != nil && (c.MinDuration.D() < 0 || c.MinDuration.D() > maxMinDuration) {
		p.add(f+".min_duration", "must be between 0s and %v", maxMinDuration)
	}
}

// modelProblems checks the register maps of sensor_inputs.modbus.models.
func modelProblems(models map[string][]RegisterConfig, p *problems) {
	for _, name := range slices.Sorted(mapKeys(models)) {
		f := "sensor_inputs.modbus.models." + name
		if !namePattern.MatchString(name) {
			p.add(f, "a model name is 1-63 letters, digits, '.', '_' or '-'")
		}
		if len(models[name]) == 0 {
			p.add(f, "lists no registers")
		}
		seen := map[string]bool{}
		for i, r := range models[name] {
			rf := fmt.Sprintf("%s[%d]", f, i)
			if !namePattern.MatchString(r.Name) {
				p.add(rf+".name", "must be 1-63 letters, digits, '.', '_' or '-'")
			} else if seen[r.Name] {
				p.add(rf+".name", "%q is used twice in the model", r.Name)
			}
			seen[r.Name] = true
			registerProblems(rf, r, p)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// registerProblems checks one register's table, type, word order,
// address range and scaling.
func registerProblems(f string, r RegisterConfig, p *problems) {
	bits := r.Table == "coil" || r.Table == "discrete"
	switch {
	case !slices.Contains([]string{"", "holding", "input", "coil", "discrete"}, r.Table):
		p.add(f+".table", "%q is not holding, input, coil or discrete", r.Table)
	case bits && r.Type != "" && r.Type != "bool":
		p.add(f+".type", "a %s is a bool (leave type out)", r.Table)
	case !bits && !slices.Contains([]string{"", "uint16", "int16", "uint32", "int32", "float32"}, r.Type):
		p.add(f+".type", "%q is not uint16, int16, uint32, int32 or float32", r.Type)
	}
	wide := r.Type == "uint32" || r.Type == "int32" || r.Type == "float32"
	switch {
	case r.WordOrder != "" && r.WordOrder != "big" && r.WordOrder != "little":
		p.add(f+".word_order", "%q is not big or little", r.WordOrder)
	case r.WordOrder != "" && !wide:
		p.add(f+".word_order", "only 32-bit types have a word order")
	}
	if wide && r.Address == math.MaxUint16 {
		p.add(f+".address", "a 32-bit value needs two registers: %d is the last address", r.Address)
	}
	if !finite(r.Scale) || !finite(r.Offset) {
		p.add(f+".scale", "scale and offset must be numbers")
	}
	if len(r.Unit) > maxUnitLen {
		p.add(f+".unit", "at most %d bytes", maxUnitLen)
	}
}

// deviceProblems checks sensor_inputs.modbus.devices.
func deviceProblems(in ModbusConfig, p *problems) {
	seen := map[string]bool{}
	for i, d := range in.Devices {
		f := fmt.Sprintf("sensor_inputs.modbus.devices[%d]", i)
		if !idPattern.MatchString(d.ID) {
			p.add(f+".id", "must be 1-63 lower-case letters, digits, '.', '_' or '-'")
		} else if seen[d.ID] {
			p.add(f+".id", "%q is used twice", d.ID)
		}
		seen[d.ID] = true
		if !validAddress(d.Address) {
			p.add(f+".address", "%q is not host or host:port (e.g. 192.168.1.20:502)", d.Address)
		}
		if _, ok := in.Models[d.Model]; !ok {
			p.add(f+".model", "%q is not a model of sensor_inputs.modbus.models", d.Model)
		}
		if v := d.Poll.D(); v != 0 && (v < minInterval || v > maxInterval) {
			p.add(f+".poll", "must be between %v and %v", minInterval, maxInterval)
		}
		if v := d.Timeout.D(); v != 0 && (v < 10*time.Millisecond || v > time.Minute) {
			p.add(f+".timeout", "must be between 10ms and 1m")
		}
	}
}

// validAddress is host or host:port with a port of 1-65535.
func validAddress(a string) bool {
	m := hostPort.FindStringSubmatch(a)
	if m == nil {
		return false
	}
	if m[3] == "" {
		return true
	}
	port, err := strconv.Atoi(m[3][1:])
	return err == nil && port >= 1 && port <= 65535
}

func mqttInputProblems(m MQTTInputConfig, p *problems) {
	const f = "sensor_inputs.mqtt"
	if u, err := url.Parse(m.Broker); err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
		p.add(f+".broker", "must be a broker URL, e.g. tcp://127.0.0.1:1883")
	}
	if m.BaseTopic != "" && !topicPart(m.BaseTopic) {
		p.add(f+".base_topic", "must be a topic of 1-%d characters without wildcards (+ or #)", maxTopicLen)
	}
	if len(m.ClientID) > maxFieldLen {
		p.add(f+".client_id", "at most %d characters", maxFieldLen)
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// thresholds are a sensor's own, else its kind's (not with below: the
// kinds' defaults are upper limits).
func thresholds(c SensorConfig, k Kind) (warn, alarm *float64) {
	warn, alarm = c.Warn, c.Alarm
	if c.Below || k.Detector {
		return warn, alarm
	}
	if warn == nil {
		warn = k.Warn
	}
	if alarm == nil {
		alarm = k.Alarm
	}
	return warn, alarm
}

// Resolved is a sensor with every default applied: what the evaluator
// judges by and what the edge shows.
type Resolved struct {
	ID, Name, Kind, Unit, Location, Site string
	Source                               SourceRef
	// Detector: a boolean detector (Alarm is 1, no warning stage).
	Detector bool
	// Warn and Alarm are the thresholds; either may be nil (no such stage).
	Warn, Alarm *float64
	Below       bool
	Hysteresis  float64
	MinDuration time.Duration
	RateOfRise  *RateOfRise // Per set; nil: no such rule
	Interval    time.Duration
	StaleAfter  int
}

// StaleWindow is how long without a reading makes the sensor silent.
func (r Resolved) StaleWindow() time.Duration { return time.Duration(r.StaleAfter) * r.Interval }

// Resolve applies the defaults (kinds.go, the Modbus device's poll) to a
// sensor that passed Validate. Site stays as configured: the edge fills
// in its own site_id where it is empty.
func Resolve(c SensorConfig, in InputsConfig) Resolved {
	k, _ := LookupKind(c.Kind)
	r := Resolved{ID: c.ID, Name: c.Name, Kind: c.Kind, Unit: c.Unit, Location: c.Location, Site: c.Site,
		Source: c.Source, Detector: k.Detector, Below: c.Below, MinDuration: k.MinDuration,
		Interval: c.Interval.D(), StaleAfter: c.StaleAfter}
	if r.Unit == "" {
		r.Unit = k.Unit
	}
	r.Warn, r.Alarm = thresholds(c, k)
	if k.Detector {
		r.Warn, r.Alarm, r.Below = nil, ptr(1), false
	}
	if c.Hysteresis != nil {
		r.Hysteresis = *c.Hysteresis
	} else if !k.Detector {
		r.Hysteresis = defaultHysteresis(r.Warn, r.Alarm)
	}
	if c.MinDuration != nil {
		r.MinDuration = c.MinDuration.D()
	}
	if c.RateOfRise != nil && !k.Detector {
		rr := *c.RateOfRise
		if rr.Per == 0 {
			rr.Per = config.Duration(DefaultRatePer)
		}
		r.RateOfRise = &rr
	}
	if r.StaleAfter <= 0 {
		r.StaleAfter = DefaultStaleAfter
	}
	if r.Interval <= 0 {
		r.Interval = defaultInterval(c.Source, k, in)
	}
	return r
}

// ResolveAll resolves every sensor, in order.
func ResolveAll(list []SensorConfig, in InputsConfig) []Resolved {
	out := make([]Resolved, len(list))
	for i, c := range list {
		out[i] = Resolve(c, in)
	}
	return out
}

// defaultInterval is the Modbus device's poll, or the kind's MQTT interval.
func defaultInterval(s SourceRef, k Kind, in InputsConfig) time.Duration {
	if s.Modbus == nil {
		if k.MQTTInterval > 0 {
			return k.MQTTInterval
		}
		return DefaultMQTTInterval
	}
	for _, d := range in.Modbus.Devices {
		if d.ID == s.Modbus.Device && d.Poll > 0 {
			return d.Poll.D()
		}
	}
	return DefaultPoll
}
