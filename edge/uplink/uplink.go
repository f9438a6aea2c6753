// Package uplink carries the edge's outbox to central over one websocket
// that the edge dials out (so a box behind a village router needs no open
// port). Delivery is at least once: everything unacknowledged is sent
// again after a reconnect, and central de-duplicates by alert ID.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/wire"
)

// Config says where central is and who this edge is.
type Config struct {
	URL        string // ws(s)://central/api/v1/edge/ws
	Token      string // bearer token issued to this edge
	EdgeID     string
	SiteID     string
	Software   string
	BackoffMin time.Duration // default 500 ms
	BackoffMax time.Duration // default 30 s
	Window     int           // alerts in flight before waiting for acks (default 32)
	Heartbeat  time.Duration // default 10 s
}

// Uplink owns the connection to central.
type Uplink struct {
	cfg       Config
	box       *outbox.Outbox
	health    func() wire.Heartbeat
	log       *slog.Logger
	connected atomic.Bool
	offset    atomic.Int64 // central clock − edge clock, ns, from the last welcome

	sent       prometheus.Counter
	acked      prometheus.Counter
	reconnects prometheus.Counter
}

// New makes an uplink; health is called for each heartbeat.
func New(cfg Config, box *outbox.Outbox, health func() wire.Heartbeat, reg prometheus.Registerer, log *slog.Logger) *Uplink {
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 32
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	u := &Uplink{cfg: cfg, box: box, health: health, log: log.With("component", "uplink"),
		sent:       prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_alerts_sent_total", Help: "Alert frames sent to central (re-sends included)."}),
		acked:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_alerts_acked_total", Help: "Alerts central acknowledged."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_reconnects_total", Help: "Connections to central that ended and were retried."}),
	}
	if reg != nil {
		reg.MustRegister(u.sent, u.acked, u.reconnects,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_uplink_connected", Help: "1 while connected to central."}, func() float64 {
				if u.connected.Load() {
					return 1
				}
				return 0
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_outbox_pending", Help: "Alerts stored on the edge and not yet acknowledged by central."}, func() float64 {
				return float64(box.Len())
			}))
	}
	return u
}

// Connected reports whether a session with central is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// ClockOffset is central's clock minus ours, as measured at the last hello.
func (u *Uplink) ClockOffset() time.Duration { return time.Duration(u.offset.Load()) }

// Run keeps a session with central up until ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	wait := u.cfg.BackoffMin
	for ctx.Err() == nil {
		started := time.Now()
		err := u.session(ctx)
		u.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		u.reconnects.Inc()
		if time.Since(started) > time.Minute {
			wait = u.cfg.BackoffMin
		}
		d := wait/2 + rand.N(wait/2+1)
		u.log.Warn("central unreachable, alerts stay queued on this box", "err", err, "pending", u.box.Len(), "retry_in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		wait = min(wait*2, u.cfg.BackoffMax)
	}
	return nil
}

// session runs one connection: hello, then send from the outbox while
// reading acks, until anything fails.
func (u *Uplink) session(ctx context.Context) error {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	hdr := http.Header{"Authorization": {"Bearer " + u.cfg.Token}}
	conn, resp, err := dialer.DialContext(ctx, u.cfg.URL, hdr)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %s: %w", u.cfg.URL, resp.Status, err)
		}
		return fmt.Errorf("dial %s: %w", u.cfg.URL, err)
	}
	defer conn.Close()
	conn.SetReadLimit(wire.MaxFrameBytes)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := u.hello(conn); err != nil {
		return err
	}
	u.connected.Store(true)
	u.log.Info("connected to central", "url", u.cfg.URL, "pending", u.box.Len(), "clock_offset", u.ClockOffset())

	acks := make(chan []string, 16)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer func() {
		conn.Close() // unblocks the reader, which then sees done
		close(done)
		<-readErr
	}()
	go func() { readErr <- u.readLoop(conn, acks, done) }()

	inflight := map[string]struct{}{}
	var cursor uint64
	beat := time.NewTicker(u.cfg.Heartbeat)
	defer beat.Stop()
	for {
		changed := u.box.Changed()
		if room := u.cfg.Window - len(inflight); room > 0 {
			entries, err := u.box.After(cursor, room)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if err := u.write(conn, wire.TypeAlert, e.Alert); err != nil {
					return err
				}
				u.sent.Inc()
				inflight[e.Alert.ID] = struct{}{}
				cursor = e.Seq
			}
			if len(entries) == room {
				continue // more may be waiting
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			readErr <- err // for the deferred wait
			return err
		case ids := <-acks:
			if err := u.box.Ack(ids...); err != nil {
				return err
			}
			for _, id := range ids {
				delete(inflight, id)
			}
			u.acked.Add(float64(len(ids)))
		case <-changed:
		case <-beat.C:
			hb := u.health()
			hb.Outbox = u.box.Len()
			if err := u.write(conn, wire.TypeHeartbeat, hb); err != nil {
				return err
			}
		}
	}
}

func (u *Uplink) hello(conn *websocket.Conn) error {
	h := wire.Hello{EdgeID: u.cfg.EdgeID, SiteID: u.cfg.SiteID, Software: u.cfg.Software, Time: time.Now().UTC()}
	if err := u.write(conn, wire.TypeHello, h); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, frame, err := conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("waiting for welcome: %w", err)
	}
	env, err := wire.Unmarshal(frame)
	if err != nil {
		return err
	}
	if env.Type != wire.TypeWelcome {
		return fmt.Errorf("central answered hello with %q", env.Type)
	}
	var w wire.Welcome
	if err := wire.DecodeBody(env, &w); err != nil {
		return err
	}
	rtt := time.Since(h.Time)
	u.offset.Store(int64(w.Time.Sub(h.Time.Add(rtt / 2))))
	return nil
}

// readLoop delivers acks; central pings keep the read deadline moving.
func (u *Uplink) readLoop(conn *websocket.Conn, acks chan<- []string, done <-chan struct{}) error {
	const idle = 60 * time.Second
	conn.SetReadDeadline(time.Now().Add(idle))
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(idle))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("connection to central lost: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(idle))
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
			case acks <- a.IDs:
			case <-done:
				return nil
			}
		default:
			u.log.Debug("ignoring message from central", "type", env.Type)
		}
	}
}

var errWrite = errors.New("uplink: write")

func (u *Uplink) write(conn *websocket.Conn, typ string, body any) error {
	frame, err := wire.Marshal(typ, body)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("%w %s: %v", errWrite, typ, err)
	}
	return nil
}
