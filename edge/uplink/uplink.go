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
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
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
	// ErrNotEnrolled: no credential and no token yet. The uplink waits for
	// SetCredential (the setup page's enrolment) instead of dialling.
	ErrNotEnrolled = errors.New("not enrolled with central yet: enrol this box on its setup page or with `vigil edge enroll`")
)

// Uplink owns the connection to central.
type Uplink struct {
	cfg       Config
	credp     atomic.Pointer[Credential] // swapped by SetCredential
	revision  atomic.Pointer[string]     // reported in hello (SetConfigRevision)
	swapped   atomic.Bool                // SetCredential: dial the credential's central, not cfg.URL
	kick      chan struct{}              // a new credential: reconnect now
	beatNow   chan struct{}              // Beat: send a heartbeat now
	endMu     sync.Mutex
	endSess   context.CancelFunc // ends the running session (SetCredential)
	box       *outbox.Outbox
	health    func() wire.Heartbeat
	log       *slog.Logger
	connected atomic.Bool
	offset    atomic.Int64 // central clock − edge clock, ns, from the last welcome
	lastErr   atomic.Pointer[string]
	cpu       cpuSampler
	cps       *checkpoints // central's latest audit checkpoint (checkpoint.go)
	// centralKey is central's public key for access tokens (centralkey.go).
	centralKey atomic.Pointer[ed25519.PublicKey]

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
	ownRoutes := cfg.Routes == nil
	if ownRoutes {
		cfg.Routes = NewRouter()
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
	u.kick, u.beatNow = make(chan struct{}, 1), make(chan struct{}, 1)
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
	rev := cfg.ConfigRevision
	u.revision.Store(&rev)
	u.credp.Store(cfg.Credential)
	if cfg.Credential == nil {
		cred, ok, err := ParseCredential(cfg.Token)
		switch {
		case err != nil:
			u.log.Error("the edge's token looks like a credential but does not load; every connection will fail", "err", err)
			u.credp.Store(&Credential{}) // fails in session with the reason
		case ok:
			u.credp.Store(&cred)
		}
	}
	u.initCentralKey()
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

// credential is the credential in force (nil for a bearer-token edge).
func (u *Uplink) credential() *Credential { return u.credp.Load() }

// Enrolled reports whether the uplink has a credential or a token.
func (u *Uplink) Enrolled() bool { return u.credential() != nil || u.cfg.Token != "" }

// SetCredential replaces the edge's credential (a new enrolment) and
// reconnects with it at once: the running session, if any, ends and the
// next one dials the credential's central.
func (u *Uplink) SetCredential(c Credential) error {
	if err := c.Validate(); err != nil {
		return err
	}
	u.credp.Store(&c)
	u.learnCentralKey(c.CentralKey)
	u.swapped.Store(true)
	u.endMu.Lock()
	if u.endSess != nil {
		u.endSess()
	}
	u.endMu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
	return nil
}

// SetConfigRevision changes the config revision reported to central: in
// the next hello, and now in a heartbeat.
func (u *Uplink) SetConfigRevision(rev string) {
	u.revision.Store(&rev)
	u.Beat()
}

// ConfigRevision is the revision hello reports.
func (u *Uplink) ConfigRevision() string { return *u.revision.Load() }

// Beat sends a heartbeat now, if connected (not waiting for the ticker).
func (u *Uplink) Beat() {
	select {
	case u.beatNow <- struct{}{}:
	default:
	}
}

// Run keeps a session with central up until ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	wait := u.cfg.BackoffMin
	for ctx.Err() == nil {
		started := time.Now()
		sctx, cancel := context.WithCancel(ctx)
		u.endMu.Lock()
		u.endSess = cancel
		u.endMu.Unlock()
		err := u.session(sctx)
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
		if errors.Is(err, ErrNotEnrolled) {
			msg := err.Error()
			u.lastErr.Store(&msg)
			select { // wait for SetCredential
			case <-ctx.Done():
				return nil
			case <-u.kick:
			}
			continue
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
		probe := unanswered(err)
		u.log.Warn("central unreachable, alerts stay queued on this box", "err", err, "pending", u.box.Len(), "retry_in", d.Round(time.Millisecond), "probing", probe)
		switch u.wait(ctx, d, probe) {
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

type waitResult int

const (
	waitElapsed  waitResult = iota
	waitEnded               // ctx ended
	waitKicked              // a new credential
	waitAnswered            // the probe reached central
)

// wait sleeps d before the next dial. With probe set it tries a TCP
// connect to central every cfg.Probe meanwhile and returns as soon as one
// succeeds: backoff spares central from full TLS dials while it is away,
// but must not keep the edge away once it is back.
func (u *Uplink) wait(ctx context.Context, d time.Duration, probe bool) waitResult {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if probe {
		t := time.NewTicker(u.cfg.Probe)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return waitEnded
		case <-u.kick:
			return waitKicked
		case <-timer.C:
			return waitElapsed
		case <-tick:
			if u.probe(ctx) {
				return waitAnswered
			}
		}
	}
}

// probe reports whether central's address accepts a TCP connection.
func (u *Uplink) probe(ctx context.Context) bool {
	target, err := u.url()
	if err != nil {
		return false
	}
	addr, err := hostPort(target)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Probe)
	defer cancel()
	dial := u.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// hostPort is the TCP address of a ws:// or wss:// URL.
func hostPort(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	if u.Scheme == "wss" || u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}

// unanswered reports whether err means central could not be reached or
// stopped answering (worth probing for), rather than that it answered
// and refused (where only the backoff keeps the edge from hammering it).
func unanswered(err error) bool {
	if errors.Is(err, errSilent) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// Central shutting down or restarting will likely be back soon.
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseAbnormalClosure, websocket.CloseGoingAway, websocket.CloseServiceRestart,
			websocket.CloseTryAgainLater, websocket.CloseInternalServerErr:
			return true
		}
	}
	return false
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

func (u *Uplink) edgeID() string {
	if c := u.credential(); c != nil && c.EdgeID != "" {
		return c.EdgeID
	}
	return u.cfg.EdgeID
}

func (u *Uplink) url() (string, error) {
	cred := u.credential()
	if cred == nil {
		if u.cfg.Token == "" {
			return "", ErrNotEnrolled
		}
		return u.cfg.URL, nil
	}
	if err := cred.Validate(); err != nil {
		return "", err
	}
	// Alerts carry the configured IDs; central would refuse every one.
	if u.cfg.EdgeID != "" && u.cfg.EdgeID != cred.EdgeID {
		return "", fmt.Errorf("edge_id is %q but the credential is for edge %q", u.cfg.EdgeID, cred.EdgeID)
	}
	if u.cfg.SiteID != "" && cred.SiteID != "" && u.cfg.SiteID != cred.SiteID {
		return "", fmt.Errorf("site_id is %q but the edge was enrolled at site %q", u.cfg.SiteID, cred.SiteID)
	}
	if u.cfg.URL == "" || u.swapped.Load() {
		return cred.EdgeURL(), nil
	}
	if len(u.cfg.URL) < 6 || u.cfg.URL[:6] != "wss://" {
		return "", fmt.Errorf("central URL %s: an enrolled edge talks to central over TLS only (wss://)", u.cfg.URL)
	}
	return u.cfg.URL, nil
}
