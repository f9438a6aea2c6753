package setup

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// fileGates is a config with what the page shows and what it does not
// (timings, devices, action mappings, a per-line chip, the event topic).
func fileGates() conf.Config {
	return conf.Config{
		Cameras: []conf.CameraConfig{{ID: "cam-1"}},
		Gates: []conf.GateConfig{{ID: "north", Name: "North", Cameras: []string{"cam-1"},
			Arming:      conf.ArmingConfig{Schedule: []string{"mon-fri 18:00-07:00"}},
			GrantWindow: config.Duration(45e9), Devices: []conf.GateDeviceConfig{{ID: "door", SilentAfter: config.Duration(120e9)}}}},
		GateInputs: conf.GateInputsConfig{
			Webhook: conf.WebhookInputConfig{Enabled: true, MaxBody: 4096,
				Controllers: []conf.WebhookControllerConfig{{ID: "ctrl", SecretFile: "/data/gate-ctrl.secret", Gates: []string{"north"}}}},
			MQTT: &conf.MQTTInputConfig{Broker: "tcp://10.0.0.2:1883", PasswordFile: "/data/mqtt.secret", EventTopic: "site/events",
				Devices: []conf.MQTTDeviceConfig{{Name: "kp", Gate: "north", Actions: map[string]string{"single": "sos"}}}},
			GPIO: &conf.GPIOInputConfig{Lines: []conf.GPIOLineConfig{{Offset: 17, Chip: "gpiochip1", Gate: "north", Input: "door-contact", Role: "door"}}},
		},
	}
}

// TestGatesFormRoundTrip: a form read from the config and saved back
// unchanged gives the same config: defaults shown on the page are left
// out of the file again, and what the page does not show is kept.
func TestGatesFormRoundTrip(t *testing.T) {
	c := fileGates()
	f := GatesFormOf(c)
	if f.Gates[0].TimeZone != "Asia/Shanghai" || f.Gates[0].Arming != "schedule" || f.MQTT.BaseTopic != "zigbee2mqtt" || f.GPIO.Chip != "gpiochip0" ||
		!f.Webhook[0].HasSecret || !f.MQTT.HasPassword {
		t.Fatalf("form %+v", f)
	}
	windows, probs := f.Schedules()
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	got := fileGates()
	ApplyGatesForm(&got, f, windows, SecretFiles{})
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", got, c)
	}
}

// TestApplyGatesForm: the form's edits reach the config; new secret files
// replace the old, removed inputs are gone.
func TestApplyGatesForm(t *testing.T) {
	c := fileGates()
	f := GatesFormOf(c)
	f.Gates[0].Arming, f.Gates[0].Name = "always", "  North gate "
	f.SetGate(GateForm{ID: "east", Arming: "never", TimeZone: "Asia/Shanghai"}, "ctrl-2", false)
	f.MQTT.Devices = append(f.MQTT.Devices, MQTTDeviceForm{Name: " smoke ", Gate: "east"})
	f.GPIO = nil
	ApplyGatesForm(&c, f, nil, SecretFiles{Controllers: map[int]string{1: "/data/gate-ctrl-2.secret"}, MQTTPassword: "/data/mqtt-2.secret"})
	g := c.Gates
	if len(g) != 2 || !g[0].Arming.Always || g[0].Name != "North gate" || g[0].GrantWindow != config.Duration(45e9) || len(g[0].Devices) != 1 {
		t.Errorf("gate kept/changed wrong: %+v", g[0])
	}
	if g[1].ID != "east" || g[1].Arming.TimeZone != "Asia/Shanghai" { // a new gate keeps the zone it was given
		t.Errorf("new gate %+v", g[1])
	}
	ws := c.GateInputs.Webhook
	if !ws.Enabled || ws.MaxBody != 4096 || len(ws.Controllers) != 2 || ws.Controllers[0].SecretFile != "/data/gate-ctrl.secret" ||
		ws.Controllers[1].SecretFile != "/data/gate-ctrl-2.secret" || !slices.Equal(ws.Controllers[1].Gates, []string{"east"}) {
		t.Errorf("webhook %+v", ws)
	}
	m := c.GateInputs.MQTT
	if m.PasswordFile != "/data/mqtt-2.secret" || m.EventTopic != "site/events" || len(m.Devices) != 2 || m.Devices[0].Actions["single"] != "sos" ||
		m.Devices[1].Name != "smoke" || m.Devices[1].Actions != nil {
		t.Errorf("mqtt %+v", m)
	}
	if c.GateInputs.GPIO != nil {
		t.Error("GPIO kept after the form removed it")
	}
	ApplyGatesForm(&c, GatesForm{}, nil, SecretFiles{})
	if c.GateInputs.Webhook.Enabled || c.Gates != nil {
		t.Errorf("empty form: %+v", c)
	}
}

