package edge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// The setup page's gates step (edge/setup, GatesForm): the form is read
// from the config in force and saved as one revision through EditConfig,
// so it is validated exactly as at start-up and never half-applied. Webhook
// secrets and the MQTT password are kept in files (0600) in the data
// directory, never in edge.yaml; a new secret gets a new file name, so
// the revision differs and the edge restarts on it. A refused form leaves
// no new file behind.

// SetupGates implements setup.Backend: the gates as the box runs them.
func (s *setupBackend) SetupGates() (setup.GatesForm, error) {
	return gatesForm(s.conf.RunningConfig()), nil
}

func gatesForm(c Config) setup.GatesForm {
	f := setup.GatesForm{Gates: []setup.GateForm{}, Webhook: []setup.ControllerForm{}}
	for _, g := range c.Gates {
		gf := setup.GateForm{ID: g.ID, Name: g.Name, Cameras: append([]string{}, g.Cameras...), TimeZone: g.Arming.TimeZone,
			Arming: "never", Schedule: []setup.WindowForm{}}
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
			wf, err := setup.ParseWindow(s)
			if err != nil {
				continue // validated at start; cannot happen
			}
			gf.Schedule = append(gf.Schedule, wf)
		}
		f.Gates = append(f.Gates, gf)
	}
	for _, ct := range c.GateInputs.Webhook.Controllers {
		f.Webhook = append(f.Webhook, setup.ControllerForm{ID: ct.ID, Gates: append([]string{}, ct.Gates...),
			HasSecret: ct.Secret != "" || ct.SecretFile != "", SecretFile: ct.SecretFile})
	}
	if m := c.GateInputs.MQTT; m != nil {
		mf := &setup.MQTTForm{Broker: m.Broker, Username: m.Username, HasPassword: m.Password != "" || m.PasswordFile != "",
			BaseTopic: m.BaseTopic, Devices: []setup.MQTTDeviceForm{}}
		if mf.BaseTopic == "" {
			mf.BaseTopic = "zigbee2mqtt"
		}
		for _, d := range m.Devices {
			mf.Devices = append(mf.Devices, setup.MQTTDeviceForm{Name: d.Name, Gate: d.Gate})
		}
		f.MQTT = mf
	}
	if g := c.GateInputs.GPIO; g != nil {
		gf := &setup.GPIOForm{Chip: g.Chip, Lines: []setup.GPIOLineForm{}}
		if gf.Chip == "" {
			gf.Chip = "gpiochip0"
		}
		for _, l := range g.Lines {
			gf.Lines = append(gf.Lines, setup.GPIOLineForm{Offset: l.Offset, Gate: l.Gate, Input: l.Input, Role: l.Role, ActiveLow: l.ActiveLow, Bias: l.Bias})
		}
		f.GPIO = gf
	}
	return f
}

// secretFileName is a file name made of a controller ID (which may hold
// any character) and the time, unique per new secret.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func secretFileName(prefix, id, ext string) string {
	safe := strings.Trim(unsafeName.ReplaceAllString(id, "_"), ".")
	if len(safe) > 60 {
		safe = safe[:60]
	}
	var r [3]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s%s-%s-%s%s", prefix, safe, time.Now().UTC().Format("20060102T150405"), hex.EncodeToString(r[:]), ext)
}

// pageSecret matches the names secretFileName gives.
var pageSecret = regexp.MustCompile(`^(gate|mqtt)-.+-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}\.secret$`)

// removeUnusedSecrets deletes the secret files this page wrote that the
// revision in force no longer names (a rotated or removed controller, a
// replaced MQTT password): a retired secret should not stay on the box.
func removeUnusedSecrets(dataDir string, c Config, log *slog.Logger) {
	inUse := map[string]bool{}
	for _, ct := range c.GateInputs.Webhook.Controllers {
		inUse[filepath.Clean(ct.SecretFile)] = true
	}
	if c.GateInputs.MQTT != nil {
		inUse[filepath.Clean(c.GateInputs.MQTT.PasswordFile)] = true
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dataDir, e.Name())
		if !e.Type().IsRegular() || !pageSecret.MatchString(e.Name()) || inUse[p] {
			continue
		}
		if err := os.Remove(p); err != nil {
			log.Warn("retired secret file not removed", "file", p, "err", err)
		} else {
			log.Info("retired secret file removed", "file", p)
		}
	}
}

