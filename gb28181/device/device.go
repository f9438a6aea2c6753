// Package device is the GB/T 28181 device side of a Vigil edge: a SIP user
// agent (github.com/emiago/sipgo) that registers with a police video
// platform using digest authentication, keeps the registration alive
// (refresh at 2/3 of the granted lifetime, keepalive MESSAGEs, registering
// again when the platform stops answering or forgets the device), records
// the platform's clock from its Date header without applying it, and
// answers the platform's MANSCDP queries (Catalog, DeviceInfo,
// DeviceStatus, RecordInfo) from a Provider the edge implements.
//
// Media goes through the Media seam while the device keeps the RFC 3261
// dialogs (media.go, dialog.go): 2xx retransmission until the ACK, a BYE
// when none comes, 481/500 for unknown dialogs and stale CSeqs, Hangup
// and MediaStatus from the device's side; without a Media implementation
// INVITEs are refused with 501. Alarm and catalog subscriptions
// (subscribe.go) get NOTIFYs from SendAlarm and CatalogChanged; the
// DeviceControl commands an edge can honour (control.go) go to optional
// Provider interfaces, 501 without them.
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// State is where the registration stands.
type State string

// Registration states.
const (
	StateOffline     State = "offline"
	StateRegistering State = "registering"
	StateOnline      State = "online"
)

// Status is the device's view of the platform, for the edge's health and
// central.
type Status struct {
	State  State
	Online bool
	// RegisteredSince is when the current registration began (zero when
	// offline); Expires is the lifetime the platform granted.
	RegisteredSince time.Time
	Expires         time.Duration
	// LastError is why the device is, or last was, offline, e.g.
	// "registration refused: 403 wrong credentials".
	LastError   string
	LastErrorAt time.Time
	// NextAttempt is when the next REGISTER goes out while offline.
	NextAttempt time.Time
	// ClockOffset is the platform's clock (its Date header) minus the
	// local clock, sampled at ClockSampledAt; zero time when the platform
	// sent no Date. Recorded for comparison, never applied to the clock.
	ClockOffset    time.Duration
	ClockSampledAt time.Time
	// KeepaliveMisses is the count of unanswered keepalives in a row.
	KeepaliveMisses int
}

// Options are the device's collaborators.
type Options struct {
	// Media handles INVITEs; nil refuses them with 501.
	Media Media
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Device is the GB/T 28181 device user agent of one edge.
type Device struct {
	cfg   Config
	loc   *time.Location
	prov  Provider
	media Media
	log   *slog.Logger
	m     *metrics
	sn    atomic.Uint32

	mu      sync.Mutex
	st      Status
	running bool
	// online is the session while registered, for SendAlarm; nil offline.
	online *session
	// sess is the SIP session while Run runs (media sessions and
	// subscriptions live in it, registered or not); nil otherwise.
	sess *session
	// catalog is the channel list as last reported to catalog
	// subscribers, the base of CatalogChanged's differences.
	catalog []Channel

	// t1 and t2 are RFC 3261's timers for 2xx retransmission, ackWait
	// how long a 2xx waits for its ACK (64*T1); tests shorten them.
	t1, t2, ackWait time.Duration
}

// New checks cfg and builds a device; Run starts it.
func New(cfg Config, prov Provider, opts Options) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prov == nil {
		return nil, errors.New("gb28181: device needs a Provider for its channels")
	}
	cfg = cfg.withDefaults()
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("gb28181.time_zone: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gb28181: metrics: %w", err)
	}
	d := &Device{cfg: cfg, loc: loc, prov: prov, media: opts.Media, m: m,
		log: log.With("component", "gb28181", "device", cfg.DeviceID, "platform", cfg.ServerAddr)}
	d.st.State = StateOffline
	d.t1, d.t2, d.ackWait = sip.T1, sip.T2, 64*sip.T1
	d.catalog = prov.Channels()
	d.sn.Store(uint32(time.Now().UnixNano()%100000) + 1)
	return d, nil
}

// Status returns a copy of the current state.
func (d *Device) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

func (d *Device) update(f func(st *Status)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.st)
}

// nextSN numbers the device's own commands (keepalives, alarms).
func (d *Device) nextSN() uint32 { return d.sn.Add(1) }

