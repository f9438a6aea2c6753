package incidents

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// TestPedestrianIncidents measures items per hour on the demo's pedestrian
// footage with the edge's default incident rules, for the edge's default
// detector and for the demo's north-gate camera (max_event 20s: a motion
// event, before incidents a card, at least every 20 s while people keep
// coming). By default it analyses two loops (a quick check that no visit
// is lost); with VIGIL_BENCH=1 it analyses 46 loops (61 minutes) and
// requires ≥ 5× fewer items — the figures in BENCHMARKS.md ("Motion
// incidents"), with the same events regrouped under other gaps.
func TestPedestrianIncidents(t *testing.T) {
	loops := 2
	if os.Getenv("VIGIL_BENCH") != "" {
		loops = 46
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	clip, err := LoopedPedestrians(ctx, footage.Cache{Dir: footage.DefaultDir()}, loops)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  camera.AnalyzerConfig
	}{
		{"edge default detector", camera.AnalyzerConfig{}},
		{"demo north-gate (max_event 20s)", camera.AnalyzerConfig{Motion: motion.Config{MaxEvent: 20 * time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Measure(ctx, clip, loops, tc.cfg, motion.IncidentRules{})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			for i, s := range res.Spans {
				t.Logf("incident %d: %.0f–%.0f s, %d events", i+1, s.Start.Sub(epoch).Seconds(), s.End.Sub(epoch).Seconds(), s.Events)
			}
			for _, gap := range []time.Duration{15 * time.Second, 30 * time.Second, 2 * time.Minute} {
				t.Logf("  same events, gap %v: %v", gap, res.Regroup(motion.IncidentRules{Gap: gap}))
			}
			if res.Events == 0 {
				t.Fatal("no motion on the pedestrian footage")
			}
			if res.Lost != 0 {
				t.Errorf("%d person-visits not covered by any incident", res.Lost)
			}
			if loops >= 46 && res.Ratio() < 5 {
				t.Errorf("items fell %.1f×, want ≥ 5×", res.Ratio())
			}
		})
	}
}
