package edge

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/edge/setup"
	"github.com/vigil-perimeter/vigil/edge/uplink"

	"github.com/vigil-perimeter/vigil/streams/camera"
	"github.com/vigil-perimeter/vigil/wire"
)

// The box's local API (ARCHITECTURE.md, "Edge local API"). Every route is
// in apiRoutes with the credential it takes, the roles it allows and what
// it records in central's audit log; TestEdgeRouteTable walks the table
// and fails for a route registered outside it.
//
// Credentials:
//   - an access token: central signs, for this edge, a console user and
//     role and at most an hour (POST /api/v1/edges/{id}/access-tokens at
//     central); the box checks it with central's public key, learned at
//     enrolment and kept, so it works while central is away;
//   - the scrape token (edge.yaml metrics_token_sha256), for /metrics only;
//   - the gate webhook's per-controller signature (gates/webhook);
//   - the setup page's code and session (edge/setup).

// Central's role names (central/users.go).
const (
	roleGuard      = "guard"
	roleSupervisor = "supervisor"
	rolePolice     = "police_liaison"
	roleInstaller  = "installer"
	roleAdmin      = "admin"
	roleScrape     = "scrape" // the scrape token (not a console role)
)

var (
	rolesVideo    = []string{roleGuard, roleSupervisor, rolePolice, roleAdmin} // as central's clip route
	rolesAny      = []string{roleGuard, roleSupervisor, rolePolice, roleInstaller, roleAdmin}
	rolesGates    = []string{roleGuard, roleSupervisor, roleInstaller, roleAdmin}
	rolesSelfTest = []string{roleSupervisor, roleInstaller, roleAdmin}
	rolesRunTest  = []string{roleInstaller, roleAdmin}
	rolesMetrics  = []string{roleScrape, roleAdmin}
)

// apiAuth is the credential a route takes.
type apiAuth int

const (
	authToken  apiAuth = iota // access token (or scrape token where roles allow it)
	authOpen                  // nothing: answers without anything sensitive
	authSigned                // the request signs itself (gate webhook)
	authSetup                 // edge/setup checks its code and session
)

// apiRoute is one row of the local API's table.
type apiRoute struct {
	Pattern string
	Auth    apiAuth
	Roles   []string // authToken: who may
	// Audit is the action recorded in central's audit log before the
	// route answers ("" none); the request is refused if it cannot be.
	Audit   string
	handler http.Handler
}

// localAPI is the box's local API: the route table, the credential check
// in front of it, and the few handlers that are its own. The other
// handlers are their components' (clip store, self-test, gate webhook,
// setup page).
type localAPI struct {
	conf     *configEngine // edge ID, scrape token, camera names: the config in force
	reg      *prometheus.Registry
	clips    apiClips
	up       apiUplink
	cams     []*camera.Camera
	gates    *gateSide // nil without gates
	selfTest *selfTester
	audit    *auditLog
	setup    *setup.Server // nil: no setup page
	gb       *gbSide       // nil without gb28181
	log      *slog.Logger
}

// apiClips is what the local API uses of the clip store.
type apiClips interface {
	Handler() http.Handler
	Conditions() []clips.Condition
}

// apiUplink is what the local API uses of the uplink.
type apiUplink interface {
	Health() uplink.Health
	ClockOffset() time.Duration
	CentralKey() ed25519.PublicKey
}

