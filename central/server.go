package central

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/central/notify"
	"github.com/vigil-perimeter/vigil/wire"
)

// shutdownTimeout bounds how long Close waits for plain HTTP requests.
const shutdownTimeout = 5 * time.Second

// Server is one central instance and its composition root: New opens what
// lives on disk, builds each component with exactly the collaborators it
// needs, and puts them behind the one route table (routes.go). The
// components, each with one job:
//
//	alerts      alert and event listings, snapshots, workflow (api.go)
//	status      sites overview and health probe (api_sites.go)
//	media       thumbnails, clips, live switch on an edge (api_edges.go)
//	live        live view fan-out and its viewers (live.go)
//	evidence    evidence requests, their videos and bundles (evidence_api.go)
//	search      evidence search: timelines in a window (search.go)
//	edgeAdmin   enrolment, revocation, config pushes (enrol.go)
//	authAPI     login, logout, session, users (auth.go)
//	policy      who is asking and what their role allows (auth.go)
//	auditor     audit entries for what requests do (audit_hooks.go)
//	auditAPI    audit listing and verification (audit_hooks.go)
//	checkpoints signed audit checkpoints held by edges (audit_checkpoint.go)
//	backup      backup of the running central (backup.go)
//	desk        console mute, self-tests for installers (desk.go)
//	outlets     every change out to notify, alert_closed to edges (outlets.go)
//	escalator   escalates red alerts nobody acknowledged (escalate.go)
//	reports     shift reports: counts and response times (report.go)
//	playback    recorded playback sessions: video windows, timelines, overlays (playback.go)
//	bookmarks   noted moments of a camera, searchable (bookmarks.go)
//	layouts     each user's saved live walls (layouts.go)
//	sensors     safety sensors: state, history; edges' sensor batches (sensors.go)
//
// and the owners of state: the writer (the alert store), the edge hub
// (connections), the registry (enrolled edges), the retrieval workers.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *Store // the Badger store: alerts by default, and the database the others share
	// alertStore keeps the alerts: store, or PostgreSQL (store: postgres://…).
	alertStore AlertStore
	reg        *registry
	met        *metrics
	wr         *writer
	edges      *edgeHub
	cert       *hubCert   // nil without an edge hub listener
	life       *lifecycle // the context, goroutines and sockets Close ends (lifecycle.go)
	retr       *retrieval // evidence retrieval workers (retrieval.go)

	auth        *auth              // users, sessions, login limits (auth.go)
	evidenceKey ed25519.PrivateKey // signs evidence bundles, checkpoints and access tokens (evidence_key.go)

	alerts      *alertsAPI
	status      *statusAPI
	media       *mediaAPI
	live        *liveHub
	evidence    *evidenceAPI
	search      *evidenceSearch
	edgeAdmin   *edgeAdmin
	authAPI     *authAPI
	policy      *policy
	auditor     *auditor
	auditAPI    *auditAPI
	checkpoints *checkpointer
	backup      *backupAPI
	desk        *deskAPI // console mute, self-tests (desk.go)
	reports     *shiftReport
	playback    *playbackAPI
	bookmarks   *bookmarksAPI
	layouts     *layoutsAPI
	sensors     *sensorsAPI

	notifier  *notify.Notifier // nil without a notify section
	escalator *escalator       // nil when escalation is off

	handler http.Handler // the console port (routeTable)
	hubMux  http.Handler // the edge hub's TLS port (hubRoutes)

	mu        sync.Mutex
	started   bool
	closed    bool
	servers   []*listener
	closeOnce sync.Once
	closeErr  error
}