// Run binds the local SIP address, registers and stays registered until
// ctx ends; then it unregisters (briefly) and returns nil. It returns an
// error only when it cannot start (the local address is taken).
func (d *Device) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("gb28181: device already running")
	}
	d.running = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
	}()

	s, err := d.open(ctx)
	if err != nil {
		d.update(func(st *Status) { st.LastError, st.LastErrorAt = err.Error(), time.Now() })
		return err
	}
	defer s.close()
	d.mu.Lock()
	d.sess = s
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.sess = nil
		d.mu.Unlock()
	}()
	d.log.Info("gb28181 device started", "local", s.local, "contact", s.contact.Address.String(), "transport", d.cfg.Transport)

	backoff := d.cfg.RetryMin
	for {
		d.update(func(st *Status) { st.State = StateRegistering })
		granted, err := s.register(ctx, d.cfg.Expires)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			wait := backoff
			var ref *RefusedError
			if errors.As(err, &ref) && ref.Credentials {
				wait = d.cfg.AuthRetry
			} else {
				backoff = min(backoff*2, d.cfg.RetryMax)
			}
			d.setOffline(err, wait)
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		backoff = d.cfg.RetryMin
		now := time.Now()
		d.m.registered.Set(1)
		d.update(func(st *Status) {
			st.State, st.Online, st.RegisteredSince, st.Expires = StateOnline, true, now, granted
			st.KeepaliveMisses, st.NextAttempt = 0, time.Time{}
		})
		d.log.Info("registered with the platform", "expires", granted)

		d.setSession(s)
		err = s.online(ctx, granted)
		d.setSession(nil)
		if ctx.Err() != nil {
			s.unregister()
			d.m.registered.Set(0)
			d.update(func(st *Status) { st.State, st.Online, st.RegisteredSince = StateOffline, false, time.Time{} })
			return nil
		}
		// The platform lost us (restart, network): register again at once;
		// failures from here on back off.
		d.setOffline(err, 0)
	}
}

func (d *Device) setSession(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.online = s
}

// ErrOffline is SendAlarm's answer while the device is not registered.
var ErrOffline = errors.New("gb28181: not registered with the platform")

// SendAlarm reports an alarm to the platform (Notify Alarm in a MESSAGE,
// GB/T 28181 9.4) and waits for the platform's answer; it also sends it
// in a NOTIFY to every alarm subscription whose filter it passes (9.11). It fails with
// ErrOffline while the device is not registered: the caller (the edge's
// alert owner) decides whether to keep it for later.
func (d *Device) SendAlarm(ctx context.Context, a manscdp.Alarm) error {
	d.mu.Lock()
	s := d.online
	d.mu.Unlock()
	if s == nil {
		return ErrOffline
	}
	body, err := manscdp.AlarmNotify(manscdp.Header{SN: d.nextSN(), DeviceID: a.DeviceID, Charset: manscdp.GB2312}, a, d.loc)
	if err != nil {
		return err
	}
	res, err := s.sendMessage(ctx, body)
	// Alarm subscribers get a NOTIFY each, whatever became of the MESSAGE.
	s.notifyAlarm(ctx, a)
	if err != nil {
		d.m.alarms.WithLabelValues("failed").Inc()
		return fmt.Errorf("gb28181: alarm %s: no answer from the platform: %w", a.DeviceID, err)
	}
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		d.m.alarms.WithLabelValues("failed").Inc()
		return fmt.Errorf("gb28181: alarm %s refused: %d %s", a.DeviceID, res.StatusCode, res.Reason)
	}
	d.m.alarms.WithLabelValues("ok").Inc()
	return nil
}