// apiRoutes is the table.
func (n *localAPI) apiRoutes() []apiRoute {
	rec := n.clips.Handler()
	rs := []apiRoute{
		{Pattern: "GET /api/v1/healthz", Auth: authOpen, handler: http.HandlerFunc(n.healthz)},
		{Pattern: "GET /metrics", Roles: rolesMetrics, handler: promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{})},
		// Recorded video: spans and gaps, MP4 export, pictures.
		{Pattern: "GET /api/v1/recordings", Roles: rolesVideo, handler: rec},
		{Pattern: "GET /api/v1/recordings/{camera}", Roles: rolesVideo, Audit: accessView, handler: rec},
		{Pattern: "GET /api/v1/recordings/{camera}/mp4", Roles: rolesVideo, Audit: accessDownload, handler: rec},
		{Pattern: "GET /api/v1/recordings/{camera}/jpeg", Roles: rolesVideo, Audit: accessView, handler: rec},
		{Pattern: "GET /api/v1/cameras", Roles: rolesAny, handler: http.HandlerFunc(n.camerasStatus)},
		{Pattern: "GET /api/v1/gates", Roles: rolesGates, handler: http.HandlerFunc(n.gatesStatus)},
		// Self-test: GET runs one, POST also keeps it and sends it to central.
		{Pattern: "GET /api/v1/selftest", Roles: rolesSelfTest, handler: http.HandlerFunc(n.selfTest.handler)},
		{Pattern: "POST /api/v1/selftest", Roles: rolesRunTest, Audit: accessSelfTest, handler: http.HandlerFunc(n.selfTest.handler)},
	}
	if n.gates != nil && n.gates.hook != nil {
		rs = append(rs, apiRoute{Pattern: "POST /api/v1/gates/events", Auth: authSigned, handler: n.gates.hook})
	}
	if n.setup != nil {
		rs = append(rs, apiRoute{Pattern: "/setup/", Auth: authSetup, handler: n.setup},
			apiRoute{Pattern: "/setup", Auth: authSetup, handler: n.setup})
	}
	return rs
}

// handler is the local API's handler: the table behind its credential check.
func (n *localAPI) handler() http.Handler {
	mux := http.NewServeMux()
	table := map[string]apiRoute{}
	for _, rt := range n.apiRoutes() {
		mux.Handle(rt.Pattern, rt.handler)
		table[rt.Pattern] = rt
	}
	return n.withAuth(mux, table)
}

// withAuth puts the table's policy in front of mux.
func (n *localAPI) withAuth(mux *http.ServeMux, table map[string]apiRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		rt, listed := table[pattern]
		if !listed {
			h.ServeHTTP(w, r) // 404 or 405 from the mux
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		switch rt.Auth {
		case authOpen, authSigned, authSetup:
			mux.ServeHTTP(w, r)
			return
		}
		who, status, msg := n.apiPrincipal(r, rt.Roles)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-edge"`)
			}
			writeJSON(w, status, map[string]string{"error": msg})
			return
		}
		if rt.Audit != "" {
			if err := n.audit.record(who, rt.Audit, n.conf.running().EdgeID+"/"+auditTarget(rt.Pattern, r.URL.Path), clientOf(r), accessDetails(r)); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this access cannot be recorded for central's audit log, so it is refused: " + err.Error()})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// testAccessKeys are trusted besides central's key in this package's
// tests only (export_test.go sets them; a built binary has none).
var testAccessKeys []ed25519.PublicKey

// apiPrincipal finds who is asking and whether their role may use a route
// that allows roles; status is 0 when they may.
func (n *localAPI) apiPrincipal(r *http.Request, roles []string) (accessActor, int, string) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return accessActor{}, http.StatusUnauthorized, "credential required: an access token from central (POST /api/v1/edges/{id}/access-tokens), as Authorization: Bearer"
	}
	tok = strings.TrimSpace(tok)
	if sum := n.conf.running().MetricsTokenSHA256; sum != "" && !strings.HasPrefix(tok, "vigil-access-") {
		want, _ := hex.DecodeString(sum)
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want) == 1 {
			if !slices.Contains(roles, roleScrape) {
				return actorMetrics, http.StatusForbidden, "the scrape token is for /metrics only"
			}
			return actorMetrics, 0, ""
		}
	}
	keys := testAccessKeys
	if key := n.up.CentralKey(); key != nil {
		keys = append([]ed25519.PublicKey{key}, keys...)
	}
	if len(keys) == 0 {
		return accessActor{}, http.StatusUnauthorized, "this box has not learned central's key yet (enrol it, or let it connect to central once), so it cannot check access tokens"
	}
	c, err := wire.VerifyAccessToken(keys, n.conf.running().EdgeID, tok, time.Now())
	if err != nil {
		n.log.Info("local API request refused", "path", r.URL.Path, "client", clientOf(r), "err", err)
		return accessActor{}, http.StatusUnauthorized, err.Error()
	}
	who := accessActor{User: c.User, Role: c.Role}
	if !slices.Contains(roles, c.Role) {
		return who, http.StatusForbidden, "your role (" + c.Role + ") may not do this on the box"
	}
	return who, 0, ""
}

