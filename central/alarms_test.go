package central

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/internal/config"
	"github.com/vigil-perimeter/vigil/wire"
)

// expectAlertClosed reads edge frames until alert_closed, keeping acks.
func (e *edgeClient) expectAlertClosed() wire.AlertClosed {
	e.t.Helper()
	if e.acked == nil {
		e.acked = map[string]bool{}
	}
	if len(e.closed) > 0 {
		c := e.closed[0]
		e.closed = e.closed[1:]
		return c
	}
	for {
		env := e.readFrame(true)
		switch env.Type {
		case wire.TypeAck:
			var ack wire.Ack
			_ = wire.DecodeBody(env, &ack)
			for _, id := range ack.IDs {
				e.acked[id] = true
			}
		case wire.TypeAlertClosed:
			var c wire.AlertClosed
			if err := wire.DecodeBody(env, &c); err != nil || c.Validate() != nil {
				e.t.Fatalf("alert_closed: %s: %v", env.Body, err)
			}
			return c
		default:
			e.t.Fatalf("want alert_closed, got %s %s", env.Type, env.Body)
		}
	}
}

// nextChange reads console messages until an alert or update.
func (c *consoleClient) nextChange() consoleMsgIn {
	c.t.Helper()
	for {
		m := c.next()
		if m.Type == "alert" || m.Type == "update" {
			return m
		}
	}
}

func forcedAlert(id string) wire.Alert {
	a := testAlert(northID, id)
	a.Source, a.Kind, a.Summary, a.Boxes, a.Zones = "north-gate", "gate.forced", "Gate forced open", nil, nil
	return a
}

// A gate forced again after the guard resolved its alert is a new red
// alert (never appended to the resolved record); the edge is told the
// alert was closed; re-sends change nothing; an all-clear opens nothing.
func TestRecurrenceAfterResolveOpensSuccessor(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	con := dialConsole(t, s, 0)
	if _, seq := con.backlog(); seq != 0 {
		t.Fatalf("ready at %d", seq)
	}
	guard := signIn(t, s, "gina", RoleGuard)
	a := forcedAlert("f-1")
	e.sendAlert(a)
	if m := con.nextChange(); m.Type != "alert" || m.Alert.ID != "f-1" || m.Alert.Count != 1 || m.Alert.Priority != 2 {
		t.Fatalf("first alert: %+v", m.Alert)
	}
	if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/f-1/resolve", map[string]string{"note": "checked, closed it"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	if cl := e.expectAlertClosed(); cl.AlertID != "f-1" || cl.State != StateResolved || cl.By != "gina" {
		t.Fatalf("alert_closed: %+v", cl)
	}
	if m := con.nextChange(); m.Type != "update" || m.Alert.State != StateResolved {
		t.Fatalf("resolve change: %+v", m)
	}

	again := wire.AlertUpdate{ID: "f-1-u2", AlertID: "f-1", EdgeID: northID, Time: a.Time.Add(30 * time.Second),
		Severity: wire.Red, Summary: "Gate forced open (2 times)", Count: 2, Snapshot: testJPEG(t), SnapshotTime: a.Time.Add(30 * time.Second),
		Boxes: []wire.Box{{X: 0.2, Y: 0.2, W: 0.1, H: 0.3}}}
	e.send(wire.TypeAlertUpdate, again)
	e.expectAck(again.ID)
	m := con.nextChange()
	if m.Type != "alert" || m.Alert.ID != again.ID || m.Alert.Follows != "f-1" || m.Alert.State != StateRaised ||
		m.Alert.Severity != wire.Red || m.Alert.Count != 2 || m.Alert.Kind != "gate.forced" || m.Alert.SnapshotURL == "" ||
		len(m.Alert.Boxes) != 1 || m.Alert.Seq != m.Seq {
		t.Fatalf("recurrence is not a new red alert: %+v %+v", m, m.Alert)
	}
	last := s.store.LastSeq()
	e.send(wire.TypeAlertUpdate, again) // a re-send: acknowledged, nothing new (the next change is the third's)
	e.expectAck(again.ID)
	if s.store.LastSeq() != last {
		t.Fatal("a re-sent recurrence changed the store")
	}
	if old, _ := s.store.Get("f-1"); old.State != StateResolved || len(old.Updates) != 0 {
		t.Fatalf("resolved alert changed: %+v", old)
	}

	// Later updates for the edge's alert go to the successor; a recurrence
	// there raises its count and last_time.
	third := wire.AlertUpdate{ID: "f-1-u3", AlertID: "f-1", EdgeID: northID, Time: a.Time.Add(40 * time.Second), Count: 3, Summary: "Gate forced open (3 times)"}
	e.send(wire.TypeAlertUpdate, third)
	e.expectAck(third.ID)
	if m := con.nextChange(); m.Type != "update" || m.Alert.ID != again.ID || m.Alert.Count != 3 || !m.Alert.LastTime.Equal(third.Time) {
		t.Fatalf("fold into the successor: %+v", m.Alert)
	}
	if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/"+again.ID+"/resolve", map[string]string{"note": "again nothing"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve successor: %d %s", resp.StatusCode, body)
	}
	if cl := e.expectAlertClosed(); cl.AlertID != "f-1" { // the ID the edge knows
		t.Fatalf("alert_closed for the successor: %+v", cl)
	}
	con.nextChange()

	// The all-clear of a resolved alert is kept in it, and opens nothing.
	clear := wire.AlertUpdate{ID: "f-1-u4", AlertID: "f-1", EdgeID: northID, Time: a.Time.Add(time.Minute), Ended: a.Time.Add(time.Minute), Severity: wire.Green}
	e.send(wire.TypeAlertUpdate, clear)
	e.expectAck(clear.ID)
	if m := con.nextChange(); m.Type != "update" || m.Alert.ID != again.ID || m.Alert.State != StateResolved {
		t.Fatalf("all-clear: %+v", m)
	}
	if _, err := s.store.Get(clear.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an all-clear opened an alert: %v", err)
	}

	// An alert raised with a running count, then changed by its edge at
	// the same count, is no recurrence.
	b := forcedAlert("f-5")
	b.Count = 2
	e.sendAlert(b)
	if m := con.nextChange(); m.Alert.ID != "f-5" || m.Alert.Count != 2 {
		t.Fatalf("alert with a count: %+v", m.Alert)
	}
	if resp, _ := guard.do(http.MethodPost, "/api/v1/alerts/f-5/resolve", map[string]string{"note": "ok"}); resp.StatusCode != http.StatusOK {
		t.Fatal("resolve f-5")
	}
	e.expectAlertClosed()
	con.nextChange()
	same := wire.AlertUpdate{ID: "f-5-u1", AlertID: "f-5", EdgeID: northID, Time: b.Time.Add(time.Second), Summary: "still", Count: 2}
	e.send(wire.TypeAlertUpdate, same)
	e.expectAck(same.ID)
	if m := con.nextChange(); m.Type != "update" || m.Alert.ID != "f-5" {
		t.Fatalf("same count: %+v", m)
	}
}

