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
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
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
	// Pin, for a bearer-token edge, is the SHA-256 of central's edge hub
	// key (wire.CertPin): its TLS is checked against it instead of the
	// system's roots (central's self-signed certificate). An enrolled
	// edge pins the credential's.
	Pin []byte
	// DataDir, if set, is where the heartbeat measures free disk and
	// where central's audit checkpoint is kept (CheckpointFile).
	DataDir string
	// AuditCheckpointFile overrides where the audit checkpoint is kept
	// (default DataDir/audit-checkpoint.json; neither: in memory only).
	AuditCheckpointFile string
	// CentralKey, if set, is central's public key (access tokens, audit
	// checkpoints: one not signed by it is refused); otherwise the key
	// learned at enrolment or in a welcome (centralkey.go). With none,
	// audit checkpoints are kept unverified (the verifier checks them),
	// never replacing a newer one.
	CentralKey ed25519.PublicKey
	BackoffMin time.Duration // default 500 ms
	BackoffMax time.Duration // default 30 s
	Window     int           // items in flight before waiting for acks (default 32)
	Heartbeat  time.Duration // default 10 s
	// Keepalive is how often the edge pings central (default 2 s);
	// KeepaliveTimeout ends a session in which central has sent nothing,
	// not even a pong, for that long (default 5 s): a hung central (a
	// paused process, a dead NAT mapping) holds the TCP connection open
	// and would otherwise look connected for minutes.
	Keepalive        time.Duration
	KeepaliveTimeout time.Duration
	// Probe is how often, while waiting out the backoff after central
	// stopped answering or could not be reached, the edge tries a plain TCP
	// connect to it (default 1 s); once that succeeds it dials at once, so
	// a long backoff never delays the reconnect.
	Probe time.Duration
	// PendingMaxAge and PendingMax make Health degraded: the oldest
	// pending alert is older than PendingMaxAge (default 10 s), or more
	// than PendingMax items are pending (default 100).
	PendingMaxAge time.Duration
	PendingMax    int
	// Routes answers central's requests, method by method (router.go); a
	// method with no route is answered bad_request. Nil: a table with only
	// what the uplink answers itself (audit_checkpoint, AnswerCheckpoint);
	// a caller's table routes that too.
	Routes *Router
	// MaxRequests bounds the Bounded requests handled at once on one
	// connection (default 4); more are answered "error: busy".
	MaxRequests int
	// MaxLightRequests bounds the Light requests handled at once on one
	// connection (default 32; recorded playback's windows).
	MaxLightRequests int
	// OnAck, if set, sees the IDs central acknowledged, after they left
	// the outbox.
	OnAck func(ids []string)
	// OnAlertClosed, if set, is told of every valid alert_closed frame
	// (a guard closed one of this edge's alerts at central). It runs on
	// the connection's reader and must not block.
	OnAlertClosed func(wire.AlertClosed)
	// Dial, if set, replaces the network dialer (benchmarks use a proxy
	// that can cut the link).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Errors after which retrying soon is pointless; Run keeps retrying at the
// longest backoff so a fixed edge comes back by itself.
var (
	ErrRevoked      = errors.New("central revoked this edge's credential; enrol it again (vigil edge enroll)")
	ErrUnauthorized = errors.New("central does not accept this edge's credential")
	// ErrNotEnrolled: no credential and no token yet. The uplink waits for
	// SetCredential (the setup page's enrolment) instead of dialling.
	ErrNotEnrolled = errors.New("not enrolled with central yet: enrol this box on its setup page or with `vigil edge enroll`")
)

// Uplink owns the connection to central. It is the API the edge uses;
// the parts with one job each live beside it: who the edge is and how it
// dials (identity), the wait between sessions (redial), central's key
// (centralKeys), its audit checkpoint (checkpoints), one connection
// (sessionState) and the counters (metrics).
type Uplink struct {
	cfg     Config
	id      *identity
	redial  *redial
	keys    *centralKeys
	cps     *checkpoints // central's latest audit checkpoint (checkpoint.go)
	box     *outbox.Outbox
	health  func() wire.Heartbeat
	log     *slog.Logger
	beatNow chan struct{} // Beat: send a heartbeat now
	endMu   sync.Mutex
	endSess context.CancelFunc // ends the running session (SetCredential)

	connected atomic.Bool
	offset    atomic.Int64 // central clock − edge clock, ns, from the last welcome
	lastErr   atomic.Pointer[string]
	cpu       cpuSampler
	m         metrics
}

