package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/conf"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/gates"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// Self-test check states.
const (
	Green = "green"
	Red   = "red"
)

// SelfTestReport is the installer's green/red answer to "is this entrance
// working?": every camera streaming and decoding, analysis keeping up, the
// disk writable within its budget, clocks in sync, central reachable and
// authenticated, every gate heard from.
type SelfTestReport struct {
	EdgeID   string          `json:"edge_id"`
	Time     time.Time       `json:"time"`
	Window   string          `json:"window"` // how long counters were watched
	Revision string          `json:"config_revision,omitempty"`
	OK       bool            `json:"ok"` // every check green
	Checks   []SelfTestCheck `json:"checks"`
}

// SelfTestCheck is one line of the report.
type SelfTestCheck struct {
	ID      string         `json:"id"`   // "camera:gate-north", "analysis", "disk", "clock", "central", "gate:north"
	Kind    string         `json:"kind"` // camera, analysis, disk, clock, central, gate
	Status  string         `json:"status"`
	Reason  string         `json:"reason"` // plain words
	Details map[string]any `json:"details,omitempty"`
}

// Red lists the red checks' reasons.
func (r SelfTestReport) Red() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status != Green {
			out = append(out, c.Reason)
		}
	}
	return out
}

// Thresholds of the self-test.
const (
	selfTestMaxFrameAge    = 5 * time.Second
	selfTestMaxClockOffset = 2 * time.Second
	defaultSelfTestWindow  = 3 * time.Second
)

// camClocks keeps, per camera, the stream time of the newest access unit
// against the edge's clock when it arrived: with RTCP time that is the
// camera clock's offset. Written on every unit without allocating.
type camClocks struct{ m sync.Map } // camera ID → *camClock

type camClock struct {
	mu      sync.Mutex
	arrival time.Time
	stream  time.Time
	source  string
}

func (c *camClocks) observe(cam string, au streams.AccessUnit) {
	v, ok := c.m.Load(cam)
	if !ok {
		v, _ = c.m.LoadOrStore(cam, &camClock{})
	}
	cc := v.(*camClock)
	now := time.Now()
	cc.mu.Lock()
	cc.arrival, cc.stream, cc.source = now, au.Time, au.TimeSource
	cc.mu.Unlock()
}

func (c *camClocks) get(cam string) (arrival, stream time.Time, source string) {
	v, ok := c.m.Load(cam)
	if !ok {
		return
	}
	cc := v.(*camClock)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.arrival, cc.stream, cc.source
}

// selfTester is the box's self-test: it judges every part of the box
// (cameras, analysis, disk, clock, central, gates), keeps the report and
// sends it to central. It sees the node only through narrow interfaces
// and funcs; the node makes it at start (newSelfTester).
type selfTester struct {
	conf     selfTestConfig   // the config in force: IDs, data dir, recording, NTP, gates, names
	cams     []selfTestCamera // the node's cameras, in config order
	camClock *camClocks       // each camera's newest stream time against its arrival
	clips    interface{ Stats() clips.Stats }
	up       selfTestUplink
	// gateStatus is every gate's state; ok false while the node has no
	// gate side.
	gateStatus func(ctx context.Context) (sts []gates.Status, ok bool, err error)
	// raise queues an alert for central (the node's alert owner).
	raise func(wire.Alert) bool

	running sync.Mutex // one self-test from the local API at a time
}

// selfTestCamera is a camera as the self-test watches it.
type selfTestCamera interface {
	ID() string
	Status() camera.Status
	Counts() camera.Counts
}

// selfTestUplink is the uplink's health as the self-test judges it.
type selfTestUplink interface {
	Connected() bool
	LastError() string
	ClockOffset() time.Duration
	ConfigRevision() string
}

// selfTestConfig is the config in force (configEngine).
type selfTestConfig interface {
	running() conf.Config
	cameraName(id string) string
}

