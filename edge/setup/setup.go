// Package setup is the installer's page on the edge box: served under
// /setup on the box's API address and protected by a setup code (12
// digits) that is made on first boot, printed in the log and kept (mode
// 0600) in the data directory; wrong codes are limited per client address
// and in all (guard.go). It finds cameras (ONVIF WS-Discovery and manual
// RTSP URLs, probed with a snapshot and plain-words errors), lets the
// installer draw zones and masks on the snapshot, and runs the self-test.
// Every change made on it reaches central's audit log before it is made
// (Backend.SetupAudit). The setup is closed by "finish", by itself after
// Config.OpenFor and, on an enrolled box, IdleClose after the installer
// left; it is re-opened from central or with `vigil provision reopen`
// (lifecycle.go).
package setup

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/internal/webshared"
	"github.com/vigil-perimeter/vigil/streams/motion"
	"github.com/vigil-perimeter/vigil/streams/onvif"
	"github.com/vigil-perimeter/vigil/streams/probe"
	"github.com/vigil-perimeter/vigil/wire"
)

//go:embed web
var webFS embed.FS

// Files in the data directory.
const (
	CodeFile   = "setup-code"
	ClosedFile = "setup-closed"
	// SessionsFile keeps the installer's sessions (hashed, 0600) so the
	// page stays logged in while the edge restarts on a new revision.
	SessionsFile = "setup-sessions"
	// OpenedFile keeps when the page was last opened (OpenFor counts
	// from then, across restarts).
	OpenedFile = "setup-opened"
)

// Audit actions of Backend.SetupAudit (central's audit vocabulary).
const (
	ActionEnrol        = "enrol"
	ActionConfigChange = "config_change" // zones, gates and arming, sensors, police platform, finish, close, re-open
)

// Backend is what the page needs from the running edge.
type Backend interface {
	// SetupStatus describes the box: edge ID, central connection, cameras, gates.
	SetupStatus() any
	// SetupSelfTest runs the self-test; the report must have an "ok" field.
	SetupSelfTest(ctx context.Context, window time.Duration) any
	// SetupEnrolled reports whether the box has its credential: the page
	// then closes by itself once the installer has left (IdleClose).
	SetupEnrolled() bool
	// SetupEnrol enrols the box with central (see EnrolRequest).
	SetupEnrol(ctx context.Context, req EnrolRequest) (EnrolResult, error)
	// SetupSaveZones makes the camera's zones and masks, tripwires and
	// loitering areas a new config revision and puts it in force; the
	// answer describes the revision. Drawn lines or areas the edge would
	// refuse are a *RefusedError naming the fields.
	SetupSaveZones(camera string, zones []Zone, masks [][][2]float64, per Perimeter) (any, error)
	// SetupSnapshot is a JPEG of a configured camera's latest picture.
	SetupSnapshot(ctx context.Context, camera string) ([]byte, error)
	// SetupMotionPreview is the motion detector's foreground of a
	// configured camera's latest analysed frame with draft zones and
	// masks, as a PNG overlay at analysis size.
	SetupMotionPreview(ctx context.Context, camera string, zones []Zone, masks [][][2]float64) ([]byte, error)
	// SetupPerimeterPreview is the tracks the camera's perimeter watcher
	// follows on its latest analysed frames with the draft lines and
	// loitering areas, and their crossings and loiterings of the last
	// CrossingsShown; ErrNoPerimeterPreview when the camera cannot tell.
	SetupPerimeterPreview(ctx context.Context, camera string, lines []Line, dwell []Dwell) (PerimeterPreview, error)
	// SetupGateEvents streams gate events as they arrive until ctx ends;
	// each value is sent to the page as one JSON message.
	SetupGateEvents(ctx context.Context) <-chan any
	// SetupGates is the gates and their inputs as the box runs them.
	SetupGates() (GatesForm, error)
	// SetupGateStates is each gate's state as the box sees it now (door,
	// last grant, devices heard): the page shows which gates were heard.
	SetupGateStates(ctx context.Context) (any, error)
	// SetupSaveGates makes the form a new config revision (validated
	// whole, webhook secrets made and kept 0600) and puts it in force;
	// a refusal is a *RefusedError naming the fields where it can.
	SetupSaveGates(GatesForm) (GatesSaved, error)
	// SetupSensors is the safety sensors and their inputs as the box
	// runs them (with the register maps and the kinds' defaults).
	SetupSensors() (SensorsForm, error)
	// SetupSensorStates is every sensor's verdict and last reading now
	// (nil: the box runs no sensors): the page shows each one report.
	SetupSensorStates() []wire.SensorStatus
	// SetupSaveSensors makes the form a new config revision (validated
	// whole) and puts it in force; a refusal is a *RefusedError naming
	// the fields where it can.
	SetupSaveSensors(SensorsForm) (SensorsSaved, error)
	// SetupGB28181 is the police platform section (gb28181:) as the box
	// runs it, with a row for every camera, gate and sensor.
	SetupGB28181() (GB28181Form, error)
	// SetupGBStatus is the registration with the platform now (nil: the
	// box runs no platform connection).
	SetupGBStatus() *wire.GBStatus
	// SetupSaveGB28181 makes the form a new config revision (validated
	// whole, a new password kept 0600 in a file the revision names) and
	// puts it in force; a refusal is a *RefusedError naming the fields
	// where it can.
	SetupSaveGB28181(GB28181Form) (GB28181Saved, error)
	// SetupAudit records a change made on the page for central's audit
	// log (durably queued) before it is made: action is ActionEnrol or
	// ActionConfigChange, target what is changed ("<edge id>/gates"),
	// client the request's remote address, details what changes in
	// short (never the code or a secret). An error: the change is not
	// made.
	SetupAudit(action, target, client string, details any) error
}

