package central

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/internal/fanout"
	"github.com/vigil-perimeter/vigil/wire"
)

// Live view at central: browsers open GET /api/v1/live/{edge}/{camera}/ws.
// The first viewer of a camera starts the edge's stream (live_start, then
// repeated every liveRenew as a keep-alive, which also restarts a stream
// the edge lost, e.g. after a reconnect); the edge's binary fMP4 frames
// (wire.MarshalLive) are forwarded unchanged to every viewer; the last
// viewer leaving sends live_stop. A viewer that joins late gets the stored
// init segment at once and fragments from the next keyframe on.
//
// Each viewer has its own bounded queue (a fanout.Hub per camera, policy
// CloseSlow): one that cannot keep up is cut off (close 4408) and the
// others do not notice. Besides video a viewer gets JSON text messages
// {"type":"state","state":...}: connecting, live, offline (edge or camera
// down) or tampered (an open tamper alert in the store, tamper.go).

const (
	// liveRenew is how often central repeats live_start while anyone
	// watches; the edge stops a stream after 20 s without one.
	liveRenew = 5 * time.Second
	// liveViewerQueue bounds the frames waiting for one viewer (~4 s of
	// 0.25 s fragments); a viewer further behind than that is cut off.
	liveViewerQueue = 16
	// liveSendBuffer is the kernel send buffer of a viewer's socket, small
	// so that a viewer who stops reading shows up in its queue within
	// seconds rather than after megabytes of socket buffer.
	liveSendBuffer = 64 << 10
	// closeTooSlow closes a viewer that fell behind.
	closeTooSlow = 4408
)

// liveHub is the live view component: it serves the viewers' websockets
// and keeps one feed per watched camera, started and renewed on the edge
// while anyone watches.
type liveHub struct {
	ctx      context.Context        // the server's: cancelled by Close
	spawn    func(f func()) bool    // runs f on a goroutine Close waits for (lifecycle.go)
	edges    *edgeHub               // the edges' state and their request channel
	known    func(edge string) bool // whether an edge is registered (registry.go)
	tamper   *tamperSet             // cameras with open tamper alerts (tamper.go)
	upgrader websocket.Upgrader
	log      *slog.Logger

	mu       sync.Mutex
	feeds    map[string]*liveFeed // by edge/camera
	stopping map[string]chan struct{}

	viewers prometheus.Gauge
	cut     prometheus.Counter
	frames  prometheus.Counter
}

// liveFeed is one camera being watched.
type liveFeed struct {
	key, edge, cam string
	// out fans the edge's frames out to the viewers under fanout.CloseSlow
	// (a viewer whose queue is full is cut off); each viewer's filter
	// (liveViewer.want) decides which frames it can use. Published with
	// h.mu held, so a joining viewer's stored init comes before them.
	out      *fanout.Hub[liveFrame]
	viewers  int    // joined and not yet left (cut-off viewers still count until they leave)
	init     []byte // the edge's current init frame
	codec    string
	startErr string // why the last live_start failed ("" if it did not)
	cancel   context.CancelFunc
}

// liveFrame is one frame from the edge, as received, with what the
// viewers' filters need to know about it.
type liveFrame struct {
	kind byte
	key  bool
	data []byte
}

// liveViewer is one browser's view of a feed: its subscription and where
// it is in the stream. gotInit and needKey belong to the feed's hub (the
// filter runs under its lock, one publish at a time).
type liveViewer struct {
	sub     *fanout.Sub[liveFrame]
	gotInit bool
	needKey bool
}

// want says whether the viewer can use f now: fragments only after an
// init, and after a (new) init from the next keyframe on. An end frame is
// not forwarded; the next live_start brings a fresh init.
func (v *liveViewer) want(f liveFrame) bool {
	switch f.kind {
	case wire.LiveInit:
		v.gotInit, v.needKey = true, true
		return true
	case wire.LiveFragment:
		if !v.gotInit || (v.needKey && !f.key) {
			return false
		}
		v.needKey = false
		return true
	case wire.LiveEnd:
		v.gotInit = false
	}
	return false
}

// newLiveHub makes the live view fan-out and registers its metrics with reg.
func newLiveHub(ctx context.Context, spawn func(func()) bool, edges *edgeHub, known func(string) bool, tamper *tamperSet, log *slog.Logger, reg prometheus.Registerer) *liveHub {
	h := &liveHub{ctx: ctx, spawn: spawn, edges: edges, known: known, tamper: tamper, log: log, feeds: map[string]*liveFeed{}, stopping: map[string]chan struct{}{},
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_live_viewers", Help: "Browsers watching live view."}),
		cut:     prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_live_viewers_cut_total", Help: "Live viewers cut off for falling behind."}),
		frames:  prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_live_frames_total", Help: "Live view frames received from edges."}),
	}
	reg.MustRegister(h.viewers, h.cut, h.frames)
	return h
}

