package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// ErrEdgeOffline is returned for a request to an edge with no connection.
var ErrEdgeOffline = errors.New("edge is not connected")

// edgeHub authenticates edge websockets, keeps at most one live connection
// per edge, remembers what each edge last reported, and carries central's
// requests down to edges.
type edgeHub struct {
	log      *slog.Logger
	met      *metrics
	reg      *registry
	wr       *writer
	upgrader websocket.Upgrader
	reqSeq   atomic.Uint64
	// onLive takes binary frames (live video) from the reader; onAlert sees
	// every stored alert in the writer. Neither may block.
	onLive  func(edgeID string, frame []byte)
	onAlert func(Record)
	// onWelcome, if set, runs in the reader right after an edge is
	// welcomed (central hands it an audit checkpoint); it must not block.
	onWelcome func(*edgeConn)
	// onAccess stores an edge's access record in the audit log (once per
	// record ID); accessKey is told to every edge in its welcome.
	onAccess  func(edgeID string, a wire.AccessRecord) error
	accessKey []byte
	// sensors stores edges' sensor batches (sensors.go).
	sensors *sensorIngest

	// names are the device names edges report (devices.go).
	names *deviceBook
	// replicas records where edges are connected when several centrals
	// share the store (replicas.go; nil: one central).
	replicas *replicaRouter

	mu    sync.Mutex
	conns map[string]*edgeConn  // current connection per edge ID
	state map[string]*edgeState // per edge ID, kept across disconnects
}

// edgeState is what central knows about an edge from its connection and
// heartbeats; it lives only in memory (last-seen also in the registry).
type edgeState struct {
	online         bool
	remote         string
	software       string
	configRevision string
	clockOffset    time.Duration
	connectedAt    time.Time
	lastSeen       time.Time
	hb             wire.Heartbeat
}

// EdgeStatus is one edge as GET /api/v1/edges reports it.
type EdgeStatus struct {
	ID             string              `json:"id"`
	SiteID         string              `json:"site_id"`
	Kind           string              `json:"kind"`
	Online         bool                `json:"online"`
	Remote         string              `json:"remote,omitempty"`
	Software       string              `json:"software,omitempty"`
	ConfigRevision string              `json:"config_revision,omitempty"`
	ClockOffsetMS  int64               `json:"clock_offset_ms"`
	ConnectedAt    time.Time           `json:"connected_at,omitzero"`
	LastSeen       time.Time           `json:"last_seen,omitzero"`
	Outbox         int                 `json:"outbox"`
	OutboxBytes    int64               `json:"outbox_bytes"`
	OutboxDropped  uint64              `json:"outbox_dropped"`
	Cameras        []wire.CameraStatus `json:"cameras"`
	Gates          []wire.GateStatus   `json:"gates"`
	Disk           *wire.DiskStatus    `json:"disk,omitempty"`
	CPUPercent     float64             `json:"cpu_percent"`
	// GB28181 is the edge's registration with its GB/T 28181 police
	// platform, as its latest heartbeat said; nil: none configured.
	GB28181    *wire.GBStatus `json:"gb28181,omitempty"`
	EnrolledAt time.Time      `json:"enrolled_at,omitzero"`
	RevokedAt  time.Time      `json:"revoked_at,omitzero"`
	RevokedBy  string         `json:"revoked_by,omitempty"`
}

func newEdgeHub(reg *registry, wr *writer, log *slog.Logger, met *metrics) *edgeHub {
	return &edgeHub{log: log, met: met, reg: reg, wr: wr,
		conns: map[string]*edgeConn{}, state: map[string]*edgeState{}}
}

// identity is who a connection claims to be before it has proved it.
type identity struct {
	rec    EdgeRecord
	bearer bool // authenticated by a bearer token before the upgrade
}

// identify names the edge behind an upgrade request: a token edge by its
// bearer token, an enrolled edge by the ID header (it proves its key in
// the signed hello). Strangers and revoked edges never get a websocket.
func (h *edgeHub) identify(r *http.Request) (identity, int, string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return identity{}, http.StatusUnauthorized, "malformed Authorization header"
		}
		rec, ok := h.reg.byToken(token)
		if !ok {
			return identity{}, http.StatusUnauthorized, "missing or unknown edge token"
		}
		if rec.Revoked() {
			return identity{}, http.StatusForbidden, "edge revoked"
		}
		return identity{rec: rec, bearer: true}, 0, ""
	}
	id := r.Header.Get(wire.EdgeIDHeader)
	if id == "" {
		return identity{}, http.StatusUnauthorized, "missing or unknown edge token"
	}
	rec, ok := h.reg.get(id)
	switch {
	case !ok || rec.Kind != EdgeEnrolled:
		return identity{}, http.StatusUnauthorized, "unknown edge; enrol it first"
	case rec.Revoked():
		return identity{}, http.StatusForbidden, "edge revoked; enrol it again"
	}
	return identity{rec: rec}, 0, ""
}