// listener is one bound address and its HTTP server.
type listener struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// New validates cfg, opens the store in cfg.DataDir and loads (or makes)
// the edge hub certificate. It binds nothing; call Start, or mount Handler
// in another server.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if fes := cfg.Validate(); len(fes) > 0 {
		return nil, validationError(fes)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "central")
	store, err := OpenStore(cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: store, alertStore: store, met: newMetrics(), life: newLifecycle()}
	s.met.watchDisk(store.Disk)
	closeStores := func() {
		if s.alertStore != AlertStore(store) {
			s.alertStore.Close()
		}
		store.Close()
	}
	if postgresStore(cfg.Store) {
		if s.alertStore, err = OpenPGStore(context.Background(), cfg.Store, log); err != nil {
			store.Close()
			return nil, err
		}
	}
	if err := openState(s); err != nil {
		closeStores()
		return nil, err
	}
	wireComponents(s)
	if err := wireAlarms(s); err != nil {
		s.auditor.log.Close()
		closeStores()
		return nil, err
	}
	_, s.handler = routesMux(s)
	s.hubMux = hubRoutes(s.life.socket(s.edges.serve), s.edgeAdmin.handleEnrol)
	s.wr.start()
	if s.escalator != nil {
		s.life.spawn(func() { s.escalator.run(s.life.ctx) })
	}
	if s.notifier != nil {
		_ = s.notifier.Run(s.life.ctx) // fails only if run twice
	}
	s.retr.start()
	if pg, ok := s.alertStore.(*PGStore); ok {
		s.life.spawn(func() { pg.watchAuth(s.life.ctx, s.auth) })
		s.life.spawn(func() { pg.watchEdges(s.life.ctx, s.reg, s.edges) })
		s.life.spawn(func() { pg.watchEvidence(s.life.ctx, s.retr) })
		if rr := s.policy.replicas; rr != nil {
			s.life.spawn(func() {
				pg.watchPresence(s.life.ctx, rr.id, func() { rr.hearing.Store(true) },
					func(p EdgePresence) { s.wr.announce(consoleMsg{Type: consoleEdge, Edge: &p}) })
			})
		}
		s.life.spawn(func() { pg.watchDevices(s.life.ctx, s.edges.names) })
	}
	s.life.spawn(func() { s.playback.sessions.run(s.life.ctx) })
	s.edges.onWelcome = s.checkpoints.pushTo
	if rr := s.policy.replicas; rr != nil {
		// Evidence items of an edge are retrieved by the replica holding
		// it: a worker here ends while another holds it, and starts when
		// the edge connects here.
		s.retr.elsewhere = rr.heldElsewhere
		s.edges.onWelcome = func(c *edgeConn) {
			s.checkpoints.pushTo(c)
			s.retr.ensure(c.edge.ID)
		}
	}
	s.checkpoints.start(s.life.ctx)
	log.Info("central ready", "data_dir", cfg.DataDir, "edges", len(s.reg.list()), "last_seq", s.alertStore.LastSeq())
	return s, nil
}

// openState opens what central keeps on disk besides the alerts (users
// and sessions, the audit log, the evidence key, the edge registry, the
// device names, the edge hub certificate) and the writer over the store.
func openState(s *Server) error {
	cfg, log, store := s.cfg, s.log, s.store
	var ub userBook = badgerUsers{store.db}
	var sb sessionBook = badgerSessions{store.db}
	if pg, ok := s.alertStore.(*PGStore); ok {
		ub, sb = pg, pg // shared by the replicas (pgauth.go)
	}
	us, err := openUsers(ub, cfg.Users)
	if err != nil {
		return err
	}
	s.auth = newAuth(us)
	if n, err := s.auth.sessions.restore(sb, us, time.Now()); err != nil {
		return err
	} else if n > 0 {
		log.Info("console sessions kept from before the restart", "sessions", n)
	}
	pg, _ := s.alertStore.(*PGStore)
	if s.auditor, err = openAuditor(store.db, store.Floor(), pg, cfg, us, log); err != nil {
		return err
	}
	s.met.reg.MustRegister(s.auditor.collectors()...)
	if s.evidenceKey, err = loadEvidenceKey(cfg, log); err != nil {
		return err
	}
	var eb edgeBook = badgerEdges{store.db}
	if pg, ok := s.alertStore.(*PGStore); ok {
		eb = pg
	}
	if s.reg, err = openRegistry(eb, cfg.Edges); err != nil {
		return err
	}
	tree := &siteTree{nodes: map[string]*siteNode{}}
	if cfg.Township != nil {
		tree, _ = buildSiteTree(cfg.Township) // checked by Validate
	}
	if s.wr, err = newWriter(s.alertStore, tree, log, s.met); err != nil {
		return err
	}
	if cfg.EdgeHub.Listen != "" {
		if s.cert, err = loadHubCert(cfg.EdgeHub, cfg.DataDir, log); err != nil {
			return err
		}
	}
	if len(cfg.Edges) > 0 && s.cert == nil {
		log.Warn("edges on bearer tokens cannot connect: the edge websocket is only on the edge hub's TLS port; set edge_hub.listen")
	}
	s.edges = newEdgeHub(s.reg, s.wr, log, s.met)
	var dn deviceNameStore = badgerDevices{store.db}
	if pg, ok := s.alertStore.(*PGStore); ok {
		dn = pg // shared by the replicas (pgdevices.go)
	}
	if s.edges.names, err = openDeviceBook(dn, tree, log); err != nil { // devices.go
		return err
	}
	for _, f := range legacyDeviceFields(cfg.Township) {
		log.Warn("central.yaml: "+f+" is deprecated: cameras and gates are named in each edge's edge.yaml, and central shows the names the edge reports; these are used only for devices an edge has not named yet", "field", f)
	}
	return nil
}

