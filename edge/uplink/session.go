package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

const (
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 10 * time.Second
	// binaryQueue bounds the binary frames (live video fragments, ~0.25 s
	// each) waiting for the writer: about 4 s of one camera.
	binaryQueue = 16
)

// errSilent: central sent nothing, not even a pong, within KeepaliveTimeout.
var errSilent = errors.New("central stopped answering pings")

// runSession runs one connection of u: handshake, then send from the
// outbox while reading acks and requests, until anything fails.
func runSession(ctx context.Context, u *Uplink) error {
	target, err := u.id.target()
	if err != nil {
		return err
	}
	conn, err := u.id.dial(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadLimit(wire.MaxFrameBytes)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	offset, accessKey, err := u.id.handshake(conn, u.ClockOffset())
	if err != nil {
		return err
	}
	u.offset.Store(int64(offset))
	u.keys.learn(accessKey)
	u.connected.Store(true)
	u.Beat() // the first heartbeat goes at once: central learns the devices and their names
	u.log.Info("connected to central", "url", target, "pending", u.box.Len(), "clock_offset", u.ClockOffset())

	s := &sessionState{u: u, conn: conn, acks: make(chan []string, 16), replies: make(chan []byte, 16),
		readErr: make(chan error, 1), done: make(chan struct{}), inflight: map[string]struct{}{}, binary: make(chan []byte, binaryQueue),
		slots: make(chan struct{}, u.cfg.MaxRequests), lightSlots: make(chan struct{}, u.cfg.MaxLightRequests)}
	s.stream = &Stream{frames: s.binary, done: s.done}
	sctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		conn.Close() // unblocks the reader, which then sees done
		close(s.done)
		<-s.readErr
		s.handlers.Wait()
	}()
	go func() {
		err := s.readLoop(sctx)
		if err != nil {
			// Say so at once and unblock the writer: health must not
			// report a dead link while a write waits out its deadline.
			u.connected.Store(false)
			s.lost.Store(&err)
			conn.Close()
		}
		s.readErr <- err
	}()
	err = s.sendLoop(ctx)
	if lost := s.lost.Load(); lost != nil {
		err = *lost // the cause, not the writer's "use of closed connection"
	}
	return err
}

// readTyped reads one frame of type typ into v; a close frame with one of
// central's refusal codes becomes ErrRevoked or ErrUnauthorized.
func readTyped(conn *websocket.Conn, typ string, v any) error {
	_, frame, err := conn.ReadMessage()
	if err != nil {
		return closeReason(err)
	}
	env, err := wire.Unmarshal(frame)
	if err != nil {
		return err
	}
	if env.Type != typ {
		return fmt.Errorf("central sent %q, want %q", env.Type, typ)
	}
	return wire.DecodeBody(env, v)
}

func closeReason(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case wire.CloseRevoked:
			return fmt.Errorf("%w (%s)", ErrRevoked, ce.Text)
		case wire.CloseUnauthorized:
			return fmt.Errorf("%w (%s)", ErrUnauthorized, ce.Text)
		}
	}
	return err
}

// sessionState is one connection's moving parts.
type sessionState struct {
	u        *Uplink
	conn     *websocket.Conn
	acks     chan []string
	replies  chan []byte // encoded responses from request handlers
	binary   chan []byte // binary frames (live video) from Streams
	stream   *Stream     // the one Stream of this connection
	readErr  chan error
	lost     atomic.Pointer[error] // why the reader ended, once it has
	done     chan struct{}
	inflight map[string]struct{} // sendLoop only
	slots    chan struct{}       // one per running Bounded request handler
	// lightSlots: one per running Light request handler.
	lightSlots chan struct{}
	handlers   sync.WaitGroup
}

