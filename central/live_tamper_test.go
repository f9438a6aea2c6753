package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/internal/testrig"
	"github.com/vigil-perimeter/vigil/wire"
)

// liveTile is a browser watching one camera's live tile.
type liveTile struct {
	t     *testing.T
	ws    *websocket.Conn
	state string // the last state central sent
}

func watchTile(t *testing.T, s *Server, edge, cam string) *liveTile {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, _, err := d.Dial(fmt.Sprintf("ws://%s/api/v1/live/%s/%s/ws", s.Addr(), edge, cam), http.Header{"Authorization": {"Bearer " + adminToken}})
	if err != nil {
		t.Fatalf("dial live view: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &liveTile{t: t, ws: ws}
}

// expect reads the tile's state messages until want(state, detail) holds.
func (l *liveTile) expect(what string, want func(state, detail string) bool) {
	l.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		_ = l.ws.SetReadDeadline(deadline)
		typ, b, err := l.ws.ReadMessage()
		if err != nil {
			l.t.Fatalf("tile: want %s, last state %q: %v", what, l.state, err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		var m struct{ Type, State, Detail string }
		if json.Unmarshal(b, &m) != nil || m.Type != "state" {
			continue
		}
		l.state = m.State + " " + m.Detail
		if want(m.State, m.Detail) {
			return
		}
	}
}

func (l *liveTile) expectTampered(detail string) {
	l.t.Helper()
	l.expect("tampered ("+detail+")", func(st, d string) bool { return st == "tampered" && d == detail })
}

func (l *liveTile) expectNotTampered() {
	l.t.Helper()
	l.expect("not tampered", func(st, _ string) bool { return st != "tampered" })
}

// sendStored sends an alert and waits for its ack, passing over central's
// requests (live_start) to the edge.
func (e *edgeClient) sendStored(a wire.Alert) {
	e.t.Helper()
	e.send(wire.TypeAlert, a)
	for {
		env := e.read()
		if env.Type == wire.TypeRequest {
			continue
		}
		var ack wire.Ack
		if env.Type != wire.TypeAck || wire.DecodeBody(env, &ack) != nil {
			e.t.Fatalf("want ack for %s, got %s %s", a.ID, env.Type, env.Body)
		}
		for _, id := range ack.IDs {
			if id == a.ID {
				return
			}
		}
	}
}

func tamperAlert(id, kind string, sev wire.Severity) wire.Alert {
	a := testAlert(northID, id)
	a.Kind, a.Severity, a.Summary, a.Boxes, a.Zones = "tamper."+kind, sev, "Camera "+kind+": gate", nil, nil
	return a
}

// TestLiveTamperedFollowsOpenAlerts: a tile shows Tampered while the
// camera has an open tamper alert in the store: a guard resolving it
// clears the tile; after a restart over the same data directory an alert
// still open keeps the tile tampered.
func TestLiveTamperedFollowsOpenAlerts(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	edge := connectEdge(t, s, northID, northToken)
	edge.sendStored(tamperAlert("tc-1", "covered", wire.Red))
	tile := watchTile(t, s, northID, "cam-gate")
	tile.expectTampered("covered")
	other := watchTile(t, s, northID, "cam-yard")
	other.expectNotTampered()

	if code, rec := act(t, s, "tc-1", "resolve", map[string]string{"actor": "ann", "note": "cloth removed"}); code != http.StatusOK || rec.State != StateResolved {
		t.Fatalf("resolve: %d %+v", code, rec)
	}
	tile.expectNotTampered()

	edge.sendStored(tamperAlert("tc-2", "blinded", wire.Red))
	tile.expectTampered("blinded")

	// Restart over the same data directory with tc-2 still open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newServer(t, cfg)
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	connectEdge(t, s2, northID, northToken)
	watchTile(t, s2, northID, "cam-gate").expectTampered("blinded")
	watchTile(t, s2, northID, "cam-yard").expectNotTampered()
}

// TestLiveTamperedClearedByRestored: the green "Restored" tamper alert
// clears the tile as it arrives; the all-clear holds after a restart,
// even once a guard has resolved it while the red alert is still open.
func TestLiveTamperedClearedByRestored(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	edge := connectEdge(t, s, northID, northToken)
	tile := watchTile(t, s, northID, "cam-gate")
	tile.expectNotTampered()
	edge.sendStored(tamperAlert("tr-1", "covered", wire.Red))
	tile.expectTampered("covered")
	edge.sendStored(tamperAlert("tr-2", "covered", wire.Green))
	tile.expectNotTampered()
	// Offline and too dark are not tampering.
	edge.sendStored(tamperAlert("tr-3", "signal_lost", wire.Yellow))
	if code, _ := act(t, s, "tr-2", "resolve", map[string]string{"actor": "ann", "note": "all clear seen"}); code != http.StatusOK {
		t.Fatalf("resolve the all-clear: %d", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newServer(t, cfg)
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	connectEdge(t, s2, northID, northToken)
	watchTile(t, s2, northID, "cam-gate").expectNotTampered()
}

// TestServerCloseLeavesNoGoroutines: with an edge, a console and a live
// viewer connected (its keep-alive asking the edge), every goroutine the
// server started has ended when Close returns.
func TestServerCloseLeavesNoGoroutines(t *testing.T) {
	leaks := testrig.CheckGoroutines(t)
	s, err := New(testConfig(t.TempDir()), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	edge := connectEdge(t, s, northID, northToken)
	edge.sendStored(tamperAlert("lk-1", "covered", wire.Red))
	console := dialConsole(t, s, 0)
	console.backlog()
	tile := watchTile(t, s, northID, "cam-gate")
	tile.expectTampered("covered")
	if env := edge.read(); env.Type != wire.TypeRequest {
		t.Fatalf("edge: want live_start, got %s", env.Type)
	}
	if err := s.Healthy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Healthy(t.Context()); err == nil {
		t.Error("Healthy after Close")
	}
	edge.ws.Close()
	console.ws.Close()
	tile.ws.Close()
	http.DefaultClient.CloseIdleConnections()
	leaks.Check()
}
