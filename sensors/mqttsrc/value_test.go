package mqttsrc

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/vigil-perimeter/vigil/sensors"
)

// TestPaths reads generic devices' documents by path.
func TestPaths(t *testing.T) {
	doc, err := decode([]byte(`{"a":{"b":[{"c":1.5},{"c":2}]},"list":[[7]],"x y":3,"meter":{"L1":{"current":4.2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want float64
	}{
		{"a.b[0].c", 1.5},
		{"a.b[1].c", 2},
		{"list[0][0]", 7},
		{"x y", 3},
		{"meter.L1.current", 4.2},
	} {
		p, err := sensors.ParsePath(tc.path)
		if err != nil {
			t.Fatalf("%q: %v", tc.path, err)
		}
		if v, err := pathValue(doc, p); err != nil || v != tc.want {
			t.Errorf("%q: %v, %v, want %v", tc.path, v, err, tc.want)
		}
	}
	for _, path := range []string{"a.b[5].c", "a.b.c", "a.b[0].c.d", "nope"} {
		p, err := sensors.ParsePath(path)
		if err != nil {
			t.Fatal(err)
		}
		var bp *badPayload
		if _, err := pathValue(doc, p); !errors.As(err, &bp) || bp.reason != reasonMissing {
			t.Errorf("%q: %v, want reason missing", path, err)
		}
	}
}

// TestValues pins the payload rules: numbers and booleans, ON/OFF only
// in binary Zigbee2MQTT fields, a bare number for an empty path, and a
// reason for everything else.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		payload, field string // field "" with path
		path           string
		want           float64
		reason         string
	}{
		{`{"gas_density":12.5,"gas":false}`, "gas_density", "", 12.5, ""},
		{`{"gas_density":12.5,"gas":false}`, "gas", "", 0, ""},
		{`{"water_leak":true}`, "water_leak", "", 1, ""},
		{`{"state":"ON","power":735}`, "state", "", 1, ""},
		{`{"state_l2":"OFF"}`, "state_l2", "", 0, ""},
		{`{"power":"ON"}`, "power", "", 0, reasonNotNumber},
		{`{"temperature":"61.5"}`, "temperature", "", 0, reasonNotNumber},
		{`{"temperature":null}`, "temperature", "", 0, reasonNotNumber},
		{`{"humidity":40}`, "temperature", "", 0, reasonMissing},
		{`[1,2]`, "temperature", "", 0, reasonNotJSON},
		{`{"v":1e400}`, "v", "", 0, reasonNotNumber},
		{` 17.25 `, "", "", 17.25, ""},
		{`true`, "", "", 1, ""},
		{`"17"`, "", "", 0, reasonNotNumber},
		{`{"a":[{"b":-3}]}`, "", "a[0].b", -3, ""},
		{`{"a":[]}`, "", "a[0].b", 0, reasonMissing},
	} {
		var v float64
		doc, err := decode([]byte(tc.payload))
		if err == nil {
			if tc.field != "" {
				v, err = zigbeeValue(doc, tc.field)
			} else {
				p, perr := sensors.ParsePath(tc.path)
				if perr != nil {
					t.Fatal(perr)
				}
				v, err = pathValue(doc, p)
			}
		}
		var bp *badPayload
		switch {
		case tc.reason == "" && (err != nil || v != tc.want):
			t.Errorf("%s %s%s: %v, %v, want %v", tc.payload, tc.field, tc.path, v, err, tc.want)
		case tc.reason != "" && (!errors.As(err, &bp) || bp.reason != tc.reason):
			t.Errorf("%s %s%s: %v, %v, want reason %s", tc.payload, tc.field, tc.path, v, err, tc.reason)
		}
	}
	for _, p := range []string{"not json", `{"a":1} x`, `{"a":`} {
		if _, err := decode([]byte(p)); err == nil {
			t.Errorf("%q decoded", p)
		}
	}
}

// FuzzPayload: any payload read by any path or Zigbee2MQTT field gives
// a finite number or a reason, and never panics.
func FuzzPayload(f *testing.F) {
	for _, seed := range []struct{ path, payload string }{
		{"a.b[0].c", `{"a":{"b":[{"c":1}]}}`}, {"", ` 12.5 `}, {"gas_density", `{"gas_density":12.5,"gas":false}`},
		{"state", `{"state":"ON"}`}, {"x y.z", `{"x y":{"z":true}}`}, {"v", `{"v":1e400}`}, {"[0]", `[null]`},
	} {
		f.Add(seed.path, []byte(seed.payload))
	}
	f.Fuzz(func(t *testing.T, path string, payload []byte) {
		doc, err := decode(payload)
		if err != nil {
			return
		}
		check := func(v float64, err error) {
			var bp *badPayload
			switch {
			case err == nil && (math.IsNaN(v) || math.IsInf(v, 0)):
				t.Fatalf("%q in %q: %v", path, payload, v)
			case err != nil && !errors.As(err, &bp):
				t.Fatalf("%q in %q: %v has no reason", path, payload, err)
			case err != nil && !slices.Contains(reasons, bp.reason):
				t.Fatalf("unknown reason %q", bp.reason)
			}
		}
		check(zigbeeValue(doc, path))
		if p, err := sensors.ParsePath(path); err == nil {
			check(pathValue(doc, p))
		}
	})
}