func (d *Device) setOffline(err error, wait time.Duration) {
	d.m.registered.Set(0)
	now := time.Now()
	d.update(func(st *Status) {
		st.State, st.Online, st.RegisteredSince = StateOffline, false, time.Time{}
		st.LastError, st.LastErrorAt, st.NextAttempt = err.Error(), now, now.Add(wait)
	})
	d.log.Warn("not registered with the platform", "error", err, "retry_in", wait)
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RefusedError is a final non-2xx answer to REGISTER.
type RefusedError struct {
	Code   int
	Reason string
	// Credentials is true when the platform refused the device ID or
	// password (403, or a second challenge after our credentials).
	Credentials bool
}

func (e *RefusedError) Error() string {
	if e.Credentials {
		return fmt.Sprintf("registration refused: %d wrong credentials (device ID or password; platform said %q)", e.Code, e.Reason)
	}
	return fmt.Sprintf("registration refused: %d %s", e.Code, e.Reason)
}

// session is one Run's SIP stack: the listener, sipgo's user agent,
// server and client, and the registration's dialog-like identity
// (Call-ID, From tag, CSeq) kept across refreshes as RFC 3261 10.2.4 asks.
type session struct {
	d       *Device
	ctx     context.Context
	network string // "UDP" or "TCP" as sipgo writes it
	local   string
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	closeL  func() error
	served  chan struct{}
	contact sip.ContactHeader
	server  sip.Uri // sip:ServerID@ServerDomain
	aor     sip.Uri // sip:DeviceID@ServerDomain
	callID  string
	fromTag string
	cseq    uint32
	split   manscdp.Split

	// mu guards the platform's dialogs: media sessions and
	// subscriptions, by dialog key.
	mu    sync.Mutex
	calls map[string]*call
	subs  map[string]*subscription
}

func (d *Device) open(ctx context.Context) (*session, error) {
	cfg := d.cfg
	host, _, _ := net.SplitHostPort(cfg.LocalAddr)
	family := "4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		family = "6"
	}
	s := &session{d: d, ctx: ctx, served: make(chan struct{}), calls: map[string]*call{}, subs: map[string]*subscription{}}
	srvUA, err := sipgo.NewUA(sipgo.WithUserAgent("Vigil"))
	if err != nil {
		return nil, err
	}
	s.ua = srvUA
	srv, err := sipgo.NewServer(srvUA, sipgo.WithServerLogger(d.log))
	if err != nil {
		srvUA.Close()
		return nil, err
	}
	srv.OnMessage(s.onMessage)
	srv.OnInvite(s.onInvite)
	srv.OnAck(s.onAck)
	srv.OnBye(s.onBye)
	srv.OnInfo(s.onInfo)
	srv.OnSubscribe(s.onSubscribe)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) { s.respond(req, tx, 200, "OK") })

	laddr, serve, err := s.listen(srv, family)
	if err != nil {
		srvUA.Close()
		return nil, err
	}
	s.local = laddr.String()
	contactHost, err := contactHostFor(cfg, laddr)
	if err != nil {
		s.closeL()
		srvUA.Close()
		return nil, err
	}
	copts := []sipgo.ClientOption{sipgo.WithClientHostname(contactHost), sipgo.WithClientPort(laddr.Port), sipgo.WithClientLogger(d.log)}
	if s.network == "UDP" {
		// Send from the listening socket: the platform answers and
		// queries the address it sees, and NATs keep one mapping.
		copts = append(copts, sipgo.WithClientConnectionAddr(s.local))
	}
	s.client, err = sipgo.NewClient(srvUA, copts...)
	if err != nil {
		s.closeL()
		srvUA.Close()
		return nil, err
	}
	s.server = sip.Uri{Scheme: "sip", User: cfg.ServerID, Host: cfg.ServerDomain}
	s.aor = sip.Uri{Scheme: "sip", User: cfg.DeviceID, Host: cfg.ServerDomain}
	s.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.DeviceID, Host: contactHost, Port: laddr.Port}}
	if s.network == "TCP" {
		s.contact.Address.UriParams = sip.HeaderParams{{K: "transport", V: "tcp"}}
	}
	s.callID = sip.GenerateTagN(24) + "@" + contactHost
	s.fromTag = sip.GenerateTagN(16)
	s.cseq = 1
	s.split = splitFor(s.network)
	go func() {
		defer close(s.served)
		serve()
	}()
	if s.network == "UDP" {
		// Requests go out from the listening socket, which sipgo finds in
		// its pool only once the serving goroutine has put it there.
		for i := 0; ; i++ {
			if c, _ := s.ua.TransportLayer().GetConnection("udp", s.local); c != nil {
				break
			}
			if i == 200 {
				s.close()
				return nil, fmt.Errorf("gb28181: SIP listener on %s did not start", s.local)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return s, nil
}

// listen binds the device's SIP address for cfg's transport and returns
// it, with the function that serves it (s.network and s.closeL set).
func (s *session) listen(srv *sipgo.Server, family string) (*net.UDPAddr, func(), error) {
	cfg := s.d.cfg
	if cfg.Transport == TCP {
		ln, err := net.Listen("tcp"+family, cfg.LocalAddr)
		if err != nil {
			return nil, nil, fmt.Errorf("gb28181.local_addr: %w", err)
		}
		a := ln.Addr().(*net.TCPAddr)
		s.network, s.closeL = "TCP", ln.Close
		return &net.UDPAddr{IP: a.IP, Port: a.Port}, func() { srv.ServeTCP(ln) }, nil
	}
	pc, err := net.ListenPacket("udp"+family, cfg.LocalAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("gb28181.local_addr: %w", err)
	}
	s.network, s.closeL = "UDP", pc.Close
	return pc.LocalAddr().(*net.UDPAddr), func() { srv.ServeUDP(pc) }, nil
}

// contactHostFor is the host the platform reaches the device at:
// contact_host, else the bound address, else (bound to any address) the
// local address towards the platform.
func contactHostFor(cfg Config, laddr *net.UDPAddr) (string, error) {
	switch {
	case cfg.ContactHost != "":
		return cfg.ContactHost, nil
	case !laddr.IP.IsUnspecified():
		return laddr.IP.String(), nil
	}
	ip, err := outboundIP(cfg.ServerAddr)
	if err != nil {
		return "", fmt.Errorf("gb28181.contact_host: cannot tell the local address towards %s (%v); set contact_host", cfg.ServerAddr, err)
	}
	return ip.String(), nil
}

// close ends the listener (its serving goroutine returns) and sipgo's
// transaction and transport layers.
func (s *session) close() {
	if s.d.media != nil {
		s.endCalls()
	}
	s.closeL()
	s.ua.Close()
	<-s.served
}

// outboundIP is the local address the kernel would use towards addr (a
// UDP "connect" sends nothing).
func outboundIP(addr string) (net.IP, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}

// requestTimeout bounds one request's transaction: the device never waits
// Timer F (32 s) for a platform that is down.
func (s *session) requestTimeout() time.Duration {
	return min(max(s.d.cfg.Keepalive, time.Second), 8*time.Second)
}

// newRequest builds an out-of-dialog request to the platform.
func (s *session) newRequest(method sip.RequestMethod, callID, fromTag string, cseq uint32) *sip.Request {
	to := s.server
	if method == sip.REGISTER {
		to = s.aor
	}
	req := s.baseRequest(method, s.server, s.aor, fromTag, to, "", callID, cseq)
	req.SetDestination(s.d.cfg.ServerAddr)
	return req
}

// baseRequest builds a request's mandatory headers (RFC 3261 8.1.1; Via
// comes from sipgo's client).
func (s *session) baseRequest(method sip.RequestMethod, target, from sip.Uri, fromTag string, to sip.Uri, toTag, callID string, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, *target.Clone())
	fh := &sip.FromHeader{Address: *from.Clone()}
	fh.Params.Add("tag", fromTag)
	th := &sip.ToHeader{Address: *to.Clone()}
	if toTag != "" {
		th.Params.Add("tag", toTag)
	}
	cid := sip.CallIDHeader(callID)
	maxfwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(fh)
	req.AppendHeader(th)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(&maxfwd)
	req.AppendHeader(sip.NewHeader("User-Agent", "Vigil"))
	req.SetTransport(s.network)
	return req
}

// register sends REGISTER (answering a digest challenge) and returns the
// lifetime the platform granted.
func (s *session) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	d := s.d
	req := s.newRequest(sip.REGISTER, s.callID, s.fromTag, s.cseq)
	contact := s.contact
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.SetBody(nil)
	rctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	sent := time.Now()
	res, err := s.client.Do(rctx, req)
	if err == nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
		sent = time.Now()
		res, err = s.client.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: d.cfg.DeviceID, Password: d.cfg.Password})
		if err == nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) {
			s.cseq = req.CSeq().SeqNo + 1
			d.m.registers.WithLabelValues("refused").Inc()
			return 0, &RefusedError{Code: res.StatusCode, Reason: res.Reason, Credentials: true}
		}
	}
	s.cseq = req.CSeq().SeqNo + 1
	if err != nil {
		d.m.registers.WithLabelValues("error").Inc()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("registration: no answer from %s over %s: %w", d.cfg.ServerAddr, s.network, err)
	}
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		d.m.registers.WithLabelValues("refused").Inc()
		return 0, &RefusedError{Code: res.StatusCode, Reason: res.Reason, Credentials: res.StatusCode == sip.StatusForbidden}
	}
	d.m.registers.WithLabelValues("ok").Inc()
	d.noteDate(res, sent, time.Now())
	if expires == 0 {
		return 0, nil
	}
	return grantedExpires(res, s.contact.Address, expires), nil
}