// EnrolRequest is step 1 of the page: central's address and the one-time
// enrolment token from the administrator, and what the box records about
// its entrance.
type EnrolRequest struct {
	Central  string   `json:"central"` // https://host:port of central's edge hub
	Token    string   `json:"token"`
	Entrance string   `json:"entrance"`
	TimeZone string   `json:"time_zone"`
	NTP      []string `json:"ntp"`
	Again    bool     `json:"again"` // replace the credential of an enrolled box
}

// EnrolResult says how the enrolment went.
type EnrolResult struct {
	EdgeID        string `json:"edge_id"`
	SiteID        string `json:"site_id"`
	Central       string `json:"central"`
	CentralPin    string `json:"central_pin"`
	Credential    string `json:"credential"` // the file it was written to (0600)
	Revision      string `json:"revision,omitempty"`
	Applied       string `json:"applied,omitempty"`
	RestartNeeded bool   `json:"restart_needed,omitempty"`
	Message       string `json:"message"`
}

// IdleClose: once the box is enrolled, the page closes this long after
// the installer's last request (or after the box started, if nobody
// came); re-open it from central or with `vigil provision reopen`.
var IdleClose = 30 * time.Minute

// Config configures the page.
type Config struct {
	DataDir string
	Backend Backend
	Log     *slog.Logger
	// Discovery overrides WS-Discovery options (tests give a unicast target).
	Discovery onvif.Options
	// OpenFor: the page closes by itself this long after it was opened
	// or re-opened, enrolled or not (edge.yaml setup.open_hours);
	// 0: DefaultOpenFor.
	OpenFor time.Duration
	// EdgeID names the box in audit targets ("<edge id>/gates").
	EdgeID func() string
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Server serves /setup/.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	access *codeAccess // the code and the sessions (access.go)

	now     func() time.Time
	openFor time.Duration

	mu      sync.Mutex
	lastUse time.Time  // the installer's last authenticated request
	lifeMu  sync.Mutex // opening and closing
}

