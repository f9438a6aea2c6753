package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-perimeter/vigil/wire"
)

// shutdownTimeout bounds how long Close waits for plain HTTP requests.
const shutdownTimeout = 5 * time.Second

// Server is one central instance: HTTP API, edge hub, console fan-out and
// the alert store.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *Store
	met      *metrics
	edges    *edgeHub
	consoles *consoleHub
	upgrader websocket.Upgrader // consoles; its default origin check refuses other sites' pages
	handler  http.Handler

	// ctx is cancelled by Close; every websocket goroutine watches it.
	ctx    context.Context
	cancel context.CancelFunc

	// ingestMu makes store-then-publish atomic so consoles receive live
	// records in sequence order, which their cursor filtering relies on.
	ingestMu sync.Mutex

	mu        sync.Mutex
	started   bool
	closed    bool
	ln        net.Listener
	srv       *http.Server
	serveDone chan struct{}
	sockets   sync.WaitGroup // websocket handlers; http.Server does not wait for hijacked connections

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and opens the alert store in cfg.DataDir. It binds
// nothing; call Start, or mount Handler in another server.
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
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.edges = newEdgeHub(cfg.Edges, log, s.met, s.ingest)
	s.consoles = newConsoleHub(s.met, consoleQueue)
	s.handler = s.routes()
	log.Info("central ready", "data_dir", cfg.DataDir, "edges", len(cfg.Edges), "last_seq", store.LastSeq())
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/edge/ws", s.handleEdgeWS)
	mux.HandleFunc("GET /api/v1/console/ws", s.handleConsoleWS)
	mux.HandleFunc("GET /api/v1/alerts", s.handleAlerts)
	mux.HandleFunc("GET /api/v1/alerts/{id}", s.handleAlert)
	mux.HandleFunc("GET /api/v1/alerts/{id}/snapshot.jpg", s.handleSnapshot)
	mux.HandleFunc("GET /api/v1/edges", s.handleEdges)
	mux.HandleFunc("GET /api/v1/healthz", s.handleHealthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /", staticHandler())
	return mux
}

// Handler returns the server's HTTP handler, for mounting elsewhere. Close
// still ends its websockets and closes the store.
func (s *Server) Handler() http.Handler { return s.handler }

// Start binds cfg.Listen (port 0 picks a free port; see Addr) and serves in
// a goroutine until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("central: Start after Close")
	case s.started:
		return errors.New("central: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("central: listen %s: %w", s.cfg.Listen, err)
	}
	s.started = true
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serveDone = make(chan struct{})
	go func(srv *http.Server, done chan<- struct{}) {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}(s.srv, s.serveDone)
	s.log.Info("central listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound host:port after Start, or "" before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting connections, closes every edge and console socket,
// waits for all goroutines, and closes the store, releasing both the port
// and the data directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv, serveDone := s.srv, s.serveDone
		s.mu.Unlock()

		s.cancel()
		var errs []error
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("central: http shutdown: %w", err))
				_ = srv.Close()
			}
			cancel()
			<-serveDone
		}
		s.sockets.Wait()
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("central: close store: %w", err))
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info("central closed")
	})
	return s.closeErr
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
	serveConsole(s.ctx, w, r, s.consoles, s.store, &s.upgrader, s.log)
}

// ingest stores an alert and publishes it to consoles if it is new.
func (s *Server) ingest(a wire.Alert) (Record, bool, error) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	rec, inserted, err := s.store.Put(a)
	if err == nil && inserted {
		s.consoles.publish(rec)
	}
	return rec, inserted, err
}
