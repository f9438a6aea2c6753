package central

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// edgeReader is the reading side of one edge connection, run in the
// HTTP handler's goroutine: the challenge and hello, then every frame in
// order, items to the writer (through the hub, edgeInflight at most in
// flight) and response parts to their requests.
type edgeReader struct {
	*edgeConn
	h            *edgeHub
	unknownTypes map[string]bool // log each unknown type once
}

// reject closes the connection for a protocol problem: counted, logged, and
// the reason sent to the edge so its operator can read it in the edge's log.
func (c *edgeReader) reject(metric string, code int, reason string) {
	c.h.met.edgeRejected.WithLabelValues(metric).Inc()
	c.log.Warn("edge connection refused", "reason", metric, "detail", reason)
	c.stop(code, reason)
	c.drain()
}

// drain keeps reading briefly after stop so the edge's close reply (and
// whatever it had in flight) is consumed; closing a socket with unread data
// resets it and can lose the close frame that explains why.
func (c *edgeReader) drain() {
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

func (c *edgeReader) readLoop() {
	h := c.h
	// Until the edge has proved who it is, it may send one small frame.
	c.ws.SetReadLimit(wire.MaxHelloBytes)
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	})
	nonce := make([]byte, wire.NonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		panic("central: no randomness for a challenge: " + err.Error())
	}
	challenge, err := wire.Marshal(wire.TypeChallenge, wire.Challenge{Nonce: nonce, Time: time.Now().UTC()})
	if err != nil {
		panic("central: challenge does not marshal: " + err.Error())
	}
	if !c.send(challenge) {
		return
	}

	_ = c.ws.SetReadDeadline(time.Now().Add(helloTimeout))
	_, frame, err := c.ws.ReadMessage()
	if err != nil {
		c.readFailed(err)
		return
	}
	hello, code, err := c.parseHello(frame, nonce)
	if err != nil {
		metric := rejectHello
		if code == wire.CloseUnauthorized {
			metric = rejectUnauthorized
		}
		c.reject(metric, code, err.Error())
		return
	}
	if !h.register(c.edgeConn, hello) {
		c.reject(rejectRevoked, wire.CloseRevoked, "edge revoked")
		return
	}
	c.ws.SetReadLimit(wire.MaxFrameBytes)
	c.log.Info("edge connected", "software", hello.Software, "config_revision", hello.ConfigRevision,
		"clock_offset", time.Since(hello.Time).Round(time.Millisecond).String(), "bearer", c.bearer)
	welcome, err := wire.Marshal(wire.TypeWelcome, wire.Welcome{Time: time.Now().UTC(), SiteID: c.edge.SiteID, AccessKey: h.accessKey})
	if err != nil {
		panic("central: welcome does not marshal: " + err.Error())
	}
	if !c.send(welcome) {
		return
	}
	close(c.welcomed)
	if h.onWelcome != nil {
		h.onWelcome(c.edgeConn)
	}

	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		mt, frame, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		if mt == websocket.BinaryMessage {
			if h.onLive != nil {
				h.onLive(c.edge.ID, frame)
			}
			continue
		}
		if !c.handle(frame) {
			return
		}
	}
}

// parseHello checks that the first frame is a hello from the edge that
// was named in the upgrade, signed over this connection's nonce with the
// edge's enrolled key (a bearer-token edge proved itself before the
// upgrade). It returns the close code to refuse with.
func (c *edgeReader) parseHello(frame, nonce []byte) (wire.Hello, int, error) {
	var hello wire.Hello
	env, err := wire.Unmarshal(frame)
	if err != nil {
		return hello, websocket.ClosePolicyViolation, err
	}
	if env.Type != wire.TypeHello {
		return hello, websocket.ClosePolicyViolation, fmt.Errorf("first frame must be %q, got %q", wire.TypeHello, env.Type)
	}
	if err := wire.DecodeBody(env, &hello); err != nil {
		return hello, websocket.ClosePolicyViolation, err
	}
	if hello.EdgeID != c.edge.ID {
		return hello, websocket.ClosePolicyViolation, fmt.Errorf("hello from edge %q but the credential belongs to edge %q", hello.EdgeID, c.edge.ID)
	}
	if hello.SiteID != "" && c.edge.SiteID != "" && hello.SiteID != c.edge.SiteID {
		return hello, websocket.ClosePolicyViolation, fmt.Errorf("hello for site %q but edge %q is enrolled at site %q", hello.SiteID, c.edge.ID, c.edge.SiteID)
	}
	if c.bearer {
		return hello, 0, nil
	}
	if !bytes.Equal(hello.Nonce, nonce) {
		return hello, wire.CloseUnauthorized, errors.New("hello does not answer this connection's challenge")
	}
	if !verifyHello(c.edge.PublicKey, &hello) {
		return hello, wire.CloseUnauthorized, errors.New("hello signature does not match the enrolled key")
	}
	return hello, 0, nil
}