// withDefaults fills in what cfg leaves zero.
func withDefaults(cfg Config) Config {
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
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 2 * time.Second
	}
	if cfg.KeepaliveTimeout <= 0 {
		cfg.KeepaliveTimeout = 5 * time.Second
	}
	if cfg.Probe <= 0 {
		cfg.Probe = time.Second
	}
	if cfg.PendingMaxAge <= 0 {
		cfg.PendingMaxAge = 10 * time.Second
	}
	if cfg.PendingMax <= 0 {
		cfg.PendingMax = 100
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 4
	}
	if cfg.MaxLightRequests <= 0 {
		cfg.MaxLightRequests = 32
	}
	return cfg
}

// New makes an uplink; health is called for each heartbeat. A token that
// is a malformed credential is reported at once.
func New(cfg Config, box *outbox.Outbox, health func() wire.Heartbeat, reg prometheus.Registerer, log *slog.Logger) *Uplink {
	cfg = withDefaults(cfg)
	ownRoutes := cfg.Routes == nil
	if ownRoutes {
		cfg.Routes = NewRouter()
	}
	if health == nil {
		health = func() wire.Heartbeat { return wire.Heartbeat{} }
	}
	if log == nil {
		log = slog.Default()
	}
	u := &Uplink{cfg: cfg, id: newIdentity(cfg), box: box, health: health, log: log.With("component", "uplink"),
		beatNow: make(chan struct{}, 1), m: newMetrics()}
	u.redial = &redial{id: u.id, kick: make(chan struct{}, 1), every: cfg.Probe}
	if ownRoutes {
		u.cfg.Routes.HandleWith(wire.MethodAuditCheckpoint, Unbounded, HandlerFunc(u.AnswerCheckpoint))
	}
	cpFile := cfg.AuditCheckpointFile
	if cpFile == "" && cfg.DataDir != "" {
		cpFile = filepath.Join(cfg.DataDir, CheckpointFile)
	}
	var err error
	if u.cps, err = loadCheckpoints(cpFile, u.CentralKey); err != nil {
		u.log.Error("the audit checkpoint held does not load; the next one from central replaces it", "err", err)
	}
	u.cps.edgeID, u.cps.log = u.id.name, u.log
	if cfg.Credential == nil {
		cred, ok, err := ParseCredential(cfg.Token)
		switch {
		case err != nil:
			u.log.Error("the edge's token looks like a credential but does not load; every connection will fail", "err", err)
			u.id.credp.Store(&Credential{}) // fails in session with the reason
		case ok:
			u.id.credp.Store(&cred)
		}
	}
	u.keys = newCentralKeys(cfg.DataDir, cfg.CentralKey, u.id.credential(), u.log)
	if reg != nil {
		u.m.register(reg, box, u.Connected)
	}
	return u
}

// Routes is the request table the uplink answers central's requests from.
func (u *Uplink) Routes() *Router { return u.cfg.Routes }

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

// Enrolled reports whether the uplink has a credential or a token.
func (u *Uplink) Enrolled() bool { return u.id.enrolled() }

// SetCredential replaces the edge's credential (a new enrolment) and
// reconnects with it at once: the running session, if any, ends and the
// next one dials the credential's central.
func (u *Uplink) SetCredential(c Credential) error {
	if err := c.Validate(); err != nil {
		return err
	}
	u.id.setCredential(&c)
	u.keys.learn(c.CentralKey)
	u.endMu.Lock()
	if u.endSess != nil {
		u.endSess()
	}
	u.endMu.Unlock()
	select {
	case u.redial.kick <- struct{}{}:
	default:
	}
	return nil
}

// SetConfigRevision changes the config revision reported to central: in
// the next hello, and now in a heartbeat.
func (u *Uplink) SetConfigRevision(rev string) {
	u.id.setConfigRevision(rev)
	u.Beat()
}

// ConfigRevision is the revision hello reports.
func (u *Uplink) ConfigRevision() string { return u.id.configRevision() }

