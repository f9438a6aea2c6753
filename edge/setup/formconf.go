package setup

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// The page's forms and edge.yaml (conf.Config), both ways: pure functions,
// no files and no running edge. The edge's backend reads the config in
// force into a form (GatesFormOf), writes the secret files a saved form
// needs (NewSecrets says which), and applies the form to the config
// (ApplyGatesForm, ApplyZones) as one revision through its config engine,
// which validates it whole. What the page does not show (timings,
// devices, action mappings, per-line chips, a zone's minimum size) is kept
// as the file has it.

// GatesFormOf is the gates form of c: the gates as the box runs them.
func GatesFormOf(c conf.Config) GatesForm {
	f := GatesForm{Gates: []GateForm{}, Webhook: []ControllerForm{}}
	for _, g := range c.Gates {
		f.Gates = append(f.Gates, gateFormOf(g))
	}
	for _, ct := range c.GateInputs.Webhook.Controllers {
		f.Webhook = append(f.Webhook, ControllerForm{ID: ct.ID, Gates: append([]string{}, ct.Gates...),
			HasSecret: ct.Secret != "" || ct.SecretFile != "", SecretFile: ct.SecretFile})
	}
	if m := c.GateInputs.MQTT; m != nil {
		mf := &MQTTForm{Broker: m.Broker, Username: m.Username, HasPassword: m.Password != "" || m.PasswordFile != "",
			BaseTopic: m.BaseTopic, Devices: []MQTTDeviceForm{}}
		if mf.BaseTopic == "" {
			mf.BaseTopic = "zigbee2mqtt"
		}
		for _, d := range m.Devices {
			mf.Devices = append(mf.Devices, MQTTDeviceForm{Name: d.Name, Gate: d.Gate})
		}
		f.MQTT = mf
	}
	if g := c.GateInputs.GPIO; g != nil {
		gf := &GPIOForm{Chip: g.Chip, Lines: []GPIOLineForm{}}
		if gf.Chip == "" {
			gf.Chip = "gpiochip0"
		}
		for _, l := range g.Lines {
			gf.Lines = append(gf.Lines, GPIOLineForm{Offset: l.Offset, Gate: l.Gate, Input: l.Input, Role: l.Role, ActiveLow: l.ActiveLow, Bias: l.Bias})
		}
		f.GPIO = gf
	}
	return f
}

// gateFormOf is one gate as the form shows it.
func gateFormOf(g conf.GateConfig) GateForm {
	gf := GateForm{ID: g.ID, Name: g.Name, Cameras: append([]string{}, g.Cameras...), TimeZone: g.Arming.TimeZone,
		Arming: "never", Schedule: []WindowForm{}}
	if gf.TimeZone == "" {
		gf.TimeZone = gates.DefaultTimeZone
	}
	switch {
	case g.Arming.Always:
		gf.Arming = "always"
	case len(g.Arming.Schedule) > 0:
		gf.Arming = "schedule"
	}
	for _, s := range g.Arming.Schedule {
		wf, err := ParseWindow(s)
		if err != nil {
			continue // validated at start; cannot happen
		}
		gf.Schedule = append(gf.Schedule, wf)
	}
	return gf
}

// NewSecrets are the indexes of the form's webhook controllers that get a
// new secret when it is saved over run (the config in force): a new
// controller, one without a secret, one asked to rotate. A controller
// whose ID could not name its secret file is a problem instead.
func (f GatesForm) NewSecrets(run conf.Config) ([]int, []Problem) {
	oldCtrl := map[string]conf.WebhookControllerConfig{}
	for _, ct := range run.GateInputs.Webhook.Controllers {
		oldCtrl[ct.ID] = ct
	}
	var need []int
	var problems []Problem
	for i, cf := range f.Webhook {
		old, known := oldCtrl[cf.ID]
		if known && !cf.NewSecret && (old.Secret != "" || old.SecretFile != "") {
			continue
		}
		if cf.ID == "" || len(cf.ID) > gates.MaxFieldLen {
			problems = append(problems, Problem{Field: fmt.Sprintf("gate_inputs.webhook.controllers[%d].id", i),
				Msg: fmt.Sprintf("must be 1-%d characters", gates.MaxFieldLen)})
			continue
		}
		need = append(need, i)
	}
	return need, problems
}

// SecretFiles are the secret files written for a saved gates form.
type SecretFiles struct {
	Controllers  map[int]string // form controller index → its new secret file
	MQTTPassword string         // the MQTT password's new file ("": unchanged)
}

