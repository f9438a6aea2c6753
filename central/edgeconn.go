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

	ackMu    sync.Mutex
	acks     []string      // stored item IDs not yet acknowledged
	ackReady chan struct{} // signals writeLoop that acks is non-empty

	reqMu   sync.Mutex
	pending map[string]chan wire.Response // open requests to this edge by ID

	stopOnce    sync.Once
	closeCode   int // written once in stop, read by writeLoop after quit
	closeReason string

	unknownTypes map[string]bool // reader-only; log each unknown type once
}

func newEdgeConn(ws *websocket.Conn, id identity, remote string, log *slog.Logger) *edgeConn {
	return &edgeConn{
		ws:           ws,
		edge:         id.rec,
		bearer:       id.bearer,
		remote:       remote,
		log:          log.With("edge_id", id.rec.ID, "remote", remote),
		out:          make(chan []byte, edgeOutQueue),
		inflight:     make(chan struct{}, edgeInflight),
		quit:         make(chan struct{}),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
		ackReady:     make(chan struct{}, 1),
		pending:      map[string]chan wire.Response{},
		unknownTypes: map[string]bool{},
	}
}

// run serves the connection until it ends and both goroutines have returned.
func (c *edgeConn) run(ctx context.Context, h *edgeHub) {
	go c.writeLoop(ctx)
	c.readLoop(h)
	close(c.readerDone)
	<-c.writerDone
	h.unregister(c)
	c.reqMu.Lock()
	for id, ch := range c.pending {
		delete(c.pending, id)
		close(ch)
	}
	c.reqMu.Unlock()
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

// queueAck adds a stored item's ID to the next ack frame. It never blocks:
// the writer goroutine calls it.
func (c *edgeConn) queueAck(id string) {
	c.ackMu.Lock()
	c.acks = append(c.acks, id)
	c.ackMu.Unlock()
	select {
	case c.ackReady <- struct{}{}:
	default:
	}
}

func (c *edgeConn) takeAcks() []string {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	ids := c.acks
	c.acks = nil
	return ids
}

// writeAcks sends every queued ack in one frame.
func (c *edgeConn) writeAcks(deadline time.Duration) error {
	ids := c.takeAcks()
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
		case <-c.ackReady:
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

// expect registers a request awaiting responses.
func (c *edgeConn) expect(id string) <-chan wire.Response {
	ch := make(chan wire.Response, responseQueue)
	c.reqMu.Lock()
	c.pending[id] = ch
	c.reqMu.Unlock()
	return ch
}

// forget drops a request; its channel is closed if it was still open.
func (c *edgeConn) forget(id string) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if ch, ok := c.pending[id]; ok {
		delete(c.pending, id)
		close(ch)
	}
}

// deliver hands a response part to its request without blocking the
// reader: a reader that falls behind loses its request, not the edge's
// alerts queued behind the part.
func (c *edgeConn) deliver(r wire.Response) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	ch, ok := c.pending[r.ID]
	if !ok {
		c.log.Debug("response to an unknown or finished request", "request_id", r.ID)
		return
	}
	select {
	case ch <- r:
		if r.Final {
			delete(c.pending, r.ID)
			close(ch)
		}
	default:
		c.log.Warn("request reader too slow; abandoning the request", "request_id", r.ID)
		delete(c.pending, r.ID)
		close(ch)
	}
}