// New reads the setup code, making and logging one on first boot.
func New(cfg Config) (*Server, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("component", "setup"), now: cfg.Now, openFor: cfg.OpenFor}
	if s.now == nil {
		s.now = time.Now
	}
	if s.openFor <= 0 {
		s.openFor = DefaultOpenFor
	}
	s.lastUse = s.now()
	code, made, err := loadOrCreateCode(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.access = &codeAccess{code: code, dataDir: cfg.DataDir, now: s.now, log: s.log, sessions: map[string]time.Time{}}
	s.access.loadSessions()
	file := filepath.Join(cfg.DataDir, CodeFile)
	switch {
	case made == codeReplaced:
		s.log.Warn("the setup code was too short and is replaced; NEW SETUP CODE for this box's setup page (/setup): "+code, "file", file)
	case made == codeNew:
		s.log.Warn("SETUP CODE for this box's setup page (/setup): "+code, "file", file)
	}
	if s.Closed() {
		s.log.Info("setup page closed (re-open it from central or with `vigil provision reopen`)")
	} else {
		st := s.opened()
		s.log.Info("setup page open at /setup; its code is in "+file, "closes_at", st.At.Add(s.openFor).UTC().Format(time.RFC3339))
	}
	s.routes()
	return s, nil
}

// How loadOrCreateCode came by the code.
const (
	codeKept     = iota
	codeNew      // none was kept
	codeReplaced // the kept one was weaker than codes made now (8 digits)
)

// LoadOrCreateCode returns the box's setup code: 12 digits in groups of
// 4, stored 0600 in dataDir. created reports a new code: there was none,
// or the kept one was weaker (an earlier version's 8 digits) and is
// replaced.
func LoadOrCreateCode(dataDir string) (code string, created bool, err error) {
	code, made, err := loadOrCreateCode(dataDir)
	return code, made != codeKept, err
}

func loadOrCreateCode(dataDir string) (string, int, error) {
	path := filepath.Join(dataDir, CodeFile)
	made := codeNew
	if b, err := os.ReadFile(path); err == nil {
		if c := strings.TrimSpace(string(b)); c != "" {
			if strongCode(c) {
				return c, codeKept, nil
			}
			made = codeReplaced
		}
	}
	code, err := newCode()
	if err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", 0, fmt.Errorf("setup: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(code+"\n"), 0o600); err != nil {
		return "", 0, fmt.Errorf("setup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", 0, fmt.Errorf("setup: %w", err)
	}
	return code, made, nil
}

// Closed reports whether the page is closed (it answers 410).
func (s *Server) Closed() bool {
	_, err := os.Stat(filepath.Join(s.cfg.DataDir, ClosedFile))
	return err == nil
}

// target is an audit target on this box: "<edge id>/<what>".
func (s *Server) target(what string) string {
	id := ""
	if s.cfg.EdgeID != nil {
		id = s.cfg.EdgeID()
	}
	if id == "" {
		id = "edge"
	}
	return id + "/" + what
}

