package edge

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-perimeter/vigil/streams/camera"
)

// routes is the box's local API. It listens on the LAN for installers and
// for the monitoring system; only the gate webhook
// (signed per controller) changes state.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	// Recorded video: spans and gaps, MP4 export, thumbnails.
	rec := n.clips.Handler()
	mux.Handle("/api/v1/recordings", rec)
	mux.Handle("/api/v1/recordings/", rec)
	// Gates: their state, and the signed webhook of gate controllers.
	mux.HandleFunc("GET /api/v1/gates", n.gatesStatus)
	if n.gates != nil && n.gates.hook != nil {
		mux.Handle("/api/v1/gates/events", n.gates.hook) // answers 405 itself to other methods
	}
	// Self-test: GET runs one, POST also keeps it and sends it to central.
	mux.HandleFunc("GET /api/v1/selftest", n.selfTestHandler)
	mux.HandleFunc("POST /api/v1/selftest", n.selfTestHandler)
	// The installer's setup page (edge/setup), behind its setup code.
	if st, err := n.newSetup(); err != nil {
		n.log.Error("setup page unavailable", "err", err)
	} else {
		n.setup = st
		mux.Handle("/setup/", st)
		mux.Handle("/setup", st)
	}
	mux.HandleFunc("GET /api/v1/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// The uplink judges delivery from its live state: a central that
		// stopped answering pings is not connected, and alerts waiting
		// too long make the box degraded (still 200: the box itself runs).
		h := n.up.Health()
		status, reasons := "ok", h.Reasons
		if len(reasons) > 0 {
			status = "degraded"
		} else {
			reasons = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"status": status, "reasons": reasons, "edge_id": n.cfg.EdgeID, "central_connected": h.Connected,
			"pending_alerts": h.Pending, "oldest_pending_ms": h.OldestPending.Milliseconds(),
			"clock_offset_ms": n.up.ClockOffset().Milliseconds(), "recording_conditions": n.clips.Conditions(),
		})
	})
	mux.HandleFunc("GET /api/v1/cameras", func(w http.ResponseWriter, _ *http.Request) {
		type cam struct {
			ID        string    `json:"id"`
			Name      string    `json:"name"`
			Online    bool      `json:"online"`
			LastFrame time.Time `json:"last_frame,omitzero"`
			Error     string    `json:"error,omitempty"`
			// Analysis: whether the video that arrives is analysed.
			Analysis camera.AnalysisStatus `json:"analysis"`
		}
		out := []cam{}
		for _, c := range n.cams {
			s := c.Status()
			out = append(out, cam{ID: c.ID(), Name: n.byID[c.ID()].Name, Online: s.Online, LastFrame: s.LastFrame, Error: s.Error, Analysis: s.Analysis})
		}
		writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
