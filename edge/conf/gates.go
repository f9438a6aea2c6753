package conf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/gates/webhook"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// GateConfig is one gate (barrier arm, door, wicket) in edge.yaml.
type GateConfig struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name,omitempty"`
	// Cameras that see the gate: its alerts carry their snapshots and pin
	// their video; their motion alerts carry the gate's state.
	Cameras []string     `yaml:"cameras,omitempty"`
	Arming  ArmingConfig `yaml:"arming,omitempty"`
	// KeypadCodes, if set, are the codes a keypad must send to arm or
	// disarm the gate; a wrong or missing code is refused (yellow alert).
	KeypadCodes []string `yaml:"keypad_codes,omitempty"`
	// Timing; zero takes the gates package's default (README.md, "Gates").
	GrantWindow      config.Duration    `yaml:"grant_window,omitempty"`        // default 30s
	GrantGrace       config.Duration    `yaml:"grant_grace,omitempty"`         // default 300ms; negative: off
	HeldOpenAfter    config.Duration    `yaml:"held_open_after,omitempty"`     // default 60s
	HeldOpenRedAfter config.Duration    `yaml:"held_open_red_after,omitempty"` // default 5m; negative: never red
	Debounce         config.Duration    `yaml:"debounce,omitempty"`            // default 1s; negative: off
	FoldWindow       config.Duration    `yaml:"fold_window,omitempty"`         // default 10m
	UpdateEvery      config.Duration    `yaml:"update_every,omitempty"`        // default 30s; negative: every count
	Devices          []GateDeviceConfig `yaml:"devices,omitempty"`
}

// ArmingConfig says when a gate is armed: always, or inside any of the
// schedule's windows ("22:00-06:00", "mon-fri 18:00-07:00") in TimeZone.
type ArmingConfig struct {
	Always   bool     `yaml:"always,omitempty"`
	Schedule []string `yaml:"schedule,omitempty"`
	TimeZone string   `yaml:"time_zone,omitempty"` // default: the edge's time_zone, else Asia/Shanghai
}

// GateDeviceConfig is a device expected to report for a gate.
type GateDeviceConfig struct {
	ID string `yaml:"id"`
	// SilentAfter: quiet this long raises "device silent" (0: not watched).
	SilentAfter config.Duration `yaml:"silent_after,omitempty"`
}

// GateInputsConfig: the ways gate events reach this box.
type GateInputsConfig struct {
	Webhook WebhookInputConfig `yaml:"webhook,omitempty"`
	MQTT    *MQTTInputConfig   `yaml:"mqtt,omitempty"`
	GPIO    *GPIOInputConfig   `yaml:"gpio,omitempty"`
}

// WebhookInputConfig is POST /api/v1/gates/events on the local API.
type WebhookInputConfig struct {
	Enabled     bool                      `yaml:"enabled,omitempty"`
	MaxBody     int64                     `yaml:"max_body,omitempty"` // bytes, default 65536
	Window      config.Duration           `yaml:"window,omitempty"`   // accepted timestamp skew, default 5m
	Controllers []WebhookControllerConfig `yaml:"controllers,omitempty"`
}

// WebhookControllerConfig is one controller allowed to post events.
type WebhookControllerConfig struct {
	ID string `yaml:"id"`
	// Secret signs its requests (at least 16 bytes). Prefer SecretFile
	// (mode 0600): one secret per line, two while rotating.
	Secret     string   `yaml:"secret,omitempty"`
	SecretFile string   `yaml:"secret_file,omitempty"`
	Gates      []string `yaml:"gates"` // gates it may report
}