// Reopen opens the page again (central's setup_reopen request): recorded
// for central's audit log first (an error: it stays closed); the page is
// then open for OpenFor, and on an enrolled box until the installer has
// been away for IdleClose.
func (s *Server) Reopen() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if err := s.cfg.Backend.SetupAudit(ActionConfigChange, s.target("setup"), "central", map[string]string{"setup": "reopened", "by": "central"}); err != nil {
		return fmt.Errorf("setup page not re-opened: it could not be recorded for central's audit log: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	s.lastUse = now
	s.mu.Unlock()
	if err := reopen(s.cfg.DataDir, openState{At: now, By: "central", Audited: true}); err != nil {
		return err
	}
	s.log.Info("setup page re-opened", "closes_after_idle", IdleClose, "closes_at", now.Add(s.openFor).UTC().Format(time.RFC3339))
	return nil
}

// Close closes the page (the installer finished, or left an enrolled box).
func (s *Server) Close(why string) error {
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, ClosedFile), []byte(s.now().UTC().Format(time.RFC3339)+" "+why+"\n"), 0o600); err != nil {
		return err
	}
	s.access.clear()
	s.log.Info("setup page closed", "why", why)
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	web, _ := fs.Sub(webFS, "web")
	// The page's files, and at /setup/shared/ the modules it shares with
	// central's console (internal/webshared).
	static := http.StripPrefix("/setup/", http.FileServerFS(webshared.With(web)))
	s.mux.Handle("GET /setup/", s.open(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		static.ServeHTTP(w, r)
	}))
	s.mux.Handle("GET /setup", http.RedirectHandler("/setup/", http.StatusFound))
	s.mux.Handle("POST /setup/api/login", s.open(s.access.login))
	st := &steps{backend: s.cfg.Backend, log: s.log, discovery: s.cfg.Discovery, audit: s.audit, close: s.Close}
	s.mux.Handle("GET /setup/api/status", s.authed(st.status))
	s.mux.Handle("POST /setup/api/probe", s.authed(st.probe))
	s.mux.Handle("POST /setup/api/discover", s.authed(st.discover))
	s.mux.Handle("POST /setup/api/zones", s.authed(st.zones))
	s.mux.Handle("POST /setup/api/selftest", s.authed(st.selfTest))
	s.mux.Handle("POST /setup/api/finish", s.authed(st.finish))
	s.mux.Handle("POST /setup/api/enrol", s.authed(st.enrol))
	s.mux.Handle("POST /setup/api/zones/save", s.authed(st.saveZones))
	s.mux.Handle("GET /setup/api/snapshot", s.authed(st.snapshot))
	s.mux.Handle("GET /setup/api/preview", s.authed(st.preview))
	s.mux.Handle("GET /setup/api/perimeter", s.authed(st.perimeterPreview))
	s.mux.Handle("GET /setup/api/gates/events", s.authed(st.gateEvents))
	s.mux.Handle("GET /setup/api/gates/config", s.authed(st.gatesConfig))
	s.mux.Handle("GET /setup/api/gates/state", s.authed(st.gateStates))
	s.mux.Handle("POST /setup/api/gates/save", s.authed(st.saveGates))
	s.mux.Handle("GET /setup/api/sensors/config", s.authed(st.sensorsConfig))
	s.mux.Handle("GET /setup/api/sensors/state", s.authed(st.sensorStates))
	s.mux.Handle("POST /setup/api/sensors/save", s.authed(st.saveSensors))
	s.mux.Handle("GET /setup/api/gb28181/config", s.authed(st.gb28181Config))
	s.mux.Handle("GET /setup/api/gb28181/state", s.authed(st.gb28181State))
	s.mux.Handle("POST /setup/api/gb28181/save", s.authed(st.saveGB28181))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// open refuses everything once setup is closed (closing it first when it
// is due), and until a re-opening on the box is recorded.
func (s *Server) open(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.closeIfDue()
		if why, closed := s.closedWhy(); closed {
			s.writeClosed(w, r, why)
			return
		}
		if err := s.auditOpening(); err != nil {
			s.log.Error("setup page re-opened on the box, but this could not be recorded for central's audit log", "err", err)
			writeError(w, http.StatusServiceUnavailable, "the setup page was re-opened on the box, but this could not be recorded for central's audit log ("+err.Error()+"); it opens once it can be")
			return
		}
		h(w, r)
	})
}

// audit records a change for central's audit log before it is made
// (Backend.SetupAudit); false: not recorded, 503 written, the change
// must not be made.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, action, what string, details any) bool {
	err := s.cfg.Backend.SetupAudit(action, s.target(what), r.RemoteAddr, details)
	if err == nil {
		return true
	}
	s.log.Error("setup change refused: it could not be recorded for central's audit log", "action", action, "target", s.target(what), "err", err)
	writeError(w, http.StatusServiceUnavailable, "nothing was changed: the change could not be recorded for central's audit log ("+err.Error()+"); try again in a moment, and check the box's disk if this persists")
	return false
}

const cookieName = "vigil_setup"
const sessionTTL = 2 * time.Hour

// authed needs the session cookie (or the code in X-Setup-Code, for
// scripts), and for writes a same-origin request.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return s.open(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if c := r.Header.Get("X-Setup-Code"); c != "" {
			if !s.access.tryCode(w, r, c) { // counted with the login's tries
				return
			}
			ok = true
		} else if ck, err := r.Cookie(cookieName); err == nil {
			ok = s.access.session(ck.Value)
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "enter the setup code first")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && r.Method != http.MethodGet && !strings.HasSuffix(o, "://"+r.Host) {
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		s.mu.Lock()
		s.lastUse = s.now()
		s.mu.Unlock()
		h(w, r)
	})
}

// ProbeAnswer is probe.Result with the snapshot as a data URL.
type ProbeAnswer struct {
	*probe.Result
	SnapshotURL string `json:"snapshot,omitempty"`
}