func TestDefaultPriorities(t *testing.T) {
	for kind, want := range map[string]int{
		"gate.sos": 1, "gate.smoke": 1, "gate.gas": 1, "sensor.smoke": 1, "gate.duress": 1,
		"gate.forced": 2, "gate.intrusion": 2, "perimeter.line": 2,
		"perimeter.crossing": 2, "perimeter.loiter": 3,
		"tamper": 3, "tamper.covered": 3, "gate.tamper": 3,
		"gate.held": 4, "sensor.water": 4,
		"sensor.alarm": 1, "sensor.warning": 4, "sensor.silent": 6,
		"motion": 5, "offline": 6, "system.selftest": 6, "gate.battery": 6, "gate.passage": 7, "weird": 7,
	} {
		if got := defaultPriority(kind); got != want {
			t.Errorf("%s: priority %d, want %d", kind, got, want)
		}
	}
	old := Record{Kind: "gate.sos"} // stored before priorities and counts
	if old.normalise(); old.Priority != 1 || old.Count != 1 {
		t.Errorf("old record read: priority %d count %d", old.Priority, old.Count)
	}
	r := newPriorityRules(&AlarmsConfig{Priorities: map[string]int{"motion": 4, "gate.*": 6, "gate.forced": 1},
		Sites: map[string]AlarmSitePriority{"north": {Priorities: map[string]int{"motion": 2}}}})
	for _, c := range []struct {
		site, kind string
		want       int
	}{{"south", "motion", 4}, {"north/gate-3", "motion", 2}, {"north", "gate.held", 6}, {"x", "gate.forced", 1}, {"x", "tamper", 3}} {
		if got := r.priority(c.site, c.kind); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.site, c.kind, got, c.want)
		}
	}
}

