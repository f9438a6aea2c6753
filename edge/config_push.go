package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/perimeter"
	"github.com/vigil-perimeter/vigil/wire"
)

// A new config revision (from the setup page, an enrolment, or central's
// config push) is applied in one place, applyLocked: validated whole and
// stored by Revisions.Apply (a refused one changes nothing), then put in
// force. What the running node can change in place is applied live: a
// camera's motion block (zones, masks, sizes, sensitivity) goes to its
// detector, its lines:, dwell: and perimeter: blocks to its perimeter
// watcher, without a restart. Anything else needs the node restarted with
// the new file: through Options.Restart when the process can do it (vigil
// edge), else at the next start. Either way the node never runs a mix: a
// revision with a non-live change is not applied live in part.

// configEngine owns the one config in force: every reader (camera
// alerts, the local API, the heartbeat, the self-test, the gate side, the
// setup page) asks it, and only applyLocked changes it. Readers never
// wait: the config in force is an immutable snapshot behind an atomic
// pointer (a camera's analysis goroutine reads it while an apply holds mu
// and waits on that camera's SetMotion). mu serialises the applies.
type configEngine struct {
	mu  sync.Mutex
	cur atomic.Pointer[inForce]

	path    string              // Options.ConfigPath: "" when there is no file to revise
	restart func(reason string) // Options.Restart
	log     *slog.Logger
	// Set by the composition root (node.go) before anything runs.
	cams  map[string]motionCamera // the running cameras, by ID
	rev   revisionHolder          // the uplink: hello reports the revision in force
	spawn func(func()) bool       // the node's goroutines (tasks.spawn)
	done  <-chan struct{}         // closed when the node closes
}

// inForce is one config in force with its lookups; never changed once
// published (a revision publishes a new one).
type inForce struct {
	cfg     conf.Config
	cameras map[string]conf.CameraConfig // by camera ID
	gates   map[string]conf.GateConfig   // by gate ID, defaults applied (conf.Config.ResolvedGates)
	watches map[string][]string          // camera ID → IDs of the gates it sees
}

func newInForce(c conf.Config) *inForce {
	f := &inForce{cfg: c, cameras: map[string]conf.CameraConfig{}, gates: map[string]conf.GateConfig{}, watches: map[string][]string{}}
	for _, cc := range c.Cameras {
		f.cameras[cc.ID] = cc
	}
	for _, gc := range c.ResolvedGates() {
		f.gates[gc.ID] = gc
		for _, cam := range gc.Cameras {
			f.watches[cam] = append(f.watches[cam], gc.ID)
		}
	}
	return f
}

// motionCamera is a running camera as a revision changes it live.
type motionCamera interface {
	SetMotion(motion.Config) error
	MotionConfig() motion.Config
	SetPerimeter(perimeter.Config) error
}

// revisionHolder keeps the name of the revision in force (the uplink).
type revisionHolder interface {
	ConfigRevision() string
	SetConfigRevision(string)
}

func newConfigEngine(cfg conf.Config, opts Options, log *slog.Logger) *configEngine {
	e := &configEngine{path: opts.ConfigPath, restart: opts.Restart, log: log}
	e.cur.Store(newInForce(cfg))
	return e
}

// running is the config in force.
func (e *configEngine) running() conf.Config { return e.cur.Load().cfg }

// camera is a camera's config in force.
func (e *configEngine) camera(id string) (conf.CameraConfig, bool) {
	cc, ok := e.cur.Load().cameras[id]
	return cc, ok
}

// cameraName is a camera's name, or its ID when it has none.
func (e *configEngine) cameraName(id string) string {
	cc, _ := e.camera(id)
	return displayName(cc.Name, id)
}

// gate is a gate's config in force.
func (e *configEngine) gate(id string) conf.GateConfig { return e.cur.Load().gates[id] }

// watching is the IDs of the gates camera cam sees.
func (e *configEngine) watching(cam string) []string { return e.cur.Load().watches[cam] }

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

// RunningConfig implements setupConfig: the config in force.
func (e *configEngine) RunningConfig() conf.Config { return e.running() }

// ApplyConfig validates data (a whole edge.yaml), stores it as the next
// revision and puts it in force, live where possible. An error wrapping
// ErrRevisionRefused says why it was refused; nothing changed then.
func (e *configEngine) ApplyConfig(data []byte) (ApplyResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applyLocked(data, false, false)
}

// EditConfig applies the running config file changed by edit (which may
// refuse by returning an error), keeping the file's comments.
// The file is read, edited and applied under one lock, so two edits at
// once (two installers, the page and central) cannot lose either.
func (e *configEngine) EditConfig(edit func(*conf.Config) error) (ApplyResult, error) {
	return e.editRevision(edit, false, false)
}

