package setup

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// Channel IDs of the tests: the platform's (200), the box's (118), two
// cameras (132) and two alarm inputs (134).
const (
	gbServer = "34020000002000000001"
	gbDevice = "34020000001180000001"
	gbCam1   = "34020000001320000001"
	gbCam2   = "34020000001320000002"
	gbAlarm1 = "34020000001340000001"
	gbAlarm2 = "34020000001340000002"
)

// gbFile is a config with two cameras, a gate and a sensor, and a
// gb28181 section offering the first camera, the gate and the sensor,
// with settings the page does not show (expires, local address, a
// channel's name at the platform).
func gbFile() conf.Config {
	return conf.Config{
		Cameras: []conf.CameraConfig{{ID: "north", Name: "North", URL: "rtsp://10.0.0.5/1"}, {ID: "south", URL: "rtsp://10.0.0.6/1"}},
		Gates:   []conf.GateConfig{{ID: "north-gate", Name: "North gate", Cameras: []string{"north"}}},
		Sensors: []sensors.SensorConfig{{ID: "gas-1", Kind: "gas", Warn: ptr(10.0), Alarm: ptr(25.0),
			Source: sensors.SourceRef{MQTT: &sensors.MQTTRef{Device: "kitchen", Field: "gas_density"}}}},
		SensorInputs: sensors.InputsConfig{MQTT: &sensors.MQTTInputConfig{Broker: "tcp://10.0.0.2:1883"}},
		GB28181: &conf.GB28181Config{ServerID: gbServer, ServerAddr: "10.1.2.3:5060", DeviceID: gbDevice, PasswordFile: "/data/gb.secret",
			Expires: config.Duration(30 * time.Minute), KeepaliveInterval: config.Duration(30 * time.Second), LocalAddr: ":5062",
			Channels: []conf.GBChannelConfig{{Camera: "north", ID: gbCam1, Name: "北门"}, {Gate: "north-gate", ID: gbAlarm1}, {Sensor: "gas-1", ID: gbAlarm2}}},
	}
}

func ptr[T any](v T) *T { return &v }

// gbProblems are the config's validation problems of the gb28181 section
// (the test's config is not a whole edge.yaml).
func gbProblems(c conf.Config) []Problem {
	var out []Problem
	for _, p := range ProblemsOf(c.Validate()) {
		if strings.HasPrefix(p.Field, "gb28181") {
			out = append(out, p)
		}
	}
	return out
}

func fields(probs []Problem) []string {
	var out []string
	for _, p := range probs {
		out = append(out, p.Field)
	}
	return out
}

// TestGB28181FormRoundTrip: a config read into the form and written back
// unchanged is the same config (what the page does not show kept); the
// form lists every camera, gate and sensor with its channel ID, and says
// only whether a password is set.
func TestGB28181FormRoundTrip(t *testing.T) {
	c := gbFile()
	if probs := gbProblems(c); len(probs) > 0 {
		t.Fatalf("the test's config: %v", probs)
	}
	f := GB28181FormOf(c)
	want := []GBChannelForm{{Kind: ChannelCamera, Device: "north", Name: "North", ID: gbCam1}, {Kind: ChannelCamera, Device: "south"},
		{Kind: ChannelGate, Device: "north-gate", Name: "North gate", ID: gbAlarm1}, {Kind: ChannelSensor, Device: "gas-1", ID: gbAlarm2}}
	if !f.Enabled || f.ServerID != gbServer || f.Transport != "udp" || f.KeepaliveInterval != "30s" || !f.HasPassword || f.Password != "" ||
		!reflect.DeepEqual(f.Channels, want) {
		t.Fatalf("form %+v", f)
	}
	b, _ := json.Marshal(f)
	if strings.Contains(string(b), "gb.secret") {
		t.Errorf("the form names the password file: %s", b)
	}

	// Through JSON as the page sends it back.
	var sent GB28181Form
	if err := json.Unmarshal(b, &sent); err != nil {
		t.Fatal(err)
	}
	back := gbFile()
	if probs := ApplyGB28181Form(&back, sent, ""); len(probs) > 0 {
		t.Fatal(probs)
	}
	if !reflect.DeepEqual(back.GB28181, c.GB28181) {
		t.Errorf("round trip changed the section:\n%+v\nwant\n%+v", back.GB28181, c.GB28181)
	}

	// The second camera offered, the sensor withdrawn, TCP, a new
	// password's file, the default keepalive: the channel's name and the
	// settings the page does not show stay.
	sent.Channels[1].ID = " " + gbCam2 + " "
	sent.Channels[3].ID = ""
	sent.Transport, sent.KeepaliveInterval = "tcp", ""
	next := gbFile()
	next.GB28181.PasswordFile, next.GB28181.Password = "", "in-clear"
	if probs := ApplyGB28181Form(&next, sent, "/data/gb28181-password-x.secret"); len(probs) > 0 {
		t.Fatal(probs)
	}
	g := next.GB28181
	wantCh := []conf.GBChannelConfig{{Camera: "north", ID: gbCam1, Name: "北门"}, {Camera: "south", ID: gbCam2}, {Gate: "north-gate", ID: gbAlarm1}}
	if !reflect.DeepEqual(g.Channels, wantCh) || g.Transport != "tcp" || g.KeepaliveInterval != 0 || g.Password != "" ||
		g.PasswordFile != "/data/gb28181-password-x.secret" || g.Expires.D() != 30*time.Minute || g.LocalAddr != ":5062" {
		t.Errorf("edited: %+v", g)
	}
	if probs := gbProblems(next); len(probs) > 0 {
		t.Errorf("the edited section: %v", probs)
	}

	// Off: the section goes; a box without one shows the form off, with
	// every device and no ID.
	sent.Enabled = false
	ApplyGB28181Form(&next, sent, "")
	if next.GB28181 != nil {
		t.Error("the section was not removed")
	}
	f = GB28181FormOf(next)
	if f.Enabled || f.HasPassword || f.Transport != "udp" || len(f.Channels) != 4 || slices.ContainsFunc(f.Channels, func(ch GBChannelForm) bool { return ch.ID != "" }) {
		t.Errorf("form without a section: %+v", f)
	}
}

