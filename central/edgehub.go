package central

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// ingestFunc stores an alert and, if it is new, fans it out to consoles.
// The hub needs nothing else from its parent.
type ingestFunc func(a wire.Alert) (rec Record, inserted bool, err error)

// edgeHub authenticates edge websockets, keeps at most one live connection
// per edge, and remembers what each edge last reported.
type edgeHub struct {
	log      *slog.Logger
	met      *metrics
	ingest   ingestFunc
	edges    []EdgeConfig // in config order, for listing
	hashes   [][]byte     // decoded token_sha256, same index as edges
	upgrader websocket.Upgrader

	mu    sync.Mutex
	conns map[string]*edgeConn  // current connection per edge ID
	state map[string]*edgeState // per edge ID, kept across disconnects
}

// edgeState is what central knows about an edge from its connection and
// heartbeats; it lives only in memory.
type edgeState struct {
	online      bool
	remote      string
	software    string
	connectedAt time.Time
	lastSeen    time.Time
	outbox      int
	cameras     []wire.CameraStatus
}

// EdgeStatus is one configured edge as GET /api/v1/edges reports it.
type EdgeStatus struct {
	ID          string              `json:"id"`
	SiteID      string              `json:"site_id"`
	Online      bool                `json:"online"`
	Remote      string              `json:"remote,omitempty"`
	Software    string              `json:"software,omitempty"`
	ConnectedAt time.Time           `json:"connected_at,omitzero"`
	LastSeen    time.Time           `json:"last_seen,omitzero"`
	Outbox      int                 `json:"outbox"`
	Cameras     []wire.CameraStatus `json:"cameras"`
}

func newEdgeHub(edges []EdgeConfig, log *slog.Logger, met *metrics, ingest ingestFunc) *edgeHub {
	h := &edgeHub{
		log:    log,
		met:    met,
		ingest: ingest,
		edges:  edges,
		conns:  map[string]*edgeConn{},
		state:  map[string]*edgeState{},
	}
	for _, e := range edges {
		sum, _ := hex.DecodeString(e.TokenSHA256) // checked by Config.Validate
		h.hashes = append(h.hashes, sum)
		h.state[e.ID] = &edgeState{}
	}
	return h
}

// authenticate finds the edge whose token hash matches the request's bearer
// token. Every configured hash is compared in constant time, so timing does
// not reveal how close a guess was or which edge it matched.
func (h *edgeHub) authenticate(r *http.Request) (EdgeConfig, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return EdgeConfig{}, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, want := range h.hashes {
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found = i
		}
	}
	if found < 0 {
		return EdgeConfig{}, false
	}
	return h.edges[found], true
}

// serve handles GET /api/v1/edge/ws until the connection ends. The token is
// checked before the upgrade so a stranger never gets a websocket.
func (h *edgeHub) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	edge, ok := h.authenticate(r)
	if !ok {
		h.met.edgeRejected.WithLabelValues(rejectUnauthorized).Inc()
		h.log.Warn("edge refused: missing or unknown bearer token",
			"remote", r.RemoteAddr, "has_authorization", r.Header.Get("Authorization") != "")
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-edge"`)
		writeError(w, http.StatusUnauthorized, "", "missing or unknown edge token")
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		h.log.Warn("edge websocket upgrade failed", "edge_id", edge.ID, "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newEdgeConn(ws, edge, r.RemoteAddr, h.log)
	c.run(ctx, h)
}

// register makes c the edge's current connection and closes the one it
// replaces: an edge that reconnects after a network drop often does so
// before central has noticed the old socket is dead.
func (h *edgeHub) register(c *edgeConn, hello wire.Hello) {
	now := time.Now().UTC()
	h.mu.Lock()
	old := h.conns[c.edge.ID]
	h.conns[c.edge.ID] = c
	st := h.state[c.edge.ID]
	st.online = true
	st.remote = c.remote
	st.software = hello.Software
	st.connectedAt = now
	st.lastSeen = now
	if old == nil {
		h.met.edgesConnected.Inc()
	}
	h.mu.Unlock()

	if old != nil {
		c.log.Warn("edge connected again; closing its previous connection", "old_remote", old.remote)
		old.stop(websocket.CloseNormalClosure, "replaced by a newer connection of the same edge")
	}
}

// unregister forgets c unless a newer connection has already replaced it.
func (h *edgeHub) unregister(c *edgeConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.edge.ID] != c {
		return
	}
	delete(h.conns, c.edge.ID)
	h.state[c.edge.ID].online = false
	h.met.edgesConnected.Dec()
}

// seen records that c's edge sent a frame, and the heartbeat if it was one.
func (h *edgeHub) seen(c *edgeConn, hb *wire.Heartbeat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.edge.ID] != c {
		return // a replaced connection no longer speaks for the edge
	}
	st := h.state[c.edge.ID]
	st.lastSeen = time.Now().UTC()
	if hb != nil {
		st.outbox = hb.Outbox
		st.cameras = append([]wire.CameraStatus(nil), hb.Cameras...)
	}
}

// statuses lists every configured edge in config order.
func (h *edgeHub) statuses() []EdgeStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]EdgeStatus, 0, len(h.edges))
	for _, e := range h.edges {
		st := h.state[e.ID]
		cams := append([]wire.CameraStatus{}, st.cameras...)
		out = append(out, EdgeStatus{
			ID: e.ID, SiteID: e.SiteID, Online: st.online, Remote: st.remote,
			Software: st.software, ConnectedAt: st.connectedAt, LastSeen: st.lastSeen,
			Outbox: st.outbox, Cameras: cams,
		})
	}
	return out
}

// online counts edges with a live connection.
func (h *edgeHub) online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