// wireComponents builds the components over the state openState opened,
// each with only the collaborators it uses.
func wireComponents(s *Server) {
	cfg, log, db, store := s.cfg, s.log, s.store, s.alertStore
	ie := internalErrors(log, s.auditor.addrs) // every component answers 500 and 507 alike (api.go)
	s.policy = &policy{auth: s.auth, audit: s.auditor, log: log}
	if cfg.AdminTokenSHA256 != "" {
		s.policy.adminSum = decodeHex(cfg.AdminTokenSHA256)
	}
	if cfg.MetricsTokenSHA256 != "" {
		s.policy.scrapeSum = decodeHex(cfg.MetricsTokenSHA256)
	}
	if pg, ok := store.(*PGStore); ok {
		rr := newReplicaRouter(s.life.ctx, pg, s.edges.holds, s.evidenceKey, s.auditor.addrs.text, cfg.ReplicaURL, log)
		s.policy.replicas, s.policy.replicaKey, s.edges.replicas = rr, s.evidenceKey.Public().(ed25519.PublicKey), rr
	}
	s.authAPI = &authAPI{auth: s.auth, pwParams: DefaultPasswordParams, clientAddr: s.auditor.addrs.text,
		allowed: allowed, internalError: ie, log: log}
	s.alerts = &alertsAPI{store: store, wr: s.wr, internalError: ie}
	s.status = &statusAPI{wr: s.wr, edges: s.edges, edgeIDs: func() int { return len(s.reg.list()) }, lastSeq: store.LastSeq}
	s.media = &mediaAPI{edges: s.edges}
	s.live = newLiveHub(s.life.ctx, s.life.spawn, s.edges, func(id string) bool { _, ok := s.reg.get(id); return ok },
		s.wr.tamper, log, s.met.reg)
	s.edges.onLive = s.live.onFrame
	s.edgeAdmin = &edgeAdmin{reg: s.reg, hub: s.edges, township: cfg.Township, tokenTTL: cfg.EdgeHub.TokenTTL.D(),
		key: s.evidenceKey, rec: s.auditor, allowed: allowed, internalError: ie,
		enrolments: s.met.enrolments, rejected: s.met.edgeRejected, log: log}
	if s.cert != nil {
		s.edgeAdmin.pin = s.cert.pin
	}
	s.edges.onAccess, s.edges.accessKey = s.auditor.recordEdgeAccess, s.edgeAdmin.accessKey()
	var reqs requestStore = &badgerRequests{db: db.db}
	var files evidenceFiles = dirFiles{cfg.DataDir}
	if pg, ok := store.(*PGStore); ok {
		reqs, files = pg, pg // shared by the replicas (pgevidence.go)
	}
	s.retr = newRetrieval(s.life.ctx, reqs, files, s.edges, cfg.Township, cfg.Retrieval.settings(cfg.RetrievalFaults), log)
	s.evidence = &evidenceAPI{files: files, township: cfg.Township, devices: s.edges.names,
		store: store, edges: evidenceEdgeSource{reg: s.reg, hub: s.edges}, users: s.auth.users,
		retr: s.retr, key: s.evidenceKey, auditLog: s.auditor.log, rec: s.auditor, log: log, internalError: ie}
	s.search = &evidenceSearch{township: cfg.Township, store: store, edges: s.evidence.edges, retr: s.retr,
		rec: s.auditor, internalError: ie}
	s.checkpoints = newCheckpointer(s.auditor.log, s.evidenceKey, hubEdges{reg: s.reg, edgeHub: s.edges}, cfg.AuditCheckpointInterval.D())
	s.auditAPI = &auditAPI{log: s.auditor.log, checkpoints: s.checkpoints, logger: log, internalError: ie}
	s.backup = &backupAPI{db: db.db, dataDir: cfg.DataDir, auditKey: auditKeyPath(cfg), log: log}
	s.desk = &deskAPI{now: time.Now, selfTests: store.selfTests, internalError: ie}
	s.reports = &shiftReport{store: store, now: time.Now, internalError: ie}
	var marks bookmarkStore = badgerBookmarks{db: db.db, disk: db.diskGuard}
	var walls layoutStore = badgerLayouts{db: db.db, disk: db.diskGuard}
	var readings sensorStore = badgerSensors{db: db.db, disk: db.diskGuard, now: time.Now}
	if pg, ok := store.(*PGStore); ok { // shared by the replicas (pgbookmarks.go, pgsensors.go)
		marks, walls, readings = pgBookmarks{pg}, pgLayouts{pg}, newPGSensors(pg, time.Now)
	}
	s.bookmarks = &bookmarksAPI{store: marks, edges: s.edges, now: time.Now, internalError: ie}
	sessions := newPlaybackSessions(playbackIdle, time.Now)
	if pg, ok := store.(*PGStore); ok {
		sessions.shared = pg
	}
	s.playback = &playbackAPI{sessions: sessions, edges: s.edges, ask: s.retr,
		store: store, bookmarks: marks, rec: s.auditor, now: time.Now, internalError: ie}
	s.met.reg.MustRegister(s.playback.collectors()...)
	s.layouts = &layoutsAPI{store: walls, internalError: ie}
	s.edges.sensors = newSensorIngest(readings, s.met.reg)
	s.sensors = &sensorsAPI{store: readings, edges: s.edges, now: time.Now, internalError: ie}
}

