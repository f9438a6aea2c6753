package conf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/internal/config"
)

// GB28181Config registers the edge with a GB/T 28181 police video platform
// (雪亮工程, county or township platform) as one device whose channels are
// the site's cameras, gates (alarm inputs) and sensors (alarm inputs). The
// section is off when absent. Every ID is the platform administrator's:
// 20 digits, the type code in digits 11-13 (README.md, "Connecting to a
// GB/T 28181 platform"). Changing it restarts the edge.
type GB28181Config struct {
	// ServerID is the platform's SIP server ID (type 200).
	ServerID string `yaml:"server_id"`
	// ServerDomain is the platform's SIP domain; default: the first ten
	// digits of server_id.
	ServerDomain string `yaml:"server_domain,omitempty"`
	// ServerAddr is the platform's SIP address, host:port.
	ServerAddr string `yaml:"server_addr"`
	// Transport is udp (default) or tcp.
	Transport string `yaml:"transport,omitempty"`
	// DeviceID is this edge's ID at the platform (usually type 118 NVR).
	DeviceID string `yaml:"device_id"`
	// Password is the registration password. Prefer PasswordFile (mode
	// 0600, read when the edge starts and by --check), like
	// central.token_file.
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// Expires is the registration lifetime asked for (default 3600s);
	// KeepaliveInterval the keepalive period (default 60s);
	// MaxKeepaliveMisses unanswered keepalives send the edge back to
	// REGISTER (default 3).
	Expires            config.Duration `yaml:"expires,omitempty"`
	KeepaliveInterval  config.Duration `yaml:"keepalive_interval,omitempty"`
	MaxKeepaliveMisses int             `yaml:"max_keepalive_misses,omitempty"`
	// LocalAddr is the local SIP address (default :5060); ContactHost the
	// address the platform reaches the edge at (default: the local
	// address towards the platform; set it behind NAT).
	LocalAddr   string `yaml:"local_addr,omitempty"`
	ContactHost string `yaml:"contact_host,omitempty"`
	// TimeZone is the zone of the platform's times (default
	// Asia/Shanghai).
	TimeZone string `yaml:"time_zone,omitempty"`
	// RetryMin and RetryMax bound the backoff while the platform is
	// unreachable (2s, 60s); AuthRetry is the wait after the platform
	// refused the password (5m).
	RetryMin  config.Duration `yaml:"retry_min,omitempty"`
	RetryMax  config.Duration `yaml:"retry_max,omitempty"`
	AuthRetry config.Duration `yaml:"auth_retry,omitempty"`
	// Channels map the edge's cameras, gates and sensors to the channel
	// IDs the platform's administrator assigned them.
	Channels []GBChannelConfig `yaml:"channels"`
}

// GBChannelConfig is one channel: exactly one of Camera, Gate or Sensor
// (an ID from cameras:, gates: or sensors:) and its 20-digit ID (cameras
// 131 or 132, gates and sensors 134: alarm inputs).
type GBChannelConfig struct {
	Camera string `yaml:"camera,omitempty"`
	Gate   string `yaml:"gate,omitempty"`
	Sensor string `yaml:"sensor,omitempty"`
	ID     string `yaml:"id"`
	// Name is the channel's name at the platform; default the device's
	// name in this file (or its ID).
	Name string `yaml:"name,omitempty"`
}

// Source is what the channel stands for: its kind (camera, gate or
// sensor) and the device's ID in this file; kind is "" when the entry
// names none or several.
func (ch GBChannelConfig) Source() (kind, id string) {
	n := 0
	for _, s := range [][2]string{{"camera", ch.Camera}, {"gate", ch.Gate}, {"sensor", ch.Sensor}} {
		if s[1] != "" {
			kind, id = s[0], s[1]
			n++
		}
	}
	if n != 1 {
		return "", ""
	}
	return kind, id
}

// ChannelKind is the platform's kind for a channel of source kind k: a
// camera is a camera, gates and sensors are alarm inputs.
func ChannelKind(k string) device.Kind {
	if k == "camera" {
		return device.KindCamera
	}
	return device.KindAlarm
}