// MQTTInputConfig subscribes to the site's broker.
type MQTTInputConfig struct {
	Broker       string `yaml:"broker"` // tcp://host:1883, ssl://host:8883, ws://host:9001
	ClientID     string `yaml:"client_id,omitempty"`
	Username     string `yaml:"username,omitempty"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// BaseTopic is Zigbee2MQTT's base_topic (default zigbee2mqtt).
	BaseTopic string             `yaml:"base_topic,omitempty"`
	Devices   []MQTTDeviceConfig `yaml:"devices,omitempty"`
	// EventTopic carries events in the webhook's JSON form (unsigned:
	// guard it with the broker's ACL); EventGates limits it to those gates.
	EventTopic string   `yaml:"event_topic,omitempty"`
	EventGates []string `yaml:"event_gates,omitempty"`
}

// MQTTDeviceConfig maps a Zigbee2MQTT friendly name to its gate.
type MQTTDeviceConfig struct {
	Name string `yaml:"name"`
	Gate string `yaml:"gate"`
	// Actions maps the device's "action" values to what they mean for its
	// gate: sos, arm, disarm or ignore, e.g. {single: sos} for a Heiman
	// HS1EB emergency button. Without an entry, emergency, panic and sos
	// are SOS, a keypad's arm_* and disarm arm and disarm the gate, and
	// every other action (dimmers, remotes, scene switches) is ignored.
	Actions map[string]string `yaml:"actions,omitempty"`
}

// GPIOInputConfig reads dry contacts on this box's GPIO lines.
type GPIOInputConfig struct {
	Chip     string           `yaml:"chip,omitempty"`     // default gpiochip0
	Debounce config.Duration  `yaml:"debounce,omitempty"` // contact bounce, default 50ms
	Lines    []GPIOLineConfig `yaml:"lines"`
}

// GPIOLineConfig is one line: which gate, which input, which role.
type GPIOLineConfig struct {
	Offset    int    `yaml:"offset"`
	Chip      string `yaml:"chip,omitempty"` // default: the section's chip
	Gate      string `yaml:"gate"`
	Input     string `yaml:"input"` // the device name, e.g. door-contact
	Role      string `yaml:"role"`  // door, button, grant, tamper, smoke, gas, water_leak, presence
	ActiveLow bool   `yaml:"active_low,omitempty"`
	Bias      string `yaml:"bias,omitempty"` // pull-up, pull-down or disabled
}

// EffectiveChip is the line's chip: its own, else the section's, else
// gpiochip0.
func (l GPIOLineConfig) EffectiveChip(g *GPIOInputConfig) string {
	switch {
	case l.Chip != "":
		return l.Chip
	case g.Chip != "":
		return g.Chip
	}
	return "gpiochip0"
}

// Secrets returns the controller's secrets: Secret, or SecretFile's
// non-empty lines (two while a secret is rotated).
func (ct WebhookControllerConfig) Secrets() ([]string, error) {
	var out []string
	if ct.SecretFile != "" {
		b, err := os.ReadFile(ct.SecretFile)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	} else if ct.Secret != "" {
		out = []string{ct.Secret}
	}
	if len(out) == 0 {
		return nil, errors.New("a controller needs secret or secret_file")
	}
	if len(out) > 2 {
		return nil, fmt.Errorf("at most two secrets (the current one and, while rotating, the next), not %d", len(out))
	}
	for _, s := range out {
		if len(s) < webhook.MinSecretLen {
			return nil, fmt.Errorf("a secret must be at least %d bytes (32 random bytes recommended)", webhook.MinSecretLen)
		}
	}
	return out, nil
}

// ResolvedGates are the configured gates, each schedule read in the gate's own
// time zone, else the entrance's (set at enrolment), else
// gates.DefaultTimeZone.
func (c Config) ResolvedGates() []GateConfig {
	out := slices.Clone(c.Gates)
	for i := range out {
		if out[i].Arming.TimeZone == "" {
			out[i].Arming.TimeZone = c.TimeZone
		}
	}
	return out
}

// Machine is the gate as its state machine is configured.
func (g GateConfig) Machine() gates.Config {
	c := gates.Config{
		ID: g.ID, Name: g.Name,
		GrantWindow: g.GrantWindow.D(), GrantGrace: g.GrantGrace.D(), HeldOpenAfter: g.HeldOpenAfter.D(),
		HeldOpenRedAfter: g.HeldOpenRedAfter.D(), Debounce: g.Debounce.D(), FoldWindow: g.FoldWindow.D(), UpdateEvery: g.UpdateEvery.D(),
		Arming: gates.Arming{Always: g.Arming.Always}, KeypadCodes: g.KeypadCodes,
	}
	for _, w := range g.Arming.Schedule {
		if win, err := gates.ParseWindow(w); err == nil {
			c.Arming.Windows = append(c.Arming.Windows, win)
		}
	}
	if loc, err := gates.LoadLocation(g.Arming.TimeZone); err == nil {
		c.Arming.Location = loc
	}
	for _, d := range g.Devices {
		c.Devices = append(c.Devices, gates.Device{ID: d.ID, SilentAfter: d.SilentAfter.D()})
	}
	return c
}
