package central

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

func TestEdgeUnknownTokenIsRefusedBeforeUpgrade(t *testing.T) {
	s := startServer(t)
	for _, token := range []string{"", "wrong-token", HashToken(northToken)} {
		ws, resp, err := dialEdge(s, token)
		if err == nil {
			ws.Close()
			t.Fatalf("token %q: upgraded, want 401", token)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: resp %v, err %v; want 401", token, resp, err)
		}
	}
	if got := metricValue(t, s, "vigil_central_edge_rejected_total", "reason", "unauthorized"); got != 3 {
		t.Fatalf("rejected{unauthorized} = %v, want 3", got)
	}
	if got := metricValue(t, s, "vigil_central_edges_connected"); got != 0 {
		t.Fatalf("edges_connected = %v", got)
	}
}

func TestEdgeHelloMustMatchToken(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name  string
		frame func(t *testing.T) []byte
		want  string
	}{
		{"other edge's id", func(t *testing.T) []byte {
			b, _ := wire.Marshal(wire.TypeHello, wire.Hello{EdgeID: southID, SiteID: siteID})
			return b
		}, "belongs to edge"},
		{"other site", func(t *testing.T) []byte {
			b, _ := wire.Marshal(wire.TypeHello, wire.Hello{EdgeID: northID, SiteID: "elsewhere"})
			return b
		}, "enrolled at site"},
		{"alert before hello", func(t *testing.T) []byte {
			b, _ := wire.Marshal(wire.TypeAlert, testAlert(northID, "early"))
			return b
		}, "first frame must be"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := dialEdge(s, northToken)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			e := &edgeClient{t: t, ws: ws}
			e.sendRaw(tc.frame(t))
			ce := e.expectClosed()
			if ce == nil || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, tc.want) {
				t.Fatalf("close = %v, want %d with %q", ce, websocket.ClosePolicyViolation, tc.want)
			}
			if got := metricValue(t, s, "vigil_central_edge_rejected_total", "reason", "bad_hello"); got != float64(i+1) {
				t.Fatalf("rejected{bad_hello} = %v, want %d", got, i+1)
			}
		})
	}
	if _, err := s.store.Get("early"); err == nil {
		t.Fatal("alert sent before hello was stored")
	}
}

func TestEdgeAlertStoredAndAcked(t *testing.T) {
	s := startServer(t)
	console := dialConsole(t, s, 0)
	if recs, seq := console.backlog(); len(recs) != 0 || seq != 0 {
		t.Fatalf("empty backlog: %d records, ready %d", len(recs), seq)
	}
	edge := connectEdge(t, s, northID, northToken)
	a := testAlert(northID, "n-1")
	a.Snapshot = testJPEG(t)
	a.SiteID = "" // central fills in the enrolled site
	edge.sendAlert(a)

	rec, err := s.store.Get("n-1")
	if err != nil || rec.Seq != 1 || rec.EdgeID != northID || rec.SiteID != siteID || rec.SnapshotURL == "" {
		t.Fatalf("stored %+v, %v", rec, err)
	}
	console.expectAlert("n-1", 1)

	// Frame types from a newer edge are ignored, not fatal.
	edge.sendRaw([]byte(`{"v":2,"type":"clip_index","body":{"clips":[]}}`))
	// A snapshot near the frame limit (base64 grows it by a third) is stored whole.
	big := testAlert(northID, "n-2")
	jpg := testJPEG(t)
	big.Snapshot = bytes.Repeat(jpg, wire.MaxFrameBytes*2/3/len(jpg))
	edge.sendAlert(big)
	console.expectAlert("n-2", 2)
	if jpg, err := s.store.Snapshot("n-2"); err != nil || !bytes.Equal(jpg, big.Snapshot) {
		t.Fatalf("big snapshot: %d bytes, %v", len(jpg), err)
	}
	if got := metricValue(t, s, "vigil_central_alerts_received_total"); got != 2 {
		t.Fatalf("alerts_received = %v", got)
	}
	if got := metricValue(t, s, "vigil_central_edges_connected"); got != 1 {
		t.Fatalf("edges_connected = %v", got)
	}
}

