package edge

import (
	"fmt"
	"strings"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/sensors"
	"github.com/vigil-perimeter/vigil/wire"
)

// The setup page's sensors step (edge/setup, SensorsForm): the form is
// read from the config in force and saved as one revision through
// EditConfig (the mapping between form and config is edge/setup's,
// sensors.go), validated exactly as at start-up (sensors.Problems among
// the rest) and never half-applied. The page shows each sensor's verdict
// and last reading from the node's sensor side while the installer is
// there, and the self-test it runs asks that every sensor has reported.

// setupSensorStatuses is every sensor's verdict and last reading, for
// the setup page (setupBackend.sensorStatuses; nil without sensors).
func (n *Node) setupSensorStatuses() []wire.SensorStatus { return n.sensors.statuses() }

// SetupSensors implements setup.Backend: the sensors as the box runs them.
func (s *setupBackend) SetupSensors() (setup.SensorsForm, error) {
	return setup.SensorsFormOf(s.conf.RunningConfig()), nil
}

// SetupSensorStates implements setup.Backend.
func (s *setupBackend) SetupSensorStates() []wire.SensorStatus {
	if s.sensorStatuses == nil {
		return nil
	}
	return s.sensorStatuses()
}

// SetupSaveSensors implements setup.Backend: the form becomes one
// revision (setup.ApplySensorsForm), refused whole, with every problem
// named, if the edge could not start on it.
func (s *setupBackend) SetupSaveSensors(f setup.SensorsForm) (setup.SensorsSaved, error) {
	if probs := f.Problems(); len(probs) > 0 {
		return setup.SensorsSaved{}, setup.Refused(probs)
	}
	res, err := s.conf.EditConfig(func(c *conf.Config) error {
		probs := setup.ApplySensorsForm(c, f)
		// Every problem at once: the file's fields as start-up validates
		// them (sensors.Problems for sensors: and sensor_inputs:).
		probs = append(probs, setup.ProblemsOf(c.Validate())...)
		if len(probs) > 0 {
			return setup.Refused(probs)
		}
		return nil
	})
	if err != nil {
		return setup.SensorsSaved{}, setup.RefusalOf(err)
	}
	return setup.SensorsSaved{Revision: res.Revision, Applied: res.Applied, Changed: res.Changed, Message: res.Message}, nil
}

// sensorsReported is the self-test's check that every configured sensor
// has reported: red while one has not (or has fallen silent), with them
// named; none without sensors.
func sensorsReported(c conf.Config, statuses []wire.SensorStatus) []SelfTestCheck {
	if len(c.Sensors) == 0 {
		return nil
	}
	byID := map[string]wire.SensorStatus{}
	for _, st := range statuses {
		byID[st.ID] = st
	}
	chk := SelfTestCheck{ID: "sensors", Kind: "sensors", Status: Green, Details: map[string]any{}}
	var quiet, silent []string
	states := map[string]string{}
	for _, sc := range c.Sensors {
		st, ok := byID[sc.ID]
		switch {
		case !ok || st.Time.IsZero():
			quiet = append(quiet, sc.ID)
			states[sc.ID] = "unknown"
		case st.State == string(sensors.StateSilent):
			silent = append(silent, sc.ID)
			states[sc.ID] = st.State
		default:
			states[sc.ID] = st.State
		}
	}
	chk.Details["states"] = states
	switch {
	case len(quiet) > 0:
		chk.Status, chk.Reason = Red, fmt.Sprintf("sensors that have not reported yet: %s", strings.Join(quiet, ", "))
	case len(silent) > 0:
		chk.Status, chk.Reason = Red, fmt.Sprintf("sensors that stopped reporting: %s", strings.Join(silent, ", "))
	default:
		chk.Reason = fmt.Sprintf("every sensor has reported (%d)", len(c.Sensors))
	}
	return []SelfTestCheck{chk}
}