// grantedExpires reads the lifetime from our Contact's expires parameter,
// else the Expires header, else what was asked.
func grantedExpires(res *sip.Response, ours sip.Uri, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		var c sip.ContactHeader
		if ch, ok := h.(*sip.ContactHeader); ok {
			c = *ch
		} else {
			continue
		}
		if c.Address.User != ours.User || c.Address.Port != ours.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// unregister removes the binding as the device shuts down (Expires: 0),
// with a short deadline of its own because ctx has ended.
func (s *session) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.register(ctx, 0); err != nil {
		s.d.log.Debug("unregister", "error", err)
	}
}

// online keeps the registration: refresh at 2/3 of its lifetime, a
// keepalive every interval. It returns why the device must register again.
func (s *session) online(ctx context.Context, granted time.Duration) error {
	d := s.d
	refresh := time.NewTimer(granted * 2 / 3)
	defer refresh.Stop()
	keep := time.NewTicker(d.cfg.Keepalive)
	defer keep.Stop()
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-refresh.C:
			g, err := s.register(ctx, d.cfg.Expires)
			if err != nil {
				return fmt.Errorf("refresh: %w", err)
			}
			d.update(func(st *Status) { st.Expires = g })
			refresh.Reset(g * 2 / 3)
		case <-keep.C:
			res, err := s.sendMessage(ctx, s.keepaliveBody())
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				misses++
				d.m.keepalives.WithLabelValues("missed").Inc()
				d.update(func(st *Status) { st.KeepaliveMisses = misses })
				d.log.Warn("keepalive unanswered", "misses", misses, "error", err)
				if misses >= d.cfg.MaxKeepaliveMisses {
					return fmt.Errorf("platform silent: %d keepalives unanswered", misses)
				}
			case res.StatusCode >= 200 && res.StatusCode < 300:
				misses = 0
				d.m.keepalives.WithLabelValues("ok").Inc()
				d.update(func(st *Status) { st.KeepaliveMisses = 0 })
			default:
				d.m.keepalives.WithLabelValues("refused").Inc()
				return fmt.Errorf("platform refused keepalive: %d %s (it no longer knows the device)", res.StatusCode, res.Reason)
			}
		}
	}
}

func (s *session) keepaliveBody() []byte {
	h := s.d.Health()
	b, err := keepaliveBody(s.d.cfg.DeviceID, s.d.nextSN(), h.OK)
	if err != nil {
		panic("gb28181: keepalive body: " + err.Error()) // built from validated fields only
	}
	return b
}

// Health is the provider's health, read for keepalives and DeviceStatus.
func (d *Device) Health() Health { return d.prov.Health() }

// sendMessage sends one MANSCDP body to the platform and waits for the
// final answer (bounded by requestTimeout).
func (s *session) sendMessage(ctx context.Context, body []byte) (*sip.Response, error) {
	req := s.newRequest(sip.MESSAGE, sip.GenerateTagN(24)+"@"+s.contact.Address.Host, sip.GenerateTagN(16), 1)
	req.AppendHeader(sip.NewHeader("Content-Type", ContentType))
	req.SetBody(body)
	rctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	sent := time.Now()
	res, err := s.client.Do(rctx, req)
	if err != nil {
		return nil, err
	}
	s.d.noteDate(res, sent, time.Now())
	return res, nil
}

// ContentType is the MIME type of MANSCDP bodies, spelled as platforms do.
const ContentType = "Application/MANSCDP+xml"
