package setup

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/wire"
)

// The police platform step: the gb28181: section of edge.yaml, which
// registers the box with a GB/T 28181 platform (雪亮工程) as one device
// whose channels are the box's cameras, gates and sensors. Like the gates
// and sensors steps, the page edits the whole form and saves it as one
// config revision (Backend.SetupSaveGB28181), validated whole (the
// config's own gb28181 validation, field by field); a refused one changes
// nothing. The registration password is write-only: the page only learns
// whether the box has one; a new one is kept in a file (0600) in the data
// directory, which the revision names (password_file), never in
// edge.yaml. What the page does not show (expires, the keepalive misses,
// local and contact addresses, the time zone, the retry waits, a
// channel's name at the platform) is kept as the file has it.

// GB28181Form is gb28181: of edge.yaml as the page edits it.
type GB28181Form struct {
	// Enabled: the box registers with a platform; false removes the
	// section (and with it the channel IDs).
	Enabled      bool   `json:"enabled"`
	ServerID     string `json:"server_id"`
	ServerDomain string `json:"server_domain"` // "": the first ten digits of server_id
	ServerAddr   string `json:"server_addr"`   // host:port
	Transport    string `json:"transport"`     // udp or tcp
	DeviceID     string `json:"device_id"`
	// Password: a new one (kept 0600 in the data directory); empty keeps
	// the one the box has (HasPassword).
	Password    string `json:"password,omitempty"`
	HasPassword bool   `json:"has_password,omitempty"` // answer only
	// KeepaliveInterval: a Go duration ("60s", "1m"); "" the default (60s).
	KeepaliveInterval string `json:"keepalive_interval"`
	// Channels: every camera, gate and sensor of the config, in its order
	// (cameras, gates, sensors), each with its channel ID; an empty ID is
	// not offered to the platform. The revision lists the offered ones in
	// this order: a problem's gb28181.channels[k] is the k-th row with an ID.
	Channels []GBChannelForm `json:"channels"`
}

// Kinds of GBChannelForm.Kind (conf.GBChannelConfig's sources).
const (
	ChannelCamera = "camera" // type code 131 or 132
	ChannelGate   = "gate"   // an alarm input: 134
	ChannelSensor = "sensor" // an alarm input: 134
)

// GBChannelForm is one device of the box and its channel ID.
type GBChannelForm struct {
	Kind   string `json:"kind"`   // ChannelCamera, ChannelGate or ChannelSensor
	Device string `json:"device"` // its ID in cameras:, gates: or sensors:
	Name   string `json:"name,omitempty"`
	ID     string `json:"id"` // 20 digits; "": not offered
}

// GB28181Saved says what became of a saved form.
type GB28181Saved struct {
	Revision string   `json:"revision"`
	Applied  string   `json:"applied"` // live, unchanged, restarting, restart_needed
	Changed  []string `json:"changed,omitempty"`
	Message  string   `json:"message"`
	// PasswordFile is where a new password was kept (0600).
	PasswordFile string `json:"password_file,omitempty"`
}

// GB28181FormOf is the platform form of c: the section as the box runs it
// (off, with the defaults, when there is none) and a row for every
// camera, gate and sensor.
func GB28181FormOf(c conf.Config) GB28181Form {
	f := GB28181Form{Transport: "udp", Channels: []GBChannelForm{}}
	ids := map[string]string{} // kind/device → channel ID
	if g := c.GB28181; g != nil {
		f.Enabled = true
		f.ServerID, f.ServerDomain, f.ServerAddr, f.DeviceID = g.ServerID, g.ServerDomain, g.ServerAddr, g.DeviceID
		if g.Transport != "" {
			f.Transport = strings.ToLower(g.Transport)
		}
		f.HasPassword = g.Password != "" || g.PasswordFile != ""
		if g.KeepaliveInterval != 0 {
			f.KeepaliveInterval = formatDuration(g.KeepaliveInterval.D())
		}
		for _, ch := range g.Channels {
			if kind, id := ch.Source(); kind != "" {
				ids[kind+"/"+id] = ch.ID
			}
		}
	}
	row := func(kind, id, name string) {
		f.Channels = append(f.Channels, GBChannelForm{Kind: kind, Device: id, Name: name, ID: ids[kind+"/"+id]})
	}
	for _, cam := range c.Cameras {
		row(ChannelCamera, cam.ID, cam.Name)
	}
	for _, g := range c.Gates {
		row(ChannelGate, g.ID, g.Name)
	}
	for _, s := range c.Sensors {
		row(ChannelSensor, s.ID, s.Name)
	}
	return f
}

// Problems are what is wrong with the form itself, before it is applied:
// a transport that is neither, a keepalive that is not a duration, a row
// of no kind. Everything else is the config's validation's.
func (f GB28181Form) Problems() []Problem {
	var c conf.Config
	return ApplyGB28181Form(&c, f, "")
}

