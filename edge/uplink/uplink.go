// Package uplink carries the edge's outbox to central over one websocket
// that the edge dials out (so a box behind a village router needs no open
// port), and answers central's requests over the same connection.
//
// An enrolled edge (see Enroll) connects over TLS pinned to central's key,
// answers central's challenge with a hello signed by its Ed25519 key, then
// sends alerts, alert updates and event batches from the outbox in order,
// up to Window unacknowledged at a time. Delivery is at least once:
// everything unacknowledged is sent again after a reconnect, and central
// de-duplicates by ID. A slow or absent central never holds up the edge:
// items wait in the durable outbox, bounded by bytes (see outbox).
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/edge/outbox"
	"github.com/vigil-perimeter/vigil/wire"
)

// Config says where central is and who this edge is.
type Config struct {
	URL string // wss://central:8443/api/v1/edge/ws (empty: the credential's)
	// Token is what the edge config calls its token: a credential written
	// by `vigil edge enroll` (JSON), or a bearer token from central.yaml
	// (deprecated). Credential, if set, takes precedence.
	Token      string
	Credential *Credential
	EdgeID     string
	SiteID     string
	Software   string
	// ConfigRevision is reported in hello; central shows it per edge.
	ConfigRevision string
	// DataDir, if set, is where the heartbeat measures free disk.
	DataDir    string
	BackoffMin time.Duration // default 500 ms
	BackoffMax time.Duration // default 30 s
	Window     int           // items in flight before waiting for acks (default 32)
	Heartbeat  time.Duration // default 10 s
	// Handler answers central's requests (default NotAvailable).
	Handler RequestHandler
	// MaxRequests bounds requests handled at once (default 4); more are
	// answered "error: busy".
	MaxRequests int
	// OnAck, if set, sees the IDs central acknowledged, after they left
	// the outbox.
	OnAck func(ids []string)
	// Dial, if set, replaces the network dialer (benchmarks use a proxy
	// that can cut the link).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Errors after which retrying soon is pointless; Run keeps retrying at the
// longest backoff so a fixed edge comes back by itself.
var (
	ErrRevoked      = errors.New("central revoked this edge's credential; enrol it again (vigil edge enroll)")
	ErrUnauthorized = errors.New("central does not accept this edge's credential")
)

// Uplink owns the connection to central.
type Uplink struct {
	cfg       Config
	cred      *Credential
	box       *outbox.Outbox
	health    func() wire.Heartbeat
	log       *slog.Logger
	connected atomic.Bool
	offset    atomic.Int64 // central clock − edge clock, ns, from the last welcome
	lastErr   atomic.Pointer[string]
	cpu       cpuSampler

	sent       prometheus.Counter
	acked      prometheus.Counter
	reconnects prometheus.Counter
	requests   *prometheus.CounterVec
}

// New makes an uplink; health is called for each heartbeat. A token that
// is a malformed credential is reported at once.
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
	if cfg.Handler == nil {
		cfg.Handler = NotAvailable{}
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 4
	}
	if health == nil {
		health = func() wire.Heartbeat { return wire.Heartbeat{} }
	}
	if log == nil {
		log = slog.Default()
	}
	u := &Uplink{cfg: cfg, box: box, health: health, log: log.With("component", "uplink"),
		sent:       prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_items_sent_total", Help: "Outbox items sent to central (re-sends included)."}),
		acked:      prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_items_acked_total", Help: "Outbox items central acknowledged."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_uplink_reconnects_total", Help: "Connections to central that ended and were retried."}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_uplink_requests_total", Help: "Requests from central, by method."}, []string{"method"}),
	}
	u.cred = cfg.Credential
	if u.cred == nil {
		cred, ok, err := ParseCredential(cfg.Token)
		switch {
		case err != nil:
			u.log.Error("the edge's token looks like a credential but does not load; every connection will fail", "err", err)
			u.cred = &Credential{} // fails in session with the reason
		case ok:
			u.cred = &cred
		}
	}
	if reg != nil {
		u.register(reg)
	}
	return u
}

func (u *Uplink) register(reg prometheus.Registerer) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	dropped := func(sev string, f func(outbox.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_outbox_dropped_total",
			Help:        "Outbox items discarded by its byte bound (green first, then yellow; red never), by severity.",
			ConstLabels: prometheus.Labels{"severity": sev}}, func() float64 { return float64(f(u.box.Stats())) })
	}
	reg.MustRegister(u.sent, u.acked, u.reconnects, u.requests,
		gauge("vigil_uplink_connected", "1 while connected to central.", func() float64 {
			if u.connected.Load() {
				return 1
			}
			return 0
		}),
		gauge("vigil_outbox_pending", "Items stored on the edge and not yet acknowledged by central.", func() float64 { return float64(u.box.Stats().Pending) }),
		gauge("vigil_outbox_bytes", "Bytes the outbox holds.", func() float64 { return float64(u.box.Stats().Bytes) }),
		gauge("vigil_outbox_max_bytes", "The outbox's byte bound.", func() float64 { return float64(u.box.Stats().MaxBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vigil_outbox_overflow_total",
			Help: "Red alerts stored although the outbox was at its bound."}, func() float64 { return float64(u.box.Stats().Overflow) }),
		dropped("green", func(s outbox.Stats) uint64 { return s.DroppedGreen }),
		dropped("yellow", func(s outbox.Stats) uint64 { return s.DroppedYellow }),
	)
}

// Connected reports whether a session with central is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// ClockOffset is central's clock minus ours, as measured at the last hello.
func (u *Uplink) ClockOffset() time.Duration { return time.Duration(u.offset.Load()) }

// LastError is why the last connection attempt or session ended ("" if none).
func (u *Uplink) LastError() string {
	if p := u.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

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
		msg := err.Error()
		u.lastErr.Store(&msg)
		u.reconnects.Inc()
		if time.Since(started) > time.Minute {
			wait = u.cfg.BackoffMin
		}
		if errors.Is(err, ErrRevoked) || errors.Is(err, ErrUnauthorized) {
			wait = u.cfg.BackoffMax
			u.log.Error("central refuses this edge; alerts stay queued on this box", "err", err, "pending", u.box.Len())
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

func (u *Uplink) edgeID() string {
	if u.cred != nil && u.cred.EdgeID != "" {
		return u.cred.EdgeID
	}
	return u.cfg.EdgeID
}

func (u *Uplink) url() (string, error) {
	if u.cred == nil {
		return u.cfg.URL, nil
	}
	if err := u.cred.Validate(); err != nil {
		return "", err
	}
	// Alerts carry the configured IDs; central would refuse every one.
	if u.cfg.EdgeID != "" && u.cfg.EdgeID != u.cred.EdgeID {
		return "", fmt.Errorf("edge_id is %q but the credential is for edge %q", u.cfg.EdgeID, u.cred.EdgeID)
	}
	if u.cfg.SiteID != "" && u.cred.SiteID != "" && u.cfg.SiteID != u.cred.SiteID {
		return "", fmt.Errorf("site_id is %q but the edge was enrolled at site %q", u.cfg.SiteID, u.cred.SiteID)
	}
	if u.cfg.URL == "" {
		return u.cred.EdgeURL(), nil
	}
	if len(u.cfg.URL) < 6 || u.cfg.URL[:6] != "wss://" {
		return "", fmt.Errorf("central URL %s: an enrolled edge talks to central over TLS only (wss://)", u.cfg.URL)
	}
	return u.cfg.URL, nil
}