func TestNewSecrets(t *testing.T) {
	run := fileGates()
	f := GatesForm{Webhook: []ControllerForm{{ID: "ctrl"}, {ID: "new"}, {ID: strings.Repeat("x", 200)}, {ID: "ctrl", NewSecret: true}}}
	need, probs := f.NewSecrets(run)
	if !slices.Equal(need, []int{1, 3}) || len(probs) != 1 || probs[0].Field != "gate_inputs.webhook.controllers[2].id" {
		t.Fatalf("need %v, problems %+v", need, probs)
	}
}

func TestApplyZones(t *testing.T) {
	c := conf.Config{Cameras: []conf.CameraConfig{{ID: "cam-1", Motion: conf.MotionConfig{
		Zones: []conf.ZoneConfig{{Name: "lane", MinArea: 0.002, Points: conf.Polygon{{0, 0}, {1, 0}, {1, 1}}}}}}}}
	tri := [][2]float64{{0, 0}, {0.5, 0}, {0.5, 0.5}}
	if err := ApplyZones(&c, "cam-1", []Zone{{Name: "lane", Points: tri, Sensitivity: 0.7}, {Points: tri}}, [][][2]float64{tri}); err != nil {
		t.Fatal(err)
	}
	m := c.Cameras[0].Motion
	if len(m.Zones) != 2 || m.Zones[0].MinArea != 0.002 || m.Zones[0].Sensitivity != 0.7 || m.Zones[1].Name != "zone-2" ||
		!reflect.DeepEqual(m.Zones[1].Points, conf.Polygon{{0, 0}, {0.5, 0}, {0.5, 0.5}}) || len(m.Masks) != 1 {
		t.Errorf("motion %+v", m)
	}
	if err := ApplyZones(&c, "cam-9", nil, nil); err == nil || err.Error() != `no camera "cam-9" on this box` {
		t.Errorf("unknown camera: %v", err)
	}
	zs, ms := PreviewZones([]Zone{{Name: "a", Points: tri}, {Name: "a", Points: tri}, {Points: tri}}, [][][2]float64{tri})
	if len(zs) != 3 || zs[0].Name != "a" || zs[1].Name != "zone-2" || zs[2].Name != "zone-3" || len(ms) != 1 || ms[0][2].X != 0.5 {
		t.Errorf("preview %+v %+v", zs, ms)
	}
}

func TestRefusalOf(t *testing.T) {
	ce := &config.Error{File: "edge.yaml", Problems: []config.Problem{
		{Line: 3, FieldError: config.FieldError{Field: "gates[0].id", Msg: "bad"}},
		{Line: 4, FieldError: config.FieldError{Field: "gates[1].id", Msg: "worse"}}}}
	var ref *RefusedError
	if err := RefusalOf(ce); !errors.As(err, &ref) || ref.Reason != "gates[0].id: bad (and 1 more)" || len(ref.Problems) != 2 {
		t.Errorf("config error: %v", err)
	}
	if err := RefusalOf(&config.Error{File: "edge.yaml"}); !errors.As(err, &ref) || ref.Problems != nil {
		t.Errorf("no problems: %v", err)
	}
	plain := errors.New("disk full")
	if err := RefusalOf(plain); err != plain {
		t.Errorf("other error: %v", err)
	}
}

func TestApplyEnrolPlace(t *testing.T) {
	var c conf.Config // only the place's own fields are checked
	req := EnrolRequest{Entrance: " North gate ", TimeZone: "Asia/Urumqi", NTP: []string{"ntp1.example, ntp2.example\n10.0.0.1:123"}}
	if err := ApplyEnrolPlace(&c, req); err != nil || c.Entrance != "North gate" || c.TimeZone != "Asia/Urumqi" ||
		!slices.Equal(c.NTP, []string{"ntp1.example", "ntp2.example", "10.0.0.1:123"}) {
		t.Fatalf("%v %+v", err, c)
	}
	req.TimeZone = "Mars/Olympus"
	if err := ApplyEnrolPlace(&c, req); err == nil || !strings.HasPrefix(err.Error(), `time_zone: "Mars/Olympus" is not a known time zone`) {
		t.Errorf("bad zone: %v", err)
	}
}