// editRevision is EditConfig with applyLocked's flags (an enrolment's
// revision: enrol_live.go).
func (e *configEngine) editRevision(edit func(*conf.Config) error, enrolling, identity bool) (ApplyResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.path == "" {
		return ApplyResult{}, ErrNoConfigFile
	}
	cur, err := os.ReadFile(e.path)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("config: %w", err)
	}
	data, err := editConfigYAML(cur, edit)
	if err != nil {
		return ApplyResult{}, err
	}
	return e.applyLocked(data, enrolling, identity)
}

// editConfigYAML decodes an edge.yaml as written (token not resolved),
// edits it and encodes it again with its comments.
func editConfigYAML(data []byte, edit func(*conf.Config) error) ([]byte, error) {
	var c conf.Config
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

// applyLocked puts a revision in force, with e.mu held. enrolling: an
// enrolment's revision, whose central block the caller puts in force
// (uplink.SetCredential); with identity it may also change edge_id (the
// node must then restart).
func (e *configEngine) applyLocked(data []byte, enrolling, identity bool) (ApplyResult, error) {
	if e.path == "" {
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrRevisionRefused, ErrNoConfigFile)
	}
	running := e.running()
	next, err := ParseConfig("new revision", data)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("%w: %w", ErrRevisionRefused, err)
	}
	base := running
	if identity {
		base.EdgeID = next.EdgeID
	}
	before := e.rev.ConfigRevision()
	rev, err := OpenRevisions(running.DataDir).Apply(e.path, base, data)
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Revision: rev.Name, Changed: configChanges(running, next)}
	switch {
	case len(res.Changed) == 0 && rev.Name == before:
		res.Applied, res.Message = "unchanged", "revision "+rev.Name+" is already running"
		return res, nil
	case liveOnly(running, next, enrolling) && e.setMotion(running, next) && e.setPerimeter(running, next):
		e.cur.Store(newInForce(next))
		e.rev.SetConfigRevision(rev.Name)
		res.Applied, res.Message = "live", "revision "+rev.Name+" is running"
		e.log.Info("config revision applied live", "revision", rev.Name, "changed", strings.Join(res.Changed, ", "))
		return res, nil
	}
	return e.needRestart(res, rev.Name), nil
}

// setMotion gives each camera whose motion block changed its new one. A
// refusal (validated before: a bug) returns false, and the node restarts
// so the file on disk is what runs.
func (e *configEngine) setMotion(running, next conf.Config) bool {
	for i, cc := range next.Cameras {
		if reflect.DeepEqual(cc.Motion, running.Cameras[i].Motion) {
			continue
		}
		if err := e.cams[cc.ID].SetMotion(cc.Detector()); err != nil {
			e.log.Error("live config change failed; restarting", "camera", cc.ID, "err", err)
			return false
		}
	}
	return true
}

// setPerimeter gives each camera whose lines, dwell regions or perimeter
// tuning changed its new rules (its objects' tracks start over). A
// refusal (validated before: a bug) returns false, and the node restarts
// so the file on disk is what runs.
func (e *configEngine) setPerimeter(running, next conf.Config) bool {
	for i, cc := range next.Cameras {
		if reflect.DeepEqual(perimeterBlocks(cc), perimeterBlocks(running.Cameras[i])) {
			continue
		}
		if err := e.cams[cc.ID].SetPerimeter(cc.PerimeterRules()); err != nil {
			e.log.Error("live config change failed; restarting", "camera", cc.ID, "err", err)
			return false
		}
	}
	return true
}

// perimeterBlocks is the part of a camera's config its perimeter watcher
// runs: lines:, dwell: and perimeter: (the rest of it cleared).
func perimeterBlocks(c conf.CameraConfig) conf.CameraConfig {
	return conf.CameraConfig{Lines: c.Lines, Dwell: c.Dwell, Perimeter: c.Perimeter}
}

// needRestart is what becomes of a stored revision that cannot take
// effect live: the node restarts with it now (Options.Restart), or at the
// next start.
func (e *configEngine) needRestart(res ApplyResult, name string) ApplyResult {
	changed := strings.Join(res.Changed, ", ")
	if e.restart == nil {
		res.Applied = "restart_needed"
		res.Message = "revision " + name + " is stored and takes effect when the edge restarts (" + changed + " cannot change while it runs)"
		e.log.Warn("config revision stored; restart the edge to run it", "revision", name, "changed", changed)
		return res
	}
	res.Applied, res.Message = "restarting", "revision "+name+" is stored; the edge restarts with it now"
	e.log.Warn("config revision needs a restart; restarting", "revision", name, "changed", changed)
	restart, why := e.restart, "config revision "+name
	if !e.spawn(func() {
		t := time.NewTimer(300 * time.Millisecond) // let the answer go out
		defer t.Stop()
		select {
		case <-t.C:
			restart(why)
		case <-e.done: // the node is closing; the stored revision runs at the next start
		}
	}) {
		e.log.Warn("config revision stored; the node is closing, it runs at the next start", "revision", name)
	}
	return res
}

