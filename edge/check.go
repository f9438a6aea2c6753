package edge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Check validates what a loaded config needs from this box without
// starting anything: the data directory is writable and the local API
// address can be bound, and gate inputs' secret files and GPIO chips
// are there. systemd runs it before every start so a broken
// box fails with a reason instead of a restart loop.
func Check(cfg Config) error {
	var errs []error
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		errs = append(errs, fmt.Errorf("data_dir: %w", err))
	} else {
		probe := filepath.Join(cfg.DataDir, ".vigil-check")
		if err := os.WriteFile(probe, []byte("ok"), 0o600); err != nil {
			errs = append(errs, fmt.Errorf("data_dir %s is not writable: %w", cfg.DataDir, err))
		}
		os.Remove(probe)
	}
	// Gate inputs: webhook secret files readable and good, GPIO chips present.
	for i, ct := range cfg.GateInputs.Webhook.Controllers {
		if ct.SecretFile == "" {
			continue
		}
		if _, err := ct.secrets(); err != nil {
			errs = append(errs, fmt.Errorf("gate_inputs.webhook.controllers[%d].secret_file %s: %w", i, ct.SecretFile, err))
		}
	}
	if m := cfg.GateInputs.MQTT; m != nil && m.PasswordFile != "" {
		if _, err := readSecretFile(m.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("gate_inputs.mqtt.password_file: %w", err))
		}
	}
	if g := cfg.GateInputs.GPIO; g != nil {
		seen := map[string]bool{}
		for _, l := range g.Lines {
			chip := l.chip(g)
			if seen[chip] {
				continue
			}
			seen[chip] = true
			path := chip
			if !strings.HasPrefix(path, "/") {
				path = "/dev/" + chip
			}
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("gate_inputs.gpio: chip %s: %w", chip, err))
			}
		}
	}
	if l, err := net.Listen("tcp", cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %s: %w", cfg.Listen, err))
	} else {
		l.Close()
	}
	return errors.Join(errs...)
}