func liveKey(edge, cam string) string { return edge + "/" + cam }

// feedKeys lists the edge/camera pairs watched now.
func (h *liveHub) feedKeys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for k := range h.feeds {
		out = append(out, k)
	}
	return out
}

// onFrame takes one binary frame from an edge's connection (the edge's
// reader goroutine: it must not block).
func (h *liveHub) onFrame(edgeID string, frame []byte) {
	f, err := wire.UnmarshalLive(frame)
	if err != nil {
		h.log.Debug("ignoring a binary frame that is not live video", "edge_id", edgeID, "err", err)
		return
	}
	h.frames.Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	feed := h.feeds[liveKey(edgeID, f.Camera)]
	if feed == nil {
		return // nobody watches (any more): the edge stops on live_stop
	}
	switch f.Kind {
	case wire.LiveInit:
		feed.init, feed.codec = frame, f.Codec
	case wire.LiveEnd:
		feed.init = nil // the next live_start brings a fresh init
	}
	feed.out.Publish(liveFrame{kind: f.Kind, key: f.Key, data: frame})
}

// join adds a viewer, starting the feed if it is the first.
func (h *liveHub) join(edge, cam string) (*liveFeed, *liveViewer) {
	v := &liveViewer{}
	k := liveKey(edge, cam)
	h.mu.Lock()
	defer h.mu.Unlock()
	feed := h.feeds[k]
	if feed == nil {
		ctx, cancel := context.WithCancel(h.ctx)
		feed = &liveFeed{key: k, edge: edge, cam: cam, cancel: cancel,
			out: fanout.New[liveFrame](fanout.CloseSlow, fanout.WithDropHook(h.cut.Inc))}
		h.feeds[k] = feed
		prev := h.stopping[k]
		done := make(chan struct{})
		h.stopping[k] = done
		// The server's Close waits for keepAlive (it ends with h.ctx).
		if !h.spawn(func() { h.keepAlive(ctx, feed, prev, done) }) {
			delete(h.stopping, k) // closing: no stream to start or stop
			close(done)
		}
	}
	feed.viewers++
	h.viewers.Inc()
	opts := fanout.SubOptions[liveFrame]{Buffer: liveViewerQueue, Filter: v.want}
	if feed.init != nil {
		v.gotInit, v.needKey = true, true
		opts.Initial = []liveFrame{{kind: wire.LiveInit, data: feed.init}}
	}
	v.sub = feed.out.SubscribeWith(context.Background(), opts) // ended by leave
	return feed, v
}

// leave removes a viewer (also one the feed cut off); the last one stops
// the feed. Called once per join.
func (h *liveHub) leave(feed *liveFeed, v *liveViewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v.sub.Close()
	feed.viewers--
	h.viewers.Dec()
	if feed.viewers == 0 && h.feeds[feed.key] == feed {
		delete(h.feeds, feed.key)
		feed.out.Close()
		feed.cancel()
	}
}

// keepAlive sends live_start now and every liveRenew until the feed ends,
// then live_stop. It first waits for the previous feed of the camera to
// have sent its stop, so a stop never overtakes the next start.
func (h *liveHub) keepAlive(ctx context.Context, feed *liveFeed, prev <-chan struct{}, done chan struct{}) {
	defer func() {
		h.mu.Lock()
		if h.stopping[feed.key] == done {
			delete(h.stopping, feed.key)
		}
		h.mu.Unlock()
		close(done)
	}()
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
		}
	}
	for ctx.Err() == nil {
		err := h.ask(ctx, feed, wire.MethodLiveStart)
		h.mu.Lock()
		feed.startErr = ""
		if err != nil {
			feed.startErr = err.Error()
		}
		h.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			h.log.Info("live view: edge did not start the stream", "edge_id", feed.edge, "camera", feed.cam, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(liveRenew):
		}
	}
	if h.ctx.Err() != nil {
		return // central is shutting down; the edge's keep-alive runs out
	}
	sctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if err := h.ask(sctx, feed, wire.MethodLiveStop); err != nil && !errors.Is(err, ErrEdgeOffline) {
		h.log.Info("live view: stopping the edge's stream", "edge_id", feed.edge, "camera", feed.cam, "err", err)
	}
}

