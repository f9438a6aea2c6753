package central

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/wire"
)

// Limits of the alert and event listings, and of request bodies.
const (
	defaultAlertLimit = 100
	maxAlertLimit     = 1000
	maxBodyBytes      = 64 << 10
	actionTimeout     = 10 * time.Second
)

// alertsPage is the body of GET /api/v1/alerts. Next is the cursor for the
// following page: the last examined seq, or the requested since if none.
type alertsPage struct {
	Alerts []Record `json:"alerts"`
	Next   uint64   `json:"next"`
}

// apiError is every API error body; Param names the query parameter at fault.
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

// alertsAPI is the alert component: the alert and event listings, one
// alert and its snapshots, and the workflow steps, which it hands to the
// writer (writer.go) and answers once they are durable. New (server.go)
// builds it.
type alertsAPI struct {
	store alertReader
	wr    *writer // the one owner of changes to the store
	// internalError answers 500 (507 on a full disk) and logs err.
	internalError func(http.ResponseWriter, *http.Request, error)
}

// alertReader is what the alert API reads from the alert store.
type alertReader interface {
	Get(id string) (Record, error)
	Query(q AlertQuery) ([]Record, uint64, error)
	Events(q EventQuery) ([]StoredEvent, time.Time, error)
	Snapshot(id string) ([]byte, error)
	UpdateSnapshot(alertID, updateID string) ([]byte, error)
}

// handleAlerts serves GET /api/v1/alerts?since=N&limit=M, filtered by
// site (that site and below), severity (comma list), state (raised,
// acknowledged, dispatched, resolved or open), event time (from, to:
// RFC 3339), kind (one kind), camera (source or a linked camera), gate
// (source or the gate state's gate) and handled_by (a workflow step by
// that user). Results are in creation order, page on with since=next; or
// with order=desc newest first, page on with before=next (0: no more).
// sort=priority orders the page for a guard's queue (sortByUrgency).
// Self-tests are left out for guards, supervisors and police (listOptions).
func (a *alertsAPI) handleAlerts(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := AlertQuery{Site: v.Get("site"), State: v.Get("state"), Camera: v.Get("camera"), Gate: v.Get("gate"), HandledBy: v.Get("handled_by")}
	var ok bool
	if q.Since, ok = queryUint(w, r, "since", 0, 0, math.MaxUint64); !ok {
		return
	}
	if !historyOrder(w, r, &q) {
		return
	}
	limit, ok := queryUint(w, r, "limit", defaultAlertLimit, 1, maxAlertLimit)
	if !ok {
		return
	}
	q.Limit = int(limit)
	switch q.State {
	case "", "open", StateRaised, StateAcknowledged, StateDispatched, StateResolved:
	default:
		writeError(w, http.StatusBadRequest, "state", "state must be open, raised, acknowledged, dispatched or resolved")
		return
	}
	if sev := r.URL.Query().Get("severity"); sev != "" {
		q.Severities = map[wire.Severity]bool{}
		for _, v := range strings.Split(sev, ",") {
			if !wire.Severity(v).Valid() {
				writeError(w, http.StatusBadRequest, "severity", "severity must be red, yellow or green (comma-separated)")
				return
			}
			q.Severities[wire.Severity(v)] = true
		}
	}
	if q.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if q.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	byPriority, ok := listOptions(w, r, &q)
	if !ok {
		return
	}
	recs, next, err := a.store.Query(q)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if byPriority {
		sortByUrgency(recs)
	}
	writeJSON(w, http.StatusOK, alertsPage{Alerts: recs, Next: next})
}

// handleAlert serves GET /api/v1/alerts/{id}.
func (a *alertsAPI) handleAlert(w http.ResponseWriter, r *http.Request) {
	rec, err := a.store.Get(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "", "alert not found")
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	rec.normalise()
	writeJSON(w, http.StatusOK, rec)
}

// handleSnapshot serves GET /api/v1/alerts/{id}/snapshot.jpg.
func (a *alertsAPI) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	a.serveJPEG(w, r, func() ([]byte, error) { return a.store.Snapshot(r.PathValue("id")) })
}

// handleUpdateSnapshot serves GET /api/v1/alerts/{id}/updates/{uid}/snapshot.jpg.
func (a *alertsAPI) handleUpdateSnapshot(w http.ResponseWriter, r *http.Request) {
	a.serveJPEG(w, r, func() ([]byte, error) { return a.store.UpdateSnapshot(r.PathValue("id"), r.PathValue("uid")) })
}

func (a *alertsAPI) serveJPEG(w http.ResponseWriter, r *http.Request, get func() ([]byte, error)) {
	jpeg, err := get()
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "", "snapshot not found")
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(jpeg)))
	h.Set("X-Content-Type-Options", "nosniff") // the bytes come from an edge
	// A snapshot never changes once stored under its alert (or update) ID.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(jpeg)
}

// handleAction serves POST /api/v1/alerts/{id}/{acknowledge|dispatch|resolve}
// with {"actor": "...", "to": "...", "note": "..."}. It answers the alert
// as changed, 409 with the alert as it is if its state does not allow the
// step, 404 for an unknown alert.
func (a *alertsAPI) handleAction(w http.ResponseWriter, r *http.Request) {
	act := Action{Name: r.PathValue("action")}
	switch act.Name {
	case ActionAcknowledge, ActionDispatch, ActionResolve:
	default:
		writeError(w, http.StatusNotFound, "", "unknown action; use acknowledge, dispatch or resolve")
		return
	}
	if !readBody(w, r, &act) {
		return
	}
	actor, err := actorOf(r, act.Actor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "actor", err.Error())
		return
	}
	act.Actor = actor
	if err := act.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "", err.Error())
		return
	}
	o := &op{action: &act, alertID: r.PathValue("id")}
	if !a.runOp(w, r, o) {
		return
	}
	switch {
	case errors.Is(o.err, ErrNotFound):
		writeError(w, http.StatusNotFound, "", "alert not found")
	case errors.Is(o.err, ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]any{"error": o.err.Error(), "alert": o.rec})
	case o.err != nil:
		a.internalError(w, r, o.err)
	default:
		writeJSON(w, http.StatusOK, o.rec)
	}
}