// ResolvePassword returns the registration password: Password, or
// PasswordFile's content without surrounding space.
func (g *GB28181Config) ResolvePassword() (string, error) {
	if g.PasswordFile == "" {
		if g.Password == "" {
			return "", errors.New("set password or password_file")
		}
		return g.Password, nil
	}
	b, err := os.ReadFile(g.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%s: %s", g.PasswordFile, FileProblem(err))
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return "", fmt.Errorf("%s: the file is empty", g.PasswordFile)
	}
	return p, nil
}

// Device is the device user agent's configuration with the given
// password (ResolvePassword's). Name describes the edge in DeviceInfo.
func (g *GB28181Config) Device(password, name string) device.Config {
	return device.Config{
		ServerID: g.ServerID, ServerDomain: g.ServerDomain, ServerAddr: g.ServerAddr, Transport: g.Transport,
		DeviceID: g.DeviceID, Password: password, Expires: g.Expires.D(), Keepalive: g.KeepaliveInterval.D(),
		MaxKeepaliveMisses: g.MaxKeepaliveMisses, LocalAddr: g.LocalAddr, ContactHost: g.ContactHost,
		RetryMin: g.RetryMin.D(), RetryMax: g.RetryMax.D(), AuthRetry: g.AuthRetry.D(), TimeZone: g.TimeZone,
		Name: name,
	}
}

// gb28181Errors checks gb28181: against the cameras, gates and sensors of
// the same file; device.Config.Validate's problems keep its field names
// (gb28181.server_id, gb28181.keepalive_interval, …).
func (c *Config) gb28181Errors(errs *fieldErrors) {
	g := c.GB28181
	if g == nil {
		return
	}
	password := g.Password
	switch {
	case g.Password != "" && g.PasswordFile != "":
		errs.add("gb28181.password_file", "set either password or password_file, not both")
	case g.Password == "" && g.PasswordFile == "":
		errs.add("gb28181.password", "set password or password_file (the platform's administrator gives each device a password)")
	case g.PasswordFile != "":
		// The file exists only on the box: read when the edge starts and
		// by --check, like central.token_file.
		password = "(password_file)"
	}
	if password != "" {
		dc := g.Device(password, "")
		for _, e := range joined(dc.Validate()) {
			field, msg, ok := strings.Cut(e.Error(), ": ")
			if !ok || !strings.HasPrefix(field, "gb28181.") {
				field, msg = "gb28181", e.Error()
			}
			errs.add(field, "%s", msg)
		}
	}
	known := map[string]map[string]bool{"camera": {}, "gate": {}, "sensor": {}}
	for _, cam := range c.Cameras {
		known["camera"][cam.ID] = true
	}
	for _, gt := range c.Gates {
		known["gate"][gt.ID] = true
	}
	for _, s := range c.Sensors {
		known["sensor"][s.ID] = true
	}
	if len(g.Channels) == 0 {
		errs.add("gb28181.channels", "list at least one camera, gate or sensor with its channel ID")
	}
	ids, sources := map[string]int{}, map[string]int{}
	for i, ch := range g.Channels {
		f := fmt.Sprintf("gb28181.channels[%d]", i)
		kind, id := ch.Source()
		if kind == "" {
			errs.add(f, "name exactly one of camera, gate or sensor")
			continue
		}
		if !known[kind][id] {
			errs.add(f+"."+kind, "unknown %s %q (not in %ss:)", kind, id, kind)
		} else if j, dup := sources[kind+"/"+id]; dup {
			errs.add(f+"."+kind, "%s %q already has channel %d", kind, id, j)
		} else {
			sources[kind+"/"+id] = i
		}
		name := ch.Name
		if name == "" {
			name = id
		}
		if err := (device.Channel{ID: ch.ID, Name: name, Kind: ChannelKind(kind)}).Validate(); err != nil {
			errs.add(f+".id", "%v", err)
			continue
		}
		switch j, dup := ids[ch.ID]; {
		case dup:
			errs.add(f+".id", "%q is used twice (also channels[%d])", ch.ID, j)
		case ch.ID == g.DeviceID || ch.ID == g.ServerID:
			errs.add(f+".id", "%q is the device's or the server's own ID", ch.ID)
		}
		ids[ch.ID] = i
	}
}

// joined splits an errors.Join into its errors.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