// auditTarget names what a request touches, below the edge: the camera
// of a route with {camera} in its pattern, else the first path element
// after /api/v1/. (ServeMux.Handler does not fill the request's path
// values, so the pattern is matched here.)
func auditTarget(pattern, path string) string {
	_, pp, _ := strings.Cut(pattern, " ")
	ps, rs := strings.Split(pp, "/"), strings.Split(path, "/")
	for i, seg := range ps {
		if seg == "{camera}" && i < len(rs) {
			return rs[i]
		}
	}
	p := strings.TrimPrefix(path, "/api/v1/")
	p, _, _ = strings.Cut(p, "/")
	return p
}

// accessDetails is the range or moment a request asks for, as given.
func accessDetails(r *http.Request) map[string]string {
	d := map[string]string{"route": r.Method + " " + r.URL.Path}
	q := r.URL.Query()
	for _, k := range []string{"start", "end", "duration", "at", "window"} {
		if v := q.Get(k); v != "" {
			if len(v) > 64 {
				v = v[:64]
			}
			d[k] = v
		}
	}
	return d
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (n *localAPI) healthz(w http.ResponseWriter, r *http.Request) {
	// The uplink judges delivery from its live state: a central that
	// stopped answering pings is not connected, and alerts waiting
	// too long make the box degraded (still 200: the box itself runs).
	h := n.up.Health()
	status, reasons := "ok", h.Reasons
	// A box that should be registered with its police platform and is
	// not is degraded too (gb28181.go).
	if r := n.gb.healthReason(); r != "" {
		reasons = append(append([]string(nil), reasons...), r)
	}
	if len(reasons) > 0 {
		status = "degraded"
	} else {
		reasons = []string{}
	}
	out := map[string]any{"status": status, "reasons": reasons, "central_connected": h.Connected}
	gb := n.gb.status()
	if gb != nil {
		out["gb28181_online"] = gb.Online
	}
	// The rest (which box, what it holds, which cameras record) only
	// with a credential.
	if _, st, _ := n.apiPrincipal(r, rolesAny); st == 0 {
		out["edge_id"] = n.conf.running().EdgeID
		out["pending_alerts"] = h.Pending
		out["oldest_pending_ms"] = h.OldestPending.Milliseconds()
		out["clock_offset_ms"] = n.up.ClockOffset().Milliseconds()
		out["recording_conditions"] = n.clips.Conditions()
		if gb != nil {
			out["gb28181"] = gb
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *localAPI) camerasStatus(w http.ResponseWriter, _ *http.Request) {
	type cam struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Online    bool      `json:"online"`
		LastFrame time.Time `json:"last_frame,omitzero"`
		Error     string    `json:"error,omitempty"`
		// Analysis: whether the video that arrives is analysed.
		Analysis camera.AnalysisStatus `json:"analysis"`
	}
	out := []cam{}
	for _, c := range n.cams {
		s := c.Status()
		out = append(out, cam{ID: c.ID(), Name: cameraName(n.conf, c.ID()), Online: s.Online, LastFrame: s.LastFrame, Error: s.Error, Analysis: s.Analysis})
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

// gatesStatus is GET /api/v1/gates.
func (n *localAPI) gatesStatus(w http.ResponseWriter, r *http.Request) {
	st, err := n.gates.states(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// cameraName is a camera's name as configured ("" if it has none).
func cameraName(engine *configEngine, id string) string {
	cc, _ := engine.camera(id)
	return cc.Name
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
