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

// windowString writes a form's window as edge.yaml has it:
// "mon-fri 18:00-07:00", "sat,sun 00:00-24:00", or "22:00-06:00" for
// every day.
func windowString(w setup.WindowForm) (string, error) {
	var days []string
	n := 0
	for i := 0; i < len(setup.Days); {
		if !slices.Contains(w.Days, setup.Days[i]) {
			i++
			continue
		}
		j := i // a run of days: three or more are written as a range
		for j+1 < len(setup.Days) && slices.Contains(w.Days, setup.Days[j+1]) {
			j++
		}
		if j-i >= 2 {
			days = append(days, setup.Days[i]+"-"+setup.Days[j])
		} else {
			days = append(days, setup.Days[i:j+1]...)
		}
		n += j - i + 1
		i = j + 1
	}
	for _, d := range w.Days {
		if !slices.Contains(setup.Days, d) {
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

// SetupSaveGates implements setup.Backend.
func (s *setupBackend) SetupSaveGates(f setup.GatesForm) (setup.GatesSaved, error) {
	dataDir := s.conf.RunningConfig().DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs // edge.yaml names the secret files whatever the working directory
	}
	var made []string // files written for this revision: removed if it is refused
	var out setup.GatesSaved
	refuse := func(err error) (setup.GatesSaved, error) {
		for _, p := range made {
			os.Remove(p)
		}
		return setup.GatesSaved{}, refusal(err)
	}
	write := func(name, content string) (string, error) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return "", err
		}
		path := filepath.Join(dataDir, name)
		if err := writeAtomic(path, []byte(content+"\n"), 0o600); err != nil {
			return "", err
		}
		made = append(made, path)
		return path, nil
	}
	var problems []setup.Problem
	add := func(field, format string, args ...any) {
		problems = append(problems, setup.Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	run := s.conf.RunningConfig()
	oldCtrl := map[string]WebhookControllerConfig{}
	for _, ct := range run.GateInputs.Webhook.Controllers {
		oldCtrl[ct.ID] = ct
	}
	// Secrets first: the revision names their files.
	secretFiles := map[int]string{}
	for i, cf := range f.Webhook {
		old, known := oldCtrl[cf.ID]
		if known && !cf.NewSecret && (old.Secret != "" || old.SecretFile != "") {
			continue
		}
		if cf.ID == "" || len(cf.ID) > gates.MaxFieldLen {
			add(fmt.Sprintf("gate_inputs.webhook.controllers[%d].id", i), "must be 1-%d characters", gates.MaxFieldLen)
			continue
		}
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return refuse(err)
		}
		secret := hex.EncodeToString(b[:])
		path, err := write(secretFileName("gate-", cf.ID, ".secret"), secret)
		if err != nil {
			return refuse(fmt.Errorf("gate_inputs.webhook.controllers[%d]: keeping the secret: %w", i, err))
		}
		secretFiles[i] = path
		out.Secrets = append(out.Secrets, setup.NewSecret{Controller: cf.ID, Secret: secret, File: path})
	}
	mqttPasswordFile := ""
	if f.MQTT != nil && f.MQTT.Password != "" {
		path, err := write(secretFileName("mqtt-", "password", ".secret"), f.MQTT.Password)
		if err != nil {
			return refuse(fmt.Errorf("gate_inputs.mqtt.password: keeping it: %w", err))
		}
		mqttPasswordFile = path
	}
	windows := map[[2]int]string{}
	for i, g := range f.Gates {
		if g.Arming != "schedule" {
			continue
		}
		if len(g.Schedule) == 0 {
			add(fmt.Sprintf("gates[%d].arming.schedule", i), "add at least one period, or arm the gate always or never")
		}
		for j, w := range g.Schedule {
			s, err := windowString(w)
			if err != nil {
				add(fmt.Sprintf("gates[%d].arming.schedule[%d]", i, j), "%v", err)
			}
			windows[[2]int{i, j}] = s
		}
	}
	if len(problems) > 0 {
		return refuse(refusedBy(problems))
	}

	var saved Config // the revision as stored, once accepted
	res, err := s.conf.EditConfig(func(c *Config) error {
		oldGate := map[string]GateConfig{}
		for _, g := range c.Gates {
			oldGate[g.ID] = g
		}
		c.Gates = nil
		for i, gf := range f.Gates {
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
		fileCtrl := map[string]WebhookControllerConfig{}
		for _, ct := range c.GateInputs.Webhook.Controllers {
			fileCtrl[ct.ID] = ct
		}
		c.GateInputs.Webhook.Controllers = nil
		for i, cf := range f.Webhook {
			ct := fileCtrl[cf.ID]
			ct.ID, ct.Gates = cf.ID, slices.Clone(cf.Gates)
			if p, ok := secretFiles[i]; ok {
				ct.Secret, ct.SecretFile = "", p
			}
			c.GateInputs.Webhook.Controllers = append(c.GateInputs.Webhook.Controllers, ct)
		}
		c.GateInputs.Webhook.Enabled = len(f.Webhook) > 0
		if f.MQTT == nil {
			c.GateInputs.MQTT = nil
		} else {
			m := c.GateInputs.MQTT
			if m == nil {
				m = &MQTTInputConfig{}
			}
			m.Broker, m.Username = strings.TrimSpace(f.MQTT.Broker), strings.TrimSpace(f.MQTT.Username)
			m.BaseTopic = strings.TrimSpace(f.MQTT.BaseTopic)
			if m.BaseTopic == "zigbee2mqtt" {
				m.BaseTopic = "" // the default
			}
			if mqttPasswordFile != "" {
				m.Password, m.PasswordFile = "", mqttPasswordFile
			}
			// The form does not edit action mappings: a device keeps its
			// own by name.
			actions := map[string]map[string]string{}
			for _, d := range m.Devices {
				actions[d.Name] = d.Actions
			}
			m.Devices = nil
			for _, d := range f.MQTT.Devices {
				name := strings.TrimSpace(d.Name)
				m.Devices = append(m.Devices, MQTTDeviceConfig{Name: name, Gate: d.Gate, Actions: actions[name]})
			}
			c.GateInputs.MQTT = m
		}
		if f.GPIO == nil {
			c.GateInputs.GPIO = nil
		} else {
			gp := c.GateInputs.GPIO
			if gp == nil {
				gp = &GPIOInputConfig{}
			}
			oldLine := map[int]GPIOLineConfig{}
			for _, l := range gp.Lines {
				oldLine[l.Offset] = l
			}
			gp.Chip = strings.TrimSpace(f.GPIO.Chip)
			if gp.Chip == "gpiochip0" {
				gp.Chip = "" // the default
			}
			gp.Lines = nil
			for _, lf := range f.GPIO.Lines {
				l := oldLine[lf.Offset] // keeps a per-line chip
				l.Offset, l.Gate, l.Input, l.Role, l.ActiveLow, l.Bias = lf.Offset, lf.Gate, strings.TrimSpace(lf.Input), lf.Role, lf.ActiveLow, lf.Bias
				gp.Lines = append(gp.Lines, l)
			}
			c.GateInputs.GPIO = gp
		}
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
	out.Revision, out.Applied, out.Changed, out.Message = res.Revision, res.Applied, res.Changed, res.Message
	return out, nil
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
