package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/edge"
	gatesim "github.com/vigil-perimeter/vigil/gates/sim"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/internal/testrig/rig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestGateForcedEndToEnd: `vigil sim gate`'s forced scenario, through the
// signed webhook, the gate's state machine, the outbox and uplink, central
// and its console websocket. Every forced opening must reach the console
// as one red alert with a picture from the gate's camera, within 1 s of
// the door opening (p99). The figures go to BENCHMARKS.md.
func TestGateForcedEndToEnd(t *testing.T) {
	events := forcedEvents()
	g := startForcedGate(t) // a camera, central, an edge watching the gate, a console

	// Force the gate again and again: each opening is one red alert on
	// the console, and nothing extra follows.
	run := g.forceRepeatedly(t, events)
	if len(run.forced) != events {
		t.Fatalf("%d forced events gave %d red alerts on the console, want one each", events, len(run.forced))
	}

	// Each alert is red, timed by its event, and reaches central with the
	// gate camera's picture (with it, or in an update right after).
	lat := g.checkForcedAlerts(t, run)

	// Within 1 s of the door opening (p99), unless this box stalled.
	judgeGateLatency(t, run.forced, lat, g.stalls)

	// The edge API links each alert to the camera's pinned video; the
	// gate's figures are on /metrics.
	g.checkEdgeGateState(t)

	// A motion alert on the gate's camera carries the gate's state.
	g.checkMotionCarriesGate(t)

	// Central sees the gate in the edge's heartbeat.
	g.waitCentralSeesGate(t)
}

// forcedEvents is how many times TestGateForcedEndToEnd forces the gate:
// 200, 20 with -short, or VIGIL_GATE_E2E_EVENTS.
func forcedEvents() int {
	events := 200
	if testing.Short() {
		events = 20
	}
	if v := os.Getenv("VIGIL_GATE_E2E_EVENTS"); v != "" {
		events, _ = strconv.Atoi(v)
	}
	return events
}

// forcedGate is central, an edge with a camera on a gate whose controller
// posts to the signed webhook, and a console watching central.
type forcedGate struct {
	srv      *rig.Central
	node     *edge.Node
	secret   string
	motion   chan wire.Alert       // motion alerts the edge raised
	arrivals chan gateConsoleAlert // alerts and updates on the console
	stalls   *stallMeter
	ctx      context.Context
}

// forcedRun is what forcing the gate gave.
type forcedRun struct {
	sent   []time.Time        // when each forced opening was sent
	forced []gateConsoleAlert // the gate.forced alerts on the console, by time
	later  map[string]string  // alert ID → picture that followed in an update
}

