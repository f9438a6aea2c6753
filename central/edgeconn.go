package central

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

const (
	// edgeOutQueue bounds the frames (challenge, welcome, requests) queued
	// for one edge's writer; acks travel separately and coalesce.
	edgeOutQueue = 64
	// edgeInflight bounds one edge's items waiting for the writer. A full
	// window stops the reader, so a flooding edge is held back by TCP and
	// cannot crowd out the others.
	edgeInflight = 256
	// responseQueue bounds the response parts waiting for one request's
	// reader (an HTTP client downloading a clip).
	responseQueue = 16
)

// edgeConn is one edge websocket. The reader runs in the HTTP handler's
// goroutine; writeLoop is the only writer, as gorilla requires. Either side
// ends the connection through stop.
type edgeConn struct {
	ws     *websocket.Conn
	edge   EdgeRecord
	bearer bool
	remote string
	log    *slog.Logger

	out        chan []byte   // frames for writeLoop
	inflight   chan struct{} // one token per item submitted to the writer and not yet done
	quit       chan struct{} // closed by stop
	readerDone chan struct{} // closed when the reader has returned
	writerDone chan struct{} // closed when writeLoop has returned
	// welcomed is closed once the welcome is queued: requests go after
	// it (the edge is registered, and found by requests, a moment
	// before).
	welcomed chan struct{}

	acks ackQueue     // stored item IDs not yet acknowledged
	reqs requestTable // open requests to this edge

	stopOnce    sync.Once
	closeCode   int // written once in stop, read by writeLoop after quit
	closeReason string
}

func newEdgeConn(ws *websocket.Conn, id identity, remote string, log *slog.Logger) *edgeConn {
	return &edgeConn{
		welcomed:   make(chan struct{}),
		ws:         ws,
		edge:       id.rec,
		bearer:     id.bearer,
		remote:     remote,
		log:        log.With("edge_id", id.rec.ID, "remote", remote),
		out:        make(chan []byte, edgeOutQueue),
		inflight:   make(chan struct{}, edgeInflight),
		quit:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		acks:       ackQueue{ready: make(chan struct{}, 1)},
		reqs:       requestTable{pending: map[string]chan wire.Response{}},
	}
}

// run serves the connection until it ends and both goroutines have returned.
func (c *edgeConn) run(ctx context.Context, h *edgeHub) {
	go c.writeLoop(ctx)
	rd := &edgeReader{edgeConn: c, h: h, unknownTypes: map[string]bool{}}
	rd.readLoop()
	close(c.readerDone)
	<-c.writerDone
	h.unregister(c)
	c.reqs.closeAll()
}

// stop asks writeLoop to send a close frame with code and reason and end the
// connection. The first call wins; any goroutine may call it.
func (c *edgeConn) stop(code int, reason string) {
	c.stopOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.quit)
	})
}

// send queues a frame for the writer; false if the connection is ending.
func (c *edgeConn) send(frame []byte) bool {
	select {
	case c.out <- frame:
		return true
	case <-c.quit:
		return false
	}
}

// ackQueue gathers the IDs of stored items for the next ack frame, so
// acks coalesce however fast the writer stores.
type ackQueue struct {
	mu    sync.Mutex
	ids   []string
	ready chan struct{} // signals writeLoop that ids is non-empty
}

// add adds a stored item's ID to the next ack frame. It never blocks: the
// writer goroutine calls it.
func (q *ackQueue) add(id string) {
	q.mu.Lock()
	q.ids = append(q.ids, id)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *ackQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := q.ids
	q.ids = nil
	return ids
}

// writeAcks sends every queued ack in one frame.
func (c *edgeConn) writeAcks(deadline time.Duration) error {
	ids := c.acks.take()
	if len(ids) == 0 {
		return nil
	}
	frame, err := wire.Marshal(wire.TypeAck, wire.Ack{IDs: ids})
	if err != nil {
		panic("central: ack does not marshal: " + err.Error())
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(deadline))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// writeLoop owns every write to the socket: queued frames, acks, pings and
// the final close frame. It closes the socket last, which also unblocks a
// reader still waiting for a frame.
func (c *edgeConn) writeLoop(ctx context.Context) {
	defer close(c.writerDone)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		var err error
		select {
		case frame := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			err = c.ws.WriteMessage(websocket.TextMessage, frame)
		case <-c.acks.ready:
			err = c.writeAcks(writeTimeout)
		case <-ping.C:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
		case <-ctx.Done():
			c.stop(websocket.CloseGoingAway, "central is shutting down")
			c.flush()
			closeSocket(c.ws, c.closeCode, c.closeReason, c.readerDone)
			return
		case <-c.quit:
			c.flush()
			closeSocket(c.ws, c.closeCode, c.closeReason, c.readerDone)
			return
		}
		if err != nil {
			c.log.Info("writing to edge failed", "err", err)
			c.stop(noCloseFrame, "")
		}
	}
}

// flush writes frames and acks still queued when the connection is
// stopping, so acks for items already stored reach the edge and it need not
// re-send them. A revoked edge gets nothing more.
func (c *edgeConn) flush() {
	if c.closeCode == noCloseFrame || c.closeCode == wire.CloseRevoked {
		return
	}
	for {
		select {
		case frame := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(closeGrace))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				return
			}
		default:
			_ = c.writeAcks(closeGrace)
			return
		}
	}
}

// requestTable holds the requests sent down one edge connection that
// await response parts, by request ID.
type requestTable struct {
	mu      sync.Mutex
	pending map[string]chan wire.Response
}

// expect registers a request awaiting responses.
func (t *requestTable) expect(id string) <-chan wire.Response {
	ch := make(chan wire.Response, responseQueue)
	t.mu.Lock()
	t.pending[id] = ch
	t.mu.Unlock()
	return ch
}

// closeAll ends every open request (the connection is gone).
func (t *requestTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, ch := range t.pending {
		delete(t.pending, id)
		close(ch)
	}
}

// forget drops a request; its channel is closed if it was still open.
func (t *requestTable) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.pending[id]; ok {
		delete(t.pending, id)
		close(ch)
	}
}

// deliver hands a response part to its request without blocking the
// reader: a reader that falls behind loses its request, not the edge's
// alerts queued behind the part.
func (t *requestTable) deliver(r wire.Response, log *slog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.pending[r.ID]
	if !ok {
		log.Debug("response to an unknown or finished request", "request_id", r.ID)
		return
	}
	select {
	case ch <- r:
		if r.Final {
			delete(t.pending, r.ID)
			close(ch)
		}
	default:
		log.Warn("request reader too slow; abandoning the request", "request_id", r.ID)
		delete(t.pending, r.ID)
		close(ch)
	}
}