// ask sends one live request and waits for its answer.
func (h *liveHub) ask(ctx context.Context, feed *liveFeed, method string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	parts, forget, err := h.edges.request(ctx, feed.edge, wire.Request{Method: method, Camera: feed.cam})
	if err != nil {
		return err
	}
	defer forget()
	select {
	case p, ok := <-parts:
		if !ok {
			return ErrEdgeOffline
		}
		if p.Status != wire.StatusOK {
			return errors.New(p.Status + ": " + p.Error)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state is what a tile should show besides video.
func (h *liveHub) state(feed *liveFeed) (state, detail string) {
	online, camOnline, known := false, false, false
	h.edges.mu.Lock()
	if st := h.edges.state[feed.edge]; st != nil {
		online = st.online
		for _, c := range st.hb.Cameras {
			if c.ID == feed.cam {
				known, camOnline = true, c.Online
			}
		}
	}
	h.edges.mu.Unlock()
	tampered := h.tamper.tampered(feed.edge, feed.cam) // the store's open alerts (tamper.go)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !online:
		return "offline", "edge offline"
	case known && !camOnline:
		return "offline", "camera offline"
	case tampered != "":
		return "tampered", strings.TrimPrefix(tampered, "tamper.")
	case feed.startErr != "":
		return "offline", feed.startErr
	case feed.init != nil:
		return "live", feed.codec
	}
	return "connecting", ""
}

// serveViewer serves GET /api/v1/live/{edge}/{camera}/ws: one browser
// watching one camera until it leaves, falls behind, its session ends or
// central closes (ctx, the server's: lifecycle.socket waits for it).
func (h *liveHub) serveViewer(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	edge, cam := r.PathValue("edge"), r.PathValue("camera")
	if !h.known(edge) {
		writeError(w, http.StatusNotFound, "", "no edge "+edge)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	if tc, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(liveSendBuffer)
	}
	var ended <-chan struct{} // logout, expiry or a deleted user closes the viewer
	if p := principalOf(r); p != nil && p.sess != nil {
		ended = p.sess.done
	}
	readerDone := discardReads(ws)
	// Closing the socket ends the reader; the handler (counted by the
	// lifecycle) returns only after it has.
	defer func() {
		ws.Close()
		<-readerDone
	}()
	feed, v := h.join(edge, cam)
	defer h.leave(feed, v)
	h.log.Info("live viewer joined", "edge_id", edge, "camera", cam)
	h.stream(ctx, ws, feed, v, readerDone, ended)
}

// discardReads reads (and drops) what the viewer sends, so that control
// frames are handled; the channel closes when the socket does.
func discardReads(ws *websocket.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ws.SetReadLimit(4096)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return done
}

// stream sends the feed's frames to one viewer, with a state message
// whenever what the tile should show changes, until the viewer goes
// (readerDone), is cut off for falling behind, its session ends (ended)
// or ctx ends.
func (h *liveHub) stream(ctx context.Context, ws *websocket.Conn, feed *liveFeed, v *liveViewer, readerDone, ended <-chan struct{}) {
	closeWith := func(code int, reason string) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	last := ""
	sendState := func() error {
		st, detail := h.state(feed)
		if st+detail == last {
			return nil
		}
		last = st + detail
		b, _ := json.Marshal(map[string]string{"type": "state", "state": st, "detail": detail})
		_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		return ws.WriteMessage(websocket.TextMessage, b)
	}
	if sendState() != nil {
		return
	}
	for {
		var err error
		select {
		case frame, ok := <-v.sub.C():
			if !ok { // cut off (the feed's hub ends a viewer only that way while it watches)
				h.log.Info("live viewer too slow; cut off", "edge_id", feed.edge, "camera", feed.cam)
				closeWith(closeTooSlow, "too slow for live view")
				return
			}
			_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			err = ws.WriteMessage(websocket.BinaryMessage, frame.data)
		case <-tick.C:
			err = sendState()
		case <-ping.C:
			err = ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
		case <-v.sub.Done():
			h.log.Info("live viewer too slow; cut off", "edge_id", feed.edge, "camera", feed.cam)
			closeWith(closeTooSlow, "too slow for live view")
			return
		case <-readerDone:
			return
		case <-ended:
			closeWith(closeSessionEnded, "session ended; log in again")
			return
		case <-ctx.Done():
			closeWith(websocket.CloseGoingAway, "central is shutting down")
			return
		}
		if err != nil {
			return
		}
	}
}
