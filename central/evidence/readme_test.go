package evidence

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestReadmeCountsGateEvents: README.txt says, camera by camera, how many
// alerts and gate events the manifest links, and of which kinds: every
// gate event (forced, closed …), not only passages.
func TestReadmeCountsGateEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	m := &Manifest{CaseNumber: "2026-XA-0117", ExportedAt: t0, Cameras: []CameraManifest{{
		CameraID: "cam-gate", CameraName: "Gate", Video: "video/cam-gate.mp4", Actual: Range{Start: t0, End: t0.Add(time.Minute)},
		Alerts: []json.RawMessage{json.RawMessage(`{"id":"forced-1","kind":"gate.forced"}`)},
		GateEvents: []json.RawMessage{
			json.RawMessage(`{"source":"north-gate","kind":"gate.forced"}`),
			json.RawMessage(`{"source":"north-gate","kind":"gate.closed"}`),
			json.RawMessage(`{"source":"north-gate","kind":"gate.closed"}`),
			json.RawMessage(`{"gate":"north-gate","event":"opened"}`), // no kind: counted, not named
		},
	}, {
		CameraID: "cam-yard", Video: "video/cam-yard.mp4", Alerts: []json.RawMessage{}, GateEvents: []json.RawMessage{},
	}}}
	readme := string(readme(m))
	for _, want := range []string{
		"告警 1 条，门禁事件 4 条 / 1 alerts, 4 gate events (gate.closed 2, gate.forced 1) (manifest.json)\r\n",
		"告警 0 条，门禁事件 0 条 / 0 alerts, 0 gate events (manifest.json)\r\n",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
}