func startForcedGate(t *testing.T) *forcedGate {
	t.Helper()
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	g := &forcedGate{srv: startGateCentral(t), secret: randomSecret(t), motion: make(chan wire.Alert, 64)}
	g.node = rig.StartEdge(t, edge.Config{
		EdgeID: edgeID, SiteID: siteID, Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: g.srv.Uplink(time.Second),
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate")}},
		Gates: []edge.GateConfig{{
			ID: "north-gate", Name: "North gate", Cameras: []string{"gate-cam"},
			Arming: edge.ArmingConfig{Always: true},
			// Default grant grace (300 ms). A short debounce and fold
			// window let the test force the gate every 600 ms and get a
			// new alert each time instead of a count on one alert; the
			// path of each alert is the same as with the defaults.
			Debounce: config.Duration(200 * time.Millisecond), FoldWindow: config.Duration(100 * time.Millisecond),
		}},
		GateInputs: edge.GateInputsConfig{Webhook: edge.WebhookInputConfig{Enabled: true,
			Controllers: []edge.WebhookControllerConfig{{ID: "sim-controller", Secret: g.secret, Gates: []string{"north-gate"}}}}},
	}, edge.Options{UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: 2 * time.Second,
		OnAlert: func(a wire.Alert) {
			if a.Kind == "motion" {
				select {
				case g.motion <- a:
				default:
				}
			}
		}})

	ctx, cancel := context.WithCancel(context.Background())
	g.ctx = ctx
	g.arrivals = make(chan gateConsoleAlert, 4*forcedEvents()+64)
	msgs := make(chan rig.ConsoleMsg, 64)
	conDone := make(chan struct{})
	go func() { defer close(conDone); rig.WatchConsole(ctx, g.srv.Addr(), msgs, "alert", "update") }()
	go func() {
		for m := range msgs {
			var a gateConsoleAlert
			if json.Unmarshal(m.Alert, &a) != nil {
				continue
			}
			a.update, a.arrived = m.Type == "update", m.Arrived
			select {
			case g.arrivals <- a:
			case <-ctx.Done():
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-conDone; close(msgs) })

	// The camera must be decoding before the gate is forced, or the first
	// alerts would go without a picture. (The edge checks central's
	// tokens with the key the uplink brings.)
	deadline := time.Now().Add(15 * time.Second)
	for !g.node.Uplink().Connected() || !cameraOnline(t, g.srv, g.node.Addr()) {
		if time.Now().After(deadline) {
			t.Fatal("camera or uplink not up within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	g.stalls = startStallMeter(ctx)
	return g
}

// forceRepeatedly forces the gate events times through the controller's
// signed webhook, one opening at a time: the next is sent once the last
// alert is on the console and the door has been shut longer than the
// debounce, so a late sender (a loaded CI box) cannot make two openings
// one flap of the contact. It then waits 1.5 s for anything extra.
func (g *forcedGate) forceRepeatedly(t *testing.T, events int) forcedRun {
	t.Helper()
	s, err := gatesim.New(gatesim.Config{WebhookURL: "http://" + g.node.Addr() + "/api/v1/gates/events", Controller: "sim-controller",
		Secret: g.secret, Gate: "north-gate", Pause: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const period = 600 * time.Millisecond
	run := forcedRun{sent: make([]time.Time, 0, events), later: map[string]string{}}
	take := func(a gateConsoleAlert) {
		switch {
		case a.Kind != "gate.forced":
		case a.update:
			if u := a.picture(); u != "" && run.later[a.ID] == "" {
				run.later[a.ID] = u
			}
		default:
			// The alert names the gate's camera and the clip pinned for it.
			if len(a.Links) != 1 || a.Links[0].ClipFrom.IsZero() || !a.Links[0].ClipFrom.Before(a.Time) || !a.Links[0].ClipTo.After(a.Time) {
				t.Errorf("forced alert %s links %+v, want the gate's camera with a clip around %v", a.ID, a.Links, a.Time)
			}
			run.forced = append(run.forced, a)
		}
	}
	next := time.Now()
	for i := range events {
		time.Sleep(time.Until(next))
		run.sent = append(run.sent, time.Now())
		if err := s.Run(g.ctx, "forced"); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		closed := time.Now()
		timeout := time.After(5 * time.Second)
	wait:
		for len(run.forced) <= i {
			select {
			case a := <-g.arrivals:
				take(a)
			case <-timeout:
				break wait
			}
		}
		next = run.sent[i].Add(period)
		if shut := closed.Add(300 * time.Millisecond); shut.After(next) {
			next = shut
		}
	}
	// Nothing extra may follow.
	extra := time.After(1500 * time.Millisecond)
	for {
		select {
		case a := <-g.arrivals:
			take(a)
		case <-extra:
			slices.SortFunc(run.forced, func(a, b gateConsoleAlert) int { return a.Time.Compare(b.Time) })
			return run
		}
	}
}

// checkForcedAlerts checks each forced alert (red, from the gate, timed
// by its event) and its picture at central (a JPEG from the gate's
// 640-wide camera), and returns each one's latency, event time → console.
func (g *forcedGate) checkForcedAlerts(t *testing.T, run forcedRun) []time.Duration {
	t.Helper()
	lat := make([]time.Duration, 0, len(run.forced))
	followed := 0 // alerts whose picture came in an update after them
	for i, a := range run.forced {
		if a.Severity != "red" || a.Source != "north-gate" {
			t.Errorf("alert %s: severity %q source %q, want red from north-gate", a.ID, a.Severity, a.Source)
		}
		// The alert's time is the event's (the controller's clock, here
		// the sender's): within the request that carried it.
		if d := a.Time.Sub(run.sent[i]); d < 0 || d > 500*time.Millisecond {
			t.Errorf("alert %d at %v is %v after its event was sent", i, a.Time, d)
		}
		lat = append(lat, a.arrived.Sub(a.Time)) // in the order of forced
		pic := a.SnapshotURL
		if pic == "" {
			pic = run.later[a.ID]
			followed++
		}
		if pic == "" {
			t.Errorf("alert %s has no picture, neither with it nor after it", a.ID)
			continue
		}
		resp, body := g.srv.Do(http.MethodGet, pic, nil)
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Errorf("alert %s: snapshot is not a JPEG (%s): %v", a.ID, resp.Status, err)
		} else if w := img.Bounds().Dx(); w != 640 {
			t.Errorf("alert %s: snapshot %v wide, want the camera's 640", a.ID, w)
		}
	}
	t.Logf("%d of %d alerts carried the camera's picture; %d got it in an update right after (the camera was slower than the alert's picture budget)", len(lat)-followed, len(lat), followed)
	return lat
}

// judgeGateLatency: the 1 s promise is the pipeline's. When this box
// itself stalls (a shared CI machine: every goroutine of the process late
// by the same amount, seen by the stall meter), the events caught in a
// stall are left out of the verdict, and if too many were, there is no
// verdict. Speed is judged by `make bench` (VIGIL_BENCH=1: this test
// alone, no race detector); under `make test` every package shares two
// cores and the figures are only logged.
func judgeGateLatency(t *testing.T, forced []gateConsoleAlert, lat []time.Duration, stalls *stallMeter) {
	t.Helper()
	p50, p99, worst := percentiles(lat)
	t.Logf("%d forced openings → red alerts on the console: p50 %v, p99 %v, max %v (event time → console websocket; grant grace 300 ms included)",
		len(lat), p50, p99, worst)
	var judged []time.Duration
	for i, a := range forced {
		if stalls.worst(a.Time, a.arrived) < stallLimit {
			judged = append(judged, lat[i])
		}
	}
	bench := os.Getenv("VIGIL_BENCH") == "1"
	switch _, jp99, _ := percentiles(judged); {
	case !bench:
		t.Logf("p99 %v over the %d of %d events this box did not stall in (judged against 1 s by make bench)", jp99, len(judged), len(lat))
	case len(judged) < len(lat)*9/10:
		t.Logf("not judging the 1 s limit: this box stalled (a tick late by %v or more) during %d of %d events", stallLimit, len(lat)-len(judged), len(lat))
	case jp99 >= time.Second:
		t.Errorf("p99 %v over the %d events this box did not stall in: a forced gate must reach the console within 1 s", jp99, len(judged))
	default:
		t.Logf("p99 %v over the %d of %d events this box did not stall in (limit 1 s)", jp99, len(judged), len(lat))
	}
}

// checkEdgeGateState: the edge API shows the gate closed and armed and
// links the last alert to the camera's pinned video; /metrics has the
// gate's series.
func (g *forcedGate) checkEdgeGateState(t *testing.T) {
	t.Helper()
	var st struct {
		Gates []struct {
			Gate  string `json:"gate"`
			Door  string `json:"door"`
			Armed bool   `json:"armed"`
		} `json:"gates"`
		Recent []edge.GateAlertLink `json:"recent_alerts"`
	}
	g.srv.EdgeJSON(edgeID, "http://"+g.node.Addr()+"/api/v1/gates", &st)
	if len(st.Gates) != 1 || st.Gates[0].Gate != "north-gate" || !st.Gates[0].Armed || st.Gates[0].Door != "closed" {
		t.Errorf("gate status %+v", st.Gates)
	}
	if len(st.Recent) == 0 {
		t.Fatal("no recent gate alerts on the edge API")
	}
	last := st.Recent[len(st.Recent)-1]
	if len(last.Cameras) != 1 || last.Cameras[0].Camera != "gate-cam" || !last.Cameras[0].Snapshot || last.Cameras[0].PinID != last.AlertID ||
		!last.Cameras[0].ClipFrom.Before(last.Time) || !last.Cameras[0].ClipTo.After(last.Time) {
		t.Errorf("alert link %+v", last)
	}
	metrics := edgeText(t, g.srv, "http://"+g.node.Addr()+"/metrics")
	for _, m := range []string{`vigil_gate_open{gate="north-gate"} 0`, `vigil_gate_armed{gate="north-gate"} 1`,
		`vigil_gate_alerts_total{cause="forced",gate="north-gate",severity="red"}`, `vigil_gate_webhook_requests_total{result="ok"}`,
		"vigil_gate_alert_delay_seconds_count"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// checkMotionCarriesGate: a motion alert on the gate's camera names the
// gate's state in its summary and carries it.
func (g *forcedGate) checkMotionCarriesGate(t *testing.T) {
	t.Helper()
	select {
	case a := <-g.motion:
		if !strings.Contains(a.Summary, " · North gate: ") || !strings.Contains(a.Summary, ", armed") {
			t.Errorf("motion alert on the gate's camera: %q lacks the gate's state", a.Summary)
		}
		if a.Gate == nil || a.Gate.Gate != "north-gate" || !a.Gate.Armed || a.Gate.Door == "" {
			t.Errorf("motion alert on the gate's camera: gate state %+v, want north-gate, armed", a.Gate)
		}
		t.Logf("motion alert: %s", a.Summary)
	case <-time.After(20 * time.Second):
		t.Error("no motion alert on the gate's camera within 20 s")
	}
}

// waitCentralSeesGate: central's view of the edge has the gate, online,
// from the edge's heartbeat (every 10 s).
func (g *forcedGate) waitCentralSeesGate(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(25 * time.Second)
	for {
		var e struct {
			Gates []wire.GateStatus `json:"gates"`
		}
		resp, body := g.srv.Do(http.MethodGet, "/api/v1/edges/"+edgeID, nil)
		err := json.Unmarshal(body, &e)
		if err == nil && resp.StatusCode == http.StatusOK && len(e.Gates) == 1 && e.Gates[0].ID == "north-gate" && e.Gates[0].Online && e.Gates[0].State != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("central's view of the edge has gates %+v, want north-gate online", e.Gates)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// gateConsoleAlert is a new alert as the console websocket delivers it.
type gateConsoleAlert struct {
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Kind        string          `json:"kind"`
	Severity    string          `json:"severity"`
	Time        time.Time       `json:"time"`
	Summary     string          `json:"summary"`
	SnapshotURL string          `json:"snapshot_url"`
	Links       []wire.Link     `json:"links"`
	Gate        *wire.GateState `json:"gate"`
	Updates     []struct {
		SnapshotURL string `json:"snapshot_url"`
	} `json:"updates"`
	update  bool // an update of the alert, not the alert
	arrived time.Time
}

// picture is the URL of the alert's picture: its own, else the first that
// followed in an update.
func (a gateConsoleAlert) picture() string {
	if a.SnapshotURL != "" {
		return a.SnapshotURL
	}
	for _, u := range a.Updates {
		if u.SnapshotURL != "" {
			return u.SnapshotURL
		}
	}
	return ""
}

// edgeText is the body of GET u on edge gate-1's local API (a token
// central issued).
func edgeText(t *testing.T, srv *rig.Central, u string) string {
	t.Helper()
	resp, err := srv.EdgeGet(edgeID, u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

func randomSecret(t *testing.T) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// stallLimit: a 20 ms tick this late means the whole process stood still.
const stallLimit = 250 * time.Millisecond

// stallMeter records when this process was not scheduled: a ticker's
// lateness is what every goroutine of the process suffered then.
type stallMeter struct {
	mu    sync.Mutex
	marks []stallMark
}

type stallMark struct {
	at   time.Time // when the late tick ran
	late time.Duration
}

func startStallMeter(ctx context.Context) *stallMeter {
	m := &stallMeter{}
	go func() {
		const every = 20 * time.Millisecond
		tick := time.NewTicker(every)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				now = time.Now()
				if late := now.Sub(last) - every; late > 50*time.Millisecond {
					m.mu.Lock()
					m.marks = append(m.marks, stallMark{now, late})
					m.mu.Unlock()
				}
				last = now
			}
		}
	}()
	return m
}

// worst is the longest stall that overlapped [from, to].
func (m *stallMeter) worst(from, to time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var w time.Duration
	for _, s := range m.marks {
		if s.at.After(from) && s.at.Add(-s.late).Before(to) {
			w = max(w, s.late)
		}
	}
	return w
}

// percentiles returns p50, p99 (nearest rank) and the maximum, in ms.
func percentiles(d []time.Duration) (p50, p99, worst time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(v time.Duration) time.Duration { return v.Round(time.Millisecond) }
	return r(s[len(s)/2]), r(s[(len(s)*99+99)/100-1]), r(s[len(s)-1])
}