// SetupSaveGates implements setup.Backend: the form becomes one
// revision (applyGatesForm) with the secret files it needs, refused
// whole, with every problem named, if the edge could not start on it.
func (s *setupBackend) SetupSaveGates(f setup.GatesForm) (setup.GatesSaved, error) {
	run := s.conf.RunningConfig()
	dataDir := run.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs // edge.yaml names the secret files whatever the working directory
	}
	// Secrets first: the revision names their files.
	sec := &formSecrets{dir: dataDir, controllers: map[int]string{}}
	refuse := func(err error) (setup.GatesSaved, error) {
		sec.discard()
		return setup.GatesSaved{}, refusal(err)
	}
	problems, err := sec.write(f, run)
	if err != nil {
		return refuse(err)
	}
	windows, probs := f.Schedules()
	if problems = append(problems, probs...); len(problems) > 0 {
		return refuse(refusedBy(problems))
	}
	var saved Config // the revision as stored, once accepted
	res, err := s.conf.EditConfig(func(c *Config) error {
		applyGatesForm(c, f, windows, sec)
		// Every problem at once: the file's fields as start-up validates
		// them (again, with line numbers, when the revision is applied),
		// and what start-up needs of the box beyond the file: the secret
		// files readable and good, the GPIO chips present. A revision the
		// edge could not start on is refused now.
		var probs []setup.Problem
		for _, fe := range c.Validate() {
			probs = append(probs, setup.Problem{Field: fe.Field, Msg: fe.Msg})
		}
		probs = append(probs, s.gateInputsReady(*c)...)
		if len(probs) == 0 {
			saved = *c
			return nil
		}
		return refusedBy(probs)
	})
	if err != nil {
		return refuse(err)
	}
	removeUnusedSecrets(dataDir, saved, s.log)
	return setup.GatesSaved{Secrets: sec.shown, Revision: res.Revision, Applied: res.Applied, Changed: res.Changed, Message: res.Message}, nil
}

// formSecrets are the secret files a gates form needs: a new webhook
// secret for each new controller (or one asked to rotate), the MQTT
// password if one was typed. They are written before the revision that
// names them, and removed (discard) if it is refused.
type formSecrets struct {
	dir          string
	controllers  map[int]string // form controller index → its new secret file
	mqttPassword string         // the MQTT password's new file ("": unchanged)
	shown        []setup.NewSecret
	made         []string // files written: removed if the revision is refused
}

