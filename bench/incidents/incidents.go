// Package incidents measures what the edge's motion incidents (one alert
// per activity, streams/motion.IncidentRules) save a guard on real footage:
// the demo's pedestrian camera (opencv-doc's vtest.avi, looped as the
// demo's simulator loops it) analysed exactly as the edge analyses it,
// counting alert items before (one per motion event) and after (one per
// incident), and checking that no person-visit is lost: every motion
// event lies inside the span of the incident that reports it.
//
//	VIGIL_BENCH=1 go test -count=1 -run TestPedestrianIncidents -v ./bench/incidents/
package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/streams/motion"
)

// epoch is the wall-clock time of the footage's first frame.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is one measurement.
type Result struct {
	Loops     int
	Footage   time.Duration // simulated time analysed
	Events    int           // motion events: alert items before incidents
	Incidents int           // alert items with incidents
	Lost      int           // events outside every incident's span
	Rules     motion.IncidentRules
	Events1   []camera.FileEvent
	Spans     []motion.Incident
}

// PerHour scales a count to items per hour of footage.
func (r Result) PerHour(n int) float64 { return float64(n) / r.Footage.Hours() }

// Ratio is how many times fewer items the guard gets.
func (r Result) Ratio() float64 {
	if r.Incidents == 0 {
		return 0
	}
	return float64(r.Events) / float64(r.Incidents)
}

func (r Result) String() string {
	return fmt.Sprintf("%d loops, %.1f min of footage: %d motion events (%.0f/h) → %d incidents (%.1f/h), %.1f× fewer items, %d visits lost (gap %v, max %v)",
		r.Loops, r.Footage.Minutes(), r.Events, r.PerHour(r.Events), r.Incidents, r.PerHour(r.Incidents), r.Ratio(), r.Lost, r.Rules.Gap, r.Rules.Max)
}

// LoopedPedestrians is the demo's pedestrian clip played loops times end
// to end without re-encoding (the simulator's loop), cached like every
// other clip.
func LoopedPedestrians(ctx context.Context, c footage.Cache, loops int) (string, error) {
	one, err := c.Pedestrians(ctx)
	if err != nil {
		return "", err
	}
	if loops <= 1 {
		return one, nil
	}
	return c.Make(ctx, fmt.Sprintf("pedestrians-x%d", loops), []string{"-stream_loop", fmt.Sprint(loops - 1), "-i", one, "-an", "-c", "copy"})
}

// Measure analyses clip as a camera configured with cfg would (the zero
// value: the edge's defaults) and groups its motion events with rules.
func Measure(ctx context.Context, clip string, loops int, cfg camera.AnalyzerConfig, rules motion.IncidentRules) (Result, error) {
	res := Result{Loops: loops, Rules: rules.WithDefaults()}
	sum, err := camera.AnalyzeFile(ctx, clip, cfg, camera.FileOptions{Start: epoch},
		func(ev camera.FileEvent) error {
			if ev.Kind == camera.KindMotion {
				res.Events1 = append(res.Events1, ev)
			}
			return nil
		})
	if err != nil {
		return res, err
	}
	res.Footage = sum.Info.Duration
	if res.Footage <= 0 && sum.Info.FPS > 0 {
		res.Footage = time.Duration(float64(sum.Units) / sum.Info.FPS * float64(time.Second))
	}
	return res.Regroup(rules), nil
}

// Regroup groups the same motion events with other rules.
func (r Result) Regroup(rules motion.IncidentRules) Result {
	r.Rules = rules.WithDefaults()
	var starts, raised []time.Time
	for _, ev := range r.Events1 {
		starts, raised = append(starts, ev.Start), append(raised, ev.Raised)
	}
	r.Spans = motion.GroupIncidents(r.Rules, starts, raised)
	r.Events, r.Incidents = len(r.Events1), len(r.Spans)
	r.Lost = lost(r.Events1, r.Spans)
	return r
}

// lost counts the visits (motion events) no incident covers: an event is
// covered when its evidence start and the moment it was raised lie inside
// one incident's [Start, End].
func lost(evs []camera.FileEvent, spans []motion.Incident) int {
	n := 0
	for _, ev := range evs {
		covered := false
		for _, s := range spans {
			if !ev.Start.Before(s.Start) && !ev.Raised.After(s.End) {
				covered = true
				break
			}
		}
		if !covered {
			n++
		}
	}
	return n
}
