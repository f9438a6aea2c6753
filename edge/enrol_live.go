package edge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/edge/uplink"
)

// Enrolment from the setup page: the same exchange as `vigil edge enroll`
// (uplink.Enroll: a new key pair, registered with central's one-time token
// over TLS pinned to the key the token carries), then the credential is
// written 0600, a config revision records central's address, the
// credential file, the entrance's name, time zone and NTP servers, and the
// uplink reconnects with the new credential at once. Only when the token
// was made for another edge ID (the box's identity changes) does the node
// restart, or ask to be restarted.

// credentialPath is where the box keeps its credential: central.token_file
// if the config names one, else <data_dir>/edge-credential.json.
func credentialPath(c conf.Config) (string, error) {
	p := c.Central.TokenFile
	if p == "" {
		p = filepath.Join(c.DataDir, "edge-credential.json")
	}
	return filepath.Abs(p)
}

// SetupEnrol implements setup.Backend.
func (s *setupBackend) SetupEnrol(ctx context.Context, req setup.EnrolRequest) (setup.EnrolResult, error) {
	if s.configPath == "" {
		return setup.EnrolResult{}, ErrNoConfigFile
	}
	req.Central = strings.TrimSpace(req.Central)
	req.Token = strings.TrimSpace(req.Token)
	if req.Central == "" || req.Token == "" {
		return setup.EnrolResult{}, errors.New("enter central's address and the enrolment token")
	}
	running := s.conf.RunningConfig()
	// Check what goes into the revision before the token is spent.
	probe := running
	if err := setup.ApplyEnrolPlace(&probe, req); err != nil {
		return setup.EnrolResult{}, err
	}
	if s.up.Enrolled() && s.up.Connected() && !req.Again {
		return setup.EnrolResult{}, fmt.Errorf("this box is already enrolled and connected to central as %q; tick \"enrol again\" to replace its credential", running.EdgeID)
	}
	path, err := credentialPath(running)
	if err != nil {
		return setup.EnrolResult{}, err
	}
	cred, err := uplink.Enroll(ctx, uplink.EnrolOptions{Central: req.Central, Token: req.Token, Software: Software, Hostname: uplink.Hostname()})
	if err != nil {
		return setup.EnrolResult{}, err
	}
	if err := cred.Save(path); err != nil {
		return setup.EnrolResult{}, fmt.Errorf("enrolled, but writing the credential %s failed (enrol again with a new token): %w", path, err)
	}
	s.log.Info("enrolled with central from the setup page", "edge", cred.EdgeID, "site", cred.SiteID, "central", cred.Central, "credential", path)
	res := setup.EnrolResult{EdgeID: cred.EdgeID, SiteID: cred.SiteID, Central: cred.Central, CentralPin: cred.CentralPin, Credential: path}
	identity := cred.EdgeID != running.EdgeID || cred.SiteID != running.SiteID
	// Read, edit and apply under one lock (as EditConfig does).
	ar, err := s.enrolRevision(func(c *conf.Config) error {
		c.EdgeID, c.SiteID = cred.EdgeID, cred.SiteID
		c.Central.URL, c.Central.Token, c.Central.TokenFile = cred.EdgeURL(), "", path
		c.Entrance, c.TimeZone, c.NTP = probe.Entrance, probe.TimeZone, probe.NTP
		return nil
	}, !identity, identity)
	res.Revision, res.Applied = ar.Revision, ar.Applied
	if err != nil {
		res.Message = "Enrolled, but the config revision was refused: " + err.Error() + ". The credential is in " + path + "; point central.token_file at it."
		return res, nil
	}
	if identity {
		// Alerts, recordings and the outbox carry the edge and site IDs:
		// they change only with a restart (applyLocked started one if
		// it can).
		if res.Applied != "restarting" {
			res.RestartNeeded = true
			res.Message = fmt.Sprintf("Enrolled as %s at %s. Restart the edge to run under this identity (it was %s).", cred.EdgeID, cred.SiteID, running.EdgeID)
		} else {
			res.Message = fmt.Sprintf("Enrolled as %s at %s; the edge restarts under this identity now.", cred.EdgeID, cred.SiteID)
		}
		return res, nil
	}
	if err := s.up.SetCredential(cred); err != nil {
		return res, err
	}
	res.Message = fmt.Sprintf("Enrolled as %s at %s; connecting to central now.", cred.EdgeID, cred.SiteID)
	return res, nil
}

// enrolled reports whether the box has a credential file or token.
func (s *setupBackend) enrolled() bool {
	if s.up.Enrolled() {
		return true
	}
	p, err := credentialPath(s.conf.RunningConfig())
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}