// ApplyGatesForm puts the gates form into c, keeping what the page does
// not show (timings, devices, action mappings, per-line chips). windows
// are the form's schedules as written (GatesForm.Schedules); files the
// secret files written for it.
func ApplyGatesForm(c *conf.Config, f GatesForm, windows map[[2]int]string, files SecretFiles) {
	applyGateList(c, f.Gates, windows)
	applyWebhookForm(c, f.Webhook, files.Controllers)
	if f.MQTT == nil {
		c.GateInputs.MQTT = nil
	} else {
		c.GateInputs.MQTT = mqttFromForm(c.GateInputs.MQTT, *f.MQTT, files.MQTTPassword)
	}
	if f.GPIO == nil {
		c.GateInputs.GPIO = nil
	} else {
		c.GateInputs.GPIO = gpioFromForm(c.GateInputs.GPIO, *f.GPIO)
	}
}

// applyGateList sets c's gates from the form's, in the form's order.
func applyGateList(c *conf.Config, forms []GateForm, windows map[[2]int]string) {
	oldGate := map[string]conf.GateConfig{}
	for _, g := range c.Gates {
		oldGate[g.ID] = g
	}
	c.Gates = nil
	for i, gf := range forms {
		g, existed := oldGate[gf.ID] // keeps timings and devices the page does not show
		g.ID, g.Name, g.Cameras = gf.ID, strings.TrimSpace(gf.Name), slices.Clone(gf.Cameras)
		tz := strings.TrimSpace(gf.TimeZone)
		if tz == gates.DefaultTimeZone && existed && g.Arming.TimeZone == "" {
			tz = "" // the default, left out as the file had it
		}
		g.Arming = conf.ArmingConfig{TimeZone: tz}
		switch gf.Arming {
		case "always":
			g.Arming.Always = true
		case "schedule":
			for j := range gf.Schedule {
				g.Arming.Schedule = append(g.Arming.Schedule, windows[[2]int{i, j}])
			}
		}
		c.Gates = append(c.Gates, g)
	}
}

// applyWebhookForm sets c's webhook controllers from the form's; secrets
// are the new secret files by form index.
func applyWebhookForm(c *conf.Config, forms []ControllerForm, secrets map[int]string) {
	fileCtrl := map[string]conf.WebhookControllerConfig{}
	for _, ct := range c.GateInputs.Webhook.Controllers {
		fileCtrl[ct.ID] = ct
	}
	c.GateInputs.Webhook.Controllers = nil
	for i, cf := range forms {
		ct := fileCtrl[cf.ID]
		ct.ID, ct.Gates = cf.ID, slices.Clone(cf.Gates)
		if p, ok := secrets[i]; ok {
			ct.Secret, ct.SecretFile = "", p
		}
		c.GateInputs.Webhook.Controllers = append(c.GateInputs.Webhook.Controllers, ct)
	}
	c.GateInputs.Webhook.Enabled = len(forms) > 0
}

// mqttFromForm is the MQTT input as the form sets it over m (nil: none
// before); passwordFile is its new password's file ("": unchanged).
func mqttFromForm(m *conf.MQTTInputConfig, f MQTTForm, passwordFile string) *conf.MQTTInputConfig {
	if m == nil {
		m = &conf.MQTTInputConfig{}
	}
	m.Broker, m.Username = strings.TrimSpace(f.Broker), strings.TrimSpace(f.Username)
	m.BaseTopic = strings.TrimSpace(f.BaseTopic)
	if m.BaseTopic == "zigbee2mqtt" {
		m.BaseTopic = "" // the default
	}
	if passwordFile != "" {
		m.Password, m.PasswordFile = "", passwordFile
	}
	// The form does not edit action mappings: a device keeps its own by
	// name.
	actions := map[string]map[string]string{}
	for _, d := range m.Devices {
		actions[d.Name] = d.Actions
	}
	m.Devices = nil
	for _, d := range f.Devices {
		name := strings.TrimSpace(d.Name)
		m.Devices = append(m.Devices, conf.MQTTDeviceConfig{Name: name, Gate: d.Gate, Actions: actions[name]})
	}
	return m
}

// gpioFromForm is the GPIO input as the form sets it over gp (nil: none
// before).
func gpioFromForm(gp *conf.GPIOInputConfig, f GPIOForm) *conf.GPIOInputConfig {
	if gp == nil {
		gp = &conf.GPIOInputConfig{}
	}
	oldLine := map[int]conf.GPIOLineConfig{}
	for _, l := range gp.Lines {
		oldLine[l.Offset] = l
	}
	gp.Chip = strings.TrimSpace(f.Chip)
	if gp.Chip == "gpiochip0" {
		gp.Chip = "" // the default
	}
	gp.Lines = nil
	for _, lf := range f.Lines {
		l := oldLine[lf.Offset] // keeps a per-line chip
		l.Offset, l.Gate, l.Input, l.Role, l.ActiveLow, l.Bias = lf.Offset, lf.Gate, strings.TrimSpace(lf.Input), lf.Role, lf.ActiveLow, lf.Bias
		gp.Lines = append(gp.Lines, l)
	}
	return gp
}