// TestGB28181FormRefused: the form's own problems and the config's
// validation name the field the page marks; a channel's index is its
// place among the rows with an ID.
func TestGB28181FormRefused(t *testing.T) {
	f := GB28181FormOf(gbFile())
	f.Transport = "sctp"
	f.KeepaliveInterval = "a minute"
	f.Channels = append(f.Channels, GBChannelForm{Kind: "drone", Device: "x", ID: gbCam2})
	if got, want := fields(f.Problems()), []string{"gb28181.transport", "gb28181.keepalive_interval", "gb28181.channels[3]"}; !slices.Equal(got, want) {
		t.Errorf("form problems %v, want %v", f.Problems(), want)
	}

	refused := func(f GB28181Form, field, msg string) {
		t.Helper()
		c := gbFile()
		if probs := ApplyGB28181Form(&c, f, ""); len(probs) > 0 {
			t.Fatal(probs)
		}
		probs := gbProblems(c)
		i := slices.IndexFunc(probs, func(p Problem) bool { return p.Field == field })
		if i < 0 || !strings.Contains(probs[i].Msg, msg) {
			t.Errorf("validation %v does not name %s (%q)", probs, field, msg)
		}
	}
	// The alarm input's type code on a camera: digits 11-13.
	f = GB28181FormOf(gbFile())
	f.Channels[1].ID = "34020000001340000009"
	refused(f, "gb28181.channels[1].id", "type code 134")
	// One ID twice.
	f = GB28181FormOf(gbFile())
	f.Channels[1].ID = gbAlarm1
	f.Channels[1].Kind, f.Channels[1].Device = ChannelGate, "north-gate"
	refused(f, "gb28181.channels[2].id", "used twice")
	f = GB28181FormOf(gbFile())
	f.Channels[3].ID = gbAlarm1
	refused(f, "gb28181.channels[2].id", "used twice")
	// Nineteen digits.
	f = GB28181FormOf(gbFile())
	f.Channels[0].ID = gbCam1[:19]
	refused(f, "gb28181.channels[0].id", "19 characters")
	// A camera the box does not have (the page lists only the box's).
	f = GB28181FormOf(gbFile())
	f.Channels[1].Device, f.Channels[1].ID = "west", gbCam2
	refused(f, "gb28181.channels[1].camera", `unknown camera "west"`)
	// The platform's fields.
	f = GB28181FormOf(gbFile())
	f.ServerAddr, f.DeviceID = "10.1.2.3", gbServer
	refused(f, "gb28181.server_addr", "host:port")
	refused(f, "gb28181.device_id", "equals server_id")
	// No password at all.
	f = GB28181FormOf(gbFile())
	c := gbFile()
	c.GB28181.PasswordFile = ""
	ApplyGB28181Form(&c, f, "")
	if !slices.Contains(fields(gbProblems(c)), "gb28181.password") {
		t.Errorf("no password: %v", gbProblems(c))
	}
}

func (fakeBackend) SetupGB28181() (GB28181Form, error) { return GB28181FormOf(gbFile()), nil }

func (fakeBackend) SetupGBStatus() *wire.GBStatus {
	return &wire.GBStatus{State: "offline", DeviceID: gbDevice, Server: "10.1.2.3:5060", LastError: "REGISTER: 403 Forbidden",
		LastErrorAt: time.Now().UTC(), ClockOffsetMS: -1500, ClockSampledAt: time.Now().UTC()}
}

