package camera

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

func damagedBursts(t *testing.T, amount string) (string, footage.BurstsClip) {
	return testrig.DamagedBursts(t, amount)
}

// TestDamagedStreamIsAnalysed pins the finding: with about one
// byte in 2,000 damaged, waiting for a clean keyframe after every error
// analysed 0 of 400 frames (37 with intact keyframes). Concealed pictures
// are analysed now, and the bursts' motion is still found.
func TestDamagedStreamIsAnalysed(t *testing.T) {
	for _, amount := range []string{"2000", "2000*not(key)"} {
		t.Run(amount, func(t *testing.T) {
			path, spec := damagedBursts(t, amount)
			start := time.Unix(1e9, 0)
			var found []FileEvent
			sum, err := AnalyzeFile(context.Background(), path, AnalyzerConfig{FPS: float64(spec.FPS)}, FileOptions{Start: start}, func(ev FileEvent) error {
				if ev.Kind == KindMotion {
					found = append(found, ev)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("units %d decoded %d analysed %d damaged %d skipped %d garbled %d motion events %d",
				sum.Units, sum.Decoded, sum.Analysed, sum.Damaged, sum.Skipped, sum.Garbled, len(found))
			if sum.Analysed*5 < sum.Units*4 {
				t.Errorf("analysed %d of %d frames, want at least 80%%", sum.Analysed, sum.Units)
			}
			if sum.Damaged == 0 {
				t.Error("no damaged picture counted")
			}
			hit := map[int]bool{}
			for _, ev := range found {
				at := ev.Raised.Sub(start).Seconds()
				inBurst := false
				for i, b := range spec.Bursts {
					if at >= b.Start && at <= b.End+1 {
						hit[i], inBurst = true, true
					}
				}
				if !inBurst {
					t.Errorf("motion raised at %.1f s, outside every burst (false alarm on damage)", at)
				}
			}
			// The first burst starts as the background is learnt and a
			// damaged first keyframe costs its GOP: at least 3 of 4.
			if len(hit) < len(spec.Bursts)-1 {
				t.Errorf("motion found in %d of %d bursts", len(hit), len(spec.Bursts))
			}
		})
	}
}

func TestHealthMonitorHysteresis(t *testing.T) {
	now := time.Unix(1e9, 0)
	h := newHealthMonitor(5, now)
	step := func(recv, analysed int) bool {
		now = now.Add(time.Second)
		return h.add(now, healthSample{received: recv, analysed: analysed, dur: time.Second})
	}
	for i := 0; i < healthSlots; i++ {
		if step(10, 5) {
			t.Fatalf("healthy start reported a change at %d", i)
		}
	}
	if h.status.State != AnalysisOK {
		t.Fatalf("state %q after a healthy window", h.status.State)
	}
	// Damage: 1 of 5 expected per second; the window average crosses
	// 50 % after a few seconds.
	changedAt := -1
	for i := 0; i < healthSlots; i++ {
		if step(10, 1) && changedAt < 0 {
			changedAt = i
		}
	}
	if h.status.State != AnalysisDegraded || changedAt < 0 {
		t.Fatalf("state %q, want degraded", h.status.State)
	}
	// 60 % of expected is between the thresholds: still degraded.
	for i := 0; i < healthSlots; i++ {
		if step(10, 3) {
			t.Fatal("recovered at 60 % of the expected rate")
		}
	}
	for i := 0; i < healthSlots && h.status.State == AnalysisDegraded; i++ {
		step(10, 5)
	}
	if h.status.State != AnalysisOK {
		t.Fatalf("state %q after clean video, want ok", h.status.State)
	}
	// A slow stream is judged against what it sends: 2 fps in, 2 analysed.
	for i := 0; i < healthSlots; i++ {
		if step(2, 2) {
			t.Fatal("a 2 fps camera analysed in full was judged degraded")
		}
	}
}

// TestHeavyDamageRaisesAnalysisDegraded serves a camera whose first 10 s
// have about one byte in 200 damaged, then clean video: analysis is
// reported degraded, and recovered once the video is clean.
func TestHeavyDamageRaisesAnalysisDegraded(t *testing.T) {
	path, _ := damagedBursts(t, "200*not(floor(pts*tb/10))")
	clip, err := sim.LoadClip(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := testrig.StartSim(t, "127.0.0.1:0", sim.Camera{Path: "cam", Clip: clip})
	col := newCollector()
	m := NewMetrics(nil)
	cam := startCamera(t, Config{ID: "cam", URL: srv.URL("cam"), HealthWindow: 3 * time.Second}, col, m, testrig.Logger(t))
	events := func() []AnalysisEvent {
		col.mu.Lock()
		defer col.mu.Unlock()
		return append([]AnalysisEvent(nil), col.health...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(events()) < 2 {
		time.Sleep(200 * time.Millisecond)
	}
	evs := events()
	if len(evs) < 2 || !evs[0].Degraded || evs[1].Degraded {
		t.Fatalf("analysis events %+v, want degraded then recovered", evs)
	}
	t.Logf("degraded: %s; recovered after %v: %s", evs[0].Detail, evs[1].Time.Sub(evs[0].Time).Round(time.Second), evs[1].Detail)
	if st := cam.Status().Analysis; st.State != AnalysisOK || st.DamagedTotal == 0 {
		t.Errorf("status %+v, want ok with damaged pictures counted", st)
	}
	if n := float64(m.countsOf("cam").Damaged); n == 0 {
		t.Error("vigil_camera_frames_damaged_total stayed 0")
	}
}
