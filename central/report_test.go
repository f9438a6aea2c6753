package central

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// reportStep is one workflow step a report test takes, after the alert
// arrived.
type reportStep struct {
	action, note string
	after        time.Duration
}

// reportAlert is one alert of a report test: when it happened and what
// guards did about it.
type reportAlert struct {
	id, site, kind string
	sev            wire.Severity
	at             time.Duration // after the shift's start
	steps          []reportStep
}

// storeReportAlerts stores the alerts in st with chosen clocks: each
// arrives 2 s after its event, its steps at the given times after that.
func storeReportAlerts(t *testing.T, st *Store, start time.Time, alerts []reportAlert) {
	t.Helper()
	for _, a := range alerts {
		at := start.Add(a.at)
		received := at.Add(2 * time.Second)
		w := wire.Alert{ID: a.id, EdgeID: northID, SiteID: a.site, Source: "src-" + a.id, Kind: a.kind, Severity: a.sev, Time: at}
		if _, err := st.apply([]*op{{alert: &w}}, received); err != nil {
			t.Fatal(err)
		}
		for _, s := range a.steps {
			act := &Action{Name: s.action, Actor: "ann", Note: s.note, To: "patrol"}
			o := &op{action: act, alertID: a.id}
			if _, err := st.apply([]*op{o}, received.Add(s.after)); err != nil || o.err != nil {
				t.Fatalf("%s %s: %v %v", a.id, s.action, err, o.err)
			}
		}
	}
}

