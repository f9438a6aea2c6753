package edge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Check validates what a loaded config needs from this box without
// starting anything: the data directory is writable and the local API
// address can be bound. systemd runs it before every start so a broken
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
	if l, err := net.Listen("tcp", cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %s: %w", cfg.Listen, err))
	} else {
		l.Close()
	}
	return errors.Join(errs...)
}
