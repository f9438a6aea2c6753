package central

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// shutdownTimeout bounds how long Close waits for plain HTTP requests.
const shutdownTimeout = 5 * time.Second

// Server is one central instance: console and REST API, edge hub with
// enrolment, the writer that owns the alert store, and console fan-out.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *Store
	reg      *registry
	met      *metrics
	wr       *writer
	edges    *edgeHub
	live     *liveHub // live view fan-out (live.go)
	cert     *hubCert // nil without an edge hub listener
	upgrader websocket.Upgrader
	handler  http.Handler
	hubMux   http.Handler
	adminSum []byte
	// scrapeSum is the SHA-256 of the metrics scrape token (nil: none).
	scrapeSum []byte
	auth      *auth    // users, sessions, login limits (auth.go)
	authAPI   *authAPI // login, logout, session, users (auth.go)

	retr *retrieval // evidence retrieval workers (retrieval.go)

	auditor     *auditor           // the audit log in the store's database (audit_hooks.go)
	evidenceKey ed25519.PrivateKey // signs evidence bundles, checkpoints and access tokens (evidence_key.go)
	evidence    *evidenceAPI       // evidence search, requests and bundles (evidence_api.go)
	edgeAdmin   *edgeAdmin         // enrolment, revocation, config pushes, access tokens (enrol.go)

	// ctx is cancelled by Close; every websocket goroutine watches it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	started   bool
	closed    bool
	servers   []*listener
	sockets   sync.WaitGroup // websocket handlers; http.Server does not wait for hijacked connections
	bg        sync.WaitGroup // goroutines started by spawn
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
	s := &Server{cfg: cfg, log: log, store: store, met: newMetrics()}
	s.met.watchDisk(store.Disk)
	fail := func(err error) (*Server, error) {
		store.Close()
		return nil, err
	}
	us, err := openUsers(store.db, cfg.Users)
	if err != nil {
		return fail(err)
	}
	s.auth = newAuth(us)
	s.authAPI = &authAPI{auth: s.auth, pwParams: DefaultPasswordParams, clientAddr: s.clientAddrText,
		allowed: s.allowed, internalError: s.internalError, log: log}
	if n, err := s.auth.sessions.restore(store.db, us, time.Now()); err != nil {
		return fail(err)
	} else if n > 0 {
		log.Info("console sessions kept from before the restart", "sessions", n)
	}
	if s.auditor, err = openAuditor(store.db, store.Floor(), cfg, log); err != nil {
		return fail(err)
	}
	s.met.reg.MustRegister(s.auditor.collectors()...)
	if s.evidenceKey, err = loadEvidenceKey(cfg, log); err != nil {
		return fail(err)
	}
	if s.reg, err = openRegistry(store.db, cfg.Edges); err != nil {
		return fail(err)
	}
	tree := &siteTree{nodes: map[string]*siteNode{}}
	if cfg.Township != nil {
		tree, _ = buildSiteTree(cfg.Township) // checked by Validate
	}
	if s.wr, err = newWriter(store, tree, log, s.met); err != nil {
		return fail(err)
	}
	if cfg.EdgeHub.Listen != "" {
		if s.cert, err = loadHubCert(cfg.EdgeHub, cfg.DataDir, log); err != nil {
			return fail(err)
		}
	}
	if len(cfg.Edges) > 0 && s.cert == nil {
		log.Warn("edges on bearer tokens cannot connect: the edge websocket is only on the edge hub's TLS port; set edge_hub.listen")
	}
	if cfg.AdminTokenSHA256 != "" {
		s.adminSum = decodeHex(cfg.AdminTokenSHA256)
	}
	if cfg.MetricsTokenSHA256 != "" {
		s.scrapeSum = decodeHex(cfg.MetricsTokenSHA256)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.edges = newEdgeHub(s.reg, s.wr, log, s.met)
	if s.edges.names, err = openDeviceBook(store.db, tree, log); err != nil { // devices.go
		return fail(err)
	}
	for _, f := range legacyDeviceFields(cfg.Township) {
		log.Warn("central.yaml: "+f+" is deprecated: cameras and gates are named in each edge's edge.yaml, and central shows the names the edge reports; these are used only for devices an edge has not named yet", "field", f)
	}
	s.live = newLiveHub(s.ctx, s.spawn, s.edges, s.wr.tamper, log, s.met.reg)
	s.edges.onLive = s.live.onFrame
	s.edgeAdmin = &edgeAdmin{reg: s.reg, hub: s.edges, township: cfg.Township, tokenTTL: cfg.EdgeHub.TokenTTL.D(),
		key: s.evidenceKey, rec: s, allowed: s.allowed, internalError: s.internalError,
		enrolments: s.met.enrolments, rejected: s.met.edgeRejected, log: log}
	if s.cert != nil {
		s.edgeAdmin.pin = s.cert.pin
	}
	s.edges.onAccess, s.edges.accessKey = s.auditor.recordEdgeAccess, s.edgeAdmin.accessKey()
	s.retr = newRetrieval(s.ctx, store.db, s.edges, cfg.DataDir, cfg.Township, log)
	s.evidence = &evidenceAPI{dataDir: cfg.DataDir, township: cfg.Township, devices: s.edges.names,
		store: store, edges: evidenceEdgeSource{reg: s.reg, hub: s.edges}, users: s.auth.users,
		retr: s.retr, key: s.evidenceKey, auditLog: s.auditor.log, rec: s, log: log, internalError: s.internalError}
	s.handler = s.routes()
	s.hubMux = s.hubRoutes()
	s.wr.start()
	s.retr.start()
	s.startAuditCheckpoints() // audit_checkpoint.go
	log.Info("central ready", "data_dir", cfg.DataDir, "edges", len(s.reg.list()), "last_seq", store.LastSeq())
	return s, nil
}