// sendLoop is the connection's only writer: outbox items, responses and
// heartbeats.
func (s *sessionState) sendLoop(ctx context.Context) error {
	u := s.u
	var cursor uint64
	beat := time.NewTicker(u.cfg.Heartbeat)
	defer beat.Stop()
	ping := time.NewTicker(u.cfg.Keepalive)
	defer ping.Stop()
	u.cpu.sample()
	for {
		changed := u.box.Changed()
		if room := u.cfg.Window - len(s.inflight); room > 0 {
			entries, err := u.box.After(cursor, room)
			if err != nil {
				return err
			}
			for _, e := range entries {
				frame, err := wire.MarshalRaw(e.Kind, e.Body)
				if err != nil {
					return err
				}
				if err := writeFrame(s.conn, frame); err != nil {
					return err
				}
				u.m.sent.Inc()
				s.inflight[e.ID] = struct{}{}
				cursor = e.Seq
			}
			if len(entries) == room {
				continue // more may be waiting
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.readErr:
			s.readErr <- err // for the deferred wait
			return err
		case ids := <-s.acks:
			if err := u.box.Ack(ids...); err != nil {
				return err
			}
			for _, id := range ids {
				delete(s.inflight, id)
			}
			u.m.acked.Add(float64(len(ids)))
			if u.cfg.OnAck != nil {
				u.cfg.OnAck(ids)
			}
		case frame := <-s.replies:
			if err := writeFrame(s.conn, frame); err != nil {
				return err
			}
			s.tookBulk(len(frame))
		case frame := <-s.binary:
			_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := s.conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				return fmt.Errorf("uplink: write: %w", err)
			}
			s.tookBulk(len(frame))
		case <-changed:
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(u.cfg.KeepaliveTimeout)); err != nil {
				return fmt.Errorf("uplink: ping: %w", err)
			}
		case <-u.beatNow:
			if err := write(s.conn, wire.TypeHeartbeat, s.heartbeat()); err != nil {
				return err
			}
		case <-beat.C:
			if err := u.box.FlushAcks(); err != nil {
				return err
			}
			if err := write(s.conn, wire.TypeHeartbeat, s.heartbeat()); err != nil {
				return err
			}
		}
	}
}

// heartbeat is the edge's health with the uplink's own numbers filled in.
func (s *sessionState) heartbeat() wire.Heartbeat {
	u := s.u
	hb := u.health()
	if hb.Time.IsZero() {
		hb.Time = time.Now().UTC()
	}
	st := u.box.Stats()
	hb.Outbox, hb.OutboxBytes, hb.OutboxDropped = st.Pending, st.Bytes, st.Dropped()
	if hb.Disk == nil {
		hb.Disk = diskStatus(u.cfg.DataDir)
	}
	if hb.CPUPercent == 0 {
		hb.CPUPercent = u.cpu.sample()
	}
	if hb.ConfigRevision == "" {
		hb.ConfigRevision = u.ConfigRevision()
	}
	return hb
}

// bulkFrame is the size from which a frame that central took counts as a
// sign of life: while the edge sends a clip (2 MiB parts) over a slow
// link, central's pong to our ping waits behind the parts in the same
// stream, so "nothing received" alone would end a healthy session in the
// middle of every large answer. Small frames (alerts) do not count: a
// hung central still accepts those into its socket buffer, and must be
// found within KeepaliveTimeout.
const bulkFrame = 256 << 10

// tookBulk moves the read deadline when a large frame was written: the
// peer's TCP took it, so central is reading.
func (s *sessionState) tookBulk(n int) {
	if n >= bulkFrame {
		_ = s.conn.SetReadDeadline(time.Now().Add(s.u.cfg.KeepaliveTimeout))
	}
}