// newSelfTester makes the node's self-test over its cameras, clip store,
// uplink, gate side (nil without gates) and alert owner (raise).
func newSelfTester(cfgs selfTestConfig, cams []*camera.Camera, camClock *camClocks, store interface{ Stats() clips.Stats },
	up selfTestUplink, g *gateSide, raise func(wire.Alert) bool) *selfTester {
	st := &selfTester{conf: cfgs, camClock: camClock, clips: store, up: up, raise: raise,
		gateStatus: func(ctx context.Context) ([]gates.Status, bool, error) {
			if g == nil {
				return nil, false, nil
			}
			sts, err := g.status(ctx)
			return sts, true, err
		}}
	for _, c := range cams {
		st.cams = append(st.cams, c)
	}
	return st
}

// cameraCounts is every camera's counters now, by camera ID: the same
// counters /metrics exports (streams/camera.Counts).
func (s *selfTester) cameraCounts() map[string]camera.Counts {
	out := make(map[string]camera.Counts, len(s.cams))
	for _, c := range s.cams {
		out[c.ID()] = c.Counts()
	}
	return out
}

// run watches the cameras' counters for window (default 3 s) and
// judges every part of the box.
func (s *selfTester) run(ctx context.Context, window time.Duration) SelfTestReport {
	if window <= 0 {
		window = defaultSelfTestWindow
	}
	before := s.cameraCounts()
	t := time.NewTimer(window)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	after := s.cameraCounts()
	now := time.Now()
	rep := SelfTestReport{EdgeID: s.conf.running().EdgeID, Time: now.UTC(), Window: window.String(), Revision: s.configRevision()}
	cams, w := s.cameraChecks(before, after, window, now)
	rep.Checks = append(cams, analysisCheck(len(s.cams), w, window))
	rep.Checks = append(rep.Checks, s.diskCheck(), s.clockCheck(w.offsets, w.clockProblems), s.centralCheck())
	rep.Checks = append(rep.Checks, s.gateChecks(ctx)...)
	rep.OK = true
	for _, c := range rep.Checks {
		rep.OK = rep.OK && c.Status == Green
	}
	return rep
}

// camWatch is what the cameras' checks found for the checks after them:
// analysis falling behind, and the cameras' clocks.
type camWatch struct {
	dropped       []string // "name count" of each camera that dropped frames
	totalDropped  float64
	offsets       map[string]string // camera ID → its clock's offset (RTCP time only)
	clockProblems []string
}

// cameraChecks judges each camera on its counters over the window.
func (s *selfTester) cameraChecks(before, after map[string]camera.Counts, window time.Duration, now time.Time) ([]SelfTestCheck, camWatch) {
	var checks []SelfTestCheck
	w := camWatch{offsets: map[string]string{}}
	for _, c := range s.cams {
		id := c.ID()
		d := after[id].Sub(before[id])
		arrival, streamT, source := s.camClock.get(id)
		age := time.Duration(-1)
		if !arrival.IsZero() {
			age = now.Sub(arrival)
		}
		name := s.conf.cameraName(id)
		checks = append(checks, cameraCheck(id, name, c.Status(), d, window, age))
		if d.Dropped > 0 {
			w.dropped = append(w.dropped, fmt.Sprintf("%s %d", name, int(d.Dropped)))
			w.totalDropped += float64(d.Dropped)
		}
		if source == streams.TimeRTCP && !streamT.IsZero() {
			off := streamT.Sub(arrival)
			w.offsets[id] = off.Round(time.Millisecond).String()
			if off.Abs() > selfTestMaxClockOffset {
				w.clockProblems = append(w.clockProblems, fmt.Sprintf("camera %s's clock is %s off (set its NTP server)", name, signed(off)))
			}
		}
	}
	return checks, w
}

