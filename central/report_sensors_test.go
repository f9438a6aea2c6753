package central

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// TestShiftReportSensorAlarm: a sensor alarm acknowledged, dispatched and
// resolved with a disposal note is listed in the shift report with its
// reading, rule and threshold, whom it was sent to and how it was
// disposed of, and its CSV row carries the reading; a camera alert in
// the same shift is not listed among the sensors.
func TestShiftReportSensorAlarm(t *testing.T) {
	st, err := OpenStoreWith(StoreOptions{Dir: t.TempDir(), Log: testLogger(), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := start.Add(10 * time.Minute)
	gas := wire.Alert{ID: "gas-1", EdgeID: northID, SiteID: siteID, Source: "kitchen-gas", Kind: wire.KindSensorAlarm,
		Severity: wire.Red, Time: at, Summary: "Gas 45.2 %LEL over alarm 40 %LEL at Kitchen",
		Sensor: &wire.SensorAlert{Sensor: "kitchen-gas", Name: "Kitchen", Kind: "gas", Unit: "%LEL", Location: "No. 3 Lane",
			Value: 45.2, Rule: "alarm", Threshold: 40,
			Recent: []wire.SensorPoint{{Sensor: "kitchen-gas", Time: at.Add(-time.Second), Value: 30}, {Sensor: "kitchen-gas", Time: at, Value: 45.2}}}}
	cam := wire.Alert{ID: "cam-1", EdgeID: northID, SiteID: siteID, Source: "cam", Kind: "motion", Severity: wire.Red, Time: at}
	received := at.Add(time.Second)
	for _, a := range []*wire.Alert{&gas, &cam} {
		if _, err := st.apply([]*op{{alert: a}}, received); err != nil {
			t.Fatal(err)
		}
	}
	note := "Gas valve closed, kitchen aired; fitter called"
	for i, act := range []*Action{
		{Name: ActionAcknowledge, Actor: "ann"},
		{Name: ActionDispatch, Actor: "ann", To: "patrol 2"},
		{Name: ActionResolve, Actor: "bob", Note: note},
	} {
		o := &op{action: act, alertID: gas.ID}
		if _, err := st.apply([]*op{o}, received.Add(time.Duration(i+1)*time.Minute)); err != nil || o.err != nil {
			t.Fatalf("%s: %v %v", act.Name, err, o.err)
		}
	}
	sr := &shiftReport{store: st, now: func() time.Time { return start.Add(time.Hour) },
		internalError: func(w http.ResponseWriter, _ *http.Request, err error) { t.Errorf("internal error: %v", err) }}
	q := "/api/v1/reports/shift?site=" + siteID + "&from=2026-12-07T00:00:00Z&to=2026-12-07T01:00:00Z"
	w := httptest.NewRecorder()
	sr.handleShift(w, httptest.NewRequest(http.MethodGet, q, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var rep ShiftReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	want := SensorReportEntry{AlertID: "gas-1", Time: at, Kind: wire.KindSensorAlarm, Severity: wire.Red, Source: "kitchen-gas",
		Name: "Kitchen", SensorKind: "gas", Location: "No. 3 Lane", Unit: "%LEL", Value: 45.2, Rule: "alarm", Threshold: 40, State: StateResolved,
		DispatchedTo: "patrol 2", Disposal: note, ResolvedBy: "bob", ResolvedAt: received.Add(3 * time.Minute)}
	if len(rep.Sensors) != 1 || !rep.Sensors[0].Time.Equal(want.Time) || !rep.Sensors[0].ResolvedAt.Equal(want.ResolvedAt) {
		t.Fatalf("sensor alerts %+v, want [%+v]", rep.Sensors, want)
	}
	got := rep.Sensors[0]
	got.Time, got.ResolvedAt = want.Time, want.ResolvedAt
	if got != want {
		t.Errorf("sensor alert\n got %+v\nwant %+v", got, want)
	}
	if rep.Alerts != 2 || rep.BySeverity.Red != 2 || rep.Resolutions["other"] != 1 || rep.Resolve.N != 1 {
		t.Errorf("report figures: %s", w.Body)
	}

	w = httptest.NewRecorder()
	sr.handleShift(w, httptest.NewRequest(http.MethodGet, q+"&format=csv", nil))
	cr := csv.NewReader(strings.NewReader(w.Body.String()))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var gasRow, camRow []string
	for _, r := range rows {
		switch r[0] {
		case "gas-1":
			gasRow = r
		case "cam-1":
			camRow = r
		}
	}
	n := len(shiftCSVHeader)
	if len(gasRow) != n || len(camRow) != n {
		t.Fatalf("csv rows %q", rows)
	}
	if got := strings.Join(gasRow[n-4:], "|"); got != "45.2|%LEL|alarm|40" || gasRow[9] != note {
		t.Errorf("gas row %q: reading %q", gasRow, got)
	}
	if got := strings.Join(camRow[n-4:], "|"); got != "|||" {
		t.Errorf("camera row %q carries a reading %q", camRow, got)
	}
}
