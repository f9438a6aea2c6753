package setup

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/sensors"
)

func (fakeBackend) SetupGateStates(context.Context) (any, error) {
	return map[string]any{"gates": []any{map[string]any{"gate": "north-gate", "door": "closed"}}}, nil
}

func (fakeBackend) SetupGates() (GatesForm, error) {
	return GatesForm{Gates: []GateForm{{ID: "north-gate", Arming: "always"}}, Webhook: []ControllerForm{}}, nil
}

func (fb fakeBackend) SetupSaveGates(f GatesForm) (GatesSaved, error) {
	fb.rec.changed("gates")
	for i, g := range f.Gates {
		if g.ID == "" {
			return GatesSaved{}, &RefusedError{Reason: "gates[0].id: must be 1-63 lower-case letters",
				Problems: []Problem{{Field: "gates[" + string(rune('0'+i)) + "].id", Msg: "must be 1-63 lower-case letters"}}}
		}
	}
	return GatesSaved{Revision: "r3", Applied: "restarting", Secrets: []NewSecret{{Controller: "c1", Secret: "s", File: "/data/gate-c1.secret"}}}, nil
}

// TestGatesStep: the form is read and saved through the backend; a
// refusal comes back as 422 with the fields named.
func TestGatesStep(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s)
	resp, err := c.c.Get(c.base + "/setup/api/gates/config")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("config: %v %v", resp, err)
	}
	resp.Body.Close()
	code, ans := c.post("/setup/api/gates/save", map[string]any{"gates": []map[string]any{{"id": "a", "arming": "sometimes"}}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(ans["error"].(string), "gates[0].arming") {
		t.Errorf("bad arming: %d %v", code, ans)
	}
	code, ans = c.post("/setup/api/gates/save", map[string]any{"gates": []map[string]any{{"id": "a"}, {"id": " "}}})
	probs, _ := ans["problems"].([]any)
	if code != http.StatusUnprocessableEntity || len(probs) != 1 || probs[0].(map[string]any)["field"] != "gates[1].id" {
		t.Errorf("refused: %d %v", code, ans)
	}
	code, ans = c.post("/setup/api/gates/save", map[string]any{"gates": []map[string]any{{"id": "a", "arming": "always"}}, "bogus": 1})
	if code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %v", code, ans)
	}
	code, ans = c.post("/setup/api/gates/save", map[string]any{"gates": []map[string]any{{"id": "a", "arming": "schedule",
		"schedule": []map[string]any{{"days": []string{"mon"}, "from": "22:00", "to": "06:00"}}}},
		"webhook": []map[string]any{{"id": "c1", "gates": []string{"a"}}}})
	if code != 200 || ans["revision"] != "r3" || ans["applied"] != "restarting" || len(ans["secrets"].([]any)) != 1 {
		t.Errorf("save: %d %v", code, ans)
	}
}