// liveOnly reports whether next differs from running only in what the
// node changes in place: cameras' motion and perimeter blocks and arming,
// the incident rules.
func liveOnly(running, next conf.Config, centralLive bool) bool {
	if len(running.Cameras) != len(next.Cameras) {
		return false
	}
	a, b := running, next
	// Names and time settings only describe the box; the alert owner
	// reads the motion incident rules from the config in force at each
	// event (incidents.go).
	a.Entrance, a.TimeZone, a.NTP, a.Analysis = b.Entrance, b.TimeZone, b.NTP, b.Analysis
	if centralLive { // an enrolment swaps the uplink's credential itself
		a.Central = b.Central
	}
	a.Cameras = append([]CameraConfig(nil), running.Cameras...)
	b.Cameras = append([]CameraConfig(nil), next.Cameras...)
	for i := range a.Cameras {
		a.Cameras[i], b.Cameras[i] = withoutLive(a.Cameras[i]), withoutLive(b.Cameras[i])
		// A camera's arming is read from the config in force at each
		// motion event (camevents.go): arming it escalates its open
		// motion incident at the next event, without a restart.
		a.Cameras[i].Armed = b.Cameras[i].Armed
	}
	return reflect.DeepEqual(a, b)
}

// configChanges names the top-level blocks (and cameras) that differ.
func configChanges(a, b conf.Config) []string {
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
	old := map[string]conf.CameraConfig{}
	for _, c := range a.Cameras {
		old[c.ID] = c
	}
	for i, c := range b.Cameras {
		o, ok := old[c.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("cameras[%d] (new camera %s)", i, c.ID))
		case !reflect.DeepEqual(o, c) && reflect.DeepEqual(withoutLive(o), withoutLive(c)):
			out = append(out, liveChanges(i, o, c)...)
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

// withoutLive is a camera's config without the blocks a revision
// changes live (motion:, lines:, dwell:, perimeter:).
func withoutLive(c conf.CameraConfig) conf.CameraConfig {
	c.Motion, c.Lines, c.Dwell, c.Perimeter = conf.MotionConfig{}, nil, nil, conf.PerimeterTuning{}
	return c
}

// liveChanges names the live blocks of camera i that differ, e.g.
// "cameras[0].motion", "cameras[0].lines".
func liveChanges(i int, o, c conf.CameraConfig) []string {
	var out []string
	for _, b := range []struct {
		name string
		same bool
	}{
		{"motion", reflect.DeepEqual(o.Motion, c.Motion)}, {"lines", reflect.DeepEqual(o.Lines, c.Lines)},
		{"dwell", reflect.DeepEqual(o.Dwell, c.Dwell)}, {"perimeter", reflect.DeepEqual(o.Perimeter, c.Perimeter)},
	} {
		if !b.same {
			out = append(out, fmt.Sprintf("cameras[%d].%s", i, b.name))
		}
	}
	return out
}

// handleConfigPush answers central's config request (wire.MethodConfig):
// req.Config is the whole edge.yaml, as YAML text in a JSON string or as a
// JSON object; req.Revision is central's label for it, logged. The answer
// is ok with the ApplyResult, or bad_request with the refusal's reason
// (the field and line named); a refused revision changes nothing.
func (e *configEngine) handleConfigPush(_ context.Context, req wire.Request, out *uplink.Responder) {
	data, err := pushedYAML(req.Config)
	if err != nil {
		_ = out.Fail(wire.StatusBadRequest, "config revision refused: "+err.Error())
		return
	}
	res, err := e.ApplyConfig(data)
	if err != nil {
		e.log.Warn("config revision from central refused", "label", req.Revision, "err", err)
		_ = out.Fail(wire.StatusBadRequest, err.Error())
		return
	}
	e.log.Info("config revision from central", "label", req.Revision, "revision", res.Revision, "applied", res.Applied)
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

// cameraMotion is the motion config a camera's analyser runs now.
func (e *configEngine) cameraMotion(id string) (motion.Config, bool) {
	c := e.cams[id]
	if c == nil {
		return motion.Config{}, false
	}
	return c.MotionConfig(), true
}
