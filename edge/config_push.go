package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/wire"
)

// A new config revision (from the setup page, an enrolment, or central's
// config push) is applied in one place, applyRevision: validated whole and
// stored by Revisions.Apply (a refused one changes nothing), then put in
// force. What the running node can change in place is applied live: a
// camera's motion block (zones, masks, sizes, sensitivity) goes to its
// detector without a restart. Anything else needs the node restarted with
// the new file: through Options.Restart when the process can do it (vigil
// edge), else at the next start. Either way the node never runs a mix: a
// revision with a non-live change is not applied live in part.

// configState is the config in force and serialises applies.
type configState struct {
	mu      sync.Mutex
	running Config // the config the node runs (live changes included)
}

// ApplyResult says what became of a revision.
type ApplyResult struct {
	Revision string `json:"revision"` // the stored revision, e.g. "r4"
	// Applied: "live" (in force now), "unchanged" (already running),
	// "restarting" (the node restarts with it now) or "restart_needed"
	// (stored; in force at the next start).
	Applied string   `json:"applied"`
	Changed []string `json:"changed,omitempty"` // what differs from the config in force
	Message string   `json:"message"`
}

// ErrNoConfigFile: the node was started without a config file to revise.
var ErrNoConfigFile = errors.New("this edge was started without a config file (Options.ConfigPath), so it cannot take new revisions")

// RunningConfig is the config in force.
func (n *Node) RunningConfig() Config {
	n.conf.mu.Lock()
	defer n.conf.mu.Unlock()
	return n.conf.running
}

// ConfigRevision names the revision in force ("" before the first).
func (n *Node) ConfigRevision() string { return n.up.ConfigRevision() }

// ApplyConfig validates data (a whole edge.yaml), stores it as the next
// revision and puts it in force, live where possible. An error wrapping
// ErrRevisionRefused says why it was refused; nothing changed then.
func (n *Node) ApplyConfig(data []byte) (ApplyResult, error) {
	return n.applyRevision(data, false, false)
}

// EditConfig applies the running config file changed by edit (which may
// refuse by returning an error), keeping the file's comments.
// The file is read, edited and applied under one lock, so two edits at
// once (two installers, the page and central) cannot lose either.
func (n *Node) EditConfig(edit func(*Config) error) (ApplyResult, error) {
	n.conf.mu.Lock()
	defer n.conf.mu.Unlock()
	data, err := n.editedConfig(edit)
	if err != nil {
		return ApplyResult{}, err
	}
	return n.applyRevisionLocked(data, false, false)
}

func (n *Node) editedConfig(edit func(*Config) error) ([]byte, error) {
	if n.opts.ConfigPath == "" {
		return nil, ErrNoConfigFile
	}
	cur, err := os.ReadFile(n.opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return editConfigYAML(cur, edit)
}

// editConfigYAML decodes an edge.yaml as written (token not resolved),
// edits it and encodes it again with its comments.
func editConfigYAML(data []byte, edit func(*Config) error) ([]byte, error) {
	var c Config
	cm := yaml.CommentMap{}
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.CommentToMap(cm)); err != nil {
		return nil, fmt.Errorf("%w: the config file does not parse: %w", ErrRevisionRefused, err)
	}
	if err := edit(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRevisionRefused, err)
	}
	out, err := yaml.MarshalWithOptions(c, yaml.Indent(2), yaml.IndentSequence(true), yaml.WithComment(cm))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return out, nil
}

// applyRevision is ApplyConfig. enrolling: an enrolment's revision, whose
// central block the caller puts in force (uplink.SetCredential); with
// identity it may also change edge_id (the node must then restart).
func (n *Node) applyRevision(data []byte, enrolling, identity bool) (ApplyResult, error) {
	n.conf.mu.Lock()
	defer n.conf.mu.Unlock()
	return n.applyRevisionLocked(data, enrolling, identity)
}

// applyRevisionLocked is applyRevision with n.conf.mu held.
func (n *Node) applyRevisionLocked(data []byte, enrolling, identity bool) (ApplyResult, error) {
	if n.opts.ConfigPath == "" {
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrRevisionRefused, ErrNoConfigFile)
	}
	running := n.conf.running
	next, err := ParseConfig("new revision", data)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrRevisionRefused, err)
	}
	base := running
	if identity {
		base.EdgeID = next.EdgeID
	}
	before := n.up.ConfigRevision()
	rev, err := OpenRevisions(running.DataDir).Apply(n.opts.ConfigPath, base, data)
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Revision: rev.Name, Changed: configChanges(running, next)}
	live := liveOnly(running, next, enrolling)
	switch {
	case len(res.Changed) == 0 && rev.Name == before:
		res.Applied, res.Message = "unchanged", "revision "+rev.Name+" is already running"
		return res, nil
	case live:
		for i, cc := range next.Cameras {
			if reflect.DeepEqual(cc.Motion, running.Cameras[i].Motion) {
				continue
			}
			if err := n.camByID[cc.ID].SetMotion(cc.motion()); err != nil {
				// Validated above; a refusal here is a bug. Nothing of
				// this revision is in force yet beyond earlier cameras:
				// restart so the file on disk is what runs.
				n.log.Error("live config change failed; restarting", "camera", cc.ID, "err", err)
				live = false
				break
			}
		}
	}
	if live {
		n.conf.running = next
		n.up.SetConfigRevision(rev.Name)
		res.Applied, res.Message = "live", "revision "+rev.Name+" is running"
		n.log.Info("config revision applied live", "revision", rev.Name, "changed", strings.Join(res.Changed, ", "))
		return res, nil
	}
	if n.opts.Restart != nil {
		res.Applied, res.Message = "restarting", "revision "+rev.Name+" is stored; the edge restarts with it now"
		n.log.Warn("config revision needs a restart; restarting", "revision", rev.Name, "changed", strings.Join(res.Changed, ", "))
		restart, why := n.opts.Restart, "config revision "+rev.Name
		if !n.spawn(func() {
			t := time.NewTimer(300 * time.Millisecond) // let the answer go out
			defer t.Stop()
			select {
			case <-t.C:
				restart(why)
			case <-n.ctx.Done(): // the node is closing; the stored revision runs at the next start
			}
		}) {
			n.log.Warn("config revision stored; the node is closing, it runs at the next start", "revision", rev.Name)
		}
		return res, nil
	}
	res.Applied = "restart_needed"
	res.Message = "revision " + rev.Name + " is stored and takes effect when the edge restarts (" + strings.Join(res.Changed, ", ") + " cannot change while it runs)"
	n.log.Warn("config revision stored; restart the edge to run it", "revision", rev.Name, "changed", strings.Join(res.Changed, ", "))
	return res, nil
}

