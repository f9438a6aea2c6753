package edge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/gates/gpio"
	gatesim "github.com/vigil-perimeter/vigil/gates/sim"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

// The admin bearer token lets the test's console read alerts and
// snapshots whether or not central asks consoles to log in.
const gateAdminToken = "gate-test-admin-token-0123456789"

func startGateCentral(t *testing.T) *central.Server {
	t.Helper()
	srv, err := central.New(central.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AdminTokenSHA256: central.HashToken(gateAdminToken),
		EdgeHub: central.EdgeHubConfig{Listen: "127.0.0.1:0", SelfSignedHosts: []string{"127.0.0.1"}},
		Edges:   []central.EdgeConfig{{ID: "gate-1", SiteID: "village/north", TokenSHA256: central.HashToken(token)}}}, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
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

// watchConsole reads central's console websocket until ctx ends and sends
// every new alert and update, stamped with its arrival time.
func watchConsole(ctx context.Context, t *testing.T, addr string, out chan<- gateConsoleAlert) {
	hdr := http.Header{"Authorization": {"Bearer " + gateAdminToken}}
	var seq uint64
	for ctx.Err() == nil {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, fmt.Sprintf("ws://%s/api/v1/console/ws?since=%d", addr, seq), hdr)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for {
			var m struct {
				Type  string           `json:"type"`
				Seq   uint64           `json:"seq"`
				Alert gateConsoleAlert `json:"alert"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				break
			}
			if m.Seq > seq {
				seq = m.Seq
			}
			if m.Type != "alert" && m.Type != "update" {
				continue
			}
			m.Alert.update = m.Type == "update"
			m.Alert.arrived = time.Now()
			select {
			case out <- m.Alert:
			case <-ctx.Done():
			}
		}
		stop()
		ws.Close()
	}
}

func randomSecret(t *testing.T) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestGateForcedEndToEnd: `vigil sim gate`'s forced scenario, through the
// signed webhook, the gate's state machine, the outbox and uplink, central
// and its console websocket. Every forced opening must reach the console
// as one red alert with a picture from the gate's camera, within 1 s of
// the door opening (p99). The figures go to BENCHMARKS.md.
func TestGateForcedEndToEnd(t *testing.T) {
	events := 200
	if testing.Short() {
		events = 20
	}
	if v := os.Getenv("VIGIL_GATE_E2E_EVENTS"); v != "" {
		events, _ = strconv.Atoi(v)
	}
	clip, _ := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	srv := startGateCentral(t)
	secret := randomSecret(t)

	motion := make(chan wire.Alert, 64)
	cfg := edge.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: hubURL(srv), Pin: hubPin(srv), Token: token, BackoffMax: config.Duration(time.Second)},
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
			Controllers: []edge.WebhookControllerConfig{{ID: "sim-controller", Secret: secret, Gates: []string{"north-gate"}}}}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: 2 * time.Second,
		OnAlert: func(a wire.Alert) {
			if a.Kind == "motion" {
				select {
				case motion <- a:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arrivals := make(chan gateConsoleAlert, 4*events+64)
	conDone := make(chan struct{})
	go func() { defer close(conDone); watchConsole(ctx, t, srv.Addr(), arrivals) }()
	defer func() { cancel(); <-conDone }()

	// The camera must be decoding before the gate is forced, or the first
	// alerts would go without a picture.
	deadline := time.Now().Add(15 * time.Second)
	for !cameraOnline(t, node.Addr()) || !node.Uplink().Connected() {
		if time.Now().After(deadline) {
			t.Fatal("camera or uplink not up within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)

	stalls := startStallMeter(ctx)
	webhookURL := "http://" + node.Addr() + "/api/v1/gates/events"
	s, err := gatesim.New(gatesim.Config{WebhookURL: webhookURL, Controller: "sim-controller", Secret: secret, Gate: "north-gate", Pause: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// One forced opening at a time: the next is sent once the last alert
	// is on the console and the door has been shut longer than the
	// debounce, so a late sender (a loaded CI box) cannot make two
	// openings one flap of the contact.
	const period = 600 * time.Millisecond
	sent := make([]time.Time, 0, events)
	var forced []gateConsoleAlert
	later := map[string]string{} // alert ID → picture that followed in an update
	take := func(a gateConsoleAlert) {
		switch {
		case a.Kind != "gate.forced":
		case a.update:
			if u := a.picture(); u != "" && later[a.ID] == "" {
				later[a.ID] = u
			}
		default:
			// The alert names the gate's camera and the clip pinned for it.
			if len(a.Links) != 1 || a.Links[0].ClipFrom.IsZero() || !a.Links[0].ClipFrom.Before(a.Time) || !a.Links[0].ClipTo.After(a.Time) {
				t.Errorf("forced alert %s links %+v, want the gate's camera with a clip around %v", a.ID, a.Links, a.Time)
			}
			forced = append(forced, a)
		}
	}
	next := time.Now()
	for i := range events {
		time.Sleep(time.Until(next))
		sent = append(sent, time.Now())
		if err := s.Run(ctx, "forced"); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		closed := time.Now()
		timeout := time.After(5 * time.Second)
	wait:
		for len(forced) <= i {
			select {
			case a := <-arrivals:
				take(a)
			case <-timeout:
				break wait
			}
		}
		next = sent[i].Add(period)
		if shut := closed.Add(300 * time.Millisecond); shut.After(next) {
			next = shut
		}
	}
	// Nothing extra may follow.
	extra := time.After(1500 * time.Millisecond)
drain:
	for {
		select {
		case a := <-arrivals:
			take(a)
		case <-extra:
			break drain
		}
	}
	if len(forced) != events {
		t.Fatalf("%d forced events gave %d red alerts on the console, want one each", events, len(forced))
	}
	slices.SortFunc(forced, func(a, b gateConsoleAlert) int { return a.Time.Compare(b.Time) })
	lat := make([]time.Duration, 0, events)
	followed := 0 // alerts whose picture came in an update after them
	client := &http.Client{Timeout: 10 * time.Second}
	for i, a := range forced {
		if a.Severity != "red" || a.Source != "north-gate" {
			t.Errorf("alert %s: severity %q source %q, want red from north-gate", a.ID, a.Severity, a.Source)
		}
		// The alert's time is the event's (the controller's clock, here
		// the sender's): within the request that carried it.
		if d := a.Time.Sub(sent[i]); d < 0 || d > 500*time.Millisecond {
			t.Errorf("alert %d at %v is %v after its event was sent", i, a.Time, d)
		}
		lat = append(lat, a.arrived.Sub(a.Time)) // in the order of forced
		pic := a.SnapshotURL
		if pic == "" {
			pic = later[a.ID]
			followed++
		}
		if pic == "" {
			t.Errorf("alert %s has no picture, neither with it nor after it", a.ID)
			continue
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+pic, nil)
		req.Header.Set("Authorization", "Bearer "+gateAdminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Errorf("alert %s: snapshot is not a JPEG (%s): %v", a.ID, resp.Status, err)
		} else if w := img.Bounds().Dx(); w != 640 {
			t.Errorf("alert %s: snapshot %v wide, want the camera's 640", a.ID, w)
		}
	}
	t.Logf("%d of %d alerts carried the camera's picture; %d got it in an update right after (the camera was slower than the alert's picture budget)", len(lat)-followed, len(lat), followed)
	p50, p99, worst := percentiles(lat)
	t.Logf("%d forced openings → red alerts on the console: p50 %v, p99 %v, max %v (event time → console websocket; grant grace 300 ms included)",
		len(lat), p50, p99, worst)
	// The 1 s promise is the pipeline's. When this box itself stalls (a
	// shared CI machine: every goroutine of the process late by the same
	// amount, seen by the stall meter), the events caught in a stall are
	// left out of the verdict, and if too many were, there is no verdict.
	var judged []time.Duration
	for i, a := range forced {
		if stalls.worst(a.Time, a.arrived) < stallLimit {
			judged = append(judged, lat[i])
		}
	}
	// Speed is judged by `make bench` (VIGIL_BENCH=1: this test alone, no
	// race detector); under `make test` every package shares two cores
	// and the figures are only logged.
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

	// The edge API links each alert to the camera's pinned video.
	var st struct {
		Gates []struct {
			Gate  string `json:"gate"`
			Door  string `json:"door"`
			Armed bool   `json:"armed"`
		} `json:"gates"`
		Recent []edge.GateAlertLink `json:"recent_alerts"`
	}
	getJSON(t, "http://"+node.Addr()+"/api/v1/gates", &st)
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
	metrics := getText(t, "http://"+node.Addr()+"/metrics")
	for _, m := range []string{`vigil_gate_open{gate="north-gate"} 0`, `vigil_gate_armed{gate="north-gate"} 1`,
		`vigil_gate_alerts_total{cause="forced",gate="north-gate",severity="red"}`, `vigil_gate_webhook_requests_total{result="ok"}`,
		"vigil_gate_alert_delay_seconds_count"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// A motion alert on the gate's camera carries the gate's state.
	select {
	case a := <-motion:
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

	// Central sees the gate in the edge's heartbeat (every 10 s).
	deadline = time.Now().Add(25 * time.Second)
	for {
		var e struct {
			Gates []wire.GateStatus `json:"gates"`
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/api/v1/edges/gate-1", nil)
		req.Header.Set("Authorization", "Bearer "+gateAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err == nil && len(e.Gates) == 1 && e.Gates[0].ID == "north-gate" && e.Gates[0].Online && e.Gates[0].State != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("central's view of the edge has gates %+v, want north-gate online", e.Gates)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestGateGPIOAndWebhookRefusals: a door contact on a (simulated) GPIO line
// opens the gate, seen on the edge API; a bad signature is refused.
func TestGateGPIOAndWebhookRefusals(t *testing.T) {
	line := gpio.NewSimLine(false)
	secret := randomSecret(t)
	cfg := edge.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: "ws://127.0.0.1:1/api/v1/edge/ws", Token: token},
		Cameras: []edge.CameraConfig{{ID: "gate-cam", URL: "rtsp://127.0.0.1:1/none"}},
		Gates:   []edge.GateConfig{{ID: "side-gate", Name: "Side gate", Cameras: []string{"gate-cam"}}},
		GateInputs: edge.GateInputsConfig{
			Webhook: edge.WebhookInputConfig{Enabled: true, Controllers: []edge.WebhookControllerConfig{{ID: "ctrl", Secret: secret, Gates: []string{"side-gate"}}}},
			GPIO:    &edge.GPIOInputConfig{Lines: []edge.GPIOLineConfig{{Offset: 4, Gate: "side-gate", Input: "door-contact", Role: "door"}}},
		},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	var mu sync.Mutex
	var raised []wire.Alert
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t),
		OpenGPIOLine: func(chip string, offset int, o gpio.LineOptions) (gpio.Line, error) {
			if chip != "gpiochip0" || offset != 4 {
				return nil, fmt.Errorf("unexpected line %s/%d", chip, offset)
			}
			return line, nil
		},
		OnAlert: func(a wire.Alert) { mu.Lock(); raised = append(raised, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	// Every gate, camera and controller series is on /metrics from
	// start-up, at 0, before its first event.
	metrics := getText(t, "http://"+node.Addr()+"/metrics")
	for _, want := range []string{
		`vigil_gate_events_total{gate="side-gate",type="button"} 0`,
		`vigil_gate_events_total{gate="side-gate",type="arm"} 0`,
		`vigil_gate_alerts_total{cause="forced",gate="side-gate",severity="red"} 0`,
		`vigil_gate_alerts_total{cause="arming",gate="side-gate",severity="green"} 0`,
		`vigil_gate_snapshot_failures_total{camera="gate-cam"} 0`,
		`vigil_gate_webhook_events_total{controller="ctrl"} 0`,
		`vigil_gate_webhook_requests_total{result="forbidden_gate"} 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	door := func() string {
		var st struct {
			Gates []struct {
				Door string `json:"door"`
			} `json:"gates"`
		}
		getJSON(t, "http://"+node.Addr()+"/api/v1/gates", &st)
		return st.Gates[0].Door
	}
	waitFor := func(want string) {
		deadline := time.Now().Add(5 * time.Second)
		for door() != want {
			if time.Now().After(deadline) {
				t.Fatalf("door did not become %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("closed") // the level read at start
	line.Set(true)
	waitFor("open")

	// A request signed with the wrong secret is refused and counted.
	body := []byte(`{"id":"e1","gate":"side-gate","type":"opened"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, "http://"+node.Addr()+"/api/v1/gates/events", bytes.NewReader(body))
	req.Header.Set("X-Vigil-Controller", "ctrl")
	req.Header.Set("X-Vigil-Timestamp", ts)
	req.Header.Set("X-Vigil-Signature", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature: %s, want 401", resp.Status)
	}
	if m := getText(t, "http://"+node.Addr()+"/metrics"); !strings.Contains(m, `vigil_gate_webhook_requests_total{result="bad_signature"} 1`) {
		t.Error("refusal not counted")
	}
	// Disarmed and never granted: the opening is a passage (an event, not an alert).
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, a := range raised {
		if strings.HasPrefix(a.Kind, "gate.") {
			t.Errorf("unexpected gate alert %s %s", a.Kind, a.Summary)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := apiGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := apiGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
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