// cameraCheck judges one camera: d is its counters over the window, age
// how old its newest frame is (-1: none yet).
func cameraCheck(id, name string, st camera.Status, d camera.Counts, window, age time.Duration) SelfTestCheck {
	secs := window.Seconds()
	in, analysed, decErr, drop := float64(d.FramesIn), float64(d.Analysed), float64(d.DecodeErrors), float64(d.Dropped)
	chk := SelfTestCheck{ID: "camera:" + id, Kind: "camera", Status: Green, Details: map[string]any{
		"fps_in": round1(in / secs), "fps_analysed": round1(analysed / secs), "decode_errors": decErr,
		"dropped": drop, "online": st.Online,
		"damaged":  float64(d.Damaged),
		"skipped":  float64(d.Skipped),
		"analysis": st.Analysis.State,
	}}
	if age >= 0 {
		chk.Details["last_frame_age_ms"] = age.Milliseconds()
	}
	switch {
	case !st.Online || in == 0:
		chk.Status = Red
		why := "no video in the last " + window.String()
		if st.Error != "" {
			why = st.Error
		}
		chk.Reason = fmt.Sprintf("camera %s is not streaming: %s", name, why)
	case age > selfTestMaxFrameAge:
		chk.Status, chk.Reason = Red, fmt.Sprintf("camera %s: the newest frame is %s old", name, age.Round(100*time.Millisecond))
	case analysed == 0 && decErr > 0:
		chk.Status, chk.Reason = Red, fmt.Sprintf("camera %s: video arrives but does not decode (%d errors in %s)", name, int(decErr), window)
	case analysed == 0:
		chk.Status, chk.Reason = Red, fmt.Sprintf("camera %s: video arrives but nothing was analysed in %s", name, window)
	case st.Analysis.State == camera.AnalysisDegraded:
		// The camera's own judgement over its health window: a
		// damaged stream analysed only in part, or on garbled pictures.
		chk.Status, chk.Reason = Red, fmt.Sprintf("camera %s: analysis degraded: %s", name, analysisDetail(st.Analysis))
	default:
		chk.Reason = fmt.Sprintf("camera %s streaming %.1f fps, decoding and analysing %.1f fps", name, in/secs, analysed/secs)
	}
	return chk
}

// analysisCheck judges whether analysis keeps up with the cameras.
func analysisCheck(cams int, w camWatch, window time.Duration) SelfTestCheck {
	an := SelfTestCheck{ID: "analysis", Kind: "analysis", Status: Green, Details: map[string]any{"dropped": w.totalDropped}}
	switch {
	case cams == 0:
		an.Status, an.Reason = Red, "no cameras are configured"
	case w.totalDropped > 0:
		an.Status, an.Reason = Red, "analysis is falling behind: frames dropped in "+window.String()+" ("+strings.Join(w.dropped, ", ")+"); use sub-streams or fewer cameras"
	default:
		an.Reason = fmt.Sprintf("analysis keeps up with %d camera(s)", cams)
	}
	return an
}

