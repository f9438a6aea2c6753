package central

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// requestTimeout bounds how long central waits for an edge's first answer.
const requestTimeout = 15 * time.Second

// handleEdges serves GET /api/v1/edges.
func (ea *edgeAdmin) handleEdges(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"edges": ea.hub.statuses()})
}

// handleEdge serves GET /api/v1/edges/{id}.
func (ea *edgeAdmin) handleEdge(w http.ResponseWriter, r *http.Request) {
	for _, e := range ea.hub.statuses() {
		if e.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, e)
			return
		}
	}
	writeError(w, http.StatusNotFound, "", "edge not found")
}

// mediaAPI is the recorded-video component: thumbnails, clips and the
// edge's live stream switch, each a request carried down the edge's own
// connection (proxyRequest). Live view itself is the live hub (live.go).
type mediaAPI struct {
	edges edgeRequester
}

// handleThumbnail serves GET /api/v1/edges/{id}/cameras/{camera}/thumbnail?at=RFC3339.
func (m *mediaAPI) handleThumbnail(w http.ResponseWriter, r *http.Request) {
	at, ok := queryTime(w, r, "at")
	if !ok {
		return
	}
	if at.IsZero() {
		at = time.Now().UTC()
	}
	proxyRequest(m.edges, w, r, wire.Request{Method: wire.MethodThumbnail, Camera: r.PathValue("camera"), At: at})
}

// handleClip serves GET /api/v1/edges/{id}/cameras/{camera}/clip?from=&to=,
// streaming the edge's MP4 as it arrives.
func (m *mediaAPI) handleClip(w http.ResponseWriter, r *http.Request) {
	from, ok := queryTime(w, r, "from")
	if !ok {
		return
	}
	to, ok := queryTime(w, r, "to")
	if !ok {
		return
	}
	proxyRequest(m.edges, w, r, wire.Request{Method: wire.MethodClip, Camera: r.PathValue("camera"), From: from, To: to})
}

// handleLive serves POST /api/v1/edges/{id}/cameras/{camera}/live with
// {"action": "start" | "stop"}.
func (m *mediaAPI) handleLive(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action string `json:"action"`
	}
	if !readBody(w, r, &body) {
		return
	}
	method := map[string]string{"start": wire.MethodLiveStart, "stop": wire.MethodLiveStop}[body.Action]
	if method == "" {
		writeError(w, http.StatusBadRequest, "action", "action must be start or stop")
		return
	}
	proxyRequest(m.edges, w, r, wire.Request{Method: method, Camera: r.PathValue("camera")})
}

// handlePushConfig serves POST /api/v1/edges/{id}/config (admin) with
// {"revision": "...", "config": {...}}.
func (ea *edgeAdmin) handlePushConfig(w http.ResponseWriter, r *http.Request) {
	if !ea.allowed(w, r, RoleAdmin) {
		return
	}
	var body struct {
		Revision string          `json:"revision"`
		Config   json.RawMessage `json:"config"`
	}
	if !readBody(w, r, &body) {
		return
	}
	proxyRequest(ea.hub, w, r, wire.Request{Method: wire.MethodConfig, Revision: body.Revision, Config: body.Config})
}

// handleSetupReopen serves POST /api/v1/edges/{id}/setup/reopen (admin):
// the edge opens its setup page again for an installer.
func (ea *edgeAdmin) handleSetupReopen(w http.ResponseWriter, r *http.Request) {
	if !ea.allowed(w, r, RoleAdmin) {
		return
	}
	proxyRequest(ea.hub, w, r, wire.Request{Method: wire.MethodSetupReopen})
}

// proxyRequest sends req down the connection of the edge the path's {id}
// names and writes its answer (proxyEdge).
func proxyRequest(hub edgeRequester, w http.ResponseWriter, r *http.Request, req wire.Request) {
	proxyEdge(hub, w, r, r.PathValue("id"), req, nil)
}

// edgeAsker sends a request down an edge's connection (edgeHub.request).
type edgeAsker interface {
	request(ctx context.Context, edgeID string, req wire.Request) (<-chan wire.Response, func(), error)
}

// leadPart reads an answer's leading JSON part (a playback's
// wire.PlaybackInfo) into the response's headers before the body starts;
// an error answers 502.
type leadPart func(h http.Header, data []byte) error

// proxyEdge sends req down edge's own connection and writes its answer:
// data parts as the body for ok, JSON otherwise. With lead, the first part
// is not body but read by lead. "not_available" is 404, an offline edge
// 503, no answer in time 504.
func proxyEdge(hub edgeAsker, w http.ResponseWriter, r *http.Request, edge string, req wire.Request, lead leadPart) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	parts, forget, err := hub.request(ctx, edge, req)
	switch {
	case errors.Is(err, ErrEdgeOffline):
		writeError(w, http.StatusServiceUnavailable, "", "edge is offline")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "", err.Error())
		return
	}
	defer forget()
	first := true
	for {
		var p wire.Response
		var open bool
		select {
		case p, open = <-parts:
		case <-ctx.Done():
			if first {
				writeError(w, http.StatusGatewayTimeout, "", "edge did not answer in time")
			}
			return
		}
		if !open {
			if first {
				writeError(w, http.StatusBadGateway, "", "edge went away before answering")
			}
			return // a stream cut short: the client sees a truncated body
		}
		if first {
			if p.Status != wire.StatusOK {
				writeEdgeStatus(w, p)
				return
			}
			if lead != nil {
				if err := lead(w.Header(), p.Data); err != nil {
					writeError(w, http.StatusBadGateway, "", "edge's answer: "+err.Error())
					return
				}
				if lead = nil; p.Final {
					writeError(w, http.StatusNotFound, "", "no video in the window")
					return
				}
				continue
			}
			first = false
			startBody(w, p)
			// Later parts may take a while: give the edge time per part.
			cancel()
			ctx = r.Context()
		}
		if _, err := w.Write(p.Data); err != nil {
			return
		}
		if p.Final {
			return
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// writeEdgeStatus answers an edge's refusal: not_available 404,
// bad_request 400, busy 503 with Retry-After (the edge runs as many such
// requests as it allows: a player asks again), anything else 502.
func writeEdgeStatus(w http.ResponseWriter, p wire.Response) {
	status := map[string]int{wire.StatusNotAvailable: http.StatusNotFound, wire.StatusBadRequest: http.StatusBadRequest,
		wire.StatusBusy: http.StatusServiceUnavailable}[p.Status]
	if status == 0 {
		status = http.StatusBadGateway
	}
	if p.Status == wire.StatusBusy {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"status": p.Status, "error": p.Error})
}

// startBody writes the headers of an edge's answer whose first body part
// is p.
func startBody(w http.ResponseWriter, p wire.Response) {
	if p.ContentType == "" {
		p.ContentType = "application/json"
	}
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if p.Final {
		w.Header().Set("Content-Length", strconv.Itoa(len(p.Data)))
	}
	w.WriteHeader(http.StatusOK)
}