func TestAlarmsConfigErrors(t *testing.T) {
	bad := config.Duration(-time.Second)
	c := testConfig(t.TempDir())
	c.Alarms = AlarmsConfig{Priorities: map[string]int{"gate.sos": 0, "*": 2, "ga*te": 1},
		Sites: map[string]AlarmSitePriority{"north": {Priorities: map[string]int{"motion": 10}}}, EscalateAfter: &bad}
	var got []string
	for _, fe := range c.Validate() {
		got = append(got, fe.Field)
	}
	joined := strings.Join(got, " ")
	for _, want := range []string{`alarms.priorities["gate.sos"]`, `alarms.priorities["*"]`, `alarms.priorities["ga*te"]`,
		`alarms.sites["north"].priorities["motion"]`, "alarms.escalate_after"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no error for %s in %v", want, got)
		}
	}
}

// sort=priority: open before resolved, red before yellow, then priority,
// then newest first.
func TestAlertListPrioritySort(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	send := func(id, kind string, sev wire.Severity) {
		a := testAlert(northID, id)
		a.Kind, a.Severity = kind, sev
		e.sendAlert(a)
	}
	send("m-old", "motion", wire.Red)
	send("sos", "gate.sos", wire.Red)
	send("held", "gate.held", wire.Yellow)
	send("m-new", "motion", wire.Red)
	send("forced", "gate.forced", wire.Red)
	var page alertsPage
	if resp := getJSON(t, s, "/api/v1/alerts?state=open&sort=priority", &page); resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	var ids []string
	for _, r := range page.Alerts {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, ","), "sos,forced,m-new,m-old,held"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	if resp := getJSON(t, s, "/api/v1/alerts?sort=colour", &page); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad sort: %d", resp.StatusCode)
	}
	if resp := getJSON(t, s, "/api/v1/alerts", &page); resp.StatusCode != http.StatusOK || page.Alerts[0].ID != "m-old" {
		t.Fatal("default order is creation order")
	}
}

