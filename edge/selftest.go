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

	"github.com/vigil-perimeter/vigil/edge/uplink"
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

// cameraCounts is every camera's counters now, by camera ID: the same
// counters /metrics exports (streams/camera.Counts).
func (n *Node) cameraCounts() map[string]camera.Counts {
	out := make(map[string]camera.Counts, len(n.cams))
	for _, c := range n.cams {
		out[c.ID()] = c.Counts()
	}
	return out
}

// SelfTest watches the cameras' counters for window (default 3 s) and
// judges every part of the box.
func (n *Node) SelfTest(ctx context.Context, window time.Duration) SelfTestReport {
	if window <= 0 {
		window = defaultSelfTestWindow
	}
	before := n.cameraCounts()
	t := time.NewTimer(window)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	after := n.cameraCounts()
	now := time.Now()
	rep := SelfTestReport{EdgeID: n.cfg.EdgeID, Time: now.UTC(), Window: window.String(), Revision: n.configRevision()}
	secs := window.Seconds()

	// Cameras.
	var dropped []string
	var totalDropped float64
	camOffsets := map[string]string{}
	var clockProblems []string
	for _, c := range n.cams {
		id := c.ID()
		st := c.Status()
		d := after[id].Sub(before[id])
		in, analysed, decErr, drop := float64(d.FramesIn), float64(d.Analysed), float64(d.DecodeErrors), float64(d.Dropped)
		arrival, streamT, source := n.camClock.get(id)
		age := time.Duration(-1)
		if !arrival.IsZero() {
			age = now.Sub(arrival)
		}
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
		name := n.byID[id].Name
		if name == "" {
			name = id
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
		rep.Checks = append(rep.Checks, chk)
		if drop > 0 {
			dropped = append(dropped, fmt.Sprintf("%s %d", name, int(drop)))
			totalDropped += drop
		}
		if source == streams.TimeRTCP && !streamT.IsZero() {
			off := streamT.Sub(arrival)
			camOffsets[id] = off.Round(time.Millisecond).String()
			if off.Abs() > selfTestMaxClockOffset {
				clockProblems = append(clockProblems, fmt.Sprintf("camera %s's clock is %s off (set its NTP server)", name, signed(off)))
			}
		}
	}

	// Analysis keeping up.
	an := SelfTestCheck{ID: "analysis", Kind: "analysis", Status: Green, Details: map[string]any{"dropped": totalDropped}}
	switch {
	case len(n.cams) == 0:
		an.Status, an.Reason = Red, "no cameras are configured"
	case totalDropped > 0:
		an.Status, an.Reason = Red, "analysis is falling behind: frames dropped in "+window.String()+" ("+strings.Join(dropped, ", ")+"); use sub-streams or fewer cameras"
	default:
		an.Reason = fmt.Sprintf("analysis keeps up with %d camera(s)", len(n.cams))
	}
	rep.Checks = append(rep.Checks, an)

	rep.Checks = append(rep.Checks, n.diskCheck(), n.clockCheck(camOffsets, clockProblems), n.centralCheck())
	rep.Checks = append(rep.Checks, n.gateChecks(ctx)...)

	rep.OK = true
	for _, c := range rep.Checks {
		rep.OK = rep.OK && c.Status == Green
	}
	return rep
}

func (n *Node) diskCheck() SelfTestCheck {
	chk := SelfTestCheck{ID: "disk", Kind: "disk", Status: Green, Details: map[string]any{}}
	probe := filepath.Join(n.cfg.DataDir, ".selftest-write")
	if err := writeSync(probe, []byte("vigil self-test\n")); err != nil {
		chk.Status, chk.Reason = Red, "the data disk is not writable: "+err.Error()
		return chk
	}
	os.Remove(probe)
	st := n.clips.Stats()
	floor := int64(n.cfg.Recording.MinFreeGiB * (1 << 30))
	if floor <= 0 {
		floor = 2 << 30
	}
	budget := int64(n.cfg.Recording.MaxGiBPerCamera*(1<<30)) * int64(len(n.cfg.Cameras))
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

func (n *Node) clockCheck(camOffsets map[string]string, problems []string) SelfTestCheck {
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
	if len(n.cfg.NTP) > 0 {
		// The servers the installer named: this box's offset from the
		// first that answers.
		var errs []string
		asked := false
		for _, srv := range n.cfg.NTP {
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
			if !n.up.Connected() {
				problems = append(problems, "none of the NTP servers answered ("+strings.Join(errs, "; ")+")")
			} else {
				parts = append(parts, "no NTP server answered")
			}
		}
	}
	if n.up.Connected() {
		off := n.up.ClockOffset()
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

func (n *Node) centralCheck() SelfTestCheck {
	chk := SelfTestCheck{ID: "central", Kind: "central", Status: Green}
	switch {
	case n.cfg.Central.URL == "":
		chk.Status, chk.Reason = Red, "not enrolled with central (no central URL)"
	case n.up.Connected():
		chk.Reason = "central reachable and this edge authenticated"
	default:
		chk.Status = Red
		last := n.up.LastError()
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
func (n *Node) gateChecks(ctx context.Context) []SelfTestCheck {
	if n.gates == nil || len(n.cfg.Gates) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	sts, err := n.gates.status(ctx)
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
func (n *Node) sendSelfTest(rep SelfTestReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSync(filepath.Join(n.cfg.DataDir, "selftest.json"), b); err != nil {
		return fmt.Errorf("keeping the self-test report: %w", err)
	}
	sev, summary := wire.Green, fmt.Sprintf("Self-test passed: %d checks green", len(rep.Checks))
	if !rep.OK {
		red := rep.Red()
		sev, summary = wire.Red, fmt.Sprintf("Self-test failed (%d red): %s", len(red), strings.Join(red, "; "))
	}
	a := wire.Alert{ID: newAlertID(n.cfg.EdgeID, rep.Time), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID,
		Source: "selftest", Kind: "system.selftest", Severity: sev, Time: rep.Time, Summary: summary}
	if !n.raise(a) {
		return errors.New("the self-test result could not be queued for central")
	}
	return nil
}

// LastSelfTest reads the report the last POST kept, if any.
func (n *Node) LastSelfTest() (SelfTestReport, bool) {
	var rep SelfTestReport
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "selftest.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		return rep, false
	}
	return rep, true
}

// selfTestHandler: GET runs a self-test and answers the report; POST also
// keeps it on the box and sends it to central. ?window=2s sets how long
// the cameras are watched (at most 30 s).
func (n *Node) selfTestHandler(w http.ResponseWriter, r *http.Request) {
	window := defaultSelfTestWindow
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second || d > 30*time.Second {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "window must be a duration from 1s to 30s, e.g. 3s"})
			return
		}
		window = d
	}
	// One self-test at a time: each watches the cameras for its window,
	// and a kept one is an alert at central.
	if !n.selfTestRunning.TryLock() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "a self-test is running; try again when it ends"})
		return
	}
	defer n.selfTestRunning.Unlock()
	rep := n.SelfTest(r.Context(), window)
	if r.Method == http.MethodPost {
		if err := n.sendSelfTest(rep); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "report": rep})
			return
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// configRevision is the running config revision ("" before the first).
func (n *Node) configRevision() string { return n.up.ConfigRevision() }

func analysisDetail(a camera.AnalysisStatus) string {
	return fmt.Sprintf("analysed %.1f of %.1f fps expected, %.0f%% of recent pictures damaged", a.AnalysedFPS, a.ExpectedFPS, 100*a.DamagedRatio)
}