// ApplyZones sets camera camID's zones and masks in c to the drawn ones
// (replacing those it had); a redrawn zone keeps its own minimum size.
func ApplyZones(c *conf.Config, camID string, zones []Zone, masks [][][2]float64) error {
	for i := range c.Cameras {
		if c.Cameras[i].ID != camID {
			continue
		}
		old := map[string]conf.ZoneConfig{}
		for _, z := range c.Cameras[i].Motion.Zones {
			old[z.Name] = z
		}
		var zs []conf.ZoneConfig
		for j, z := range zones {
			name := z.Name
			if name == "" {
				name = fmt.Sprintf("zone-%d", j+1)
			}
			zs = append(zs, conf.ZoneConfig{Name: name, Points: polygonOf(z.Points), MinArea: old[name].MinArea, Sensitivity: z.Sensitivity})
		}
		var ms []conf.Polygon
		for _, m := range masks {
			ms = append(ms, polygonOf(m))
		}
		c.Cameras[i].Motion.Zones, c.Cameras[i].Motion.Masks = zs, ms
		return nil
	}
	return fmt.Errorf("no camera %q on this box", camID)
}

func polygonOf(pts [][2]float64) conf.Polygon {
	p := make(conf.Polygon, 0, len(pts))
	for _, pt := range pts {
		p = append(p, []float64{pt[0], pt[1]})
	}
	return p
}

// PreviewZones are draft zones and masks as the motion detector takes
// them for a preview; a zone without a name, or with one used before it,
// is named by its place ("zone-2").
func PreviewZones(zones []Zone, masks [][][2]float64) ([]motion.Zone, []motion.Polygon) {
	var mz []motion.Zone
	for i, z := range zones {
		name := z.Name
		if name == "" || slices.ContainsFunc(mz, func(o motion.Zone) bool { return o.Name == name }) {
			name = fmt.Sprintf("zone-%d", i+1)
		}
		mz = append(mz, motion.Zone{Name: name, Points: polygon(z.Points), Sensitivity: z.Sensitivity})
	}
	var mm []motion.Polygon
	for _, m := range masks {
		mm = append(mm, polygon(m))
	}
	return mz, mm
}

// ProblemsOf are a validation's field errors as the page's problems.
func ProblemsOf(errs []config.FieldError) []Problem {
	var probs []Problem
	for _, fe := range errs {
		probs = append(probs, Problem{Field: fe.Field, Msg: fe.Msg})
	}
	return probs
}

// Refused is the refusal of a form with probs (at least one): the first
// problem names it, with how many more there are.
func Refused(probs []Problem) *RefusedError {
	r := &RefusedError{Reason: probs[0].Field + ": " + probs[0].Msg, Problems: probs}
	if len(probs) > 1 {
		r.Reason += fmt.Sprintf(" (and %d more)", len(probs)-1)
	}
	return r
}

// RefusalOf turns a refused revision into the page's RefusedError: the
// validation's problems field by field (without the revision's line
// numbers, which the installer never sees). Other errors pass unchanged.
func RefusalOf(err error) error {
	var ref *RefusedError
	if errors.As(err, &ref) {
		return ref
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		var probs []Problem
		for _, p := range ce.Problems {
			probs = append(probs, Problem{Field: p.Field, Msg: p.Msg})
		}
		if len(probs) == 0 {
			return &RefusedError{Reason: err.Error()}
		}
		return Refused(probs)
	}
	return err
}

// ApplyEnrolPlace sets c's entrance name, time zone and NTP servers from
// the enrolment form (NTP servers may be typed one per line or separated
// by commas or spaces), and returns the first problem validation finds
// with them: checked before the enrolment token is spent.
func ApplyEnrolPlace(c *conf.Config, req EnrolRequest) error {
	c.Entrance, c.TimeZone, c.NTP = strings.TrimSpace(req.Entrance), strings.TrimSpace(req.TimeZone), splitList(req.NTP)
	for _, fe := range c.Validate() {
		if fe.Field == "entrance" || fe.Field == "time_zone" || strings.HasPrefix(fe.Field, "ntp") {
			return fmt.Errorf("%s: %s", fe.Field, fe.Msg)
		}
	}
	return nil
}

// splitList is the items of in, each split at commas, spaces and newlines.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
			out = append(out, f)
		}
	}
	return out
}