// serve handles GET /api/v1/edge/ws until the connection ends.
func (h *edgeHub) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id, status, msg := h.identify(r)
	if status != 0 {
		reason := rejectUnauthorized
		if status == http.StatusForbidden {
			reason = rejectRevoked
		}
		h.met.edgeRejected.WithLabelValues(reason).Inc()
		h.log.Warn("edge refused before upgrade", "reason", msg, "remote", r.RemoteAddr,
			"edge_header", r.Header.Get(wire.EdgeIDHeader), "has_authorization", r.Header.Get("Authorization") != "")
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-edge"`)
		writeError(w, status, "", msg)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		h.log.Warn("edge websocket upgrade failed", "edge_id", id.rec.ID, "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newEdgeConn(ws, id, r.RemoteAddr, h.log)
	c.run(ctx, h)
}

// register makes c the edge's current connection and closes the one it
// replaces: an edge that reconnects after a network drop often does so
// before central has noticed the old socket is dead. It refuses c if the
// edge was revoked (or re-enrolled with another key) since it said hello;
// revoke changes the registry before it looks for connections, so one of
// the two always sees the other.
func (h *edgeHub) register(c *edgeConn, hello wire.Hello) bool {
	now := time.Now().UTC()
	h.mu.Lock()
	if !h.reg.active(c.edge.ID, c.edge.PublicKey) {
		h.mu.Unlock()
		return false
	}
	old := h.conns[c.edge.ID]
	h.conns[c.edge.ID] = c
	st := h.state[c.edge.ID]
	if st == nil {
		st = &edgeState{}
		h.state[c.edge.ID] = st
	}
	st.online, st.remote, st.software, st.configRevision = true, c.remote, hello.Software, hello.ConfigRevision
	st.connectedAt, st.lastSeen = now, now
	if !hello.Time.IsZero() {
		st.clockOffset = now.Sub(hello.Time)
	}
	if old == nil {
		h.met.edgesConnected.Inc()
	}
	h.mu.Unlock()

	if h.replicas != nil {
		h.replicas.connected(c.edge.ID)
	}
	if old != nil {
		c.log.Warn("edge connected again; closing its previous connection", "old_remote", old.remote)
		old.stop(websocket.CloseNormalClosure, "replaced by a newer connection of the same edge")
	} else {
		p := EdgePresence{ID: c.edge.ID, SiteID: c.edge.SiteID, Online: true, LastSeen: now}
		h.wr.announce(consoleMsg{Type: consoleEdge, Edge: &p})
		if h.replicas != nil {
			h.replicas.announce(p) // the other replicas' consoles
		}
	}
	return true
}

// unregister forgets c unless a newer connection has already replaced it.
func (h *edgeHub) unregister(c *edgeConn) {
	h.mu.Lock()
	if h.conns[c.edge.ID] != c {
		h.mu.Unlock()
		return
	}
	delete(h.conns, c.edge.ID)
	st := h.state[c.edge.ID]
	st.online = false
	lastSeen := st.lastSeen
	h.met.edgesConnected.Dec()
	h.mu.Unlock()
	h.reg.touch(c.edge.ID, lastSeen)
	p := EdgePresence{ID: c.edge.ID, SiteID: c.edge.SiteID, LastSeen: lastSeen}
	if h.replicas != nil {
		h.replicas.disconnected(c.edge.ID)
		if h.replicas.heldElsewhere(c.edge.ID) {
			return // it reconnected to another replica: still online
		}
		h.replicas.announce(p)
	}
	h.wr.announce(consoleMsg{Type: consoleEdge, Edge: &p})
}

// holds reports whether the edge is connected to this central.
func (h *edgeHub) holds(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id] != nil
}

// kick closes an edge's connection at once (revocation, new key).
func (h *edgeHub) kick(id string, code int, reason string) {
	h.mu.Lock()
	c := h.conns[id]
	h.mu.Unlock()
	if c != nil {
		c.log.Warn("closing edge connection", "reason", reason)
		c.stop(code, reason)
	}
}

// seen records that c's edge sent a frame, and the heartbeat if it was one.
// A heartbeat also carries the edge's device names, kept in h.names.
func (h *edgeHub) seen(c *edgeConn, hb *wire.Heartbeat) {
	h.mu.Lock()
	if h.conns[c.edge.ID] != c {
		h.mu.Unlock()
		return // a replaced connection no longer speaks for the edge
	}
	st := h.state[c.edge.ID]
	st.lastSeen = time.Now().UTC()
	if hb == nil {
		h.mu.Unlock()
		return
	}
	st.hb = *hb
	st.hb.Cameras = append([]wire.CameraStatus(nil), hb.Cameras...)
	st.hb.Gates = append([]wire.GateStatus(nil), hb.Gates...)
	if hb.ConfigRevision != "" {
		st.configRevision = hb.ConfigRevision
	}
	rev := st.configRevision
	h.mu.Unlock()
	if h.names != nil {
		h.names.report(c.edge.ID, rev, hb) // the reader's goroutine: heartbeats are stored in order
	}
	if h.replicas != nil {
		h.replicas.reportStatus(c.edge.ID, func() (EdgeStatus, bool) { return h.statusOf(c.edge.ID) })
	}
}