// liveOnly reports whether next differs from running only in what the
// node changes in place: cameras' motion blocks.
func liveOnly(running, next Config, centralLive bool) bool {
	if len(running.Cameras) != len(next.Cameras) {
		return false
	}
	a, b := running, next
	// Names and time settings only describe the box.
	a.Entrance, a.TimeZone, a.NTP = b.Entrance, b.TimeZone, b.NTP
	if centralLive { // an enrolment swaps the uplink's credential itself
		a.Central = b.Central
	}
	a.Cameras = append([]CameraConfig(nil), running.Cameras...)
	b.Cameras = append([]CameraConfig(nil), next.Cameras...)
	for i := range a.Cameras {
		a.Cameras[i].Motion, b.Cameras[i].Motion = MotionConfig{}, MotionConfig{}
	}
	return reflect.DeepEqual(a, b)
}

// configChanges names the top-level blocks (and cameras) that differ.
func configChanges(a, b Config) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if name == "cameras" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	old := map[string]CameraConfig{}
	for _, c := range a.Cameras {
		old[c.ID] = c
	}
	for i, c := range b.Cameras {
		o, ok := old[c.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("cameras[%d] (new camera %s)", i, c.ID))
		case !reflect.DeepEqual(o.Motion, c.Motion) && reflect.DeepEqual(withoutMotion(o), withoutMotion(c)):
			out = append(out, fmt.Sprintf("cameras[%d].motion", i))
		case !reflect.DeepEqual(o, c):
			out = append(out, fmt.Sprintf("cameras[%d]", i))
		}
		delete(old, c.ID)
	}
	for id := range old {
		out = append(out, "cameras (removed "+id+")")
	}
	if len(a.Cameras) == len(b.Cameras) {
		for i := range a.Cameras {
			if a.Cameras[i].ID != b.Cameras[i].ID {
				out = append(out, "cameras (order)")
				break
			}
		}
	}
	return out
}

func withoutMotion(c CameraConfig) CameraConfig {
	c.Motion = MotionConfig{}
	return c
}

// handleConfigPush answers central's config request (wire.MethodConfig):
// req.Config is the whole edge.yaml, as YAML text in a JSON string or as a
// JSON object; req.Revision is central's label for it, logged. The answer
// is ok with the ApplyResult, or bad_request with the refusal's reason
// (the field and line named); a refused revision changes nothing.
func (n *Node) handleConfigPush(_ context.Context, req wire.Request, out *uplink.Responder) {
	data, err := pushedYAML(req.Config)
	if err != nil {
		_ = out.Fail(wire.StatusBadRequest, "config revision refused: "+err.Error())
		return
	}
	res, err := n.ApplyConfig(data)
	if err != nil {
		n.log.Warn("config revision from central refused", "label", req.Revision, "err", err)
		_ = out.Fail(wire.StatusBadRequest, err.Error())
		return
	}
	n.log.Info("config revision from central", "label", req.Revision, "revision", res.Revision, "applied", res.Applied)
	b, _ := json.Marshal(res)
	_ = out.Send("application/json", b, true)
}

// pushedYAML turns the request's config into YAML bytes: a JSON string
// holds the file's text; an object is converted.
func pushedYAML(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("no config")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("config must be the edge.yaml text (a JSON string) or a JSON object")
	}
	b, err := yaml.JSONToYAML(raw)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// CameraMotion is the motion config a camera's analyser runs now.
func (n *Node) CameraMotion(id string) (motion.Config, bool) {
	c := n.camByID[id]
	if c == nil {
		return motion.Config{}, false
	}
	return c.MotionConfig(), true
}

// handleSetupReopen answers central's setup_reopen: the setup page opens
// again (and closes by itself once the installer has left).
func (n *Node) handleSetupReopen(_ context.Context, _ wire.Request, out *uplink.Responder) {
	if err := n.ReopenSetup(); err != nil {
		_ = out.Fail(wire.StatusError, err.Error())
		return
	}
	n.log.Info("setup page re-opened from central")
	_ = out.Send("application/json", []byte(`{"reopened":true}`), true)
}