// TestSessionSurvivesRestart: the installer stays logged in while the
// edge restarts on a new revision (a new Server on the same data
// directory); the kept sessions are hashed, 0600, and gone once closed.
func TestSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s1, err := New(Config{DataDir: dir, Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := loggedIn(t, s1)
	st, err := os.Stat(filepath.Join(dir, SessionsFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sessions file: %v %v", st, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, SessionsFile))
	u, _ := http.NewRequest("GET", c.base+"/setup/", nil)
	for _, ck := range c.c.Jar.Cookies(u.URL) {
		if strings.Contains(string(b), ck.Value) {
			t.Error("the sessions file holds a usable cookie")
		}
	}
	s2, err := New(Config{DataDir: dir, Backend: fakeBackend{}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	// The same browser (its cookie) on the restarted server.
	req, _ := http.NewRequest("GET", srv2.URL+"/setup/api/status", nil)
	for _, ck := range c.c.Jar.Cookies(u.URL) {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := s2.Close("done"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SessionsFile)); !os.IsNotExist(err) {
		t.Errorf("sessions kept after the page closed: %v", err)
	}
}

// TestSetupI18nComplete: every string of the setup page exists in English
// and Chinese: the two dictionaries have the same keys, and every
// data-i18n attribute and literal t('…') call names one of them.
func TestSetupI18nComplete(t *testing.T) {
	src, err := webFS.ReadFile("web/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	zhAt := strings.Index(text, "'zh-CN': {")
	if zhAt < 0 {
		t.Fatal("no zh-CN dictionary")
	}
	key := regexp.MustCompile(`(?m)(?:^\s*|,\s*)(?:'([^']+)'|([A-Za-z_][\w]*)):\s*['"]`)
	keys := func(s string) []string {
		var out []string
		for _, m := range key.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1]+m[2])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	en, zh := keys(text[:zhAt]), keys(text[zhAt:])
	if len(en) < 50 {
		t.Fatalf("found only %d English keys", len(en))
	}
	for _, k := range en {
		if !slices.Contains(zh, k) {
			t.Errorf("%q has no Chinese string", k)
		}
	}
	for _, k := range zh {
		if !slices.Contains(en, k) {
			t.Errorf("%q has no English string", k)
		}
	}
	html, _ := webFS.ReadFile("web/index.html")
	js, _ := webFS.ReadFile("web/setup.js")
	perimJS, _ := webFS.ReadFile("web/perimeter.js")
	js = append(js, perimJS...)
	sensorsJS, _ := webFS.ReadFile("web/sensors.js")
	js = append(js, sensorsJS...)
	gbJS, _ := webFS.ReadFile("web/gb28181.js")
	js = append(js, gbJS...)
	used := regexp.MustCompile(`data-i18n="([^"]+)"`).FindAllStringSubmatch(string(html), -1)
	used = append(used, regexp.MustCompile(`\bt\('([^']+)'`).FindAllStringSubmatch(string(js), -1)...)
	used = append(used, regexp.MustCompile(`(?:labelled|button)\('([^']+)'`).FindAllStringSubmatch(string(js), -1)...)
	for _, m := range used {
		if strings.HasSuffix(m[1], ".") {
			continue // a prefix: t('role.' + r), checked below
		}
		if !slices.Contains(en, m[1]) {
			t.Errorf("%q is used by the page but not in the dictionaries", m[1])
		}
	}
	// Keys made at run time: a gate's arming, days, GPIO roles and biases, how a revision applied.
	for _, p := range []string{"gate.arming.always", "gate.arming.schedule", "gate.arming.never", "role.door", "role.water_leak", "role.presence",
		"bias.none", "bias.pull-up", "applied.live", "applied.unchanged", "applied.restarting", "applied.restart_needed", "day.mon", "day.sun",
		"line.dir.in", "line.dir.out", "line.dir.both"} {
		if !slices.Contains(en, p) {
			t.Errorf("%q missing", p)
		}
	}
	// The sensors step's: every kind, state and source, the register map's columns.
	runtime := []string{"sensor.source.modbus", "sensor.source.zigbee", "sensor.source.topic", "modbus.reg", "modbus.regAddr", "modbus.regTable", "modbus.regType"}
	for _, k := range sensors.Kinds() {
		runtime = append(runtime, "kind."+k)
	}
	for _, st := range []sensors.State{sensors.StateUnknown, sensors.StateNormal, sensors.StateSilent, sensors.StateWarning, sensors.StateAlarm} {
		runtime = append(runtime, "sensor.state."+string(st))
	}
	// The police platform step's: each kind of device and registration state.
	runtime = append(runtime, "gb.kind.camera", "gb.kind.gate", "gb.kind.sensor", "gb.state.online", "gb.state.registering", "gb.state.offline")
	for _, p := range runtime {
		if !slices.Contains(en, p) {
			t.Errorf("%q missing", p)
		}
	}
}

// TestSetGateAndParseWindow: what `vigil provision gate` does to the form.
func TestSetGateAndParseWindow(t *testing.T) {
	w, err := ParseWindow("mon-fri 18:00-24:00")
	if err != nil || !slices.Equal(w.Days, []string{"mon", "tue", "wed", "thu", "fri"}) || w.From != "18:00" || w.To != "00:00" {
		t.Errorf("window %+v %v", w, err)
	}
	if w, _ = ParseWindow("sat,sun 22:00-06:00"); !slices.Equal(w.Days, []string{"sat", "sun"}) {
		t.Errorf("weekend %+v", w)
	}
	if w, _ = ParseWindow("22:00-06:00"); len(w.Days) != 7 {
		t.Errorf("every day %+v", w)
	}
	if _, err := ParseWindow("someday 22:00"); err == nil {
		t.Error("a bad window parsed")
	}
	f := GatesForm{Gates: []GateForm{{ID: "north-gate", Arming: "always"}}, Webhook: []ControllerForm{{ID: "ctrl", Gates: []string{"north-gate"}, HasSecret: true}}}
	f.SetGate(GateForm{ID: "north-gate", Name: "North", Arming: "never"}, "ctrl", false)
	f.SetGate(GateForm{ID: "east", Arming: "always"}, "ctrl", false)
	f.SetGate(GateForm{ID: "west", Arming: "always"}, "west-ctrl", false)
	if len(f.Gates) != 3 || f.Gates[0].Name != "North" || f.Gates[0].Arming != "never" {
		t.Errorf("gates %+v", f.Gates)
	}
	if len(f.Webhook) != 2 || !slices.Equal(f.Webhook[0].Gates, []string{"north-gate", "east"}) || f.Webhook[0].NewSecret ||
		f.Webhook[1].ID != "west-ctrl" || !slices.Equal(f.Webhook[1].Gates, []string{"west"}) {
		t.Errorf("controllers %+v", f.Webhook)
	}
}