func (s *steps) probe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL      string `json:"url"`
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	res, _ := probe.Probe(r.Context(), probe.Request{URL: body.URL, User: body.User, Password: body.Password, Timeout: 8 * time.Second, Snapshot: true, SnapshotWidth: 640})
	ans := ProbeAnswer{Result: res}
	if len(res.Snapshot) > 0 {
		ans.SnapshotURL = "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(res.Snapshot)
	}
	s.log.Info("camera probed", "url", res.URL, "ok", res.OK, "codec", res.Codec, "error", res.Error)
	writeJSON(w, http.StatusOK, ans)
}

func (s *steps) discover(w http.ResponseWriter, r *http.Request) {
	opt := s.discovery
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Second
	}
	devs, err := onvif.Discover(r.Context(), opt)
	if err != nil {
		writeError(w, http.StatusBadGateway, "discovery failed: "+err.Error())
		return
	}
	type dev struct {
		onvif.Device
		RTSP string `json:"rtsp"`
	}
	out := []dev{}
	for _, d := range devs {
		out = append(out, dev{d, d.SuggestedRTSP()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// Zone is a drawn zone: normalised points (0..1 from the left and top).
type Zone struct {
	Name        string       `json:"name"`
	Points      [][2]float64 `json:"points"`
	Sensitivity float64      `json:"sensitivity,omitempty"`
}

// zones validates drawn zones and masks as the edge's config does and
// answers the motion: block for the camera's entry in edge.yaml.
func (s *steps) zones(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Camera string         `json:"camera"`
		Zones  []Zone         `json:"zones"`
		Masks  [][][2]float64 `json:"masks"`
		Lines  []Line         `json:"lines"`
		Dwell  []Dwell        `json:"dwell"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request")
		return
	}
	var problems []string
	var b strings.Builder
	b.WriteString("    motion:\n")
	if len(body.Zones) > 0 {
		b.WriteString("      zones:\n")
	}
	seen := map[string]bool{}
	for i, z := range body.Zones {
		name := strings.TrimSpace(z.Name)
		if name == "" {
			name = fmt.Sprintf("zone-%d", i+1)
		}
		if seen[name] {
			problems = append(problems, fmt.Sprintf("zone %q is named twice", name))
		}
		seen[name] = true
		if err := polygon(z.Points).Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("zone %q: %v", name, err))
		}
		if z.Sensitivity < 0 || z.Sensitivity > 1 {
			problems = append(problems, fmt.Sprintf("zone %q: sensitivity must be between 0 and 1", name))
		}
		fmt.Fprintf(&b, "        - name: %q\n          points: %s\n", name, points(z.Points))
		if z.Sensitivity > 0 {
			fmt.Fprintf(&b, "          sensitivity: %g\n", z.Sensitivity)
		}
	}
	if len(body.Masks) > 0 {
		b.WriteString("      masks:\n")
	}
	for i, m := range body.Masks {
		if err := polygon(m).Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("mask %d: %v", i+1, err))
		}
		fmt.Fprintf(&b, "        - %s\n", points(m))
	}
	per := Perimeter{Lines: body.Lines, Dwell: body.Dwell}
	if _, probs := PerimeterConfig(per); len(probs) > 0 {
		problems = append(problems, problemsText(probs))
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": strings.Join(problems, "; "), "problems": problems})
		return
	}
	b.WriteString(perimeterYAML(per))
	writeJSON(w, http.StatusOK, map[string]any{"camera": body.Camera, "yaml": b.String(), "zones": len(body.Zones), "masks": len(body.Masks),
		"lines": len(body.Lines), "dwell": len(body.Dwell)})
}

func polygon(pts [][2]float64) motion.Polygon {
	out := make(motion.Polygon, 0, len(pts))
	for _, p := range pts {
		out = append(out, motion.Point{X: p[0], Y: p[1]})
	}
	return out
}

func points(pts [][2]float64) string {
	parts := make([]string, len(pts))
	for i, p := range pts {
		parts[i] = fmt.Sprintf("[%.3f, %.3f]", p[0], p[1])
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
