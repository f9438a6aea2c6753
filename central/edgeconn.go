package central

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// edgeOutQueue bounds the frames (welcome, acks) queued for one edge's writer.
const edgeOutQueue = 64

// edgeConn is one authenticated edge websocket. The reader runs in the HTTP
// handler's goroutine; writeLoop is the only writer, as gorilla requires.
// Either side ends the connection through stop.
type edgeConn struct {
	ws     *websocket.Conn
	edge   EdgeConfig
	remote string
	log    *slog.Logger

	out        chan []byte   // frames for writeLoop
	quit       chan struct{} // closed by stop
	readerDone chan struct{} // closed when the reader has returned
	writerDone chan struct{} // closed when writeLoop has returned

	stopOnce    sync.Once
	closeCode   int // written once in stop, read by writeLoop after quit
	closeReason string

	unknownTypes map[string]bool // reader-only; log each unknown type once
}

func newEdgeConn(ws *websocket.Conn, edge EdgeConfig, remote string, log *slog.Logger) *edgeConn {
	return &edgeConn{
		ws:           ws,
		edge:         edge,
		remote:       remote,
		log:          log.With("edge_id", edge.ID, "remote", remote),
		out:          make(chan []byte, edgeOutQueue),
		quit:         make(chan struct{}),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
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
}

// stop asks writeLoop to send a close frame with code and reason and end the
// connection. The first call wins.
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

// writeLoop owns every write to the socket: queued frames, pings and the
// final close frame. It closes the socket last, which also unblocks a reader
// still waiting for a frame.
func (c *edgeConn) writeLoop(ctx context.Context) {
	defer close(c.writerDone)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case frame := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				c.log.Info("writing to edge failed", "err", err)
				c.stop(noCloseFrame, "")
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.log.Info("pinging edge failed", "err", err)
				c.stop(noCloseFrame, "")
			}
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
	}
}

// flush writes frames still queued when the connection is stopping, so acks
// for alerts already stored reach the edge and it need not re-send them.
func (c *edgeConn) flush() {
	if c.closeCode == noCloseFrame {
		return // the edge is gone
	}
	for {
		select {
		case frame := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(closeGrace))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				return
			}
		default:
			return
		}
	}
}