// wireAlarms sets what happens to every stored change beyond the
// consoles, before the writer starts: alert priorities (the store),
// notify (MQTT, webhooks), alert_closed to edges, escalation.
func wireAlarms(s *Server) error {
	cfg, log := s.cfg, s.log
	s.alertStore.setRules(newPriorityRules(&cfg.Alarms))
	out := &alarmOutlets{edges: edgeFrames{hub: s.edges}, log: log}
	if cfg.Notify != nil {
		n, err := notify.New(*cfg.Notify, notify.Options{Logger: log})
		if err != nil {
			return err
		}
		if err := s.met.reg.Register(n); err != nil {
			return fmt.Errorf("central: notify metrics: %w", err)
		}
		s.notifier, out.notify = n, n
	}
	s.wr.observers = append(s.wr.observers, out.observe)
	if after := cfg.Alarms.escalateAfter(); after > 0 {
		store := s.alertStore
		openNow := func() ([]Record, error) {
			v := store.readView()
			defer v.Discard()
			return v.newestOpen(math.MaxInt)
		}
		s.escalator = newEscalator(after, s.wr.submit, openNow, escalationAudit(s.auditor, after), log)
		s.wr.observers = append(s.wr.observers, s.escalator.observe)
	}
	return nil
}

// hubRoutes is all an edge can reach on the internet-facing TLS port. The
// edge websocket is here only: the console port answers 404 to it, so an
// edge's bearer token or hello never travels in plain HTTP.
func hubRoutes(edgeWS http.Handler, enrol http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+wire.EdgePath, edgeWS)
	mux.HandleFunc("POST "+wire.EnrolPath, enrol)
	mux.HandleFunc("GET /api/v1/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "time": time.Now().UTC()})
	})
	return mux
}

