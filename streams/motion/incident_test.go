package motion_test

import (
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/streams/motion"
)

// TestGroupIncidents: events within the gap of the previous one fold into
// one incident, a quiet gap starts a new one, and an incident older than
// Max gives way at its next event; each incident ends Gap after its last
// event.
func TestGroupIncidents(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	r := motion.IncidentRules{Gap: time.Minute, Max: 5 * time.Minute}
	// raised 1 s after each start
	var starts, raised []time.Time
	for _, sec := range []float64{0, 30, 89, 200, 230, 260, 290, 320, 350, 380, 410, 440, 470, 500, 530} {
		starts, raised = append(starts, s(sec)), append(raised, s(sec+1))
	}
	got := motion.GroupIncidents(r, starts, raised)
	if len(got) != 3 {
		t.Fatalf("%d incidents %+v, want 3: [0..90], a new one after the 110 s gap, one more after 5 minutes", len(got), got)
	}
	if got[0].Events != 3 || !got[0].Last.Equal(s(90)) || !got[0].End.Equal(s(150)) {
		t.Errorf("first incident %+v", got[0])
	}
	if !got[1].Start.Equal(s(200)) || got[1].Events != 10 || !got[2].Start.Equal(s(500)) || got[2].Events != 2 {
		t.Errorf("later incidents %+v", got[1:])
	}
	if d := (motion.IncidentRules{}).WithDefaults(); d.Gap != motion.DefaultIncidentGap || d.Max != motion.DefaultIncidentMax {
		t.Errorf("defaults %+v", d)
	}
	if r.Continues(s(100), s(100), s(99)) {
		t.Error("an event before the incident's start continued it")
	}
}
