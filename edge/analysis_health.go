package edge

import (
	"fmt"

	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// analysisDegradedKind is the alert a camera raises while it streams but
// too little of its video is analysed (damaged or undecodable pictures):
// online, yet not watching.
const analysisDegradedKind = "camera.analysis_degraded"

// OnAnalysis turns a camera's analysis health change into an alert: yellow
// (look: the camera is not being watched properly) while degraded, green
// when it recovers.
func (n *Node) OnAnalysis(ev camera.AnalysisEvent) {
	name := n.byID[ev.Camera].Name
	if name == "" {
		name = ev.Camera
	}
	sev, what := wire.Yellow, "Camera video too damaged to analyse"
	if !ev.Degraded {
		sev, what = wire.Green, "Restored: camera video analysed again"
	}
	summary := fmt.Sprintf("%s: %s", what, name)
	if ev.Detail != "" {
		summary += " (" + ev.Detail + ")"
	}
	a := wire.Alert{
		ID: newAlertID(n.cfg.EdgeID, ev.Time), EdgeID: n.cfg.EdgeID, SiteID: n.cfg.SiteID,
		Source: ev.Camera, Kind: analysisDegradedKind, Severity: sev, Time: ev.Time.UTC(), Summary: summary,
	}
	// Raising goes through the outbox (an fsync): never on the camera's
	// analysis goroutine.
	n.raiseInOrder(a)
}
