package demo

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxFreeze bounds one freeze: a test that forgets its camera gets it back.
const maxFreeze = 10 * time.Minute

// freezer is what the control needs of the simulated cameras
// (sim.Server.Freeze): a frozen camera keeps its connection but sends no
// video, so the edge records a gap.
type freezer interface {
	Freeze(path string, frozen bool)
}

// control is the demo's test hook on 127.0.0.1: POST
// /cameras/{path}/freeze {"seconds":N} with "Authorization: Bearer
// TOKEN" (demo.json) stops a simulated camera for N seconds and answers
// when, in UTC. Nothing else is served.
type control struct {
	cams   freezer
	paths  []string
	token  string
	log    *slog.Logger
	now    func() time.Time
	srv    *http.Server
	ln     net.Listener
	mu     sync.Mutex
	timers map[string]*time.Timer // path → the pending resume
}

// freezeRequest is the body of POST /cameras/{path}/freeze.
type freezeRequest struct {
	Seconds float64 `json:"seconds"`
}

// freezeAnswer says when the camera stopped and when it resumes (UTC).
type freezeAnswer struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// newControl makes the control for the cameras at paths; start serves it.
func newControl(cams freezer, paths []string, token string, log *slog.Logger) *control {
	c := &control{cams: cams, paths: paths, token: token, log: log, now: time.Now, timers: map[string]*time.Timer{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cameras/{path}/freeze", c.handleFreeze)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return c
}

// start listens on a free port of 127.0.0.1 and serves until Close.
func (c *control) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: control: %w", err)
	}
	c.ln = ln
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Warn("demo control stopped", "err", err)
		}
	}()
	return nil
}

// URL is where the control listens (http://127.0.0.1:PORT).
func (c *control) URL() string { return "http://" + c.ln.Addr().String() }

// Close stops serving and resumes every frozen camera.
func (c *control) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.srv.Shutdown(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, t := range c.timers {
		t.Stop()
		c.cams.Freeze(p, false)
		delete(c.timers, p)
	}
}

func (c *control) handleFreeze(w http.ResponseWriter, r *http.Request) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(c.token)) != 1 {
		controlError(w, http.StatusUnauthorized, "authorization: Bearer token of demo.json needed")
		return
	}
	path := r.PathValue("path")
	if !slices.Contains(c.paths, path) {
		controlError(w, http.StatusNotFound, fmt.Sprintf("camera %q: not a demo camera (%s)", path, strings.Join(c.paths, ", ")))
		return
	}
	var req freezeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&req); err != nil {
		controlError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	d := time.Duration(req.Seconds * float64(time.Second))
	if d <= 0 || d > maxFreeze {
		controlError(w, http.StatusBadRequest, "seconds: must be above 0 and at most "+maxFreeze.String())
		return
	}
	from := c.freeze(path, d)
	c.log.Info("demo camera frozen", "camera", path, "for", d)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(freezeAnswer{Camera: path, From: from, To: from.Add(d)})
}

// freeze stops the camera now and resumes it after d (a second freeze
// of the same camera replaces the first's resume).
func (c *control) freeze(path string, d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timers[path]; t != nil {
		t.Stop()
	}
	c.cams.Freeze(path, true)
	from := c.now().UTC()
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.timers[path] != t {
			return // replaced or closed
		}
		c.cams.Freeze(path, false)
		delete(c.timers, path)
	})
	c.timers[path] = t
	return from
}

func controlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
