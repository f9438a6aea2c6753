package central

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// act takes a workflow step as a guard signed in under body["actor"] (the
// server records the session's user, whatever the body claims), or with
// the admin token when no actor is named.
func act(t *testing.T, s *Server, id, action string, body map[string]string) (int, Record) {
	t.Helper()
	path := "/api/v1/alerts/" + url.PathEscape(id) + "/" + action
	var resp *http.Response
	var b []byte
	if actor := body["actor"]; actor != "" {
		resp, b = signIn(t, s, actor, RoleGuard).do(http.MethodPost, path, body)
	} else {
		resp, b = post(t, s, path, adminToken, body)
	}
	var out struct {
		Record
		Alert *Record `json:"alert"`
	}
	_ = json.Unmarshal(b, &out)
	if out.Alert != nil {
		return resp.StatusCode, *out.Alert
	}
	return resp.StatusCode, out.Record
}

// raised → acknowledged → dispatched → resolved, each step with who and
// when; steps out of order are refused with the alert as it is; consoles
// get every step as an update.
func TestAlertWorkflow(t *testing.T) {
	s := startServer(t)
	console := dialConsole(t, s, 0)
	console.backlog()
	edge := connectEdge(t, s, northID, northToken)
	edge.sendAlert(testAlert(northID, "w-1"))
	console.expectAlert("w-1", 1)

	bad := []struct {
		action string
		body   map[string]string
		want   int
	}{
		{"dispatch", map[string]string{"actor": "ann", "to": "patrol 2"}, http.StatusConflict}, // not acknowledged yet
		{"resolve", map[string]string{"actor": "ann"}, http.StatusBadRequest},                  // no note
		{"frobnicate", map[string]string{"actor": "ann"}, http.StatusNotFound},
	}
	for _, b := range bad {
		if code, _ := act(t, s, "w-1", b.action, b.body); code != b.want {
			t.Errorf("%s %v: %d, want %d", b.action, b.body, code, b.want)
		}
	}
	if code, _ := act(t, s, "missing", "acknowledge", map[string]string{"actor": "ann"}); code != http.StatusNotFound {
		t.Errorf("acknowledge unknown alert: %d", code)
	}

	steps := []struct {
		action, state string
		body          map[string]string
	}{
		{"acknowledge", StateAcknowledged, map[string]string{"actor": "ann"}},
		{"dispatch", StateDispatched, map[string]string{"actor": "ann", "to": "patrol 2"}},
		{"dispatch", StateDispatched, map[string]string{"actor": "bo", "to": "police"}},
		{"resolve", StateResolved, map[string]string{"actor": "bo", "note": "cattle at the gate"}},
	}
	for i, st := range steps {
		code, rec := act(t, s, "w-1", st.action, st.body)
		if code != http.StatusOK || rec.State != st.state || len(rec.History) != i+2 || rec.Rev != uint64(i+2) {
			t.Fatalf("%s: %d %+v", st.action, code, rec)
		}
		last := rec.History[i+1]
		if last.Actor != st.body["actor"] || last.To != st.body["to"] || last.Note != st.body["note"] || time.Since(last.At) > time.Minute {
			t.Fatalf("%s step = %+v", st.action, last)
		}
		m := console.next()
		if m.Type != "update" || m.Seq != uint64(i+2) || m.Alert.State != st.state {
			t.Fatalf("console after %s: %+v", st.action, m)
		}
	}
	code, rec := act(t, s, "w-1", "acknowledge", map[string]string{"actor": "cy"})
	if code != http.StatusConflict || rec.State != StateResolved {
		t.Fatalf("acknowledge a resolved alert: %d %+v", code, rec)
	}

	// A console resuming from before the alert sees it, then each step, once.
	late := dialConsole(t, s, 0)
	backlog, ready := late.backlog()
	if len(backlog) != 5 || ready != 5 || backlog[4].State != StateResolved || backlog[0].State != StateRaised {
		t.Fatalf("backlog: %d changes, ready %d", len(backlog), ready)
	}
}

// Alerts are found by site (and below), severity, state and event time.
func TestAlertQueries(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Edges[0].SiteID, cfg.Edges[1].SiteID = "lotus/north/wall/gate-a", "lotus/south/wall/gate-b"
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	north, south := connectEdgeAt(t, s, northID, northToken, cfg.Edges[0].SiteID), connectEdgeAt(t, s, southID, southToken, cfg.Edges[1].SiteID)
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		e, id := north, northID
		if i%2 == 1 {
			e, id = south, southID
		}
		a := testAlert(id, fmt.Sprintf("q-%02d", i))
		a.SiteID = ""
		a.Time = base.Add(time.Duration(i) * time.Hour)
		a.Severity = []wire.Severity{wire.Red, wire.Yellow, wire.Green}[i%3]
		e.sendAlert(a)
	}
	act(t, s, "q-00", "resolve", map[string]string{"actor": "ann", "note": "false alarm"})
	act(t, s, "q-03", "acknowledge", map[string]string{"actor": "ann"})

	ids := func(query string) string {
		var page alertsPage
		if resp := getJSON(t, s, "/api/v1/alerts?"+query, &page); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", query, resp.StatusCode)
		}
		out := ""
		for _, r := range page.Alerts {
			out += r.ID[2:] + " "
		}
		return out
	}
	tests := []struct{ query, want string }{
		{"site=lotus/north", "00 02 04 06 08 10 "},
		{"site=lotus/north/wall/gate-a&severity=red", "00 06 "},
		{"severity=yellow,green&limit=3", "01 02 04 "},
		{"state=open&site=lotus/north&severity=red", "06 "},
		{"state=resolved", "00 "},
		{"state=acknowledged", "03 "},
		{"from=2026-11-22T05:00:00Z&to=2026-11-22T08:00:00Z", "05 06 07 "},
		{"site=lotus", "00 01 02 03 04 05 06 07 08 09 10 11 "},
		{"site=lotus/nor", ""}, // sites match whole path parts
	}
	for _, tc := range tests {
		if got := ids(tc.query); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.query, got, tc.want)
		}
	}
	for _, bad := range []string{"state=lost", "severity=purple", "from=yesterday"} {
		var e apiError
		if resp := getJSON(t, s, "/api/v1/alerts?"+bad, &e); resp.StatusCode != http.StatusBadRequest || e.Param == "" {
			t.Errorf("%s: %d %+v", bad, resp.StatusCode, e)
		}
	}
}

// connectEdgeAt connects a bearer-token edge that says hello for site.
func connectEdgeAt(t *testing.T, s *Server, id, token, site string) *edgeClient {
	t.Helper()
	ws, _, err := dialEdge(s, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	e := &edgeClient{t: t, ws: ws}
	e.readChallenge()
	e.send(wire.TypeHello, wire.Hello{EdgeID: id, SiteID: site, Software: "test", Time: time.Now().UTC()})
	return e.welcome(id)
}