// TestShiftReportFigures: a store with known alerts and workflow times
// (clocks chosen, not measured) gives exact counts, medians and 90th
// percentiles, read in pages of two.
func TestShiftReportFigures(t *testing.T) {
	st, err := OpenStoreWith(StoreOptions{Dir: t.TempDir(), Log: testLogger(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	ack, dis, res := ActionAcknowledge, ActionDispatch, ActionResolve
	storeReportAlerts(t, st, start, []reportAlert{
		{"a1", siteID, "motion", wire.Red, time.Minute, []reportStep{{ack, "", 10 * time.Second}, {res, "False alarm: a cat", 100 * time.Second}}},
		{"a2", siteID, "motion", wire.Red, 2 * time.Minute, []reportStep{{ack, "", 20 * time.Second}, {res, "Intrusion: climbed the fence", 200 * time.Second}}},
		{"a3", siteID, "gate.forced", wire.Red, 3 * time.Minute, []reportStep{{ack, "", 30 * time.Second}, {dis, "", 31 * time.Second}, {res, "误报，风吹开了门", 300 * time.Second}}},
		{"a4", siteID, "gate.held_open", wire.Yellow, 4 * time.Minute, []reportStep{{res, "closed it myself", 40 * time.Second}}},
		{"a5", siteID + "/north", "tamper.covered", wire.Yellow, 5 * time.Minute, nil},
		{"a6", siteID, "motion", wire.Green, 6 * time.Minute, []reportStep{{ack, "", 50 * time.Second}}},
		{"early", siteID, "motion", wire.Red, -time.Minute, []reportStep{{ack, "", time.Second}}},
		{"late", siteID, "motion", wire.Red, 8 * time.Hour, nil},
		{"elsewhere", "village-9", "motion", wire.Red, time.Minute, nil},
	})
	sr := &shiftReport{store: st, now: func() time.Time { return start.Add(9 * time.Hour) }, pageSize: 2,
		internalError: func(w http.ResponseWriter, _ *http.Request, err error) { t.Errorf("internal error: %v", err) }}
	q := "site=" + siteID + "&from=2026-11-22T08:00:00Z&to=2026-11-22T16:00:00Z"
	w := httptest.NewRecorder()
	sr.handleShift(w, httptest.NewRequest(http.MethodGet, "/api/v1/reports/shift?"+q, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var rep ShiftReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Site != siteID || !rep.From.Equal(start) || !rep.To.Equal(start.Add(8*time.Hour)) || rep.Alerts != 6 ||
		rep.BySeverity != (SeverityCounts{Red: 3, Yellow: 2, Green: 1}) || rep.Unresolved != 2 || rep.Escalations != 0 {
		t.Fatalf("report: %s", w.Body)
	}
	wantTotals := []KindCount{{"gate.forced", wire.Red, 1}, {"gate.held_open", wire.Yellow, 1}, {"motion", wire.Red, 2},
		{"motion", wire.Green, 1}, {"tamper.covered", wire.Yellow, 1}}
	if !slices.Equal(rep.Totals, wantTotals) {
		t.Errorf("totals %+v, want %+v", rep.Totals, wantTotals)
	}
	// Acknowledge: 10 20 30 40 50 s (a4's resolution acknowledges it);
	// resolve: 40 100 200 300 s.
	checkStats(t, "acknowledge", rep.Acknowledge, 5, 30, 46)
	checkStats(t, "resolve", rep.Resolve, 4, 150, 270)
	if fmt.Sprint(rep.Resolutions) != "map[false_alarm:2 intrusion:1 other:1]" {
		t.Errorf("resolutions %v", rep.Resolutions)
	}
	if len(rep.FalseAlarms) != 2 || rep.FalseAlarms[0].AlertID != "a1" || rep.FalseAlarms[1].AlertID != "a3" ||
		rep.FalseAlarms[1].Note != "误报，风吹开了门" || rep.FalseAlarms[1].Actor != "ann" || rep.FalseAlarms[1].Source != "src-a3" ||
		!rep.FalseAlarms[1].Time.Equal(start.Add(3*time.Minute)) || !rep.FalseAlarms[1].ResolvedAt.Equal(start.Add(3*time.Minute+302*time.Second)) {
		t.Errorf("false alarms %+v", rep.FalseAlarms)
	}
}

func checkStats(t *testing.T, what string, d DurationStats, n int, median, p90 float64) {
	t.Helper()
	if d.N != n || d.MedianS == nil || d.P90S == nil || *d.MedianS != median || *d.P90S != p90 {
		t.Errorf("%s: %+v (median %v p90 %v), want n=%d median %v p90 %v", what, d, deref(d.MedianS), deref(d.P90S), n, median, p90)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// TestShiftReportRules pins the small rules: escalations (escalated_at or
// an "escalated" step; central's own step stays raised and is no
// acknowledgement), the false-alarm rule, note categories, percentiles,
// and cells a spreadsheet would run as formulas.
func TestShiftReportRules(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	raised := Step{State: StateRaised, Actor: "edge:e", At: t0}
	recs := []Record{
		{ID: "e1", Severity: wire.Red, State: StateRaised, ReceivedAt: t0, EscalatedAt: t0.Add(time.Minute),
			History: []Step{raised, {State: StateRaised, Actor: "system", At: t0.Add(time.Minute), Note: "escalated"}}},
		{ID: "e2", Severity: wire.Red, State: StateAcknowledged, ReceivedAt: t0,
			History: []Step{raised, {State: reportStateEscalated, Actor: "system", At: t0.Add(time.Minute)}, {State: StateAcknowledged, At: t0.Add(3 * time.Minute)}}},
		{ID: "n1", Severity: wire.Red, State: StateRaised, ReceivedAt: t0, History: []Step{raised}},
	}
	rep := buildShiftReport(shiftParams{site: "s", from: t0, to: t0.Add(time.Hour)}, recs, t0)
	if rep.Escalations != 2 || rep.Unresolved != 3 || rep.Acknowledge.N != 1 || *rep.Acknowledge.MedianS != 180 || rep.Resolve.N != 0 || rep.Resolve.MedianS != nil {
		t.Errorf("escalations %d unresolved %d acknowledge %+v resolve %+v", rep.Escalations, rep.Unresolved, rep.Acknowledge, rep.Resolve)
	}
	for note, want := range map[string]string{
		"False alarm":                  categoryFalseAlarm,
		"false - branch on the sensor": categoryFalseAlarm,
		"wind, a false-alarm":          categoryFalseAlarm,
		"确认误报":                         categoryFalseAlarm,
		"虚警：树枝":                        categoryFalseAlarm,
		"falsely accused the gate":     categoryOther,
		"Test: monthly drill":          "test",
		"入侵：翻墙":                        "入侵",
		"see https://x":                categoryOther,
		"":                             categoryOther,
	} {
		if got := noteCategory(note); got != want {
			t.Errorf("noteCategory(%q) = %q, want %q", note, got, want)
		}
	}
	if p := reportPercentile([]float64{7}, 0.9); p != 7 {
		t.Errorf("percentile of one: %v", p)
	}
	if got := csvCell("=HYPERLINK(1)"); got != "'=HYPERLINK(1)" || csvCell("ok") != "ok" || fileNameSafe("v/7 a") != "v_7_a" {
		t.Errorf("cell/fileSafe: %q", got)
	}
}

// TestShiftReportAPI: through the console port, with the guards' real
// workflow: the report's counts and its times agree with the alerts'
// histories, the CSV says the same, a police liaison is refused, and
// the view is in the audit log.
func TestShiftReportAPI(t *testing.T) {
	s := startServer(t)
	edge := connectEdge(t, s, northID, northToken)
	ids := []string{"r-1", "r-2", "r-3"}
	for i, id := range ids {
		a := testAlert(northID, id)
		a.Time = a.Time.Add(time.Duration(i) * time.Minute)
		a.Source = "note,with \"quotes\""
		edge.sendAlert(a)
	}
	guard := signIn(t, s, "gao", RoleGuard)
	for _, st := range []struct{ id, action, note string }{
		{"r-1", ActionAcknowledge, ""}, {"r-2", ActionAcknowledge, ""},
		{"r-1", ActionResolve, "False alarm, a cat\non the wall"},
	} {
		if resp, b := guard.do(http.MethodPost, "/api/v1/alerts/"+st.id+"/"+st.action, map[string]string{"note": st.note}); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", st.action, st.id, resp.StatusCode, b)
		}
	}
	path := "/api/v1/reports/shift?site=" + siteID + "&from=2025-03-01T14:00:00Z&to=2025-03-01T15:00:00Z"
	resp, body := guard.do(http.MethodGet, path, nil)
	var rep ShiftReport
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rep) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	recs := map[string]Record{}
	for _, id := range ids {
		var r Record
		getJSON(t, s, "/api/v1/alerts/"+id, &r)
		recs[id] = r
	}
	ackS := func(id string) float64 { r := recs[id]; return r.History[1].At.Sub(r.ReceivedAt).Seconds() }
	resS := roundMS(recs["r-1"].History[2].At.Sub(recs["r-1"].ReceivedAt).Seconds())
	if rep.Alerts != 3 || rep.BySeverity.Red != 3 || rep.Unresolved != 2 || len(rep.Totals) != 1 || rep.Totals[0].Count != 3 ||
		rep.Acknowledge.N != 2 || *rep.Acknowledge.MedianS != roundMS((ackS("r-1")+ackS("r-2"))/2) ||
		rep.Resolve.N != 1 || *rep.Resolve.P90S != resS ||
		len(rep.FalseAlarms) != 1 || rep.FalseAlarms[0].AlertID != "r-1" || rep.FalseAlarms[0].Actor != "gao" {
		t.Fatalf("report %s\nrecords %+v", body, recs)
	}
	checkShiftCSV(t, guard, path, recs, ackS)

	police := signIn(t, s, "li", RolePolice)
	if resp, _ := police.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("police liaison: %d, want 403", resp.StatusCode)
	}
	wantEntry(t, auditEntries(t, s, "action="+audit.ActionView), audit.ActionView, "gao", RoleGuard, siteID,
		map[string]any{"what": "shift_report", "format": "csv", "from": "2025-03-01T14:00:00Z"})
}

// checkShiftCSV fetches the report as CSV and reads it back.
func checkShiftCSV(t *testing.T, b *browser, path string, recs map[string]Record, ackS func(string) float64) {
	t.Helper()
	resp, body := b.do(http.MethodGet, path+"&format=csv", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="shift-`+siteID+`-20250301T140000Z.csv"` {
		t.Fatalf("csv: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if !bytes.Contains(body, []byte("\r\n")) {
		t.Error("csv lines do not end in CRLF")
	}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 || fmt.Sprint(rows[:3]) != "[[site "+siteID+"] [from 2025-03-01T14:00:00Z] [to 2025-03-01T15:00:00Z]]" ||
		rows[3][0] != "generated_at" || !slices.Equal(rows[4], shiftCSVHeader) {
		t.Fatalf("csv rows %q", rows)
	}
	for i, id := range []string{"r-1", "r-2", "r-3"} {
		row, r := rows[5+i], recs[id]
		want := []string{id, r.Time.UTC().Format(time.RFC3339Nano), "motion", "red", "note,with \"quotes\"", r.State}
		if !slices.Equal(row[:6], want) || row[8] != "false" {
			t.Errorf("row %d: %q, want %q", i, row, want)
		}
		if id != "r-3" && row[6] != strconv.FormatFloat(roundMS(ackS(id)), 'f', 3, 64) {
			t.Errorf("%s acknowledged_s %q, want %v", id, row[6], ackS(id))
		}
	}
	if rows[5][9] != "False alarm, a cat\non the wall" || rows[5][7] == "" || rows[6][7] != "" || rows[7][6] != "" {
		t.Errorf("csv rows %q", rows[5:])
	}
}

// TestShiftReportValidation: every bad query is a 400 that names its
// parameter.
func TestShiftReportValidation(t *testing.T) {
	s := startServer(t)
	ok := "site=" + siteID + "&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"
	for _, c := range []struct{ query, param string }{
		{"from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", "site"},
		{"site=x&to=2026-11-02T00:00:00Z", "from"},
		{"site=x&from=2026-11-01T00:00:00Z", "to"},
		{"site=x&from=yesterday&to=2026-11-02T00:00:00Z", "from"},
		{"site=x&from=2026-11-01T00:00:00Z&to=2026-11-01", "to"},
		{"site=x&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"},
		{"site=x&from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00Z", "to"},
		{"site=x&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:01Z", "to"},
		{ok + "&format=pdf", "format"},
	} {
		var e apiError
		if resp := getJSON(t, s, "/api/v1/reports/shift?"+c.query, &e); resp.StatusCode != http.StatusBadRequest || e.Param != c.param {
			t.Errorf("%s: %d %+v, want 400 naming %s", c.query, resp.StatusCode, e, c.param)
		}
	}
	var rep ShiftReport
	if resp := getJSON(t, s, "/api/v1/reports/shift?"+ok+"&format=json", &rep); resp.StatusCode != http.StatusOK ||
		rep.Alerts != 0 || rep.Acknowledge.MedianS != nil || rep.Totals == nil || rep.FalseAlarms == nil {
		t.Errorf("empty report: %d %+v", resp.StatusCode, rep)
	}
	// 31 days exactly is allowed.
	if resp := getJSON(t, s, "/api/v1/reports/shift?site=x&from=2026-10-01T00:00:00Z&to="+url.QueryEscape("2026-11-01T00:00:00Z"), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("31 days: %d", resp.StatusCode)
	}
}
