package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
	"github.com/vigil-perimeter/vigil/wire"
)

const token = "spine-test-token"

// consoleAlert is what the console websocket delivers.
type consoleAlert struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	Time        time.Time `json:"time"`
	Severity    string    `json:"severity"`
	SnapshotURL string    `json:"snapshot_url"`
}

// console is a guard's console: it keeps a websocket to central open,
// reconnecting from its cursor, and counts every alert by ID.
type console struct {
	url     string
	mu      sync.Mutex
	seq     uint64
	count   map[string]int
	first   map[string]time.Time
	alerts  map[string]consoleAlert
	arrived chan string
}

func (c *console) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		c.mu.Lock()
		u := fmt.Sprintf("%s?since=%d", c.url, c.seq)
		c.mu.Unlock()
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, spineAdmin)
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
				Type  string       `json:"type"`
				Seq   uint64       `json:"seq"`
				Alert consoleAlert `json:"alert"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				break
			}
			if m.Type != "alert" {
				continue
			}
			c.mu.Lock()
			c.seq = m.Seq
			c.count[m.Alert.ID]++
			if c.count[m.Alert.ID] == 1 {
				c.first[m.Alert.ID] = time.Now()
				c.alerts[m.Alert.ID] = m.Alert
			}
			c.mu.Unlock()
			c.arrived <- m.Alert.ID
		}
		stop()
		ws.Close()
	}
}

// raised records the alerts the edge durably queued.
type raised struct {
	mu  sync.Mutex
	ids []string
	at  map[string]time.Time
	ch  chan wire.Alert
}

func (r *raised) add(a wire.Alert) {
	r.mu.Lock()
	r.ids = append(r.ids, a.ID)
	r.at[a.ID] = a.Time
	r.mu.Unlock()
	r.ch <- a
}

// spineAdminToken lets the test's console read central's API (every
// /api/v1 route needs a session or the admin token).
const spineAdminToken = "spine-test-admin-token"

var spineAdmin = http.Header{"Authorization": {"Bearer " + spineAdminToken}}

// startCentral starts central with its console on addr and its edge hub
// (TLS, self-signed in dir) on hub.
func startCentral(t *testing.T, addr, hub, dir string) *central.Server {
	t.Helper()
	srv, err := central.New(central.Config{Listen: addr, DataDir: dir, AdminTokenSHA256: central.HashToken(spineAdminToken),
		EdgeHub: central.EdgeHubConfig{Listen: hub, SelfSignedHosts: []string{"127.0.0.1"}},
		Edges:   []central.EdgeConfig{{ID: "gate-1", SiteID: "village/north", TokenSHA256: central.HashToken(token)}}}, testrig.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	return srv
}

// hubURL is the edge websocket on srv's edge hub; edges dial it over TLS
// pinned to hubPin (the console port answers 404).
func hubURL(srv *central.Server) string { return "wss://" + srv.EdgeAddr() + wire.EdgePath }

// hubPin is the pin of srv's edge hub certificate, as edge.yaml's central.pin.
func hubPin(srv *central.Server) string { return wire.FormatPin(srv.EdgePin()) }

// hubYAML is the value of edge.yaml's central.url for srv followed by its
// central.pin line (for configs written as text with the url on its own line).
func hubYAML(srv *central.Server) string { return hubURL(srv) + "\n  pin: " + hubPin(srv) }

// TestSpineEndToEnd is the whole path on 127.0.0.1: simulated camera →
// edge (RTSP, decode, motion, outbox, uplink) → central → console.
func TestSpineEndToEnd(t *testing.T) {
	clip, spec := testrig.BurstsClip(t)
	cams := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "gate", Clip: clip})
	burst := func(i int) time.Time {
		return cams.Epoch().Add(time.Duration(spec.Bursts[i].Start * float64(time.Second)))
	}

	centralDir := t.TempDir()
	srv := startCentral(t, "127.0.0.1:0", "127.0.0.1:0", centralDir)
	addr, hub := srv.Addr(), srv.EdgeAddr()
	defer func() { srv.Close() }()

	rs := &raised{at: map[string]time.Time{}, ch: make(chan wire.Alert, 100)}
	cfg := edge.Config{
		EdgeID: "gate-1", SiteID: "village/north", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Central: edge.CentralConfig{URL: hubURL(srv), Pin: hubPin(srv), Token: token, BackoffMax: config.Duration(time.Second)},
		Cameras: []edge.CameraConfig{{ID: "gate-cam", Name: "Gate", URL: cams.URL("gate"), Armed: true}},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errs)
	}
	node, err := edge.Start(cfg, edge.Options{Log: testrig.Logger(t), OnAlert: rs.add, UplinkBackoffMin: 100 * time.Millisecond, CameraBackoffMax: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	ctx, cancel := context.WithCancel(context.Background())
	con := &console{url: "ws://" + addr + "/api/v1/console/ws", count: map[string]int{}, first: map[string]time.Time{},
		alerts: map[string]consoleAlert{}, arrived: make(chan string, 100)}
	conDone := make(chan struct{})
	go func() { defer close(conDone); con.run(ctx, t) }()
	defer func() { cancel(); <-conDone }()

	// 1. The first crossing reaches the console within 10 s, timed within
	// 2 s of the motion in the clip, with a real JPEG snapshot.
	var id string
	select {
	case id = <-con.arrived:
	case <-time.After(time.Until(burst(0).Add(10 * time.Second))):
		t.Fatal("no alert on the console within 10 s of the first motion")
	}
	con.mu.Lock()
	a, arrival := con.alerts[id], con.first[id]
	con.mu.Unlock()
	t.Logf("first alert on the console %v after the motion began; alert time off by %v", arrival.Sub(burst(0)).Round(time.Millisecond), a.Time.Sub(burst(0)).Round(time.Millisecond))
	if d := a.Time.Sub(burst(0)); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("alert time %v is %v from the motion at %v", a.Time, d, burst(0))
	}
	if a.Severity != "red" {
		t.Errorf("motion on an armed camera is %q, want red", a.Severity)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+a.SnapshotURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = spineAdmin.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("snapshot %s is not a JPEG: %v", a.SnapshotURL, err)
	}
	t.Logf("snapshot %v", img.Bounds().Size())

	// The video of the event is recorded on the edge and exports as MP4.
	time.Sleep(2 * time.Second) // let the writer flush the seconds after the alert
	exportMP4(t, node.Addr(), "gate-cam", a.Time.Add(-3*time.Second), 4*time.Second)

	// 2. Central goes down while motion continues; the edge keeps raising
	// alerts into its outbox. Central comes back on the same address and
	// store: every alert arrives exactly once.
	srv.Close()
	t.Log("central stopped")
	select {
	case a := <-drainUntil(rs.ch, burst(1)):
		t.Logf("edge raised %s while central was down", a.ID)
	case <-time.After(time.Until(burst(1).Add(8 * time.Second))):
		t.Fatal("the edge raised no alert during the outage")
	}
	if node.Uplink().Connected() {
		t.Error("uplink claims to be connected while central is down")
	}
	srv = startCentral(t, addr, hub, centralDir)
	t.Log("central restarted")

	// Wait for the next crossing after the restart to reach the console too.
	waitConsoleHasAll(t, con, rs, burst(2).Add(8*time.Second))

	// 3. The camera dies and comes back: the edge reconnects by itself and
	// alerts resume.
	camAddr := cams.Addr()
	cams.Close()
	time.Sleep(time.Second)
	cams2 := testrig.StartSim(t, camAddr, sim.Camera{Path: "gate", Clip: clip})
	restart := cams2.Epoch()
	deadline := restart.Add(10 * time.Second)
	for {
		st := cameraOnline(t, node.Addr())
		if st {
			t.Logf("camera back online %v after it restarted", time.Since(restart).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("edge did not reconnect to the camera within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	firstAfter := cams2.Epoch().Add(time.Duration(spec.Bursts[0].Start * float64(time.Second)))
	select {
	case a := <-drainUntil(rs.ch, restart):
		t.Logf("alert %s resumed after the camera restart, %v after its motion", a.ID, a.Time.Sub(firstAfter).Round(time.Millisecond))
	case <-time.After(time.Until(firstAfter.Add(10 * time.Second))):
		t.Fatal("no alert after the camera came back")
	}
	waitConsoleHasAll(t, con, rs, time.Now().Add(5*time.Second))
}

// exportMP4 fetches a range from the edge's recordings API and checks it
// with ffprobe: H.264, the clip's size, about the asked duration.
func exportMP4(t *testing.T, edgeAddr, cam string, start time.Time, d time.Duration) {
	t.Helper()
	u := fmt.Sprintf("http://%s/api/v1/recordings/%s/mp4?start=%s&duration=%s", edgeAddr, cam, start.UTC().Format(time.RFC3339Nano), d)
	resp, err := apiGet(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %s: %s", resp.Status, body)
	}
	f := filepath.Join(t.TempDir(), "event.mp4")
	os.WriteFile(f, body, 0o600)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "default=nw=1", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, "codec_name=h264") || !strings.Contains(got, "width=640") {
		t.Errorf("exported MP4 is not the camera's H.264:\n%s", got)
	}
	t.Logf("exported %d bytes of evidence around the alert: %s", len(body), strings.ReplaceAll(strings.TrimSpace(got), "\n", " "))
}

// drainUntil forwards the first alert whose time is at or after from.
func drainUntil(ch chan wire.Alert, from time.Time) <-chan wire.Alert {
	out := make(chan wire.Alert, 1)
	go func() {
		for a := range ch {
			if !a.Time.Before(from.Add(-time.Second)) {
				out <- a
				return
			}
		}
	}()
	return out
}

// waitConsoleHasAll waits until every alert the edge raised is on the
// console and then checks that none arrived twice and none is unknown.
func waitConsoleHasAll(t *testing.T, con *console, rs *raised, deadline time.Time) {
	t.Helper()
	for {
		rs.mu.Lock()
		ids := append([]string(nil), rs.ids...)
		rs.mu.Unlock()
		con.mu.Lock()
		missing := 0
		for _, id := range ids {
			if con.count[id] == 0 {
				missing++
			}
		}
		dups, unknown := 0, 0
		known := map[string]bool{}
		for _, id := range ids {
			known[id] = true
		}
		for id, n := range con.count {
			if n > 1 {
				dups++
			}
			if !known[id] {
				unknown++
			}
		}
		con.mu.Unlock()
		if dups > 0 || unknown > 0 {
			t.Fatalf("console saw %d alerts twice and %d alerts the edge never raised", dups, unknown)
		}
		if missing == 0 && len(ids) > 0 {
			t.Logf("all %d alerts the edge raised are on the console, each exactly once", len(ids))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d alerts never reached the console", missing, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cameraOnline(t *testing.T, edgeAddr string) bool {
	resp, err := apiGet("http://" + edgeAddr + "/api/v1/cameras")
	if err != nil {
		t.Fatalf("edge API: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Cameras []struct {
			Online bool `json:"online"`
		} `json:"cameras"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return len(body.Cameras) == 1 && body.Cameras[0].Online
}
