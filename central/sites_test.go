package central

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

const (
	gateA = "lotus/north/wall/gate-a"
	gateB = "lotus/north/wall/gate-b"
	gateC = "lotus/south/road/gate-c"
)

func townshipConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.Township = &TownshipConfig{ID: "lotus", Name: "Lotus township", Villages: []VillageConfig{
		{ID: "north", Name: "North village", Zones: []ZoneConfig{{ID: "wall", Entrances: []EntranceConfig{
			{ID: "gate-a", Name: "Gate A", Cameras: []DeviceConfig{{ID: "cam-a", Name: "Gate A lane"}}, Gates: []DeviceConfig{{ID: "barrier-a"}}},
			{ID: "gate-b", Name: "Gate B"},
		}}}},
		{ID: "south", Zones: []ZoneConfig{{ID: "road", Entrances: []EntranceConfig{{ID: "gate-c"}}}}},
	}}
	cfg.Edges[0].SiteID, cfg.Edges[1].SiteID = gateA, gateC
	return cfg
}

func TestTownshipConfigValidation(t *testing.T) {
	cfg := townshipConfig(t.TempDir())
	cfg.Township.Villages[0].Zones[0].Entrances[1].ID = "gate-a"
	cfg.Edges[1].SiteID = "lotus/south"
	msgs := ""
	for _, fe := range cfg.Validate() {
		msgs += fe.Error() + "\n"
	}
	for _, want := range []string{
		`township.villages[0].zones[0].entrances[1].id: "gate-a" is used twice`,
		`edges[1].site_id: "lotus/south" is not an entrance`,
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("validation %q lacks %q", msgs, want)
		}
	}
}

// Every node's colour is its worst open alert; resolving the last red one
// turns it back; consoles get the colour changes live and the whole map in
// a snapshot.
func TestSiteColoursRollUp(t *testing.T) {
	s := newServer(t, townshipConfig(t.TempDir()))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	live := dialConsole(t, s, 0)
	live.raw = true
	live.backlog()
	a := connectEdgeAt(t, s, northID, northToken, gateA)
	c := connectEdgeAt(t, s, southID, southToken, gateC)
	cred := enrol(t, s, "gate-b-box", gateB)
	b := connectEnrolled(t, s, cred)

	send := func(e *edgeClient, edge, id string, sev wire.Severity) {
		al := testAlert(edge, id)
		al.SiteID, al.Severity = "", sev
		e.sendAlert(al)
	}
	send(a, northID, "a-yellow", wire.Yellow)
	send(b, "gate-b-box", "b-red", wire.Red)
	send(c, southID, "c-green", wire.Green)

	colours := func() map[string]wire.Severity {
		var body struct{ Sites []siteOut }
		getJSON(t, s, "/api/v1/sites", &body)
		out := map[string]wire.Severity{}
		var walk func([]siteOut)
		walk = func(ns []siteOut) {
			for _, n := range ns {
				out[n.ID] = n.Colour
				walk(n.Children)
			}
		}
		walk(body.Sites)
		return out
	}
	want := map[string]wire.Severity{"lotus": wire.Red, "lotus/north": wire.Red, "lotus/north/wall": wire.Red,
		gateA: wire.Yellow, gateB: wire.Red, "lotus/south": wire.Green, gateC: wire.Green}
	got := colours()
	for id, c := range want {
		if got[id] != c {
			t.Errorf("%s is %s, want %s", id, got[id], c)
		}
	}

	// The live console saw north turn red, and its edges come online.
	sawRed, sawOnline := false, false
	for !sawRed {
		m := live.next()
		if m.Type == consoleSite && m.Site.ID == "lotus/north" && m.Site.Colour == wire.Red {
			sawRed = true
		}
		if m.Type == consoleEdge && m.Edge.ID == "gate-b-box" && m.Edge.Online {
			sawOnline = true
		}
	}
	if !sawOnline {
		t.Error("console never heard gate-b-box come online")
	}

	if code, _ := act(t, s, "b-red", "resolve", map[string]string{"actor": "ann", "note": "checked"}); code != http.StatusOK {
		t.Fatalf("resolve: %d", code)
	}
	got = colours()
	if got["lotus"] != wire.Yellow || got[gateB] != wire.Green || got["lotus/north"] != wire.Yellow {
		t.Fatalf("after resolving the red alert: %v", got)
	}

	// Entrances list their edges (online, last seen) and devices (named in
	// the config, state from heartbeats).
	a.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), Cameras: []wire.CameraStatus{{ID: "cam-a", Online: true}},
		Gates: []wire.GateStatus{{ID: "barrier-a", State: "closed", Online: true}}})
	send(a, northID, "a-sync", wire.Green) // its ack orders it after the heartbeat
	var body struct{ Sites []siteOut }
	getJSON(t, s, "/api/v1/sites", &body)
	ga := body.Sites[0].Children[0].Children[0].Children[0]
	if ga.ID != gateA || ga.Name != "Gate A" || ga.Level != LevelEntrance || len(ga.Edges) != 1 || !ga.Edges[0].Online ||
		len(ga.Cameras) != 1 || ga.Cameras[0].Name != "Gate A lane" || !ga.Cameras[0].Online || len(ga.Gates) != 1 || ga.Gates[0].State != "closed" {
		t.Fatalf("gate A = %+v", ga)
	}

	// A fresh console starts from a snapshot: colours, open alerts newest
	// first, and the count of open alerts.
	fresh := dialConsoleFresh(t, s, "")
	m := fresh.next()
	if m.Type != consoleSnapshot || m.OpenTotal == nil || *m.OpenTotal != 3 || len(m.Open) != 3 || m.Open[0].ID != "a-sync" || m.Seq != s.store.LastSeq() {
		t.Fatalf("snapshot = %+v", m)
	}
	found := false
	for _, sc := range m.Sites {
		if sc.ID == "lotus" && sc.Colour == wire.Yellow && sc.Open.Yellow == 1 && sc.Open.Green == 2 {
			found = true
		}
	}
	if !found {
		t.Fatalf("snapshot sites %+v lack lotus yellow", m.Sites)
	}
}