// Beat sends a heartbeat now, if connected (not waiting for the ticker).
func (u *Uplink) Beat() {
	select {
	case u.beatNow <- struct{}{}:
	default:
	}
}

// CentralKey is central's public key as last learned (nil before the box
// first reached central): access tokens must be signed by it.
func (u *Uplink) CentralKey() ed25519.PublicKey { return u.keys.get() }

// AuditCheckpoint returns central's latest audit checkpoint this edge
// holds.
func (u *Uplink) AuditCheckpoint() (wire.HeldAuditCheckpoint, bool) { return u.cps.get() }

// AnswerCheckpoint answers MethodAuditCheckpoint with the held checkpoint:
// route it Unbounded (it reads memory only).
func (u *Uplink) AnswerCheckpoint(_ context.Context, _ wire.Request, out *Responder) {
	u.cps.answer(out)
}

// Run keeps a session with central up until ctx ends; the wait between
// sessions grows from BackoffMin to BackoffMax (redial).
func (u *Uplink) Run(ctx context.Context) error {
	wait := u.cfg.BackoffMin
	for ctx.Err() == nil {
		started := time.Now()
		sctx, cancel := context.WithCancel(ctx)
		u.endMu.Lock()
		u.endSess = cancel
		u.endMu.Unlock()
		err := runSession(sctx, u)
		swapped := sctx.Err() != nil
		cancel()
		u.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if swapped { // SetCredential ended it: dial again now
			u.log.Info("reconnecting to central with the new credential")
			wait = u.cfg.BackoffMin
			continue
		}
		msg := err.Error()
		u.lastErr.Store(&msg)
		if errors.Is(err, ErrNotEnrolled) {
			select { // wait for SetCredential
			case <-ctx.Done():
				return nil
			case <-u.redial.kick:
			}
			continue
		}
		u.m.reconnects.Inc()
		if time.Since(started) > time.Minute {
			wait = u.cfg.BackoffMin
		}
		if errors.Is(err, ErrRevoked) || errors.Is(err, ErrUnauthorized) {
			wait = u.cfg.BackoffMax
			u.log.Error("central refuses this edge; alerts stay queued on this box", "err", err, "pending", u.box.Len())
		}
		d := wait/2 + rand.N(wait/2+1)
		probe := unanswered(err)
		u.log.Warn("central unreachable, alerts stay queued on this box", "err", err, "pending", u.box.Len(), "retry_in", d.Round(time.Millisecond), "probing", probe)
		switch u.redial.wait(ctx, d, probe) {
		case waitEnded:
			return nil
		case waitKicked:
			wait = u.cfg.BackoffMin
			continue
		case waitAnswered:
			u.log.Info("central answers again; dialling now")
		}
		wait = min(wait*2, u.cfg.BackoffMax)
	}
	return nil
}

// Health is the uplink's own judgement of how alerts are getting out.
type Health struct {
	Connected bool
	Pending   int
	// OldestPending is the age of the oldest pending item, by the time
	// it carries (0 when nothing is pending or it carries none).
	OldestPending time.Duration
	// Reasons is empty when all is well; otherwise why the edge is
	// degraded.
	Reasons []string
}

// Health reports the live connection state and the outbox's backlog;
// Reasons lists what is wrong (not connected, alerts waiting too long, too
// many waiting).
func (u *Uplink) Health() Health {
	h := Health{Connected: u.Connected(), Pending: u.box.Len()}
	if h.Pending > 0 {
		if es, err := u.box.After(0, 1); err == nil && len(es) == 1 {
			var b struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal(es[0].Body, &b) == nil && !b.Time.IsZero() {
				h.OldestPending = max(time.Since(b.Time), 0)
			}
		}
	}
	if !h.Connected {
		r := "not connected to central"
		if e := u.LastError(); e != "" {
			r += ": " + e
		}
		h.Reasons = append(h.Reasons, r)
	}
	if h.OldestPending > u.cfg.PendingMaxAge {
		h.Reasons = append(h.Reasons, fmt.Sprintf("oldest pending alert is %s old (limit %s)", h.OldestPending.Round(time.Second), u.cfg.PendingMaxAge))
	}
	if h.Pending > u.cfg.PendingMax {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%d items pending (limit %d)", h.Pending, u.cfg.PendingMax))
	}
	return h
}