func (s *Server) routes() http.Handler {
	_, h := s.routesMux()
	return h
}

// hubRoutes is all an edge can reach on the internet-facing TLS port. The
// edge websocket is here only: the console port answers 404 to it, so an
// edge's bearer token or hello never travels in plain HTTP.
func (s *Server) hubRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.EdgePath, s.handleEdgeWS)
	mux.HandleFunc("POST "+wire.EnrolPath, s.edgeAdmin.handleEnrol)
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
	s.log.Info("central listening", "console", main.Addr().String(), "edge_hub", s.edgeAddrLocked())
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
	return s.edgeAddrLocked()
}

func (s *Server) edgeAddrLocked() string {
	if len(s.servers) < 2 {
		return ""
	}
	return s.servers[1].ln.Addr().String()
}

// EdgePin is the pin of the edge hub certificate (nil without an edge hub).
func (s *Server) EdgePin() []byte {
	if s.cert == nil {
		return nil
	}
	return s.cert.pin
}

// Close stops accepting connections, closes every edge and console socket,
// waits for all goroutines, and closes the store, releasing the ports and
// the data directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		servers := s.servers
		s.mu.Unlock()

		s.cancel()
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
		s.sockets.Wait()
		s.bg.Wait()
		s.retr.wait()
		s.wr.stop()
		s.waitAuditCheckpoints()
		s.auditor.log.Close()
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("central: close store: %w", err))
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("central closed")
	})
	return s.closeErr
}

// spawn runs f on a goroutine that Close waits for (before it closes the
// store); f must end once s.ctx is cancelled. Once Close has begun it
// refuses: f does not run and spawn returns false.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// enterSocket registers a websocket handler with Close; false once closing.
func (s *Server) enterSocket() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sockets.Add(1)
	return true
}

func (s *Server) handleEdgeWS(w http.ResponseWriter, r *http.Request) {
	if !s.enterSocket() {
		writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
		return
	}
	defer s.sockets.Done()
	s.edges.serve(s.ctx, w, r)
}

func (s *Server) handleConsoleWS(w http.ResponseWriter, r *http.Request) {
	if !s.enterSocket() {
		writeError(w, http.StatusServiceUnavailable, "", "central is shutting down")
		return
	}
	defer s.sockets.Done()
	serveConsole(s.ctx, w, r, s.wr, s.met, &s.upgrader, s.log)
}

// Healthy reports whether the store answers a read within ctx; systemd's
// watchdog is pinged only while it does.
func (s *Server) Healthy(ctx context.Context) error {
	done := make(chan error, 1)
	if !s.spawn(func() {
		done <- s.store.db.View(func(*badger.Txn) error { return nil })
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