// readLoop delivers acks and starts request handlers. Anything central
// sends (frames, its pings, pongs to ours) keeps the read deadline
// KeepaliveTimeout ahead; a central that goes quiet ends the session.
func (s *sessionState) readLoop(ctx context.Context) error {
	conn := s.conn
	idle := s.u.cfg.KeepaliveTimeout
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(idle)) }
	alive()
	conn.SetPingHandler(func(data string) error {
		alive()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("connection to central lost: nothing received for %v: %w", idle, errSilent)
			}
			return fmt.Errorf("connection to central lost: %w", closeReason(err))
		}
		alive()
		env, err := wire.Unmarshal(frame)
		if err != nil {
			return err
		}
		switch env.Type {
		case wire.TypeAck:
			var a wire.Ack
			if err := wire.DecodeBody(env, &a); err != nil {
				return err
			}
			select {
			case s.acks <- a.IDs:
			case <-s.done:
				return nil
			}
		case wire.TypeRequest:
			var req wire.Request
			if err := wire.DecodeBody(env, &req); err != nil {
				return err
			}
			s.startRequest(ctx, req)
		case wire.TypeAuditCheckpoint:
			s.u.cps.acceptFrame(env)
		case wire.TypeAlertClosed:
			s.alertClosed(env)
		default:
			s.u.log.Debug("ignoring message from central", "type", env.Type)
		}
	}
}

// startRequest runs the route for req's method (Config.Routes) in its own
// goroutine, or answers at once: bad_request if the request is malformed or
// its method has no route, "busy" if a Bounded one finds no free slot.
func (s *sessionState) startRequest(ctx context.Context, req wire.Request) {
	s.u.m.requests.WithLabelValues(req.Method).Inc()
	out := &Responder{id: req.ID, send: s.reply, stream: s.stream}
	fail := func(status, msg string) {
		s.handlers.Add(1)
		go func() { defer s.handlers.Done(); _ = out.Fail(status, msg) }()
	}
	if err := req.Validate(); err != nil {
		fail(wire.StatusBadRequest, err.Error())
		return
	}
	rt, ok := s.u.cfg.Routes.Lookup(req.Method)
	if !ok {
		fail(wire.StatusBadRequest, noRoute(req.Method))
		return
	}
	var pool chan struct{}
	switch rt.Policy {
	case Bounded:
		pool = s.slots
	case Light:
		pool = s.lightSlots
	}
	bounded := rt.Policy != Unbounded
	if bounded {
		select {
		case pool <- struct{}{}:
		default:
			fail(wire.StatusBusy, "edge busy: too many requests")
			return
		}
		var once sync.Once
		out.onFinal = func() { once.Do(func() { <-pool }) }
	}
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		if bounded {
			defer out.onFinal() // a handler that never ended its answer
		}
		rt.Handler.HandleRequest(ctx, req, out)
		out.finish()
	}()
}

// reply hands an encoded response to sendLoop.
func (s *sessionState) reply(p wire.Response) error {
	frame, err := wire.Marshal(wire.TypeResponse, p)
	if err != nil {
		return err
	}
	select {
	case s.replies <- frame:
		return nil
	case <-s.done:
		return errors.New("uplink: connection closed")
	}
}

func write(conn *websocket.Conn, typ string, body any) error {
	frame, err := wire.Marshal(typ, body)
	if err != nil {
		return err
	}
	return writeFrame(conn, frame)
}

func writeFrame(conn *websocket.Conn, frame []byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("uplink: write: %w", err)
	}
	return nil
}

// Hostname is the box's name for enrolment records ("" if unknown).
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// alertClosed hands a valid alert_closed frame to Config.OnAlertClosed; a
// malformed one is logged and ignored (the session reads on: central also
// opens a new alert for a recurrence of a closed one by itself).
func (s *sessionState) alertClosed(env wire.Envelope) {
	u := s.u
	var c wire.AlertClosed
	if err := wire.DecodeBody(env, &c); err != nil {
		u.log.Warn("ignoring malformed alert_closed from central", "err", err)
		return
	}
	if err := c.Validate(); err != nil {
		u.log.Warn("ignoring invalid alert_closed from central", "err", err)
		return
	}
	if u.cfg.OnAlertClosed != nil {
		u.cfg.OnAlertClosed(c)
	}
}