func (s *selfTester) diskCheck() SelfTestCheck {
	cfg := s.conf.running()
	chk := SelfTestCheck{ID: "disk", Kind: "disk", Status: Green, Details: map[string]any{}}
	probe := filepath.Join(cfg.DataDir, ".selftest-write")
	if err := writeSync(probe, []byte("vigil self-test\n")); err != nil {
		chk.Status, chk.Reason = Red, "the data disk is not writable: "+err.Error()
		return chk
	}
	os.Remove(probe)
	st := s.clips.Stats()
	floor := int64(cfg.Recording.MinFreeGiB * (1 << 30))
	if floor <= 0 {
		floor = 2 << 30
	}
	budget := int64(cfg.Recording.MaxGiBPerCamera*(1<<30)) * int64(len(cfg.Cameras))
	chk.Details["free_bytes"], chk.Details["floor_bytes"], chk.Details["recordings_bytes"] = st.DiskFree, floor, st.Bytes
	if budget > 0 {
		chk.Details["budget_bytes"] = budget
	}
	var active []string
	for _, c := range st.Conditions {
		if c.Active {
			active = append(active, c.Message)
		}
	}
	switch {
	case len(active) > 0:
		chk.Status, chk.Reason = Red, "recording has a problem: "+strings.Join(active, "; ")
	case st.DiskFree < floor:
		chk.Status, chk.Reason = Red, fmt.Sprintf("only %s free, below the %s the recorder keeps free", gib(st.DiskFree), gib(floor))
	default:
		chk.Reason = fmt.Sprintf("disk writable, %s free (recorder keeps %s free), recordings use %s", gib(st.DiskFree), gib(floor), gib(st.Bytes))
		if budget > 0 {
			chk.Reason += " of a " + gib(budget) + " budget"
		}
	}
	return chk
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *selfTester) clockCheck(camOffsets map[string]string, problems []string) SelfTestCheck {
	cfg := s.conf.running()
	chk := SelfTestCheck{ID: "clock", Kind: "clock", Status: Green, Details: map[string]any{}}
	if len(camOffsets) > 0 {
		chk.Details["camera_offsets"] = camOffsets
	}
	known, synced, maxErr := systemClockSync()
	sys := "the system clock's NTP state is unknown"
	if known {
		chk.Details["ntp_synchronised"] = synced
		if synced {
			sys = fmt.Sprintf("NTP keeps the system clock synchronised (max error %s)", (time.Duration(maxErr) * time.Microsecond).Round(time.Millisecond))
		} else {
			sys = "no NTP synchronisation of the system clock"
		}
	}
	var parts []string
	if len(cfg.NTP) > 0 {
		// The servers the installer named: this box's offset from the
		// first that answers.
		var errs []string
		asked := false
		for _, srv := range cfg.NTP {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			off, rtt, err := sntpOffset(ctx, srv)
			cancel()
			if err != nil {
				errs = append(errs, srv+": "+err.Error())
				continue
			}
			asked = true
			chk.Details["ntp_server"], chk.Details["ntp_offset_ms"], chk.Details["ntp_rtt_ms"] = srv, off.Milliseconds(), rtt.Milliseconds()
			if off.Abs() > selfTestMaxClockOffset {
				problems = append(problems, fmt.Sprintf("this box's clock is %s off NTP server %s", signed(-off), srv))
			} else {
				parts = append(parts, fmt.Sprintf("within %s of NTP server %s", off.Abs().Round(time.Millisecond), srv))
			}
			break
		}
		if !asked {
			chk.Details["ntp_errors"] = errs
			if !s.up.Connected() {
				problems = append(problems, "none of the NTP servers answered ("+strings.Join(errs, "; ")+")")
			} else {
				parts = append(parts, "no NTP server answered")
			}
		}
	}
	if s.up.Connected() {
		off := s.up.ClockOffset()
		chk.Details["central_offset_ms"] = off.Milliseconds()
		if off.Abs() > selfTestMaxClockOffset {
			problems = append([]string{fmt.Sprintf("this box's clock is %s off central's (set NTP servers)", signed(-off))}, problems...)
		} else {
			parts = append(parts, fmt.Sprintf("within %s of central", off.Abs().Round(time.Millisecond)))
		}
	} else if known && !synced {
		problems = append(problems, "the clock cannot be checked: no NTP synchronisation and central is not connected")
	}
	parts = append(parts, sys)
	if len(camOffsets) > 0 && len(problems) == 0 {
		parts = append(parts, fmt.Sprintf("%d camera clock(s) within %s", len(camOffsets), selfTestMaxClockOffset))
	}
	if len(problems) > 0 {
		chk.Status, chk.Reason = Red, strings.Join(problems, "; ")
		return chk
	}
	chk.Reason = "clock " + strings.Join(parts, "; ")
	return chk
}

func (s *selfTester) centralCheck() SelfTestCheck {
	cfg := s.conf.running()
	chk := SelfTestCheck{ID: "central", Kind: "central", Status: Green}
	switch {
	case cfg.Central.URL == "":
		chk.Status, chk.Reason = Red, "not enrolled with central (no central URL)"
	case s.up.Connected():
		chk.Reason = "central reachable and this edge authenticated"
	default:
		chk.Status = Red
		last := s.up.LastError()
		switch {
		case last == "":
			chk.Reason = "not connected to central yet"
		case strings.Contains(last, uplink.ErrUnauthorized.Error()):
			chk.Reason = "central refuses this edge's credential (enrol again)"
		default:
			chk.Reason = "central not reachable: " + last
		}
	}
	return chk
}

