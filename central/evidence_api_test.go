package central

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// TestGateEventsInDetailAndBundle: an edge logs every gate alert as an
// event too (gate.forced, gate.closed …), not only passages. The
// console's detail query for a forced alert (loadGateHistory in app.js:
// the edge's events ±10 min, then those of the alert's gate) lists them,
// and an evidence bundle of the edge's camera lists every gate event of
// the requested window, also those after the video ends.
func TestGateEventsInDetailAndBundle(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	t0 := time.Date(2026, 11, 22, 3, 0, 5, 0, time.UTC)
	batch := wire.EventBatch{ID: "gb-1", EdgeID: northID, Events: []wire.Event{
		{Time: t0, Source: "north-gate", Kind: "gate.forced", Summary: "opened without a passage"},
		{Time: t0.Add(30 * time.Second), Source: "north-gate", Kind: "gate.closed"},
		{Time: t0.Add(40 * time.Second), Source: "side-gate", Kind: "gate.passage"},
		{Time: t0.Add(time.Hour), Source: "north-gate", Kind: "gate.held_open"}, // outside every window
	}}
	edge.send(wire.TypeEventBatch, batch)
	edge.expectAck("gb-1")
	forced := testAlert(northID, "forced-1")
	forced.Kind, forced.Source, forced.Time, forced.Boxes, forced.Zones = "gate.forced", "north-gate", t0, nil, nil
	edge.sendAlert(forced)

	// The detail, as the console asks.
	var rec Record
	getJSON(t, s, "/api/v1/alerts/forced-1", &rec)
	q := url.Values{"edge": {rec.EdgeID}, "from": {rec.Time.Add(-10 * time.Minute).Format(time.RFC3339Nano)},
		"to": {rec.Time.Add(10 * time.Minute).Format(time.RFC3339Nano)}, "limit": {"200"}}
	var page struct {
		Events []StoredEvent `json:"events"`
	}
	getJSON(t, s, "/api/v1/events?"+q.Encode(), &page)
	var kinds []string
	for _, e := range page.Events {
		if e.Source == rec.Source {
			kinds = append(kinds, e.Kind)
		}
	}
	if !slices.Equal(kinds, []string{"gate.forced", "gate.closed"}) {
		t.Fatalf("the detail's gate events: %v (all: %+v)", kinds, page.Events)
	}

	// The bundle: the video covers t0-10s..t0+20s, the request t0-1m..t0+2m.
	req := EvidenceRequest{ID: "ev-1", From: t0.Add(-time.Minute), To: t0.Add(2 * time.Minute), Items: []RetrievalItem{{
		Edge: northID, Camera: "cam-gate", SiteID: siteID, Status: RetrievalReady, File: "evidence/ev-1/cam-gate.mp4",
		Export: &wire.ExportManifest{Camera: "cam-gate", Start: t0.Add(-10 * time.Second), End: t0.Add(20 * time.Second), Codec: "H264", Frames: 750},
	}}}
	cams, err := s.evidence.bundleCameras(req)
	if err != nil || len(cams) != 1 {
		t.Fatalf("bundle cameras: %v %+v", err, cams)
	}
	kinds = nil
	for _, raw := range cams[0].GateEvents {
		var e StoredEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Source+" "+e.Kind)
	}
	if !slices.Equal(kinds, []string{"north-gate gate.forced", "north-gate gate.closed", "side-gate gate.passage"}) {
		t.Errorf("the bundle's gate events: %v", kinds)
	}
	if len(cams[0].Alerts) != 1 || !json.Valid(cams[0].Alerts[0]) {
		t.Errorf("the bundle's alerts: %s", cams[0].Alerts)
	}
}

// TestBundleWindowParts: a camera in parts keeps each boundary between
// parts, so no event is listed twice; the request's ends widen the first
// and the last part.
func TestBundleWindowParts(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	req := EvidenceRequest{From: at(0), To: at(100), Items: []RetrievalItem{
		{Edge: "e", Camera: "c", Part: 1, Export: &wire.ExportManifest{Start: at(50), End: at(90)}},
		{Edge: "e", Camera: "c", Part: 0, Export: &wire.ExportManifest{Start: at(5), End: at(50)}},
		{Edge: "e", Camera: "d", Export: &wire.ExportManifest{Start: at(-3), End: at(101)}},
	}}
	for i, want := range [][2]time.Time{{at(50), at(100)}, {at(0), at(50)}, {at(-3), at(101)}} {
		if from, to := bundleWindow(&req, i); !from.Equal(want[0]) || !to.Equal(want[1]) {
			t.Errorf("item %d: %v..%v, want %v..%v", i, from, to, want[0], want[1])
		}
	}
}