// actorOf names who acts: the signed-in user (or "admin-token" for the
// admin bearer token). What the client claims is ignored.
func actorOf(r *http.Request, _ string) (string, error) {
	p := principalOf(r)
	if p == nil {
		return "", errors.New("log in first")
	}
	return p.Name, nil
}

// runOp submits o to the writer and waits until it is durable; false after
// answering an error itself.
func (a *alertsAPI) runOp(w http.ResponseWriter, r *http.Request, o *op) bool {
	done := make(chan error, 1)
	o.done = func(_ *op, err error) { done <- err }
	ctx := r.Context()
	if !a.wr.submit(o, ctx.Done()) {
		writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
		return false
	}
	t := time.NewTimer(actionTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			a.internalError(w, r, err)
			return false
		}
		return true
	case <-t.C:
		writeError(w, http.StatusServiceUnavailable, "", "central is busy; the action may still be applied")
		return false
	case <-a.wr.done:
		writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
		return false
	}
}

// handleEvents serves GET /api/v1/events?from=&to=&site=&edge=&limit=.
func (a *alertsAPI) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := EventQuery{Site: r.URL.Query().Get("site"), Edge: r.URL.Query().Get("edge")}
	limit, ok := queryUint(w, r, "limit", defaultAlertLimit, 1, maxAlertLimit)
	if !ok {
		return
	}
	q.Limit = int(limit)
	if q.From, ok = queryTime(w, r, "from"); !ok {
		return
	}
	if q.To, ok = queryTime(w, r, "to"); !ok {
		return
	}
	events, next, err := a.store.Events(q)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "next": next})
}

// internalErrors answers a request that failed inside central: 500 and
// an error log naming the client, or 507 when the disk is full. Every
// component gets this function (New builds it once).
func internalErrors(log *slog.Logger, addrs clientAddrs) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, kv.ErrDiskFull) {
			// Below the free-space floor central keeps what edges send and
			// refuses the rest: say so, not "internal error".
			log.Warn("api request refused: disk full", "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInsufficientStorage, "disk_full", err.Error())
			return
		}
		log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "remote", addrs.text(r), "err", err)
		writeError(w, http.StatusInternalServerError, "", "internal error")
	}
}

func decodeHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// readBody decodes a bounded JSON body into v, rejecting unknown fields.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "", "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// queryUint reads an optional unsigned query parameter within [lo, hi]. On a
// bad value it answers 400 naming the parameter and returns false.
func queryUint(w http.ResponseWriter, r *http.Request, name string, def, lo, hi uint64) (uint64, bool) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, true
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		msg := name + " must be a non-negative integer"
		if hi != math.MaxUint64 {
			msg = name + " must be an integer from " + strconv.FormatUint(lo, 10) + " to " + strconv.FormatUint(hi, 10)
		}
		writeError(w, http.StatusBadRequest, name, msg)
		return 0, false
	}
	return v, true
}

// queryTime reads an optional RFC 3339 time parameter and bounds it
// with boundTime: "from" is the start of a range, "to" its end, any other
// name a point in time.
func queryTime(w http.ResponseWriter, r *http.Request, name string) (time.Time, bool) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, name, name+" must be an RFC 3339 time, e.g. 2026-11-22T03:00:00Z")
		return time.Time{}, false
	}
	kind := timePoint
	switch name {
	case "from":
		kind = timeStart
	case "to":
		kind = timeEnd
	}
	if t, err = boundTime(name, kind, t, time.Now()); err != nil {
		writeError(w, http.StatusBadRequest, name, err.Error())
		return time.Time{}, false
	}
	return t, true
}

// What a time given to the API is: where it may be clamped.
const (
	timePoint = iota // a moment: refused outside the bounds
	timeStart        // a range's start: before minAPITime clamps to it
	timeEnd          // a range's end: after now+maxAPIFuture clamps to it
)

// Times central accepts from a client lie in [minAPITime, now+maxAPIFuture]:
// nothing is recorded before 1970, and a time.Time outside the years
// 1678–2262 has no UnixNano (keys, the edge's requests), so such a range
// silently matched nothing.
var minAPITime = time.Unix(0, 0).UTC()

const maxAPIFuture = 365 * 24 * time.Hour

// boundTime is the one check of a client's time (query parameters and
// request bodies): a range's open side clamps to the bound (start=0001-…
// means "from the beginning", end=9999-… "until now and on"), anything
// else outside the bounds is an error naming the parameter.
func boundTime(name string, kind int, t, now time.Time) (time.Time, error) {
	hi := now.Add(maxAPIFuture).UTC()
	switch {
	case t.Before(minAPITime) && kind == timeStart:
		return minAPITime, nil
	case t.After(hi) && kind == timeEnd:
		return hi, nil
	case t.Before(minAPITime) || t.After(hi):
		return time.Time{}, fmt.Errorf("%s must lie between 1970-01-01T00:00:00Z and a year from now (%s)", name, hi.Format(time.RFC3339))
	}
	return t, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("central: API response does not marshal: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, param, msg string) {
	writeJSON(w, status, apiError{Error: msg, Param: param})
}