// statusOf is one edge's status (false: not in the registry).
func (h *edgeHub) statusOf(id string) (EdgeStatus, bool) {
	for _, s := range h.localStatuses() {
		if s.ID == id {
			return s, true
		}
	}
	return EdgeStatus{}, false
}

// statuses lists every known edge: token edges in config order, then
// enrolled edges by ID. An edge connected to another replica shows what
// that replica last reported of it.
func (h *edgeHub) statuses() []EdgeStatus {
	out := h.localStatuses()
	if h.replicas != nil {
		h.replicas.remoteStatuses(out, func(st *EdgeStatus) {
			if h.names != nil {
				h.names.nameStatuses(st, true) // the names as the replicas share them now
			}
		})
	}
	return out
}

// localStatuses is statuses as this central knows them.
func (h *edgeHub) localStatuses() []EdgeStatus {
	recs := h.reg.list()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]EdgeStatus, 0, len(recs))
	for _, e := range recs {
		s := EdgeStatus{ID: e.ID, SiteID: e.SiteID, Kind: e.Kind, LastSeen: e.LastSeen,
			EnrolledAt: e.EnrolledAt, RevokedAt: e.RevokedAt, RevokedBy: e.RevokedBy,
			Cameras: []wire.CameraStatus{}, Gates: []wire.GateStatus{}, CPUPercent: -1}
		if st := h.state[e.ID]; st != nil {
			s.Online, s.Remote, s.Software, s.ConfigRevision = st.online, st.remote, st.software, st.configRevision
			s.ClockOffsetMS, s.ConnectedAt, s.LastSeen = st.clockOffset.Milliseconds(), st.connectedAt, st.lastSeen
			s.Outbox, s.OutboxBytes, s.OutboxDropped = st.hb.Outbox, st.hb.OutboxBytes, st.hb.OutboxDropped
			s.Cameras = append(s.Cameras, st.hb.Cameras...)
			s.Gates = append(s.Gates, st.hb.Gates...)
			s.Disk, s.GB28181 = st.hb.Disk, st.hb.GB28181
			if !st.hb.Time.IsZero() {
				s.CPUPercent = st.hb.CPUPercent
			}
		}
		if h.names != nil {
			// Names are the edge's; an edge not heard since central
			// started shows the devices it last reported.
			h.names.nameStatuses(&s, h.state[e.ID] != nil && !h.state[e.ID].hb.Time.IsZero())
		}
		out = append(out, s)
	}
	return out
}

// online counts edges with a live connection.
func (h *edgeHub) online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// request sends req to an edge and returns the channel its response parts
// arrive on. The channel is closed after the final part, or early if the
// edge goes away or the reader of the channel falls behind; cancel must be
// called when the caller is done.
//
// An edge connected to another replica is asked through it (relay).
func (h *edgeHub) request(ctx context.Context, edgeID string, req wire.Request) (<-chan wire.Response, func(), error) {
	parts, forget, err := h.requestLocal(ctx, edgeID, req)
	if errors.Is(err, ErrEdgeOffline) && h.replicas != nil {
		return h.replicas.relay(ctx, edgeID, req)
	}
	return parts, forget, err
}

// requestLocal is request for an edge connected here only.
func (h *edgeHub) requestLocal(ctx context.Context, edgeID string, req wire.Request) (<-chan wire.Response, func(), error) {
	h.mu.Lock()
	c := h.conns[edgeID]
	h.mu.Unlock()
	if c == nil {
		return nil, nil, ErrEdgeOffline
	}
	select { // the welcome first
	case <-c.welcomed:
	case <-c.quit:
		return nil, nil, ErrEdgeOffline
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	req.ID = fmt.Sprintf("r%d", h.reqSeq.Add(1))
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	frame, err := wire.Marshal(wire.TypeRequest, req)
	if err != nil {
		return nil, nil, err
	}
	ch := c.reqs.expect(req.ID)
	cancel := func() { c.reqs.forget(req.ID) }
	select {
	case c.out <- frame:
	case <-c.quit:
		cancel()
		return nil, nil, ErrEdgeOffline
	case <-ctx.Done():
		cancel()
		return nil, nil, ctx.Err()
	}
	return ch, cancel, nil
}
