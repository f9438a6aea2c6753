package mqttsrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vigil-perimeter/vigil/sensors"
)

// Reasons a payload yields no reading: the values of
// vigil_sensor_mqtt_bad_payloads_total's reason label.
const (
	reasonEmpty     = "empty"      // an empty payload (Zigbee2MQTT clears a removed device's retained state so)
	reasonTooLarge  = "too_large"  // over maxPayload
	reasonNotJSON   = "not_json"   // not a JSON document (or, for a bare value, not a number)
	reasonMissing   = "missing"    // the field or path is not in the document
	reasonNotNumber = "not_number" // a string, object, array or null where a number belongs
)

var reasons = []string{reasonEmpty, reasonTooLarge, reasonNotJSON, reasonMissing, reasonNotNumber}

// maxPayload bounds a message we parse; a sensor's state is a few hundred bytes.
const maxPayload = 64 << 10

// badPayload is why a message gave no reading for a sensor.
type badPayload struct {
	reason string
	detail string
}

func (b *badPayload) Error() string { return b.reason + ": " + b.detail }

func bad(reason, format string, args ...any) *badPayload {
	return &badPayload{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// decode parses a JSON document, numbers kept as json.Number so that an
// out-of-range one is seen as such.
func decode(payload []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, bad(reasonNotJSON, "%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad(reasonNotJSON, "data after the JSON document")
	}
	return doc, nil
}

// zigbeeBoolFields are Zigbee2MQTT exposes whose value may come as the
// strings "ON" and "OFF" (a binary expose's value_on/value_off) rather
// than JSON booleans. A string in any other field is no reading: "ON" in
// a numeric field would be a configuration mistake worth seeing.
var zigbeeBoolFields = map[string]bool{
	"state": true, "alarm": true, "smoke": true, "gas": true, "water_leak": true,
	"carbon_monoxide": true, "tamper": true, "battery_low": true, "contact": true,
	"occupancy": true, "vibration": true, "presence": true,
}

// zigbeeValue reads a Zigbee2MQTT expose from a device's state document:
// numbers, booleans (1/0), and "ON"/"OFF" in binary fields ("state",
// "state_l1", …).
func zigbeeValue(doc any, field string) (float64, error) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return 0, bad(reasonNotJSON, "a Zigbee2MQTT state is a JSON object, not %s", kindOf(doc))
	}
	v, ok := obj[field]
	if !ok {
		return 0, bad(reasonMissing, "no %q in the device's state", field)
	}
	if s, isString := v.(string); isString && (zigbeeBoolFields[field] || strings.HasPrefix(field, "state_")) {
		switch s {
		case "ON":
			return 1, nil
		case "OFF":
			return 0, nil
		}
	}
	return number(v, field)
}

// pathValue reads the value at path (sensors.ParsePath's, the one the
// configuration was validated with); with an empty path the document
// itself is the value (a bare number payload).
func pathValue(doc any, path sensors.Path) (float64, error) {
	v, err := path.Lookup(doc)
	if err != nil {
		return 0, bad(reasonMissing, "%v: %q", err, path.String())
	}
	return number(v, path.String())
}

// number turns a decoded JSON value into a reading: numbers as they
// are, booleans 1 and 0, anything else is no reading.
func number(v any, where string) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, bad(reasonNotNumber, "%q at %q is out of range", truncate(string(x)), where)
		}
		return f, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		return 0, bad(reasonNotNumber, "%q at %q is a string, not a number", truncate(x), where)
	}
	return 0, bad(reasonNotNumber, "%s at %q, not a number", kindOf(v), where)
}

// truncate shortens outside text for a log line.
func truncate(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}

// kindOf names a decoded JSON value's type for messages.
func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}