func TestEdgeDuplicateAckedAgainButFannedOutOnce(t *testing.T) {
	s := startServer(t)
	console := dialConsole(t, s, 0)
	console.backlog()
	edge := connectEdge(t, s, northID, northToken)
	a := testAlert(northID, "dup-1")
	edge.sendAlert(a)
	edge.sendAlert(a) // same connection

	// After a reconnect the edge re-sends whatever it has no ack for.
	edge.ws.Close()
	edge = connectEdge(t, s, northID, northToken)
	edge.sendAlert(a)
	edge.sendAlert(testAlert(northID, "next-2"))

	console.expectAlert("dup-1", 1)
	console.expectAlert("next-2", 2) // nothing in between
	if got := metricValue(t, s, "vigil_central_alerts_duplicate_total"); got != 2 {
		t.Fatalf("alerts_duplicate = %v, want 2", got)
	}
	if got := metricValue(t, s, "vigil_central_alerts_received_total"); got != 4 {
		t.Fatalf("alerts_received = %v, want 4", got)
	}
}

// A bad frame from one edge closes that edge's connection only; the other
// edge keeps delivering.
func TestEdgeBadFrameClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t)
	south := connectEdge(t, s, southID, southToken)

	envelope := func(v int, typ, body string) []byte {
		return []byte(`{"v":` + strconv.Itoa(v) + `,"type":"` + typ + `","body":` + body + `}`)
	}
	alertFrame := func(mut func(a *wire.Alert)) []byte {
		a := testAlert(northID, "bad")
		mut(&a)
		b, _ := wire.Marshal(wire.TypeAlert, a)
		return b
	}
	tests := []struct {
		name   string
		frame  []byte
		code   int // 0: any way of closing
		reason string
		metric string
	}{
		{"malformed json", []byte(`{"v":1,"type":"alert","body":{`), websocket.CloseUnsupportedData, "malformed envelope", "bad_frame"},
		{"wrong envelope version", envelope(1, "alert", "{}"), websocket.CloseUnsupportedData, "unsupported envelope version", "bad_frame"},
		{"malformed alert body", envelope(wire.Version, "alert", `{"id":5}`), websocket.CloseUnsupportedData, "malformed alert body", "bad_frame"},
		{"invalid alert", alertFrame(func(a *wire.Alert) { a.Severity = "purple" }), websocket.CloseUnsupportedData, `alert "bad" rejected: alert: unknown severity`, "invalid_alert"},
		{"alert for another edge", alertFrame(func(a *wire.Alert) { a.EdgeID = southID }), websocket.ClosePolicyViolation, "claims edge", "edge_mismatch"},
		{"alert for another site", alertFrame(func(a *wire.Alert) { a.SiteID = "elsewhere" }), websocket.ClosePolicyViolation, "claims site", "edge_mismatch"},
		{"oversized frame", bytes.Repeat([]byte(" "), wire.MaxFrameBytes+1), 0, "", "bad_frame"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := metricValue(t, s, "vigil_central_edge_rejected_total", "reason", tc.metric)
			north := connectEdge(t, s, northID, northToken)
			north.sendRaw(tc.frame)
			ce := north.expectClosed()
			if tc.code != 0 && (ce == nil || ce.Code != tc.code || !strings.Contains(ce.Text, tc.reason)) {
				t.Fatalf("close = %v, want %d with %q", ce, tc.code, tc.reason)
			}
			eventually(t, "rejection counted", func() bool {
				return metricValue(t, s, "vigil_central_edge_rejected_total", "reason", tc.metric) == before+1
			})
			south.sendAlert(testAlert(southID, "s-"+strconv.Itoa(i)))
		})
	}
	if _, err := s.store.Get("bad"); err == nil {
		t.Fatal("a refused alert was stored")
	}
	// Once north's last connection is gone, only south is online.
	eventually(t, "north offline", func() bool { return metricValue(t, s, "vigil_central_edges_connected") == 1 })
}

func TestEdgeSecondConnectionReplacesFirst(t *testing.T) {
	s := startServer(t)
	first := connectEdge(t, s, northID, northToken)
	second := connectEdge(t, s, northID, northToken)
	ce := first.expectClosed()
	if ce == nil || ce.Code != websocket.CloseNormalClosure || !strings.Contains(ce.Text, "replaced") {
		t.Fatalf("first connection closed with %v, want 1000 replaced", ce)
	}
	second.sendAlert(testAlert(northID, "after-replace"))
	if got := metricValue(t, s, "vigil_central_edges_connected"); got != 1 {
		t.Fatalf("edges_connected = %v, want 1", got)
	}
	var body struct{ Edges []EdgeStatus }
	getJSON(t, s, "/api/v1/edges", &body)
	if !body.Edges[0].Online {
		t.Fatalf("north offline after its replaced connection ended: %+v", body.Edges[0])
	}
}
