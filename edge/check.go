package edge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-perimeter/vigil/edge/conf"
)

// Check validates what a loaded config needs from this box without
// starting anything: the data directory is writable and the local API
// address can be bound, and the files it names (central.token_file,
// gb28181.password_file, gate inputs' secret and password files) and
// GPIO chips are there. systemd
// runs it before every start so a broken box fails with a reason instead
// of a restart loop. Every error starts with the field it is about.
//
// A token_file that is missing in a directory that exists is a box not
// enrolled yet: that passes (the box must start to serve the setup page
// that enrols it), and Enrolment says so.
func Check(cfg conf.Config) error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fail("data_dir", "%s: %s", cfg.DataDir, conf.FileProblem(err))
	} else {
		probe := filepath.Join(cfg.DataDir, ".vigil-check")
		if err := os.WriteFile(probe, []byte("ok"), 0o600); err != nil {
			fail("data_dir", "%s is not writable: %s", cfg.DataDir, conf.FileProblem(err))
		}
		os.Remove(probe)
	}
	if c := cfg.Central; c.Token == "" && c.TokenFile != "" {
		// LoadConfig reads the file; an empty token means it was missing.
		dir := filepath.Dir(c.TokenFile)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			fail("central.token_file", "%s: no such file, nor directory %s (check the path; enrolment writes the file there)", c.TokenFile, dir)
		}
	}
	// Gate inputs: webhook secret files readable and good, GPIO chips present.
	for i, ct := range cfg.GateInputs.Webhook.Controllers {
		if ct.SecretFile == "" {
			continue
		}
		if _, err := ct.Secrets(); err != nil {
			fail(fmt.Sprintf("gate_inputs.webhook.controllers[%d].secret_file", i), "%s: %s", ct.SecretFile, conf.FileProblem(err))
		}
	}
	if m := cfg.GateInputs.MQTT; m != nil && m.PasswordFile != "" {
		if _, err := readSecretFile(m.PasswordFile); err != nil {
			fail("gate_inputs.mqtt.password_file", "%s: %s", m.PasswordFile, conf.FileProblem(err))
		}
	}
	if g := cfg.GB28181; g != nil && g.PasswordFile != "" {
		if _, err := g.ResolvePassword(); err != nil {
			fail("gb28181.password_file", "%v", err)
		}
	}
	if g := cfg.GateInputs.GPIO; g != nil {
		seen := map[string]bool{}
		for _, l := range g.Lines {
			chip := l.EffectiveChip(g)
			if seen[chip] {
				continue
			}
			seen[chip] = true
			path := chip
			if !strings.HasPrefix(path, "/") {
				path = "/dev/" + chip
			}
			if _, err := os.Stat(path); err != nil {
				fail("gate_inputs.gpio", "chip %s: %s: %s", chip, path, conf.FileProblem(err))
			}
		}
	}
	if l, err := net.Listen("tcp", cfg.Listen); err != nil {
		fail("listen", "%s: %v", cfg.Listen, err)
	} else {
		l.Close()
	}
	return errors.Join(errs...)
}

// Enrolment says, in one line naming the field, why a loaded config has
// no credential for central yet, or "" if it has one.
func Enrolment(cfg conf.Config) string {
	if cfg.Central.Token != "" {
		return ""
	}
	if cfg.Central.TokenFile == "" {
		return "central.token: no token: " + conf.NotEnrolledHint
	}
	return "central.token_file: " + cfg.Central.TokenFile + " does not exist: " + conf.NotEnrolledHint
}
