package edge

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
)

// The setup page's gates step (edge/setup, GatesForm): the form is read
// from the config in force and saved as one revision through EditConfig
// (the mapping between form and config is edge/setup's, formconf.go),
// so it is validated exactly as at start-up and never half-applied. Webhook
// secrets and the MQTT password are kept in files (0600) in the data
// directory, never in edge.yaml; a new secret gets a new file name, so
// the revision differs and the edge restarts on it. A refused form leaves
// no new file behind.

// SetupGates implements setup.Backend: the gates as the box runs them.
func (s *setupBackend) SetupGates() (setup.GatesForm, error) {
	return setup.GatesFormOf(s.conf.RunningConfig()), nil
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
func removeUnusedSecrets(dataDir string, c conf.Config, log *slog.Logger) {
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
// revision (setup.ApplyGatesForm) with the secret files it needs, refused
// whole, with every problem named, if the edge could not start on it.
func (s *setupBackend) SetupSaveGates(f setup.GatesForm) (setup.GatesSaved, error) {
	run := s.conf.RunningConfig()
	dataDir := run.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs // edge.yaml names the secret files whatever the working directory
	}
	// Secrets first: the revision names their files.
	sec := &formSecrets{dir: dataDir, files: setup.SecretFiles{Controllers: map[int]string{}}}
	refuse := func(err error) (setup.GatesSaved, error) {
		sec.discard()
		return setup.GatesSaved{}, setup.RefusalOf(err)
	}
	problems, err := sec.write(f, run)
	if err != nil {
		return refuse(err)
	}
	windows, probs := f.Schedules()
	if problems = append(problems, probs...); len(problems) > 0 {
		return refuse(setup.Refused(problems))
	}
	var saved conf.Config // the revision as stored, once accepted
	res, err := s.conf.EditConfig(func(c *conf.Config) error {
		setup.ApplyGatesForm(c, f, windows, sec.files)
		// Every problem at once: the file's fields as start-up validates
		// them (again, with line numbers, when the revision is applied),
		// and what start-up needs of the box beyond the file: the secret
		// files readable and good, the GPIO chips present. A revision the
		// edge could not start on is refused now.
		probs := append(setup.ProblemsOf(c.Validate()), s.gateInputsReady(*c)...)
		if len(probs) == 0 {
			saved = *c
			return nil
		}
		return setup.Refused(probs)
	})
	if err != nil {
		return refuse(err)
	}
	removeUnusedSecrets(dataDir, saved, s.log)
	return setup.GatesSaved{Secrets: sec.shown, Revision: res.Revision, Applied: res.Applied, Changed: res.Changed, Message: res.Message}, nil
}

// formSecrets are the secret files a gates form needs: a new webhook
// secret for each controller that needs one (GatesForm.NewSecrets), the
// MQTT password if one was typed. They are written before the revision
// that names them, and removed (discard) if it is refused.
type formSecrets struct {
	dir   string
	files setup.SecretFiles // what the revision names
	shown []setup.NewSecret
	made  []string // files written: removed if the revision is refused
}

// write writes the secrets of form f, whose controllers run has before
// it. A problem with the form is returned as such; an error is the box's.
func (fs *formSecrets) write(f setup.GatesForm, run conf.Config) ([]setup.Problem, error) {
	need, problems := f.NewSecrets(run)
	for _, i := range need {
		cf := f.Webhook[i]
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		secret := hex.EncodeToString(b[:])
		path, err := fs.file(secretFileName("gate-", cf.ID, ".secret"), secret)
		if err != nil {
			return nil, fmt.Errorf("gate_inputs.webhook.controllers[%d]: keeping the secret: %w", i, err)
		}
		fs.files.Controllers[i] = path
		fs.shown = append(fs.shown, setup.NewSecret{Controller: cf.ID, Secret: secret, File: path})
	}
	if f.MQTT != nil && f.MQTT.Password != "" {
		path, err := fs.file(secretFileName("mqtt-", "password", ".secret"), f.MQTT.Password)
		if err != nil {
			return nil, fmt.Errorf("gate_inputs.mqtt.password: keeping it: %w", err)
		}
		fs.files.MQTTPassword = path
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

// gateInputsReady checks what the node reads from the box when it starts
// its gate inputs (edge --check does the same): secret files and GPIO chips.
func (s *setupBackend) gateInputsReady(c conf.Config) []setup.Problem {
	var probs []setup.Problem
	for i, ct := range c.GateInputs.Webhook.Controllers {
		if ct.SecretFile == "" {
			continue
		}
		if _, err := ct.Secrets(); err != nil {
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
			path := l.EffectiveChip(g)
			if !strings.HasPrefix(path, "/") {
				path = "/dev/" + path
			}
			if _, err := os.Stat(path); err != nil {
				probs = append(probs, setup.Problem{Field: fmt.Sprintf("gate_inputs.gpio.lines[%d]", i), Msg: fmt.Sprintf("this box has no GPIO chip %s", l.EffectiveChip(g))})
			}
		}
	}
	return probs
}
