package camera

import (
	"bytes"
	"context"
	"image/jpeg"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// collector is a Parent that records what the camera produced.
type collector struct {
	mu      sync.Mutex
	events  []Event
	tampers []TamperEvent
	health  []AnalysisEvent
	perims  []PerimeterEvent
	aus     int
	got     chan Event
}

func newCollector() *collector { return &collector{got: make(chan Event, 100)} }

func (c *collector) OnMotion(ev Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	c.got <- ev
}

func (c *collector) OnTamper(ev TamperEvent) {
	c.mu.Lock()
	c.tampers = append(c.tampers, ev)
	c.mu.Unlock()
}

func (c *collector) OnPerimeter(ev PerimeterEvent) {
	c.mu.Lock()
	c.perims = append(c.perims, ev)
	c.mu.Unlock()
}

func (c *collector) OnAnalysis(ev AnalysisEvent) {
	c.mu.Lock()
	c.health = append(c.health, ev)
	c.mu.Unlock()
}

func (c *collector) OnAccessUnit(string, streams.AccessUnit) {
	c.mu.Lock()
	c.aus++
	c.mu.Unlock()
}

func runCamera(t *testing.T, cfg Config, p Parent) *Camera {
	t.Helper()
	return startCamera(t, cfg, p, nil, testrig.Logger(t))
}

// startCamera runs a camera until the test ends.
func startCamera(t *testing.T, cfg Config, p Parent, m *Metrics, log *slog.Logger) *Camera {
	t.Helper()
	cam, err := New(cfg, p, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cam.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cam
}

func waitEvent(t *testing.T, c *collector, within time.Duration) Event {
	t.Helper()
	select {
	case ev := <-c.got:
		return ev
	case <-time.After(within):
		t.Fatalf("no motion event within %v", within)
	}
	return Event{}
}

// TestMotionEventsMatchGroundTruth plays the bursts clip through a real
// RTSP server and client and checks that each crossing raises exactly one
// event, timed by the simulator's clock, with a decodable snapshot.
func TestMotionEventsMatchGroundTruth(t *testing.T) {
	clip, spec := testrig.BurstsClip(t)
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	col := newCollector()
	cam := runCamera(t, Config{ID: "cam", URL: srv.URL("cam")}, col)

	for i, b := range spec.Bursts[:2] {
		ev := waitEvent(t, col, time.Duration(b.End*float64(time.Second))+5*time.Second)
		want := srv.Epoch().Add(time.Duration(b.Start * float64(time.Second)))
		if d := ev.Start.Sub(want); d < -500*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("burst %d: event at %v, %v from the object entering", i, ev.Start, d)
		}
		img, err := jpeg.Decode(bytes.NewReader(ev.Snapshot))
		if err != nil {
			t.Fatalf("burst %d: snapshot is not a JPEG: %v", i, err)
		}
		if img.Bounds().Dx() != spec.Width || img.Bounds().Dy() != spec.Height {
			t.Errorf("snapshot is %v, want %dx%d", img.Bounds(), spec.Width, spec.Height)
		}
		if len(ev.Boxes) == 0 {
			t.Errorf("burst %d: event without a box", i)
		}
		if i == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			jpg, at, err := cam.Snapshot(ctx)
			cancel()
			if err != nil {
				t.Fatalf("on-demand snapshot: %v", err)
			}
			if _, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil || time.Since(at) > 2*time.Second {
				t.Errorf("on-demand snapshot: %v, taken %v ago", err, time.Since(at))
			}
		}
		t.Logf("burst %d: event %v after the object entered (time source %s)", i, ev.Start.Sub(want), ev.TimeSource)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.events) != 2 {
		t.Errorf("%d events for 2 crossings", len(col.events))
	}
}

// TestReconnectsAfterCameraRestart kills the simulator and starts a new one
// on the same port: the camera must come back by itself and see motion.
func TestReconnectsAfterCameraRestart(t *testing.T) {
	clip, spec := testrig.BurstsClip(t)
	srv, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}}, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	col := newCollector()
	cam := runCamera(t, Config{ID: "cam", URL: srv.URL("cam"), BackoffMax: 2 * time.Second, StallTimeout: 6 * time.Second}, col)
	waitOnline(t, cam, 5*time.Second)

	srv.Close()
	deadline := time.Now().Add(15 * time.Second)
	for cam.Status().Online && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if cam.Status().Online {
		t.Fatal("camera still online after the simulator stopped")
	}
	restarted := testrig.StartSim(t, addr, sim.Camera{Path: "cam", Clip: clip})
	waitOnline(t, cam, 10*time.Second)
	t.Logf("reconnected %v after the camera came back", time.Since(restarted.Epoch()).Round(time.Millisecond))

	// Drain events from before the restart, then expect the next crossing.
	for len(col.got) > 0 {
		<-col.got
	}
	ev := waitEvent(t, col, time.Duration(spec.Bursts[0].End*float64(time.Second))+5*time.Second)
	if !ev.Start.After(restarted.Epoch()) {
		t.Errorf("event at %v predates the restart at %v", ev.Start, restarted.Epoch())
	}
}