// Handler returns the console and API handler, for mounting elsewhere.
// Close still ends its websockets and closes the store.
func (s *Server) Handler() http.Handler { return s.handler }

// Start binds cfg.Listen and, if configured, the edge hub's TLS address
// (port 0 picks a free port; see Addr and EdgeAddr), and serves until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("central: Start after Close")
	case s.started:
		return errors.New("central: already started")
	}
	main, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("central: listen %s: %w", s.cfg.Listen, err)
	}
	lns := []struct {
		ln net.Listener
		h  http.Handler
	}{{main, s.handler}}
	if s.cert != nil {
		hub, err := net.Listen("tcp", s.cfg.EdgeHub.Listen)
		if err != nil {
			main.Close()
			return fmt.Errorf("central: listen %s (edge hub): %w", s.cfg.EdgeHub.Listen, err)
		}
		lns = append(lns, struct {
			ln net.Listener
			h  http.Handler
		}{tls.NewListener(hub, s.cert.tlsConfig()), s.hubMux})
	}
	s.started = true
	if s.policy.replicas != nil {
		s.policy.replicas.listening(main.Addr())
	}
	for _, l := range lns {
		srv := &http.Server{
			Handler:           l.h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		one := &listener{ln: l.ln, srv: srv, done: make(chan struct{})}
		s.servers = append(s.servers, one)
		go func() {
			defer close(one.done)
			if err := srv.Serve(one.ln); !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "err", err)
			}
		}()
	}
	s.log.Info("central listening", "console", main.Addr().String(), "edge_hub", edgeAddr(s.servers))
	return nil
}

// Addr returns the console/API host:port after Start, or "" before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.servers) == 0 {
		return ""
	}
	return s.servers[0].ln.Addr().String()
}

// EdgeAddr returns the edge hub's host:port after Start, or "" without one.
func (s *Server) EdgeAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return edgeAddr(s.servers)
}

// edgeAddr is the edge hub's address among the bound listeners (the
// second, when there is one).
func edgeAddr(servers []*listener) string {
	if len(servers) < 2 {
		return ""
	}
	return servers[1].ln.Addr().String()
}

// EdgePin is the pin of the edge hub certificate (nil without an edge hub).
func (s *Server) EdgePin() []byte {
	if s.cert == nil {
		return nil
	}
	return s.cert.pin
}

// AuditLog is central's audit log (nil before New returns).
func (s *Server) AuditLog() *audit.Log {
	if s.auditor == nil {
		return nil
	}
	return s.auditor.log
}

// LiveFeeds lists the edge/camera pairs watched now (tests, metrics).
func (s *Server) LiveFeeds() []string { return s.live.feedKeys() }

// Close stops accepting connections, closes every edge and console socket,
// waits for all goroutines, and closes the store, releasing the ports and
// the data directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		servers := s.servers
		s.mu.Unlock()

		s.life.end()
		var errs []error
		for _, l := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := l.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("central: http shutdown: %w", err))
				_ = l.srv.Close()
			}
			cancel()
			<-l.done
		}
		s.auth.sessions.closeAll()
		s.life.waitSockets()
		s.life.waitSpawned()
		s.retr.wait()
		s.wr.stop()
		if s.notifier != nil {
			s.notifier.Close() // after the writer: nothing publishes any more
		}
		s.checkpoints.wait()
		s.auditor.log.Close()
		if s.alertStore != AlertStore(s.store) {
			s.alertStore.Close()
		}
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("central: close store: %w", err))
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("central closed")
	})
	return s.closeErr
}

// Healthy reports whether the store answers a read within ctx; systemd's
// watchdog is pinged only while it does.
func (s *Server) Healthy(ctx context.Context) error {
	done := make(chan error, 1)
	if !s.life.spawn(func() {
		err := s.store.db.View(func(*badger.Txn) error { return nil })
		if pg, ok := s.alertStore.(*PGStore); ok && err == nil {
			err = pg.pool.Ping(ctx)
		}
		done <- err
	}) {
		return errors.New("central is closed")
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store: %w", ctx.Err())
	}
}
