package camera

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams"
	"github.com/vigil-perimeter/vigil/streams/av"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

// auRecorder is a Parent that keeps the access units it is given.
type auRecorder struct {
	*collector
	mu  sync.Mutex
	aus []streams.AccessUnit
}

func (r *auRecorder) OnAccessUnit(_ string, au streams.AccessUnit) {
	r.mu.Lock()
	r.aus = append(r.aus, streams.AccessUnit{Codec: au.Codec, PTS: au.PTS, Time: au.Time, TimeSource: au.TimeSource, Key: au.Key})
	r.mu.Unlock()
}

func (r *auRecorder) last() (streams.AccessUnit, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.aus) == 0 {
		return streams.AccessUnit{}, 0
	}
	return r.aus[len(r.aus)-1], len(r.aus)
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuthAndTransports: basic and digest credentials, TCP and UDP, and a
// wrong password that is reported in plain words and retried.
func TestAuthAndTransports(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	tests := []struct {
		name, auth, transport, password string
		wantOnline                      bool
	}{
		{"basic over tcp", "basic", "tcp", "s3cret", true},
		{"digest over tcp", "digest", "tcp", "s3cret", true},
		{"digest over udp", "digest", "udp", "s3cret", true},
		{"wrong password", "digest", "tcp", "guess", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}},
				User: "admin", Password: "s3cret", Auth: tc.auth, UDP: tc.transport == "udp", Log: testrig.Logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			url := strings.Replace(srv.URL("cam"), "rtsp://", "rtsp://admin:"+tc.password+"@", 1)
			log, buf := testrig.CapturingLogger(t)
			rec := &auRecorder{collector: newCollector()}
			cam := startCamera(t, Config{ID: "cam", URL: url, Transport: tc.transport, BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, rec, nil, log)
			if tc.wantOnline {
				waitFor(t, "video", 8*time.Second, func() bool { _, n := rec.last(); return n > 10 })
				if !strings.Contains(buf.String(), "transport="+tc.transport) {
					t.Errorf("session did not use %s", tc.transport)
				}
				if strings.Contains(buf.String(), "s3cret") {
					t.Error("the password appears in the log")
				}
				return
			}
			waitFor(t, "refusal logged", 5*time.Second, func() bool { return strings.Count(buf.String(), "camera unavailable") >= 2 })
			if !strings.Contains(buf.String(), "401") && !strings.Contains(strings.ToLower(buf.String()), "unauthorized") {
				t.Errorf("wrong password is not reported as such:\n%s", buf.String())
			}
			if cam.Status().Online {
				t.Error("online with a wrong password")
			}
		})
	}
}

// TestRTCPTimeMapping: once the camera's sender reports arrive, frame
// times come from the camera's clock (here deliberately 30 s ahead), not
// from this box's.
func TestRTCPTimeMapping(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	const skew = 30 * time.Second
	srv, err := sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: clip}}, ClockOffset: skew, Log: testrig.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec := &auRecorder{collector: newCollector()}
	runCamera(t, Config{ID: "cam", URL: srv.URL("cam")}, rec)

	waitFor(t, "first unit", 5*time.Second, func() bool { _, n := rec.last(); return n > 0 })
	au, _ := rec.last()
	// The first keyframe may come before or after the first sender report.
	if au.TimeSource == streams.TimeArrival && absDur(time.Since(au.Time)) > 2*time.Second {
		t.Errorf("before any sender report: arrival time %v, want near now", au.Time)
	}
	// The simulator sends a sender report every second.
	waitFor(t, "RTCP-timed unit", 3*time.Second, func() bool { au, _ := rec.last(); return au.TimeSource == streams.TimeRTCP })
	au, _ = rec.last()
	// The newest unit is at most a frame (100 ms) old.
	if d := absDur(au.Time.Sub(time.Now().Add(skew))); d > 300*time.Millisecond {
		t.Errorf("RTCP time %v is %v away from the camera's clock", au.Time, d)
	}
	t.Logf("RTCP-timed unit: %v, camera clock skew %v", au.Time, skew)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestStallWatchdogAndSignalLost: a camera that keeps its connection but