// A red alert still raised escalate_after after it arrived escalates
// once (console update, audit entry by the system); an acknowledged one
// does not; after a restart pending escalations still happen.
func TestEscalation(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	after := config.Duration(time.Second)
	cfg.Alarms.EscalateAfter = &after
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdge(t, s, northID, northToken)
	con := dialConsole(t, s, 0)
	con.backlog()
	guard := signIn(t, s, "gus", RoleGuard)
	e.sendAlert(forcedAlert("esc-1"))
	e.sendAlert(forcedAlert("esc-2"))
	con.nextChange()
	con.nextChange()
	if resp, _ := guard.do(http.MethodPost, "/api/v1/alerts/esc-2/acknowledge", map[string]string{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("ack: %d", resp.StatusCode)
	}
	con.nextChange()
	m := con.nextChange()
	if m.Type != "update" || m.Alert.ID != "esc-1" || m.Alert.EscalatedAt.IsZero() || m.Alert.State != StateRaised {
		t.Fatalf("escalation: %+v", m.Alert)
	}
	if st := m.Alert.History[len(m.Alert.History)-1]; st.Actor != actorSystem || st.Note == "" {
		t.Fatalf("escalation step: %+v", st)
	}
	time.Sleep(600 * time.Millisecond) // esc-2 was acknowledged; esc-1 escalates once
	if r, _ := s.store.Get("esc-2"); !r.EscalatedAt.IsZero() {
		t.Fatal("acknowledged alert escalated")
	}
	if r, _ := s.store.Get("esc-1"); len(r.History) != 2 {
		t.Fatalf("escalated more than once: %+v", r.History)
	}
	eventually(t, "escalation audited", func() bool {
		es, err := s.AuditLog().List(context.Background(), audit.Filter{Action: auditActionEscalate})
		return err == nil && len(es) == 1 && es[0].Target == "esc-1" && es[0].Actor.User == actorSystem
	})

	// Restart: an alert stored before it is escalated after it.
	e.sendAlert(forcedAlert("esc-3"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	long := config.Duration(time.Second)
	cfg.Alarms.EscalateAfter = &long
	s2 := newServer(t, cfg)
	eventually(t, "escalated after restart", func() bool {
		r, err := s2.store.Get("esc-3")
		return err == nil && !r.EscalatedAt.IsZero()
	})
	if r, _ := s2.store.Get("esc-2"); !r.EscalatedAt.IsZero() {
		t.Fatal("acknowledged alert escalated")
	}
}

// Mute is per browser; central answers until/by and audits every call.
func TestConsoleMuteAudited(t *testing.T) {
	s := startServer(t)
	g := signIn(t, s, "gwen", RoleGuard)
	before := time.Now()
	resp, body := g.do(http.MethodPost, "/api/v1/console/mute", map[string]int{"minutes": 5})
	var ans struct {
		Until *time.Time `json:"until"`
		By    string     `json:"by"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ans) != nil || ans.By != "gwen" || ans.Until == nil ||
		ans.Until.Before(before.Add(5*time.Minute-time.Second)) || ans.Until.After(time.Now().Add(5*time.Minute)) {
		t.Fatalf("mute: %d %s", resp.StatusCode, body)
	}
	if resp, body = g.do(http.MethodPost, "/api/v1/console/mute", map[string]int{"minutes": 0}); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"until":null`) {
		t.Fatalf("unmute: %d %s", resp.StatusCode, body)
	}
	if resp, _ = g.do(http.MethodPost, "/api/v1/console/mute", map[string]int{"minutes": 61}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("61 minutes: %d", resp.StatusCode)
	}
	es, err := s.AuditLog().List(context.Background(), audit.Filter{Action: actionConsoleMute})
	if err != nil || len(es) != 3 || es[0].Actor.User != "gwen" || !strings.Contains(string(es[0].Details), `"minutes":5`) ||
		!strings.Contains(string(es[2].Details), `"minutes":61`) {
		t.Fatalf("audit: %v %+v", err, es)
	}
}

// Self-tests stay out of the guards' queue: listing, console snapshot and
// feed; installers and admins read them (GET /api/v1/selftests), and an
// installer reads the site map and the fleet.
func TestSelfTestsOutOfGuardQueue(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	st := testAlert(northID, "st-1")
	st.Kind, st.Source, st.Severity = KindSelfTest, "selftest", wire.Red // a failed self-test
	e.sendAlert(st)
	e.sendAlert(testAlert(northID, "m-1"))
	if v, _ := s.wr.sites(); v.colours[siteID].Open != (OpenCounts{Red: 1}) {
		t.Fatalf("a self-test colours the site: %+v", v.colours[siteID])
	}
	guard, inst := signIn(t, s, "gert", RoleGuard), signIn(t, s, "ivan", RoleInstaller)

	var page alertsPage
	resp, body := guard.do(http.MethodGet, "/api/v1/alerts", nil)
	if json.Unmarshal(body, &page) != nil || resp.StatusCode != http.StatusOK || len(page.Alerts) != 1 || page.Alerts[0].ID != "m-1" {
		t.Fatalf("guard listing: %d %s", resp.StatusCode, body)
	}
	if resp, _ := guard.do(http.MethodGet, "/api/v1/alerts?kind="+KindSelfTest, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("guard asks for self-tests: %d", resp.StatusCode)
	}
	if resp := getJSON(t, s, "/api/v1/alerts?kind="+KindSelfTest, &page); resp.StatusCode != http.StatusOK || len(page.Alerts) != 1 || page.Alerts[0].ID != "st-1" {
		t.Fatalf("admin self-test listing: %d %+v", resp.StatusCode, page)
	}
	var sts struct {
		SelfTests []Record `json:"selftests"`
	}
	resp, body = inst.do(http.MethodGet, "/api/v1/selftests", nil)
	if json.Unmarshal(body, &sts) != nil || resp.StatusCode != http.StatusOK || len(sts.SelfTests) != 1 || sts.SelfTests[0].ID != "st-1" {
		t.Fatalf("installer self-tests: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/api/v1/sites", "/api/v1/edges", "/api/v1/session"} {
		if resp, _ := inst.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("installer %s: %d", p, resp.StatusCode)
		}
	}

	// The guard's console: neither in the snapshot nor in the backlog nor live.
	h := http.Header{"Cookie": {guard.cookie.String()}}
	for _, q := range []string{"", "?since=0"} {
		c := dialConsoleAs(t, s, q, h)
		m := c.next()
		if q == "" {
			if m.Type != consoleSnapshot || len(m.Open) != 1 || m.Open[0].ID != "m-1" {
				t.Fatalf("guard snapshot: %+v", m)
			}
		} else if m.Type != "alert" || m.Alert.ID != "m-1" {
			t.Fatalf("guard backlog: %+v", m)
		}
	}
	live := dialConsoleAs(t, s, "", h)
	live.next()
	st.ID = "st-2"
	e.sendAlert(st)
	e.sendAlert(testAlert(northID, "m-2"))
	if m := live.nextChange(); m.Alert.ID != "m-2" {
		t.Fatalf("guard live: %+v", m.Alert)
	}
}

func dialConsoleAs(t *testing.T, s *Server, query string, h http.Header) *consoleClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, _, err := d.Dial("ws://"+s.Addr()+"/api/v1/console/ws"+query, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &consoleClient{t: t, ws: ws}
}

// The alarms and notify sections as written in central.yaml; errors name
// the file, line and field.
func TestAlarmsConfigYAML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "central.yaml")
	good := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\n" +
		"alarms:\n  priorities: {\"gate.sos\": 1, \"perimeter.\": 2, \"motion\": 5}\n" +
		"  sites: {\"north/gate-3\": {priorities: {\"gate.held\": 2}}}\n  escalate_after: 90s\n" +
		"notify:\n  webhooks:\n    - name: soc\n      url: http://127.0.0.1:9/hook\n      secret_file: /nonexistent/key\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if fes := c.Validate(); len(fes) != 0 {
		t.Fatalf("valid config: %v", fes)
	}
	if c.Alarms.escalateAfter() != 90*time.Second || newPriorityRules(&c.Alarms).priority("north/gate-3/x", "gate.held") != 2 ||
		c.Notify == nil || len(c.Notify.Webhooks) != 1 {
		t.Fatalf("parsed: %+v", c.Alarms)
	}
	bad := strings.Replace(good, "url: http://127.0.0.1:9/hook", "url: ftp://x", 1)
	bad = strings.Replace(bad, `"motion": 5`, `"motion": 0`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "central.yaml:10: notify.webhooks[0].url") ||
		!strings.Contains(err.Error(), `central.yaml:4: alarms.priorities["motion"]`) {
		t.Fatalf("errors: %v", err)
	}
	if (&AlarmsConfig{}).escalateAfter() != time.Minute {
		t.Fatal("escalation is on by default, after 60s")
	}
}

