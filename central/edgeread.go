package central

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// reject closes the connection for a protocol problem: counted, logged, and
// the reason sent to the edge so its operator can read it in the edge's log.
func (c *edgeConn) reject(h *edgeHub, metric string, code int, reason string) {
	h.met.edgeRejected.WithLabelValues(metric).Inc()
	c.log.Warn("edge connection refused", "reason", metric, "detail", reason)
	c.stop(code, reason)
	c.drain()
}

// drain keeps reading briefly after stop so the edge's close reply (and
// whatever it had in flight) is consumed; closing a socket with unread data
// resets it and can lose the close frame that explains why.
func (c *edgeConn) drain() {
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

func (c *edgeConn) readLoop(h *edgeHub) {
	c.ws.SetReadLimit(wire.MaxFrameBytes)
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	})

	_ = c.ws.SetReadDeadline(time.Now().Add(helloTimeout))
	_, frame, err := c.ws.ReadMessage()
	if err != nil {
		c.readFailed(h, err)
		return
	}
	hello, err := c.parseHello(frame)
	if err != nil {
		c.reject(h, rejectHello, websocket.ClosePolicyViolation, err.Error())
		return
	}
	welcome, err := wire.Marshal(wire.TypeWelcome, wire.Welcome{Time: time.Now().UTC()})
	if err != nil {
		panic("central: welcome does not marshal: " + err.Error())
	}
	h.register(c, hello)
	if hello.Time.IsZero() {
		c.log.Info("edge connected", "software", hello.Software)
	} else {
		c.log.Info("edge connected", "software", hello.Software,
			"clock_offset", hello.Time.Sub(time.Now()).Round(time.Millisecond).String())
	}
	if !c.send(welcome) {
		return
	}

	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(h, err)
			return
		}
		if !c.handle(h, frame) {
			return
		}
	}
}

// parseHello checks that the first frame is a hello from the edge that owns
// the token.
func (c *edgeConn) parseHello(frame []byte) (wire.Hello, error) {
	var hello wire.Hello
	env, err := wire.Unmarshal(frame)
	if err != nil {
		return hello, err
	}
	if env.Type != wire.TypeHello {
		return hello, fmt.Errorf("first frame must be %q, got %q", wire.TypeHello, env.Type)
	}
	if err := wire.DecodeBody(env, &hello); err != nil {
		return hello, err
	}
	if hello.EdgeID != c.edge.ID {
		return hello, fmt.Errorf("hello from edge %q but the token belongs to edge %q", hello.EdgeID, c.edge.ID)
	}
	if hello.SiteID != "" && c.edge.SiteID != "" && hello.SiteID != c.edge.SiteID {
		return hello, fmt.Errorf("hello for site %q but edge %q is enrolled at site %q", hello.SiteID, c.edge.ID, c.edge.SiteID)
	}
	return hello, nil
}

// handle processes one frame after hello; false ends the connection.
func (c *edgeConn) handle(h *edgeHub, frame []byte) bool {
	env, err := wire.Unmarshal(frame)
	if err != nil {
		c.reject(h, rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	switch env.Type {
	case wire.TypeAlert:
		h.seen(c, nil)
		return c.handleAlert(h, env)
	case wire.TypeHeartbeat:
		var hb wire.Heartbeat
		if err := wire.DecodeBody(env, &hb); err != nil {
			c.reject(h, rejectFrame, websocket.CloseUnsupportedData, err.Error())
			return false
		}
		h.seen(c, &hb)
	case wire.TypeHello:
		c.reject(h, rejectHello, websocket.ClosePolicyViolation, "hello sent twice on one connection")
		return false
	default:
		// A newer edge may speak types this central does not know yet;
		// ignoring them keeps mixed versions working.
		h.seen(c, nil)
		if !c.unknownTypes[env.Type] {
			c.unknownTypes[env.Type] = true
			c.log.Warn("ignoring frames of unknown type", "type", env.Type)
		}
	}
	return true
}

// handleAlert stores one alert and acknowledges it. A re-sent alert is
// acknowledged again, because the edge re-sends exactly those whose first
// ack it never saw.
func (c *edgeConn) handleAlert(h *edgeHub, env wire.Envelope) bool {
	var a wire.Alert
	if err := wire.DecodeBody(env, &a); err != nil {
		c.reject(h, rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := a.Validate(); err != nil {
		// The ID leads the reason so the edge can tell which alert to set aside.
		c.reject(h, rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("alert %q rejected: %v", a.ID, err))
		return false
	}
	if a.EdgeID != c.edge.ID {
		c.reject(h, rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("alert %s claims edge %q but this connection is edge %q", a.ID, a.EdgeID, c.edge.ID))
		return false
	}
	switch {
	case a.SiteID == "":
		a.SiteID = c.edge.SiteID
	case c.edge.SiteID != "" && a.SiteID != c.edge.SiteID:
		c.reject(h, rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("alert %s claims site %q but edge %q is enrolled at site %q", a.ID, a.SiteID, c.edge.ID, c.edge.SiteID))
		return false
	}

	rec, inserted, err := h.ingest(a)
	if err != nil {
		// No ack: the edge keeps the alert in its outbox and re-sends it.
		c.log.Error("storing alert failed", "alert_id", a.ID, "err", err)
		c.stop(websocket.CloseInternalServerErr, "central could not store the alert; retry later")
		return false
	}
	h.met.alertsReceived.Inc()
	if inserted {
		c.log.Info("alert stored", "alert_id", rec.ID, "seq", rec.Seq,
			"severity", rec.Severity, "kind", rec.Kind, "source", rec.Source)
	} else {
		h.met.alertsDuplicate.Inc()
		c.log.Debug("duplicate alert acknowledged again", "alert_id", rec.ID, "seq", rec.Seq)
	}
	ack, err := wire.Marshal(wire.TypeAck, wire.Ack{IDs: []string{a.ID}})
	if err != nil {
		panic("central: ack does not marshal: " + err.Error())
	}
	return c.send(ack)
}

// readFailed logs why reading stopped and ends the connection.
func (c *edgeConn) readFailed(h *edgeHub, err error) {
	var closeErr *websocket.CloseError
	var netErr net.Error
	select {
	case <-c.quit:
		// We were already closing (replaced, shutting down, write failed).
		c.log.Debug("edge connection ended", "err", err)
		return
	default:
	}
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent close 1009 (message too big) to the edge.
		h.met.edgeRejected.WithLabelValues(rejectFrame).Inc()
		c.log.Warn("edge connection closed: frame larger than the limit", "limit_bytes", wire.MaxFrameBytes)
		c.stop(noCloseFrame, "")
	case errors.As(err, &closeErr) && closeErr.Code != websocket.CloseAbnormalClosure:
		// gorilla has already answered the edge's close frame.
		c.log.Info("edge closed the connection", "code", closeErr.Code, "text", closeErr.Text)
		c.stop(noCloseFrame, "")
	case errors.As(err, &netErr) && netErr.Timeout():
		c.log.Warn("edge silent too long; closing", "timeout", readTimeout.String())
		c.stop(websocket.CloseGoingAway, "no frames or pongs within the read timeout")
	default:
		c.log.Info("edge connection lost", "err", err)
		c.stop(noCloseFrame, "")
	}
}