// gateChecks: each configured gate must have been heard from (a door
// state, a grant or a device report) since the edge started.
func (s *selfTester) gateChecks(ctx context.Context) []SelfTestCheck {
	cfg := s.conf.running()
	if len(cfg.Gates) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sts, ok, err := s.gateStatus(ctx)
	if !ok {
		return nil
	}
	if err != nil {
		return []SelfTestCheck{{ID: "gates", Kind: "gate", Status: Red, Reason: "the gate engine does not answer: " + err.Error()}}
	}
	var out []SelfTestCheck
	for _, st := range sts {
		name := st.Name
		if name == "" {
			name = st.Gate
		}
		seen := st.Door != "" && st.Door != "unknown" || !st.LastGrant.IsZero()
		var last time.Time
		for _, d := range st.Devices {
			if d.LastSeen.After(last) {
				last = d.LastSeen
			}
		}
		seen = seen || !last.IsZero()
		chk := SelfTestCheck{ID: "gate:" + st.Gate, Kind: "gate", Status: Green, Details: map[string]any{"door": st.Door}}
		if seen {
			chk.Reason = fmt.Sprintf("gate %s heard from (door %s)", name, st.Door)
		} else {
			chk.Status, chk.Reason = Red, fmt.Sprintf("gate %s: no event seen yet — open the door or press the button once", name)
		}
		out = append(out, chk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func gib(b int64) string {
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}

func signed(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// sendSelfTest keeps the report in the data dir and sends it to central
// as an event (green when all is well, red otherwise) with the red reasons.
func (s *selfTester) send(rep SelfTestReport) error {
	cfg := s.conf.running()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSync(filepath.Join(cfg.DataDir, "selftest.json"), b); err != nil {
		return fmt.Errorf("keeping the self-test report: %w", err)
	}
	sev, summary := wire.Green, fmt.Sprintf("Self-test passed: %d checks green", len(rep.Checks))
	if !rep.OK {
		red := rep.Red()
		sev, summary = wire.Red, fmt.Sprintf("Self-test failed (%d red): %s", len(red), strings.Join(red, "; "))
	}
	a := wire.Alert{ID: newAlertID(cfg.EdgeID, rep.Time), EdgeID: cfg.EdgeID, SiteID: cfg.SiteID,
		Source: "selftest", Kind: "system.selftest", Severity: sev, Time: rep.Time, Summary: summary}
	if !s.raise(a) {
		return errors.New("the self-test result could not be queued for central")
	}
	return nil
}

// last reads the report the last POST kept, if any.
func (s *selfTester) last() (SelfTestReport, bool) {
	var rep SelfTestReport
	b, err := os.ReadFile(filepath.Join(s.conf.running().DataDir, "selftest.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		return rep, false
	}
	return rep, true
}

// selfTestHandler: GET runs a self-test and answers the report; POST also
// keeps it on the box and sends it to central. ?window=2s sets how long
// the cameras are watched (at most 30 s).
func (s *selfTester) handler(w http.ResponseWriter, r *http.Request) {
	window := defaultSelfTestWindow
	if q := r.URL.Query().Get("window"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d < time.Second || d > 30*time.Second {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "window must be a duration from 1s to 30s, e.g. 3s"})
			return
		}
		window = d
	}
	// One self-test at a time: each watches the cameras for its window,
	// and a kept one is an alert at central.
	if !s.running.TryLock() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "a self-test is running; try again when it ends"})
		return
	}
	defer s.running.Unlock()
	rep := s.run(r.Context(), window)
	if r.Method == http.MethodPost {
		if err := s.send(rep); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "report": rep})
			return
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// configRevision is the running config revision ("" before the first).
func (s *selfTester) configRevision() string { return s.up.ConfigRevision() }

func analysisDetail(a camera.AnalysisStatus) string {
	return fmt.Sprintf("analysed %.1f of %.1f fps expected, %.0f%% of recent pictures damaged", a.AnalysedFPS, a.ExpectedFPS, 100*a.DamagedRatio)
}
