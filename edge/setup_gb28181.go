package edge

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/wire"
)

// The setup page's police platform step (edge/setup, GB28181Form): the
// gb28181: section is read from the config in force and saved as one
// revision through EditConfig (the mapping between form and config is
// edge/setup's, gb28181.go), validated exactly as at start-up (every
// channel ID's length and type code, duplicates, the platform's fields)
// and never half-applied. The registration password is kept in a file
// (0600) in the data directory that the revision names (password_file),
// never in edge.yaml: a new password gets a new file, and a password the
// file still held in clear moves into one on the first save. A refused
// form leaves no new file behind; a retired password file is removed.

// SetupGB28181 implements setup.Backend: the platform section as the box
// runs it.
func (s *setupBackend) SetupGB28181() (setup.GB28181Form, error) {
	return setup.GB28181FormOf(s.conf.RunningConfig()), nil
}

// SetupGBStatus implements setup.Backend: the registration with the
// platform now, as the heartbeat carries it (gbSide.status); nil: the
// box runs no platform connection.
func (s *setupBackend) SetupGBStatus() *wire.GBStatus {
	if s.gbStatus == nil {
		return nil
	}
	return s.gbStatus()
}

// pageGBSecret matches the password files this step writes
// (secretFileName("gb28181-", "password", ".secret")).
var pageGBSecret = regexp.MustCompile(`^gb28181-.+-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}\.secret$`)

// SetupSaveGB28181 implements setup.Backend: the form becomes one
// revision (setup.ApplyGB28181Form) with the password file it needs,
// refused whole, with every problem named, if the edge could not start on
// it.
func (s *setupBackend) SetupSaveGB28181(f setup.GB28181Form) (setup.GB28181Saved, error) {
	if probs := f.Problems(); len(probs) > 0 {
		return setup.GB28181Saved{}, setup.Refused(probs)
	}
	run := s.conf.RunningConfig()
	dataDir := run.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs // edge.yaml names the password file whatever the working directory
	}
	sec := &formSecrets{dir: dataDir}
	refuse := func(err error) (setup.GB28181Saved, error) {
		sec.discard()
		return setup.GB28181Saved{}, setup.RefusalOf(err)
	}
	// The password first: the revision names its file. One the file held
	// in clear moves into a file too.
	password := f.Password
	if password == "" && f.Enabled && run.GB28181 != nil && run.GB28181.PasswordFile == "" {
		password = run.GB28181.Password
	}
	passwordFile := ""
	if f.Enabled && password != "" {
		p, err := sec.file(secretFileName("gb28181-", "password", ".secret"), password)
		if err != nil {
			return refuse(setup.Refused([]setup.Problem{{Field: "gb28181.password_file", Msg: "keeping the password: " + err.Error()}}))
		}
		passwordFile = p
	}
	var saved conf.Config // the revision as stored, once accepted
	res, err := s.conf.EditConfig(func(c *conf.Config) error {
		probs := setup.ApplyGB28181Form(c, f, passwordFile)
		// Every problem at once: the file's fields as start-up validates
		// them, and the password file readable and not empty, as the
		// node reads it when it starts.
		probs = append(probs, setup.ProblemsOf(c.Validate())...)
		if g := c.GB28181; g != nil && g.PasswordFile != "" {
			if _, err := g.ResolvePassword(); err != nil {
				probs = append(probs, setup.Problem{Field: "gb28181.password_file", Msg: err.Error()})
			}
		}
		if len(probs) > 0 {
			return setup.Refused(probs)
		}
		saved = *c
		return nil
	})
	if err != nil {
		return refuse(err)
	}
	removeUnusedGBSecrets(dataDir, saved, s.log)
	return setup.GB28181Saved{Revision: res.Revision, Applied: res.Applied, Changed: res.Changed, Message: res.Message, PasswordFile: passwordFile}, nil
}

// removeUnusedGBSecrets deletes the password files this step wrote that
// the revision in force no longer names (a replaced password, a removed
// platform): a retired password should not stay on the box.
func removeUnusedGBSecrets(dataDir string, c conf.Config, log *slog.Logger) {
	inUse := ""
	if c.GB28181 != nil && c.GB28181.PasswordFile != "" {
		inUse = filepath.Clean(c.GB28181.PasswordFile)
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dataDir, e.Name())
		if !e.Type().IsRegular() || !pageGBSecret.MatchString(e.Name()) || p == inUse {
			continue
		}
		if err := os.Remove(p); err != nil {
			log.Warn("retired platform password file not removed", "file", p, "err", err)
		} else {
			log.Info("retired platform password file removed", "file", p)
		}
	}
}