// ApplyGB28181Form puts the platform form into c, keeping what the page
// does not show; passwordFile is the new password's file ("": the
// password is unchanged). It returns the form's own problems (Problems);
// c is then to be validated whole.
func ApplyGB28181Form(c *conf.Config, f GB28181Form, passwordFile string) []Problem {
	var probs []Problem
	if !f.Enabled {
		c.GB28181 = nil
		return nil
	}
	g := conf.GB28181Config{}
	if c.GB28181 != nil {
		g = *c.GB28181
	}
	g.ServerID, g.ServerDomain = strings.TrimSpace(f.ServerID), strings.TrimSpace(f.ServerDomain)
	g.ServerAddr, g.DeviceID = strings.TrimSpace(f.ServerAddr), strings.TrimSpace(f.DeviceID)
	switch tr := strings.ToLower(strings.TrimSpace(f.Transport)); tr {
	case "udp", "":
		if strings.EqualFold(g.Transport, "udp") {
			tr = g.Transport // as the file had it
		} else {
			tr = "" // the default
		}
		g.Transport = tr
	case "tcp":
		g.Transport = tr
	default:
		probs = append(probs, Problem{Field: "gb28181.transport", Msg: fmt.Sprintf("%q: choose udp or tcp", f.Transport)})
	}
	if passwordFile != "" {
		g.Password, g.PasswordFile = "", passwordFile
	}
	if s := strings.TrimSpace(f.KeepaliveInterval); s == "" {
		g.KeepaliveInterval = 0
	} else if d, ok := parseDuration(s, "gb28181.keepalive_interval", &probs); ok {
		g.KeepaliveInterval = d
	}
	// A channel's name at the platform is the file's; the rest is the form's.
	names := map[string]string{}
	for _, ch := range g.Channels {
		if kind, id := ch.Source(); kind != "" {
			names[kind+"/"+id] = ch.Name
		}
	}
	g.Channels = nil
	for i, cf := range f.Channels {
		id := strings.TrimSpace(cf.ID)
		if id == "" {
			continue // not offered
		}
		ch := conf.GBChannelConfig{ID: id, Name: names[cf.Kind+"/"+cf.Device]}
		switch cf.Kind {
		case ChannelCamera:
			ch.Camera = cf.Device
		case ChannelGate:
			ch.Gate = cf.Device
		case ChannelSensor:
			ch.Sensor = cf.Device
		default:
			probs = append(probs, Problem{Field: fmt.Sprintf("gb28181.channels[%d]", len(g.Channels)),
				Msg: fmt.Sprintf("row %d: kind %q is none of camera, gate or sensor", i+1, cf.Kind)})
			continue
		}
		g.Channels = append(g.Channels, ch)
	}
	c.GB28181 = &g
	return probs
}

// gb28181Config is GET /setup/api/gb28181/config: the form as the box runs it.
func (s *steps) gb28181Config(w http.ResponseWriter, r *http.Request) {
	f, err := s.backend.SetupGB28181()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// gb28181State is GET /setup/api/gb28181/state: the registration as the
// box's device user agent sees it now (null: the box runs no platform
// connection).
func (s *steps) gb28181State(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]*wire.GBStatus{"gb28181": s.backend.SetupGBStatus()})
}

// saveGB28181 is POST /setup/api/gb28181/save: the form becomes a config
// revision, validated whole; 422 with the problems field by field if not.
func (s *steps) saveGB28181(w http.ResponseWriter, r *http.Request) {
	var f GB28181Form
	if !decodeForm(w, r, &f) {
		return
	}
	f.HasPassword = false // an answer only
	if probs := f.Problems(); len(probs) > 0 {
		writeRefused(w, Refused(probs))
		return
	}
	if !s.audit(w, r, ActionConfigChange, "gb28181", gb28181Details(f)) {
		return
	}
	res, err := s.backend.SetupSaveGB28181(f)
	if err != nil {
		s.refuseSave(w, "police platform settings from the setup page refused", err)
		return
	}
	s.log.Info("police platform settings saved from the setup page", "enabled", f.Enabled, "channels", offered(f),
		"revision", res.Revision, "applied", res.Applied, "new_password", f.Password != "")
	writeJSON(w, http.StatusOK, res)
}

// offered counts the rows with a channel ID.
func offered(f GB28181Form) int {
	n := 0
	for _, ch := range f.Channels {
		if strings.TrimSpace(ch.ID) != "" {
			n++
		}
	}
	return n
}

// gb28181Details is a saved form in short for the audit log: the
// platform, the device ID, whether a new password was typed (never the
// password) and the channels; only counts if that would not fit.
func gb28181Details(f GB28181Form) map[string]any {
	if !f.Enabled {
		return map[string]any{"enabled": false}
	}
	type channel struct {
		Kind   string `json:"kind"`
		Device string `json:"device"`
		ID     string `json:"id"`
	}
	chs := []channel{}
	for _, ch := range f.Channels {
		if id := strings.TrimSpace(ch.ID); id != "" {
			chs = append(chs, channel{Kind: short(ch.Kind), Device: short(ch.Device), ID: short(id)})
		}
	}
	d := map[string]any{"enabled": true, "server_id": short(f.ServerID), "server_addr": short(f.ServerAddr), "transport": short(f.Transport),
		"device_id": short(f.DeviceID), "new_password": f.Password != "", "keepalive_interval": short(f.KeepaliveInterval), "channels": chs}
	if b, _ := json.Marshal(d); len(b) > 1800 {
		n := map[string]int{}
		for _, ch := range chs {
			n[ch.Kind]++
		}
		d["channels"], d["by_kind"], d["truncated"] = len(chs), n, true
	}
	return d
}
