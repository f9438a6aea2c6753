package central

import (
	"cmp"
	"encoding/csv"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// Shift report (issue #18), roles and audit in routes.go's routeTable:
//
//	GET /api/v1/reports/shift?site=<id>&from=<RFC3339>&to=<RFC3339>[&format=csv]
//
// For one site (and everything under it) and the alerts whose event time
// lies in [from, to): how many of each kind and colour, how long guards
// took to acknowledge and to resolve them (median and 90th percentile),
// how many were escalated, how many are still open, and the resolutions
// that were false alarms. format=csv is the same as a spreadsheet: a
// header block (site, from, to, generated_at) and one row per alert.
//
// The rules, so a supervisor can check a number by hand:
//
//   - Time to acknowledge: the first workflow step that is acknowledged,
//     dispatched or resolved, minus the time central received the alert
//     (received_at). Time to resolve: the resolved step minus received_at.
//     An alert with no such step counts in neither statistic.
//   - Median and p90 interpolate linearly between the closest ranks (the
//     spreadsheet PERCENTILE.INC rule): the median of 10 s and 20 s is 15 s.
//   - Escalated: the alert has an escalated_at time (central escalated it,
//     escalate.go) or, from a workflow that names it so, an "escalated"
//     step. Central's escalation step (actor "system") keeps the state
//     raised, so it never counts as an acknowledgement.
//   - False alarm: the resolution note, lower-cased, contains "false alarm",
//     "false-alarm", "误报" or "虚警", or starts with the word "false".
//   - Resolution category: false_alarm by the rule above; otherwise the
//     note's prefix before ":" (or "："), lower-cased, when the note has
//     one of 1..32 characters (e.g. "intrusion: …", "test: …"; a URL's
//     "https:" is no category); otherwise "other".
//   - Sensor alerts (issue #22): every alert that carries a sensor's
//     reading is listed with that reading, the rule and threshold it
//     crossed, where the alert went (the last dispatch) and how it was
//     disposed of (the last resolution's note, actor and time); the CSV
//     adds the reading, unit, rule and threshold to each row.

// rolesReport may read shift reports: the people who work the alerts and
// their leads. A police liaison reads alerts but not the guards' timings.
var rolesReport = []string{RoleGuard, RoleSupervisor, RoleAdmin}

const (
	maxReportRange  = 31 * 24 * time.Hour
	reportPageSize  = 1000
	maxReportAlerts = 50_000 // a bigger report is refused: narrow the range
	maxCategoryLen  = 32
)

// reportStateEscalated is the workflow state of an escalation step.
const reportStateEscalated = "escalated"

// reportStore is what the shift report reads of the alert store.
type reportStore interface {
	Query(q AlertQuery) ([]Record, uint64, error)
}

// shiftReport is the shift report component; New (server.go) builds it.
type shiftReport struct {
	store    reportStore
	now      func() time.Time
	pageSize int // alerts per store query (0: reportPageSize)
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// ShiftReport is the report's JSON.
type ShiftReport struct {
	Site        string         `json:"site"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	GeneratedAt time.Time      `json:"generated_at"`
	Alerts      int            `json:"alerts"`
	Totals      []KindCount    `json:"totals"`
	BySeverity  SeverityCounts `json:"by_severity"`
	Acknowledge DurationStats  `json:"acknowledge"`
	Resolve     DurationStats  `json:"resolve"`
	Escalations int            `json:"escalations"`
	Unresolved  int            `json:"unresolved"`
	FalseAlarms []FalseAlarm   `json:"false_alarms"`
	// Resolutions counts resolved alerts by note category (see above).
	Resolutions map[string]int `json:"resolutions"`
	// Sensors lists the sensor alerts, in creation order.
	Sensors []SensorReportEntry `json:"sensors"`

	rows []shiftRow // one per alert, for the CSV
}

// KindCount is how many alerts of one kind and colour.
type KindCount struct {
	Kind     string        `json:"kind"`
	Severity wire.Severity `json:"severity"`
	Count    int           `json:"count"`
}

// SeverityCounts is how many alerts of each colour.
type SeverityCounts struct {
	Red    int `json:"red"`
	Yellow int `json:"yellow"`
	Green  int `json:"green"`
}

// DurationStats summarises durations in seconds; the statistics are null
// when N is 0.
type DurationStats struct {
	N       int      `json:"n"`
	MedianS *float64 `json:"median_s"`
	P90S    *float64 `json:"p90_s"`
}

// FalseAlarm is one resolution whose note marks a false alarm.
type FalseAlarm struct {
	AlertID    string    `json:"alert_id"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Source     string    `json:"source"`
	Note       string    `json:"note"`
	Actor      string    `json:"actor"`
	ResolvedAt time.Time `json:"resolved_at"`
}

// SensorReportEntry is one sensor alert of the report: the reading that
// raised it and what the guards did about it.
type SensorReportEntry struct {
	AlertID  string        `json:"alert_id"`
	Time     time.Time     `json:"time"`
	Kind     string        `json:"kind"`
	Severity wire.Severity `json:"severity"`
	Source   string        `json:"source"`
	Name     string        `json:"name,omitempty"`
	// SensorKind is the sensor's kind (gas, water_level, smoke, ...).
	SensorKind string  `json:"sensor_kind"`
	Location   string  `json:"location,omitempty"`
	Unit       string  `json:"unit,omitempty"`
	Value      float64 `json:"value"`
	Rule       string  `json:"rule"`
	Threshold  float64 `json:"threshold"`
	State      string  `json:"state"`
	// DispatchedTo is whom the last dispatch sent; Disposal the last
	// resolution's note, ResolvedBy and ResolvedAt its actor and time.
	DispatchedTo string    `json:"dispatched_to,omitempty"`
	Disposal     string    `json:"disposal,omitempty"`
	ResolvedBy   string    `json:"resolved_by,omitempty"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
}

// sensorEntry is rec's line in the report's sensor list (rec carries a
// sensor reading).
func sensorEntry(rec *Record) SensorReportEntry {
	s := rec.Sensor
	e := SensorReportEntry{AlertID: rec.ID, Time: rec.Time, Kind: rec.Kind, Severity: rec.Severity, Source: rec.Source,
		Name: s.Name, SensorKind: s.Kind, Location: s.Location, Unit: s.Unit, Value: s.Value, Rule: s.Rule, Threshold: s.Threshold, State: rec.State}
	for _, st := range rec.History {
		switch st.State {
		case StateDispatched:
			e.DispatchedTo = st.To
		case StateResolved:
			e.Disposal, e.ResolvedBy, e.ResolvedAt = st.Note, st.Actor, st.At
		}
	}
	return e
}

// shiftRow is one alert as the CSV lists it. A negative duration: none.
type shiftRow struct {
	rec       *Record
	ack, res  time.Duration
	escalated bool
	note      string
}

// shiftParams is a validated report request.
type shiftParams struct {
	site     string
	from, to time.Time
	csv      bool
}

// handleShift serves GET /api/v1/reports/shift.
func (sr *shiftReport) handleShift(w http.ResponseWriter, r *http.Request) {
	p, ok := parseShiftParams(w, r)
	if !ok {
		return
	}
	recs, err := sr.alerts(p)
	if errors.Is(err, errReportTooBig) {
		writeError(w, http.StatusUnprocessableEntity, "from", err.Error())
		return
	}
	if err != nil {
		sr.internalError(w, r, err)
		return
	}
	rep := buildShiftReport(p, recs, sr.now().UTC())
	if p.csv {
		writeShiftCSV(w, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// parseShiftParams reads and checks the query; on a bad one it answers
// 400 naming the parameter.
func parseShiftParams(w http.ResponseWriter, r *http.Request) (shiftParams, bool) {
	q := r.URL.Query()
	p := shiftParams{site: q.Get("site")}
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		p.csv = true
	default:
		writeError(w, http.StatusBadRequest, "format", "format must be json or csv")
		return p, false
	}
	if p.site == "" {
		writeError(w, http.StatusBadRequest, "site", "site is required: the site ID the report is for")
		return p, false
	}
	for _, name := range []string{"from", "to"} {
		if q.Get(name) == "" {
			writeError(w, http.StatusBadRequest, name, name+" is required (RFC 3339, e.g. 2026-11-22T08:00:00Z)")
			return p, false
		}
	}
	var ok bool
	if p.from, ok = queryTime(w, r, "from"); !ok {
		return p, false
	}
	if p.to, ok = queryTime(w, r, "to"); !ok {
		return p, false
	}
	switch {
	case !p.from.Before(p.to):
		writeError(w, http.StatusBadRequest, "to", "to must be after from")
		return p, false
	case p.to.Sub(p.from) > maxReportRange:
		writeError(w, http.StatusBadRequest, "to", "the range from..to must be at most 31 days")
		return p, false
	}
	p.from, p.to = p.from.UTC(), p.to.UTC()
	return p, true
}

var errReportTooBig = errors.New("more than 50000 alerts in the range: choose a shorter range")

// alerts reads every alert of the site whose event time is in the range,
// page by page, in creation order.
func (sr *shiftReport) alerts(p shiftParams) ([]Record, error) {
	q := AlertQuery{Site: p.site, From: p.from, To: p.to, Limit: cmp.Or(sr.pageSize, reportPageSize)}
	var out []Record
	for {
		recs, next, err := sr.store.Query(q)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if len(out) > maxReportAlerts {
			return nil, errReportTooBig
		}
		if next <= q.Since { // nothing more was examined: the end
			return out, nil
		}
		q.Since = next
	}
}

// buildShiftReport computes the report of recs (the alerts in p's range).
func buildShiftReport(p shiftParams, recs []Record, now time.Time) *ShiftReport {
	rep := &ShiftReport{Site: p.site, From: p.from, To: p.to, GeneratedAt: now, Alerts: len(recs),
		Totals: []KindCount{}, FalseAlarms: []FalseAlarm{}, Resolutions: map[string]int{}, Sensors: []SensorReportEntry{}}
	counts := map[KindCount]int{}
	var acks, ress []float64
	for i := range recs {
		rec := &recs[i]
		counts[KindCount{Kind: rec.Kind, Severity: rec.Severity}]++
		switch rec.Severity {
		case wire.Red:
			rep.BySeverity.Red++
		case wire.Yellow:
			rep.BySeverity.Yellow++
		case wire.Green:
			rep.BySeverity.Green++
		}
		row := shiftRowOf(rec)
		if row.ack >= 0 {
			acks = append(acks, row.ack.Seconds())
		}
		if row.res >= 0 {
			ress = append(ress, row.res.Seconds())
		}
		if row.escalated {
			rep.Escalations++
		}
		if open(rec.State) {
			rep.Unresolved++
		}
		rep.addResolution(rec)
		if rec.Sensor != nil {
			rep.Sensors = append(rep.Sensors, sensorEntry(rec))
		}
		rep.rows = append(rep.rows, row)
	}
	for k, n := range counts {
		k.Count = n
		rep.Totals = append(rep.Totals, k)
	}
	slices.SortFunc(rep.Totals, func(a, b KindCount) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return b.Severity.Rank() - a.Severity.Rank()
	})
	rep.Acknowledge, rep.Resolve = durationStats(acks), durationStats(ress)
	return rep
}

// shiftRowOf reads one alert's timings from its history.
func shiftRowOf(rec *Record) shiftRow {
	row := shiftRow{rec: rec, ack: -1, res: -1, escalated: !rec.EscalatedAt.IsZero()}
	for _, st := range rec.History {
		switch st.State {
		case StateAcknowledged, StateDispatched, StateResolved:
			if row.ack < 0 {
				row.ack = max(st.At.Sub(rec.ReceivedAt), 0)
			}
		case reportStateEscalated:
			row.escalated = true
		}
		if st.State == StateResolved && row.res < 0 {
			row.res = max(st.At.Sub(rec.ReceivedAt), 0)
			row.note = st.Note
		}
	}
	return row
}

// addResolution counts rec's resolution (if it is resolved) by category
// and lists it if it was a false alarm.
func (rep *ShiftReport) addResolution(rec *Record) {
	if rec.State != StateResolved {
		return
	}
	var step Step
	for _, st := range rec.History {
		if st.State == StateResolved {
			step = st // the last resolution, should there be several
		}
	}
	cat := noteCategory(step.Note)
	rep.Resolutions[cat]++
	if cat == categoryFalseAlarm {
		rep.FalseAlarms = append(rep.FalseAlarms, FalseAlarm{AlertID: rec.ID, Time: rec.Time, Kind: rec.Kind,
			Source: rec.Source, Note: step.Note, Actor: step.Actor, ResolvedAt: step.At})
	}
}

const (
	categoryFalseAlarm = "false_alarm"
	categoryOther      = "other"
)

// falseAlarmMarks are what make a resolution note a false alarm
// (lower-cased, anywhere in the note).
var falseAlarmMarks = []string{"false alarm", "false-alarm", "误报", "虚警"}

// isFalseAlarm applies the false-alarm rule to a resolution note.
func isFalseAlarm(note string) bool {
	n := strings.ToLower(strings.TrimSpace(note))
	for _, m := range falseAlarmMarks {
		if strings.Contains(n, m) {
			return true
		}
	}
	if rest, ok := strings.CutPrefix(n, "false"); ok {
		return rest == "" || !isWordRune(rest[0])
	}
	return false
}

func isWordRune(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// noteCategory is a resolution note's category (see the rules above).
func noteCategory(note string) string {
	if isFalseAlarm(note) {
		return categoryFalseAlarm
	}
	n := strings.TrimSpace(note)
	i := strings.IndexAny(n, ":：")
	if i <= 0 || strings.HasPrefix(n[i:], "://") {
		return categoryOther // no prefix, or a URL's scheme
	}
	cat := strings.ToLower(strings.TrimSpace(n[:i]))
	if cat == "" || len([]rune(cat)) > maxCategoryLen || strings.ContainsAny(cat, "\r\n") {
		return categoryOther
	}
	return cat
}

// durationStats is the median and 90th percentile of xs (seconds).
func durationStats(xs []float64) DurationStats {
	d := DurationStats{N: len(xs)}
	if len(xs) == 0 {
		return d
	}
	slices.Sort(xs)
	med, p90 := roundMS(reportPercentile(xs, 0.5)), roundMS(reportPercentile(xs, 0.9))
	d.MedianS, d.P90S = &med, &p90
	return d
}

// reportPercentile interpolates linearly between the closest ranks of the
// sorted, non-empty xs (PERCENTILE.INC).
func reportPercentile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

func roundMS(s float64) float64 { return math.Round(s*1000) / 1000 }

// shiftCSVHeader is the CSV's table header.
var shiftCSVHeader = []string{"id", "time_utc", "kind", "severity", "source", "state",
	"acknowledged_s", "resolved_s", "escalated", "note", "sensor_value", "sensor_unit", "sensor_rule", "sensor_threshold"}

// writeShiftCSV writes rep as RFC 4180 CSV (CRLF, quoted as needed): the
// header block, a blank line, then the alerts in creation order.
func writeShiftCSV(w http.ResponseWriter, rep *ShiftReport) {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="shift-`+fileNameSafe(rep.Site)+"-"+rep.From.Format("20060102T150405Z")+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.WriteAll([][]string{
		{"site", csvCell(rep.Site)},
		{"from", rep.From.Format(time.RFC3339)},
		{"to", rep.To.Format(time.RFC3339)},
		{"generated_at", rep.GeneratedAt.Format(time.RFC3339)},
	})
	_, _ = w.Write([]byte("\r\n"))
	_ = cw.Write(shiftCSVHeader)
	for _, row := range rep.rows {
		r := row.rec
		reading := []string{"", "", "", ""}
		if s := r.Sensor; s != nil {
			reading = []string{strconv.FormatFloat(s.Value, 'f', -1, 64), csvCell(s.Unit), csvCell(s.Rule), strconv.FormatFloat(s.Threshold, 'f', -1, 64)}
		}
		_ = cw.Write(append([]string{csvCell(r.ID), r.Time.UTC().Format(time.RFC3339Nano), csvCell(r.Kind), string(r.Severity),
			csvCell(r.Source), r.State, csvSeconds(row.ack), csvSeconds(row.res), strconv.FormatBool(row.escalated), csvCell(row.note)}, reading...))
	}
	cw.Flush()
}

// csvSeconds formats a duration in seconds with milliseconds; "" for none.
func csvSeconds(d time.Duration) string {
	if d < 0 {
		return ""
	}
	return strconv.FormatFloat(roundMS(d.Seconds()), 'f', 3, 64)
}

// csvCell defuses free text a spreadsheet would run as a formula: a leading
// =, +, -, @, tab or CR gets a leading apostrophe (OWASP's CSV injection
// advice).
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// fileNameSafe keeps a site ID usable in a file name: anything but letters,
// digits, '.', '_' and '-' becomes '_'.
func fileNameSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// queryTarget is an audit target read from a query parameter (the shift
// report's site).
func queryTarget(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.URL.Query().Get(name) }
}