// TestFlappingCameraIsWatchedAgainQuickly: a camera that drops again
// shortly after coming back, again and again, is watched again within 5 s
// of each return with the default backoff (the first version waited
// 29 s after the second drop: its backoff only reset after 30 s of video).
func TestFlappingCameraIsWatchedAgainQuickly(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	addr := srv.Addr()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cam := startCamera(t, Config{ID: "cam", URL: srv.URL("cam")}, newCollector(), m, testrig.Logger(t))
	waitOnline(t, cam, 5*time.Second)
	for drop := 1; drop <= 3; drop++ {
		srv.Close()
		waitFor(t, "camera offline", 5*time.Second, func() bool { return !cam.Status().Online })
		time.Sleep(3 * time.Second) // down long enough for the backoff to grow
		srv = testrig.StartSim(t, addr, sim.Camera{Path: "cam", Clip: clip})
		back := time.Now()
		waitOnline(t, cam, 5*time.Second)
		t.Logf("drop %d: watched again %v after the camera came back", drop, time.Since(back).Round(time.Millisecond))
		time.Sleep(1500 * time.Millisecond) // up briefly, then drops again
	}
	if n := float64(m.countsOf("cam").Reconnects); n < 3 {
		t.Errorf("%v reconnects counted", n)
	}
}

func waitOnline(t *testing.T, cam *Camera, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cam.Status().Online {
		if time.Now().After(deadline) {
			t.Fatalf("camera not online within %v: %s", within, cam.Status().Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnreachableCameraIsLoggedAndRetried points a camera at a closed port.
func TestUnreachableCameraIsLoggedAndRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	log, buf := testrig.CapturingLogger(t)
	cam, err := New(Config{ID: "gone", URL: "rtsp://" + addr + "/x", BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, newCollector(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cam.Run(ctx)
	out := buf.String()
	if n := strings.Count(out, "camera unavailable, retrying"); n < 3 {
		t.Errorf("expected repeated retries, log:\n%s", out)
	}
	if !strings.Contains(out, "connection refused") {
		t.Errorf("the log does not say why:\n%s", out)
	}
	if s := cam.Status(); s.Online || s.Error == "" {
		t.Errorf("status = %+v, want offline with an error", s)
	}
}

// listenRecording returns a gortsplib Listen func that records the bound address.
func listenRecording(addr *string) func(string, string) (net.Listener, error) {
	return func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err == nil {
			*addr = l.Addr().String()
		}
		return l, err
	}
}

// countsOf is camera id's counters as the exporter holds them.
func (m *Metrics) countsOf(id string) Counts { return m.counters(id).snapshot() }

// TestMetricsAndCountsOneSource: every family is exported at 0 as soon as
// the camera exists, and /metrics shows exactly what Counts says.
func TestMetricsAndCountsOneSource(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	c, err := New(Config{ID: "cam", URL: "rtsp://127.0.0.1:1/x"}, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func() map[string]float64 {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			for _, mm := range f.GetMetric() {
				if mm.GetLabel()[0].GetValue() != "cam" {
					continue
				}
				if mm.GetCounter() != nil {
					out[f.GetName()] = mm.GetCounter().GetValue()
				} else {
					out[f.GetName()] = mm.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	got := read()
	if len(got) != len(families) {
		t.Fatalf("%d families exported at start, want %d: %v", len(got), len(families), got)
	}
	for name, v := range got {
		if v != 0 {
			t.Errorf("%s starts at %v", name, v)
		}
	}
	c.count.framesIn.Add(3)
	c.count.bytesIn.Add(1500)
	c.count.packetsLost.Add(2)
	at := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	c.count.lastFrame.Store(at.UnixNano())
	got, k := read(), c.Counts()
	if got["vigil_camera_frames_in_total"] != 3 || k.FramesIn != 3 || got["vigil_camera_bytes_in_total"] != 1500 ||
		got["vigil_camera_rtp_packets_lost_total"] != 2 || k.PacketsLost != 2 || !k.LastFrame.Equal(at) ||
		got["vigil_camera_last_frame_timestamp_seconds"] != float64(at.Unix()) {
		t.Errorf("metrics %v, counts %+v", got, k)
	}
	if d := k.Sub(Counts{FramesIn: 1}); d.FramesIn != 2 {
		t.Errorf("Sub: %+v", d)
	}
}
