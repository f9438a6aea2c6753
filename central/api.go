package central

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Limits of GET /api/v1/alerts.
const (
	defaultAlertLimit = 100
	maxAlertLimit     = 1000
)

// alertsPage is the body of GET /api/v1/alerts. Next is the cursor for the
// following page: the last returned seq, or the requested since if none.
type alertsPage struct {
	Alerts []Record `json:"alerts"`
	Next   uint64   `json:"next"`
}

// apiError is every API error body; Param names the query parameter at fault.
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

// handleAlerts serves GET /api/v1/alerts?since=N&limit=M.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	since, ok := queryUint(w, r, "since", 0, 0, math.MaxUint64)
	if !ok {
		return
	}
	limit, ok := queryUint(w, r, "limit", defaultAlertLimit, 1, maxAlertLimit)
	if !ok {
		return
	}
	recs, err := s.store.Since(since, int(limit))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	next := since
	if len(recs) > 0 {
		next = recs[len(recs)-1].Seq
	}
	writeJSON(w, http.StatusOK, alertsPage{Alerts: recs, Next: next})
}

// handleAlert serves GET /api/v1/alerts/{id}.
func (s *Server) handleAlert(w http.ResponseWriter, r *http.Request) {
	rec, err := s.store.Get(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "", "alert not found")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// handleSnapshot serves GET /api/v1/alerts/{id}/snapshot.jpg.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	jpeg, err := s.store.Snapshot(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "", "snapshot not found")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(jpeg)))
	h.Set("X-Content-Type-Options", "nosniff") // the bytes come from an edge
	// A snapshot never changes once stored under its alert ID.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(jpeg)
}

// handleEdges serves GET /api/v1/edges.
func (s *Server) handleEdges(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"edges": s.edges.statuses()})
}

// handleHealthz serves GET /api/v1/healthz.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status":             "ok",
		"time":               time.Now().UTC(),
		"edges_online":       s.edges.online(),
		"edges_configured":   len(s.cfg.Edges),
		"consoles_connected": s.consoles.count(),
		"last_seq":           s.store.LastSeq(),
	})
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	writeError(w, http.StatusInternalServerError, "", "internal error")
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
