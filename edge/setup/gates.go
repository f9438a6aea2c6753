package setup

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-perimeter/vigil/gates"
)

// Step 4's configuration: the gates of the entrance (which cameras see
// each, when it is armed) and how their controllers, sensors and contacts
// report. The page edits the whole form and saves it as one config
// revision (Backend.SetupSaveGates); a refused one changes nothing.

// GatesForm is gates: and gate_inputs: of edge.yaml as the page edits them.
// Settings the page does not show (timings, devices, MQTT event topic,
// GPIO debounce, webhook limits) are kept as they are in the file.
type GatesForm struct {
	Gates   []GateForm       `json:"gates"`
	Webhook []ControllerForm `json:"webhook"`
	MQTT    *MQTTForm        `json:"mqtt"` // nil: no broker
	GPIO    *GPIOForm        `json:"gpio"` // nil: no GPIO contacts
}

// GateForm is one gate.
type GateForm struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Cameras []string `json:"cameras"`
	// Arming: "always", "never" or "schedule" (the windows of Schedule).
	Arming   string       `json:"arming"`
	Schedule []WindowForm `json:"schedule"`
	TimeZone string       `json:"time_zone"` // empty: Asia/Shanghai
}

// WindowForm is an arming period: the days it starts on ("mon" … "sun";
// all seven or none: every day) and local from/to times ("22:00", "06:00";
// a window that ends before it starts runs past midnight).
type WindowForm struct {
	Days []string `json:"days"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// ControllerForm is a webhook controller. Its secret is never shown again
// once made: the page only learns whether it has one.
type ControllerForm struct {
	ID    string   `json:"id"`
	Gates []string `json:"gates"`
	// NewSecret asks for a fresh secret (a new controller always gets one).
	NewSecret bool `json:"new_secret,omitempty"`
	// HasSecret, SecretFile: what the box keeps (answers only).
	HasSecret  bool   `json:"has_secret,omitempty"`
	SecretFile string `json:"secret_file,omitempty"`
}

// MQTTForm is the site's broker and the Zigbee2MQTT devices of each gate.
type MQTTForm struct {
	Broker   string `json:"broker"`
	Username string `json:"username"`
	// Password: a new one (kept 0600 in the data directory); empty keeps
	// the one the box has (HasPassword).
	Password    string           `json:"password,omitempty"`
	HasPassword bool             `json:"has_password,omitempty"`
	BaseTopic   string           `json:"base_topic"`
	Devices     []MQTTDeviceForm `json:"devices"`
}

// MQTTDeviceForm: a Zigbee2MQTT friendly_name and the gate it belongs to.
type MQTTDeviceForm struct {
	Name string `json:"name"`
	Gate string `json:"gate"`
}

// GPIOForm is the box's dry contacts.
type GPIOForm struct {
	Chip  string         `json:"chip"` // default gpiochip0
	Lines []GPIOLineForm `json:"lines"`
}

// GPIOLineForm: a line of the chip, the gate and input it is, its role.
type GPIOLineForm struct {
	Offset    int    `json:"offset"`
	Gate      string `json:"gate"`
	Input     string `json:"input"`
	Role      string `json:"role"`
	ActiveLow bool   `json:"active_low"`
	Bias      string `json:"bias,omitempty"`
}

// GatesSaved says what became of a saved form.
type GatesSaved struct {
	Revision string   `json:"revision"`
	Applied  string   `json:"applied"` // live, unchanged, restarting, restart_needed
	Changed  []string `json:"changed,omitempty"`
	Message  string   `json:"message"`
	// Secrets made for webhook controllers: shown to the installer this
	// once, kept only in their files (0600).
	Secrets []NewSecret `json:"secrets,omitempty"`
}

// NewSecret is a controller's freshly made webhook secret.
type NewSecret struct {
	Controller string `json:"controller"`
	Secret     string `json:"secret"`
	File       string `json:"file"`
}

// Problem is one thing wrong with a form, named by its edge.yaml field
// (e.g. gates[0].arming.schedule[1]).
type Problem struct {
	Field string `json:"field"`
	Msg   string `json:"msg"`
}

// RefusedError is a refused revision with its problems field by field.
type RefusedError struct {
	Reason   string
	Problems []Problem
}

func (e *RefusedError) Error() string { return e.Reason }

// Days are the day names of WindowForm, in the page's order.
var Days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// gatesConfig is GET /setup/api/gates/config: the form as the box runs it.
func (s *steps) gatesConfig(w http.ResponseWriter, r *http.Request) {
	f, err := s.backend.SetupGates()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// gateStates is GET /setup/api/gates/state: the gates as the box runs
// them now (the box's own /api/v1/gates needs an access token from
// central, which an installer on the setup page does not have).
func (s *steps) gateStates(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.SetupGateStates(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// saveGates is POST /setup/api/gates/save: the form becomes a config
// revision, validated whole; 422 with the problems field by field if not.
func (s *steps) saveGates(w http.ResponseWriter, r *http.Request) {
	var f GatesForm
	if !decodeForm(w, r, &f) {
		return
	}
	var problems []Problem
	for i := range f.Gates {
		f.Gates[i].ID = strings.TrimSpace(f.Gates[i].ID)
		switch f.Gates[i].Arming {
		case "always", "never", "schedule":
		case "":
			f.Gates[i].Arming = "never"
		default:
			problems = append(problems, Problem{Field: fmt.Sprintf("gates[%d].arming", i), Msg: "must be always, never or schedule"})
		}
	}
	for i := range f.Webhook {
		f.Webhook[i].ID = strings.TrimSpace(f.Webhook[i].ID)
	}
	if len(problems) > 0 {
		writeRefused(w, &RefusedError{Reason: problems[0].Field + ": " + problems[0].Msg, Problems: problems})
		return
	}
	if !s.audit(w, r, ActionConfigChange, "gates", gatesDetails(f)) {
		return
	}
	res, err := s.backend.SetupSaveGates(f)
	if err != nil {
		s.refuseSave(w, "gates from the setup page refused", err)
		return
	}
	s.log.Info("gates saved from the setup page", "gates", len(f.Gates), "revision", res.Revision, "applied", res.Applied,
		"new_secrets", len(res.Secrets))
	writeJSON(w, http.StatusOK, res)
}

// gatesDetails is a saved form in short for the audit log: each gate's
// arming and cameras, the controllers, whether new secrets are asked for
// (never a secret or password); only counts if that would not fit.
func gatesDetails(f GatesForm) map[string]any {
	type gate struct {
		ID      string   `json:"id"`
		Arming  string   `json:"arming"`
		Windows int      `json:"windows,omitempty"`
		Cameras []string `json:"cameras,omitempty"`
	}
	gs := []gate{}
	armings := map[string]bool{}
	for _, g := range f.Gates {
		cams := make([]string, 0, len(g.Cameras))
		for _, c := range g.Cameras {
			cams = append(cams, short(c))
		}
		gs = append(gs, gate{ID: short(g.ID), Arming: g.Arming, Windows: len(g.Schedule), Cameras: cams})
		armings[g.Arming] = true
	}
	arming := "mixed"
	switch len(armings) {
	case 0:
		arming = "none"
	case 1:
		for a := range armings {
			arming = a
		}
	}
	ctrls, newSecrets := []string{}, 0
	for _, c := range f.Webhook {
		ctrls = append(ctrls, short(c.ID))
		if c.NewSecret {
			newSecrets++
		}
	}
	d := map[string]any{"arming": arming, "gates": gs, "webhook": ctrls, "new_secrets": newSecrets, "mqtt": f.MQTT != nil}
	if f.MQTT != nil {
		d["mqtt_devices"] = len(f.MQTT.Devices)
		d["mqtt_new_password"] = f.MQTT.Password != ""
	}
	if f.GPIO != nil {
		d["gpio_lines"] = len(f.GPIO.Lines)
	}
	if b, _ := json.Marshal(d); len(b) > 1800 {
		n := map[string]int{}
		for _, g := range f.Gates {
			n[g.Arming]++
		}
		d = map[string]any{"arming": arming, "gates": len(f.Gates), "by_arming": n, "webhook": len(f.Webhook), "new_secrets": newSecrets,
			"mqtt": f.MQTT != nil, "truncated": true}
	}
	return d
}

func writeRefused(w http.ResponseWriter, ref *RefusedError) {
	probs := ref.Problems
	if probs == nil {
		probs = []Problem{}
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": ref.Reason, "problems": probs})
}

// FormatWindow writes a form's window as edge.yaml has it:
// "mon-fri 18:00-07:00", "sat,sun 00:00-24:00", or "22:00-06:00" for
// every day. It is ParseWindow's inverse.
func FormatWindow(w WindowForm) (string, error) {
	var days []string
	n := 0
	for i := 0; i < len(Days); {
		if !slices.Contains(w.Days, Days[i]) {
			i++
			continue
		}
		j := i // a run of days: three or more are written as a range
		for j+1 < len(Days) && slices.Contains(w.Days, Days[j+1]) {
			j++
		}
		if j-i >= 2 {
			days = append(days, Days[i]+"-"+Days[j])
		} else {
			days = append(days, Days[i:j+1]...)
		}
		n += j - i + 1
		i = j + 1
	}
	for _, d := range w.Days {
		if !slices.Contains(Days, d) {
			return "", fmt.Errorf("%q is not a day (mon … sun)", d)
		}
	}
	if n == 0 {
		return "", errors.New("tick the days this period starts on")
	}
	to := strings.TrimSpace(w.To)
	if to == "00:00" {
		to = "24:00" // midnight, as a time field gives it
	}
	span := strings.TrimSpace(w.From) + "-" + to
	if n == 7 {
		return span, nil
	}
	return strings.Join(days, ",") + " " + span, nil
}

// Schedules checks the arming schedules of the form's gates and writes
// each window as edge.yaml has it, by gate and window index.
func (f GatesForm) Schedules() (map[[2]int]string, []Problem) {
	windows := map[[2]int]string{}
	var probs []Problem
	for i, g := range f.Gates {
		if g.Arming != "schedule" {
			continue
		}
		if len(g.Schedule) == 0 {
			probs = append(probs, Problem{Field: fmt.Sprintf("gates[%d].arming.schedule", i), Msg: "add at least one period, or arm the gate always or never"})
		}
		for j, w := range g.Schedule {
			s, err := FormatWindow(w)
			if err != nil {
				probs = append(probs, Problem{Field: fmt.Sprintf("gates[%d].arming.schedule[%d]", i, j), Msg: err.Error()})
			}
			windows[[2]int{i, j}] = s
		}
	}
	return windows, probs
}

// ParseWindow reads an arming period as edge.yaml writes it ("22:00-06:00",
// "mon-fri 18:00-07:00") into the form's days and times.
func ParseWindow(s string) (WindowForm, error) {
	w, err := gates.ParseWindow(s)
	if err != nil {
		return WindowForm{}, err
	}
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60%24, m%60) }
	wf := WindowForm{Days: []string{}, From: clock(w.From), To: clock(w.To)}
	for i, d := range Days {
		if w.Days[(i+1)%7] { // Days starts on Monday, time.Weekday on Sunday
			wf.Days = append(wf.Days, d)
		}
	}
	return wf, nil
}

// SetGate adds the gate to the form, or replaces the one with its ID, and
// lets controller (if given) report it: an existing controller gains the
// gate, a new one is added (and gets a secret when saved).
func (f *GatesForm) SetGate(g GateForm, controller string, newSecret bool) {
	i := slices.IndexFunc(f.Gates, func(o GateForm) bool { return o.ID == g.ID })
	if i < 0 {
		f.Gates = append(f.Gates, g)
	} else {
		f.Gates[i] = g
	}
	if controller == "" {
		return
	}
	j := slices.IndexFunc(f.Webhook, func(c ControllerForm) bool { return c.ID == controller })
	if j < 0 {
		f.Webhook = append(f.Webhook, ControllerForm{ID: controller})
		j = len(f.Webhook) - 1
	}
	c := &f.Webhook[j]
	if !slices.Contains(c.Gates, g.ID) {
		c.Gates = append(c.Gates, g.ID)
	}
	c.NewSecret = c.NewSecret || newSecret
}