// A motion incident that goes on widens the alert's clip link: the
// console's open detail asks for the longer clip (issue #18, "the clip in
// an open detail grows").
func TestUpdateWidensClipLink(t *testing.T) {
	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	a := testAlert(northID, "m-1")
	a.Time = t0
	a.Links = []wire.Link{{Camera: a.Source, ClipFrom: t0.Add(-10 * time.Second), ClipTo: t0.Add(20 * time.Second)}}
	e.sendAlert(a)
	u := wire.AlertUpdate{ID: "m-1-u1", AlertID: "m-1", EdgeID: northID, Time: t0.Add(40 * time.Second), Count: 2,
		Links: []wire.Link{{Camera: a.Source, ClipFrom: t0.Add(-10 * time.Second), ClipTo: t0.Add(70 * time.Second)}, {Camera: "cam-2", ClipFrom: t0, ClipTo: t0.Add(time.Minute)}}}
	e.send(wire.TypeAlertUpdate, u)
	e.expectAck(u.ID)
	rec, err := s.store.Get("m-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Links) != 2 || !rec.Links[0].ClipFrom.Equal(t0.Add(-10*time.Second)) || !rec.Links[0].ClipTo.Equal(t0.Add(70*time.Second)) ||
		rec.Links[1].Camera != "cam-2" {
		t.Fatalf("links after the update: %+v", rec.Links)
	}
	// A narrower range never shrinks the link.
	u2 := wire.AlertUpdate{ID: "m-1-u2", AlertID: "m-1", EdgeID: northID, Time: t0.Add(50 * time.Second),
		Links: []wire.Link{{Camera: a.Source, ClipFrom: t0, ClipTo: t0.Add(30 * time.Second)}}}
	e.send(wire.TypeAlertUpdate, u2)
	e.expectAck(u2.ID)
	if rec, _ = s.store.Get("m-1"); !rec.Links[0].ClipFrom.Equal(t0.Add(-10*time.Second)) || !rec.Links[0].ClipTo.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("links shrank: %+v", rec.Links)
	}
}