// SetupSaveGB28181 applies the form to the test's config and refuses it
// as the edge does when the section's validation finds a problem.
func (fb fakeBackend) SetupSaveGB28181(f GB28181Form) (GB28181Saved, error) {
	fb.rec.changed("gb28181")
	c := gbFile()
	file := ""
	if f.Password != "" {
		file = "/data/gb28181-password-new.secret"
	}
	probs := ApplyGB28181Form(&c, f, file)
	probs = append(probs, gbProblems(c)...)
	if len(probs) > 0 {
		return GB28181Saved{}, Refused(probs)
	}
	return GB28181Saved{Revision: "r5", Applied: "restarting", PasswordFile: file}, nil
}

// TestGB28181Step: the form and the registration are read through the
// backend, a save is audited first (never with the password), a refusal
// comes back as 422 with the fields named, and a form the page could not
// have sent is refused unaudited.
func TestGB28181Step(t *testing.T) {
	rec := &recorder{}
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{rec: rec}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s)
	get := func(p string) map[string]any {
		resp, err := c.c.Get(c.base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	if f := get("/setup/api/gb28181/config"); f["has_password"] != true || f["password"] != nil || len(f["channels"].([]any)) != 4 {
		t.Errorf("config: %v", f)
	}
	if st, _ := get("/setup/api/gb28181/state")["gb28181"].(map[string]any); st["state"] != "offline" || st["clock_offset_ms"] != -1500.0 {
		t.Errorf("state: %v", st)
	}
	form := map[string]any{"enabled": true, "server_id": gbServer, "server_domain": "", "server_addr": "10.1.2.3:5060", "transport": "udp",
		"device_id": gbDevice, "password": "platform-pass", "keepalive_interval": "", "channels": []map[string]any{
			{"kind": "camera", "device": "north", "id": gbAlarm1}, {"kind": "camera", "device": "south", "id": ""}}}
	code, ans := c.post("/setup/api/gb28181/save", form)
	probs, _ := ans["problems"].([]any)
	if code != http.StatusUnprocessableEntity || len(probs) == 0 || probs[0].(map[string]any)["field"] != "gb28181.channels[0].id" {
		t.Errorf("an alarm input's ID on a camera: %d %v", code, ans)
	}
	form["channels"].([]map[string]any)[0]["id"] = gbCam1
	if code, ans = c.post("/setup/api/gb28181/save", form); code != 200 || ans["revision"] != "r5" || ans["password_file"] == "" {
		t.Errorf("save: %d %v", code, ans)
	}
	form["keepalive_interval"] = "often"
	if code, ans = c.post("/setup/api/gb28181/save", form); code != http.StatusUnprocessableEntity || !strings.Contains(ans["error"].(string), "gb28181.keepalive_interval") {
		t.Errorf("bad keepalive: %d %v", code, ans)
	}
	form["keepalive_interval"] = ""
	form["secret"] = 1
	if code, _ = c.post("/setup/api/gb28181/save", form); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d", code)
	}
	audits, changes := rec.calls()
	if len(audits) != 2 || len(changes) != 2 || audits[0].Target != "edge/gb28181" || audits[0].Action != ActionConfigChange {
		t.Fatalf("audits %+v changes %v", audits, changes)
	}
	d, _ := json.Marshal(audits[1].Details)
	if strings.Contains(string(d), "platform-pass") || !strings.Contains(string(d), `"new_password":true`) || !strings.Contains(string(d), gbCam1) {
		t.Errorf("audit details %s", d)
	}
}

// TestGB28181StateInBrowser: in Chromium, the police platform step shows
// the registration as the backend reports it (not registered, the
// platform's refusal, its clock 1.5 s behind), the password only as set,
// and a row with its ID for every camera, gate and sensor.
func TestGB28181StateInBrowser(t *testing.T) {
	root, _ := filepath.Abs("../..")
	for _, need := range []string{chromium, filepath.Join(root, "node_modules", "playwright-core", "package.json")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s missing: make test installs Chromium and playwright-core", need)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: make test installs it")
	}
	s, err := New(Config{DataDir: t.TempDir(), Backend: browserBackend{fakeBackend{}}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	shots := os.Getenv("SETUP_SHOTS") // keep the screenshots there
	if shots == "" {
		shots = t.TempDir()
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "gb28181.browser.mjs"))
	cmd.Env = append(os.Environ(), "SETUP_URL="+srv.URL, "SETUP_CODE="+s.access.code, "SETUP_SHOTS="+shots, "GB_STATE_ONLY=1")
	out, err := cmd.CombinedOutput()
	t.Logf("node gb28181.browser.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("node: %v (screenshot on failure in %s)", err, shots)
	}
}