// write writes the secrets of form f, whose controllers run has before
// it. A problem with the form is returned as such; an error is the box's.
func (fs *formSecrets) write(f setup.GatesForm, run Config) ([]setup.Problem, error) {
	var problems []setup.Problem
	oldCtrl := map[string]WebhookControllerConfig{}
	for _, ct := range run.GateInputs.Webhook.Controllers {
		oldCtrl[ct.ID] = ct
	}
	for i, cf := range f.Webhook {
		old, known := oldCtrl[cf.ID]
		if known && !cf.NewSecret && (old.Secret != "" || old.SecretFile != "") {
			continue
		}
		if cf.ID == "" || len(cf.ID) > gates.MaxFieldLen {
			problems = append(problems, setup.Problem{Field: fmt.Sprintf("gate_inputs.webhook.controllers[%d].id", i),
				Msg: fmt.Sprintf("must be 1-%d characters", gates.MaxFieldLen)})
			continue
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		secret := hex.EncodeToString(b[:])
		path, err := fs.file(secretFileName("gate-", cf.ID, ".secret"), secret)
		if err != nil {
			return nil, fmt.Errorf("gate_inputs.webhook.controllers[%d]: keeping the secret: %w", i, err)
		}
		fs.controllers[i] = path
		fs.shown = append(fs.shown, setup.NewSecret{Controller: cf.ID, Secret: secret, File: path})
	}
	if f.MQTT != nil && f.MQTT.Password != "" {
		path, err := fs.file(secretFileName("mqtt-", "password", ".secret"), f.MQTT.Password)
		if err != nil {
			return nil, fmt.Errorf("gate_inputs.mqtt.password: keeping it: %w", err)
		}
		fs.mqttPassword = path
	}
	return problems, nil
}

// file writes one secret file (0600) in the data directory.
func (fs *formSecrets) file(name, content string) (string, error) {
	if err := os.MkdirAll(fs.dir, 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(fs.dir, name)
	if err := writeAtomic(path, []byte(content+"\n"), 0o600); err != nil {
		return "", err
	}
	fs.made = append(fs.made, path)
	return path, nil
}

// discard removes the files written for a refused revision.
func (fs *formSecrets) discard() {
	for _, p := range fs.made {
		os.Remove(p)
	}
}

// applyGatesForm puts the gates form into c, keeping what the page does
// not show (timings, devices, action mappings, per-line chips). windows
// are the form's schedules as written (GatesForm.Schedules); sec the
// secret files written for it.
func applyGatesForm(c *Config, f setup.GatesForm, windows map[[2]int]string, sec *formSecrets) {
	applyGateList(c, f.Gates, windows)
	applyWebhookForm(c, f.Webhook, sec.controllers)
	if f.MQTT == nil {
		c.GateInputs.MQTT = nil
	} else {
		c.GateInputs.MQTT = mqttFromForm(c.GateInputs.MQTT, *f.MQTT, sec.mqttPassword)
	}
	if f.GPIO == nil {
		c.GateInputs.GPIO = nil
	} else {
		c.GateInputs.GPIO = gpioFromForm(c.GateInputs.GPIO, *f.GPIO)
	}
}

// applyGateList sets c's gates from the form's, in the form's order.
func applyGateList(c *Config, forms []setup.GateForm, windows map[[2]int]string) {
	oldGate := map[string]GateConfig{}
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
		g.Arming = ArmingConfig{TimeZone: tz}
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
func applyWebhookForm(c *Config, forms []setup.ControllerForm, secrets map[int]string) {
	fileCtrl := map[string]WebhookControllerConfig{}
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
func mqttFromForm(m *MQTTInputConfig, f setup.MQTTForm, passwordFile string) *MQTTInputConfig {
	if m == nil {
		m = &MQTTInputConfig{}
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
		m.Devices = append(m.Devices, MQTTDeviceConfig{Name: name, Gate: d.Gate, Actions: actions[name]})
	}
	return m
}

// gpioFromForm is the GPIO input as the form sets it over gp (nil: none
// before).
func gpioFromForm(gp *GPIOInputConfig, f setup.GPIOForm) *GPIOInputConfig {
	if gp == nil {
		gp = &GPIOInputConfig{}
	}
	oldLine := map[int]GPIOLineConfig{}
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

// gateInputsReady checks what the node reads from the box when it starts
// its gate inputs (edge --check does the same): secret files and GPIO chips.
func (s *setupBackend) gateInputsReady(c Config) []setup.Problem {
	var probs []setup.Problem
	for i, ct := range c.GateInputs.Webhook.Controllers {
		if ct.SecretFile == "" {
			continue
		}
		if _, err := ct.secrets(); err != nil {
			probs = append(probs, setup.Problem{Field: fmt.Sprintf("gate_inputs.webhook.controllers[%d].secret_file", i), Msg: fmt.Sprintf("%s: %v", ct.SecretFile, err)})
		}
	}
	if m := c.GateInputs.MQTT; m != nil && m.PasswordFile != "" {
		if _, err := readSecretFile(m.PasswordFile); err != nil {
			probs = append(probs, setup.Problem{Field: "gate_inputs.mqtt.password_file", Msg: err.Error()})
		}
	}
	if g := c.GateInputs.GPIO; g != nil && !s.fakeGPIO {
		for i, l := range g.Lines {
			path := l.chip(g)
			if !strings.HasPrefix(path, "/") {
				path = "/dev/" + path
			}
			if _, err := os.Stat(path); err != nil {
				probs = append(probs, setup.Problem{Field: fmt.Sprintf("gate_inputs.gpio.lines[%d]", i), Msg: fmt.Sprintf("this box has no GPIO chip %s", l.chip(g))})
			}
		}
	}
	return probs
}

func refusedBy(probs []setup.Problem) *setup.RefusedError {
	r := &setup.RefusedError{Reason: probs[0].Field + ": " + probs[0].Msg, Problems: probs}
	if len(probs) > 1 {
		r.Reason += fmt.Sprintf(" (and %d more)", len(probs)-1)
	}
	return r
}

// refusal turns a refused revision into the page's RefusedError: the
// validation's problems field by field (without the revision's line
// numbers, which the installer never sees).
func refusal(err error) error {
	var ref *setup.RefusedError
	if errors.As(err, &ref) {
		return ref
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		var probs []setup.Problem
		for _, p := range ce.Problems {
			probs = append(probs, setup.Problem{Field: p.Field, Msg: p.Msg})
		}
		if len(probs) == 0 {
			return &setup.RefusedError{Reason: err.Error()}
		}
		return refusedBy(probs)
	}
	return err
}