// Colours survive a restart: they are rebuilt from the open-alert index.
func TestSiteColoursAfterRestart(t *testing.T) {
	cfg := townshipConfig(t.TempDir())
	first := newServer(t, cfg)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdgeAt(t, first, northID, northToken, gateA)
	al := testAlert(northID, "r-1")
	al.SiteID = ""
	e.sendAlert(al)
	first.Close()

	second := newServer(t, cfg)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialConsoleFresh(t, second, "")
	m := c.next()
	for _, sc := range m.Sites {
		if sc.ID == gateA && sc.Colour != wire.Red {
			t.Fatalf("gate A after restart: %+v", sc)
		}
	}
	if len(m.Open) != 1 || m.Open[0].ID != "r-1" {
		t.Fatalf("open after restart: %+v", m.Open)
	}
}

// An edge's update changes its alert once, however often it is re-sent;
// updates to unknown alerts are acknowledged and ignored; event batches
// are stored once and listed by time and site.
func TestAlertUpdatesAndEvents(t *testing.T) {
	s := startServer(t)
	console := dialConsole(t, s, 0)
	console.backlog()
	e := connectEdge(t, s, northID, northToken)
	e.sendAlert(testAlert(northID, "u-alert"))
	console.expectAlert("u-alert", 1)

	jpg := testJPEG(t)
	up := wire.AlertUpdate{ID: "u-1", AlertID: "u-alert", EdgeID: northID, Time: time.Now().UTC(),
		Severity: wire.Yellow, Summary: "person left", Ended: time.Now().UTC(), Snapshot: jpg}
	for range 2 {
		e.send(wire.TypeAlertUpdate, up)
		e.expectAck("u-1")
	}
	e.send(wire.TypeAlertUpdate, wire.AlertUpdate{ID: "u-2", AlertID: "nope", EdgeID: northID, Time: time.Now()})
	e.expectAck("u-2")
	m := console.next()
	if m.Type != "update" || m.Seq != 2 || m.Alert.Severity != wire.Yellow || m.Alert.Summary != "person left" ||
		len(m.Alert.Updates) != 1 || m.Alert.Updates[0].SnapshotURL == "" || m.Alert.Ended.IsZero() {
		t.Fatalf("update on the console: %+v", m)
	}
	if resp, body := get(t, s, m.Alert.Updates[0].SnapshotURL); resp.StatusCode != http.StatusOK || len(body) != len(jpg) {
		t.Fatalf("update snapshot: %d %d bytes", resp.StatusCode, len(body))
	}
	if s.store.LastSeq() != 2 {
		t.Fatalf("last seq %d: the re-sent or orphan update made a change", s.store.LastSeq())
	}

	t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	batch := wire.EventBatch{ID: "b-1", EdgeID: northID, Events: []wire.Event{
		{Time: t0, Source: "barrier-a", Kind: "gate.opened"}, {Time: t0.Add(time.Minute), Source: "barrier-a", Kind: "gate.closed"},
	}}
	for range 2 {
		e.send(wire.TypeEventBatch, batch)
		e.expectAck("b-1")
	}
	var page struct {
		Events []StoredEvent `json:"events"`
	}
	getJSON(t, s, "/api/v1/events?from=2026-11-22T07:00:00Z&site="+siteID, &page)
	if len(page.Events) != 2 || page.Events[0].Kind != "gate.opened" || page.Events[1].SiteID != siteID {
		t.Fatalf("events: %+v", page.Events)
	}
	getJSON(t, s, "/api/v1/events?from=2026-11-22T08:00:30Z", &page)
	if len(page.Events) != 1 {
		t.Fatalf("events from 08:00:30: %+v", page.Events)
	}

	// An edge replaying its gate journal after a crash re-sends a passage
	// in another batch: an event with an ID is stored once.
	t1 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	passage := wire.Event{ID: "gate-north-j42", Time: t1, Source: "barrier-a", Kind: "gate.passage"}
	for _, id := range []string{"b-2", "b-3"} {
		e.send(wire.TypeEventBatch, wire.EventBatch{ID: id, EdgeID: northID, Events: []wire.Event{passage}})
		e.expectAck(id)
	}
	getJSON(t, s, "/api/v1/events?from=2026-11-22T08:30:00Z", &page)
	if len(page.Events) != 1 || page.Events[0].Kind != "gate.passage" {
		t.Fatalf("a replayed passage: %+v, want it once", page.Events)
	}
}

// dialConsoleFresh connects without ?since= (snapshot mode).
func dialConsoleFresh(t *testing.T, s *Server, query string) *consoleClient {
	t.Helper()
	return dialConsoleURL(t, "ws://"+s.Addr()+"/api/v1/console/ws"+query)
}