// stops sending video is reconnected by the stall watchdog, raises
// signal_lost, and clears it when video returns.
func TestStallWatchdogAndSignalLost(t *testing.T) {
	clip, _ := testrig.BurstsClip(t)
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	col := newCollector()
	tampers := func() []TamperEvent {
		col.mu.Lock()
		defer col.mu.Unlock()
		return append([]TamperEvent(nil), col.tampers...)
	}
	cam := startCamera(t, Config{ID: "cam", URL: srv.URL("cam"), StallTimeout: 3 * time.Second, SignalLostAfter: 4 * time.Second,
		BackoffMin: 200 * time.Millisecond, BackoffMax: 500 * time.Millisecond}, col, m, testrig.Logger(t))

	waitOnline(t, cam, 5*time.Second)
	srv.Freeze("cam", true)
	frozenAt := time.Now()
	waitFor(t, "stall reconnect", 8*time.Second, func() bool { return float64(m.countsOf("cam").Reconnects) >= 1 })
	t.Logf("stall detected %v after the camera froze", time.Since(frozenAt).Round(time.Millisecond))
	waitFor(t, "signal_lost", 8*time.Second, func() bool { return len(tampers()) >= 1 })
	if ev := tampers()[0]; ev.Kind != TamperSignalLost || ev.Cleared {
		t.Fatalf("first tamper event %+v, want signal_lost", ev)
	}
	srv.Freeze("cam", false)
	waitFor(t, "signal back", 10*time.Second, func() bool { return len(tampers()) >= 2 })
	if ev := tampers()[1]; ev.Kind != TamperSignalLost || !ev.Cleared {
		t.Fatalf("second tamper event %+v, want signal_lost cleared", ev)
	}
	if age := time.Since(m.countsOf("cam").LastFrame); age > 3*time.Second {
		t.Errorf("last-frame metric is %v old after video returned", age)
	}
}

// TestH265AndSubStream: an H.265 camera is recorded (main stream) while
// motion is analysed on its small H.264 sub-stream — both real RTSP paths.
func TestH265AndSubStream(t *testing.T) {
	spec := footage.DefaultBursts()
	spec.H265 = true
	main := testrig.Clip(t, spec)
	if main.Info.Codec != av.H265 {
		t.Fatalf("main clip is %v", main.Info.Codec)
	}
	sub := footage.DefaultBursts()
	sub.Width, sub.Height = 320, 240
	subClip := testrig.Clip(t, sub)
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "main", Clip: main}, sim.Camera{Path: "sub", Clip: subClip})

	rec := &auRecorder{collector: newCollector()}
	runCamera(t, Config{ID: "cam", URL: srv.URL("main"), SubURL: srv.URL("sub")}, rec)
	ev := waitEvent(t, rec.collector, 12*time.Second)
	want := srv.Epoch().Add(time.Duration(spec.Bursts[0].Start * float64(time.Second)))
	if d := ev.Start.Sub(want); d < -500*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("event %v from the crossing", d)
	}
	au, n := rec.last()
	if au.Codec != av.H265 || n == 0 {
		t.Errorf("recorded %d units of %v, want H.265", n, au.Codec)
	}

	// And the H.265 stream analysed directly.
	rec2 := &auRecorder{collector: newCollector()}
	runCamera(t, Config{ID: "cam265", URL: srv.URL("main")}, rec2)
	next := srv.Epoch().Add(time.Duration(spec.Bursts[1].Start * float64(time.Second)))
	ev = waitEvent(t, rec2.collector, time.Until(next)+5*time.Second)
	if d := ev.Start.Sub(next); d < -500*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("H.265 analysis: event %v from the crossing", d)
	}
}