// handle processes one frame after hello; false ends the connection.
func (c *edgeReader) handle(frame []byte) bool {
	env, err := wire.Unmarshal(frame)
	if err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	c.h.seen(c.edgeConn, nil)
	switch env.Type {
	case wire.TypeAlert:
		return c.handleAlert(env)
	case wire.TypeAlertUpdate:
		return c.handleUpdate(env)
	case wire.TypeEventBatch:
		return c.handleEvents(env)
	case wire.TypeAccess:
		return c.handleAccess(env) // edge_access.go
	case wire.TypeSensorBatch:
		return c.handleSensors(env) // sensors.go
	case wire.TypeHeartbeat:
		var hb wire.Heartbeat
		if err := wire.DecodeBody(env, &hb); err != nil {
			c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
			return false
		}
		c.h.seen(c.edgeConn, &hb)
	case wire.TypeResponse:
		var r wire.Response
		if err := wire.DecodeBody(env, &r); err != nil {
			c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
			return false
		}
		c.reqs.deliver(r, c.log)
	case wire.TypeHello:
		c.reject(rejectHello, websocket.ClosePolicyViolation, "hello sent twice on one connection")
		return false
	default:
		// A newer edge may speak types this central does not know yet;
		// ignoring them keeps mixed versions working.
		if !c.unknownTypes[env.Type] {
			c.unknownTypes[env.Type] = true
			c.log.Warn("ignoring frames of unknown type", "type", env.Type)
		}
	}
	return true
}

// handleAlert checks one alert and hands it to the writer, which
// acknowledges it once stored. A re-sent alert is acknowledged again,
// because the edge re-sends exactly those whose first ack it never saw.
func (c *edgeReader) handleAlert(env wire.Envelope) bool {
	h := c.h
	var a wire.Alert
	if err := wire.DecodeBody(env, &a); err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := a.Validate(); err != nil {
		// The ID leads the reason so the edge can tell which alert to set aside.
		c.reject(rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("alert %q rejected: %v", a.ID, err))
		return false
	}
	if a.EdgeID != c.edge.ID {
		c.reject(rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("alert %s claims edge %q but this connection is edge %q", a.ID, a.EdgeID, c.edge.ID))
		return false
	}
	switch {
	case a.SiteID == "":
		a.SiteID = c.edge.SiteID
	case c.edge.SiteID != "" && a.SiteID != c.edge.SiteID:
		c.reject(rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("alert %s claims site %q but edge %q is enrolled at site %q", a.ID, a.SiteID, c.edge.ID, c.edge.SiteID))
		return false
	}
	return c.submit(&op{alert: &a}, a.ID, func(o *op) {
		h.met.alertsReceived.Inc()
		if h.onAlert != nil {
			h.onAlert(o.rec)
		}
		if o.changed {
			c.log.Info("alert stored", "alert_id", o.rec.ID, "seq", o.rec.Seq,
				"severity", o.rec.Severity, "kind", o.rec.Kind, "source", o.rec.Source)
		} else {
			h.met.alertsDuplicate.Inc()
			c.log.Debug("duplicate alert acknowledged again", "alert_id", o.rec.ID, "seq", o.rec.Seq)
		}
	})
}

func (c *edgeReader) handleUpdate(env wire.Envelope) bool {
	var u wire.AlertUpdate
	if err := wire.DecodeBody(env, &u); err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := u.Validate(); err != nil {
		c.reject(rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("alert_update %q rejected: %v", u.ID, err))
		return false
	}
	if u.EdgeID != c.edge.ID {
		c.reject(rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("alert_update %s claims edge %q but this connection is edge %q", u.ID, u.EdgeID, c.edge.ID))
		return false
	}
	return c.submit(&op{update: &u}, u.ID, func(o *op) {
		if o.err != nil {
			// Acknowledged all the same: re-sending cannot make it apply.
			c.log.Warn("alert update not applied", "update_id", u.ID, "err", o.err)
		}
	})
}

func (c *edgeReader) handleEvents(env wire.Envelope) bool {
	var b wire.EventBatch
	if err := wire.DecodeBody(env, &b); err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := b.Validate(); err != nil {
		c.reject(rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("event_batch %q rejected: %v", b.ID, err))
		return false
	}
	if b.EdgeID != c.edge.ID {
		c.reject(rejectEdgeMismatch, websocket.ClosePolicyViolation,
			fmt.Sprintf("event_batch %s claims edge %q but this connection is edge %q", b.ID, b.EdgeID, c.edge.ID))
		return false
	}
	return c.submit(&op{events: &b, site: c.edge.SiteID}, b.ID, func(*op) {})
}

// submit hands o to the writer. Once o is stored, stored runs (in the
// writer goroutine: it must not block) and the ID is acknowledged. If
// storing fails the connection ends without an ack, and the edge keeps the
// item and re-sends it.
func (c *edgeReader) submit(o *op, id string, stored func(*op)) bool {
	select {
	case c.inflight <- struct{}{}:
	case <-c.quit:
		return false
	}
	o.done = func(o *op, err error) {
		<-c.inflight
		if err != nil {
			c.stop(websocket.CloseInternalServerErr, "central could not store the item; retry later")
			return
		}
		stored(o)
		c.acks.add(id)
	}
	if !c.h.wr.submit(o, c.quit) {
		<-c.inflight
		return false
	}
	return true
}

// readFailed logs why reading stopped and ends the connection.
func (c *edgeReader) readFailed(err error) {
	var closeErr *websocket.CloseError
	var netErr net.Error
	select {
	case <-c.quit:
		// We were already closing (replaced, revoked, shutting down, write failed).
		c.log.Debug("edge connection ended", "err", err)
		return
	default:
	}
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent close 1009 (message too big) to the edge.
		c.h.met.edgeRejected.WithLabelValues(rejectFrame).Inc()
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
