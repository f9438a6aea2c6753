package central

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// routeSpec is one row of central's route table: the handler, who may use
// it and what it leaves in the audit log.
type routeSpec struct {
	// serve picks the route's handler out of the composition root: a
	// method of the component that owns the work (on), or a websocket
	// that Close waits for.
	serve  func(*Server) http.Handler
	public bool     // answers without a credential (nothing sensitive behind it)
	roles  []string // who may, otherwise
	// audit is what the wrapper records (serveAudited); auditedBy says
	// where a handler records its own entries instead (it knows what was
	// found or refused). Neither: the route shows no video, picture or
	// evidence and changes nothing worth an entry.
	audit     auditRoute
	auditedBy string
	// edge names the path value that is the edge the route talks to:
	// with several replicas it is served by the one holding that edge's
	// connection (replicas.go).
	edge string
}

// on adapts a handler method of one component to the table: component
// picks the component out of the composition root, h is its method.
func on[C any](component func(*Server) C, h func(C, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		c := component(s)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(c, w, r) })
	}
}

// The components the table's handlers belong to (server.go builds them).
func alertsOf(s *Server) *alertsAPI       { return s.alerts }
func statusOf(s *Server) *statusAPI       { return s.status }
func mediaOf(s *Server) *mediaAPI         { return s.media }
func evidenceOf(s *Server) *evidenceAPI   { return s.evidence }
func searchOf(s *Server) *evidenceSearch  { return s.search }
func edgeAdminOf(s *Server) *edgeAdmin    { return s.edgeAdmin }
func authOf(s *Server) *authAPI           { return s.authAPI }
func auditOf(s *Server) *auditAPI         { return s.auditAPI }
func backupOf(s *Server) *backupAPI       { return s.backup }
func deskOf(s *Server) *deskAPI           { return s.desk }
func reportsOf(s *Server) *shiftReport    { return s.reports }
func playbackOf(s *Server) *playbackAPI   { return s.playback }
func bookmarksOf(s *Server) *bookmarksAPI { return s.bookmarks }
func layoutsOf(s *Server) *layoutsAPI     { return s.layouts }
func sensorsOf(s *Server) *sensorsAPI     { return s.sensors }

// playbackWindows is the audit rule of a playback session's requests:
// they show only what its entry (written when it was made) names, so a
// player fetching a window every few seconds, or a guard scrubbing, does
// not write an entry per window.
const playbackWindows = "the session's view entry (POST /api/v1/playback/sessions: who, cameras, range); requests outside its cameras and range are refused"

// consoleSocket is the console's websocket (console.go); Close waits for it.
func consoleSocket(s *Server) http.Handler {
	wr, met, log := s.wr, s.met, s.log
	var up websocket.Upgrader
	return s.life.socket(func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		serveConsole(ctx, w, r, wr, met, &up, log)
	})
}

// liveSocket is a live viewer's websocket (live.go); Close waits for it.
func liveSocket(s *Server) http.Handler { return s.life.socket(s.live.serveViewer) }

// roleScrape is the metrics scrape token's role (central.yaml
// metrics_token_sha256); no console user has it.
const roleScrape = "scrape"

var rolesMetrics = []string{roleScrape, RoleAdmin}

// routeTable is every route of the console port, by ServeMux pattern. The
// server registers exactly these (routesMux); withAuth (auth.go) enforces
// the roles and serveAudited (audit_hooks.go) the audit rule.
// TestAuthRoleMatrix walks it as nobody, with bad credentials and as each
// role. It is one table, one row per route, and long on purpose (the
// house limit on function length does not apply): splitting it would put
// a route's handler, roles and audit rule in different places.
var routeTable = map[string]routeSpec{
	"GET /api/v1/console/ws":                             {serve: consoleSocket, roles: rolesWatch},
	"GET /api/v1/alerts":                                 {serve: on(alertsOf, (*alertsAPI).handleAlerts), roles: rolesWatch},
	"GET /api/v1/alerts/{id}":                            {serve: on(alertsOf, (*alertsAPI).handleAlert), roles: rolesWatch, audit: viewOf("alert", pathTarget("id"))},
	"GET /api/v1/alerts/{id}/snapshot.jpg":               {serve: on(alertsOf, (*alertsAPI).handleSnapshot), roles: rolesWatch, audit: viewOf("snapshot", pathTarget("id"))},
	"GET /api/v1/alerts/{id}/updates/{uid}/snapshot.jpg": {serve: on(alertsOf, (*alertsAPI).handleUpdateSnapshot), roles: rolesWatch, audit: viewOf("snapshot", pathTarget("id", "uid"))},
	"POST /api/v1/alerts/{id}/{action}": {serve: on(alertsOf, (*alertsAPI).handleAction), roles: rolesWorkflow, audit: auditRoute{action: audit.ActionWorkflow, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			To   string `json:"to"`
			Note string `json:"note"`
		}
		_ = json.Unmarshal(body, &b)
		d := map[string]any{"step": r.PathValue("action")}
		if b.To != "" {
			d["to"] = b.To
		}
		if b.Note != "" {
			d["note"] = b.Note
		}
		return r.PathValue("id"), d, ok2xx(status)
	}}},
	"POST /api/v1/console/mute": {serve: on(deskOf, (*deskAPI).handleMute), roles: rolesWorkflow, audit: auditRoute{action: actionConsoleMute, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			Minutes any `json:"minutes"`
		}
		_ = json.Unmarshal(body, &b)
		return "console", map[string]any{"minutes": b.Minutes, "status": status}, true // every call, refused ones too
	}}},
	"GET /api/v1/selftests":  {serve: on(deskOf, (*deskAPI).handleSelfTests), roles: rolesSelfTest, audit: viewOf("selftests", func(*http.Request) string { return "selftests" })},
	"GET /api/v1/events":     {serve: on(alertsOf, (*alertsAPI).handleEvents), roles: rolesWatch},
	"GET /api/v1/sites":      {serve: on(statusOf, (*statusAPI).handleSites), roles: rolesAll},
	"GET /api/v1/edges":      {serve: on(edgeAdminOf, (*edgeAdmin).handleEdges), roles: rolesAll},
	"GET /api/v1/edges/{id}": {serve: on(edgeAdminOf, (*edgeAdmin).handleEdge), roles: rolesAll},
	"POST /api/v1/edges/{id}/revoke": {serve: on(edgeAdminOf, (*edgeAdmin).handleRevoke), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(body, &b)
		return r.PathValue("id"), map[string]any{"what": "revoke", "reason": b.Reason}, ok2xx(status)
	}}},
	"POST /api/v1/edges/{id}/unrevoke": {serve: on(edgeAdminOf, (*edgeAdmin).handleUnrevoke), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			Reason  string `json:"reason"`
			KeepKey bool   `json:"keep_key"`
		}
		_ = json.Unmarshal(body, &b)
		return r.PathValue("id"), map[string]any{"what": "unrevoke", "reason": b.Reason, "keep_key": b.KeepKey}, ok2xx(status)
	}}},
	"POST /api/v1/edges/{id}/config": {serve: on(edgeAdminOf, (*edgeAdmin).handlePushConfig), roles: rolesAdmin, edge: "id", audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			Revision string          `json:"revision"`
			Config   json.RawMessage `json:"config"`
		}
		_ = json.Unmarshal(body, &b)
		sum := sha256.Sum256(b.Config)
		return r.PathValue("id"), map[string]any{"what": "config_push", "revision": b.Revision, "config_sha256": hex.EncodeToString(sum[:]), "status": status}, status < 400
	}}},
	"POST /api/v1/edges/{id}/setup/reopen": {serve: on(edgeAdminOf, (*edgeAdmin).handleSetupReopen), roles: rolesAdmin, edge: "id", audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
		return r.PathValue("id"), map[string]any{"what": "setup_reopen"}, ok2xx(status)
	}}},
	"POST /api/v1/edges/{id}/access-tokens": {serve: on(edgeAdminOf, (*edgeAdmin).handleAccessToken), roles: rolesAll, audit: auditRoute{action: actionAccess, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			TTL string `json:"ttl"`
		}
		_ = json.Unmarshal(body, &b) // never the token
		return r.PathValue("id"), map[string]any{"ttl": b.TTL}, ok2xx(status)
	}}},
	"GET /api/v1/edges/{id}/cameras/{camera}/thumbnail": {serve: on(mediaOf, (*mediaAPI).handleThumbnail), roles: rolesAll, audit: viewOf("thumbnail", pathTarget("id", "camera")), edge: "id"},
	"GET /api/v1/edges/{id}/cameras/{camera}/clip":      {serve: on(mediaOf, (*mediaAPI).handleClip), roles: rolesWatch, audit: viewOf("clip", pathTarget("id", "camera"), "from", "to"), edge: "id"},
	"POST /api/v1/edges/{id}/cameras/{camera}/live":     {serve: on(mediaOf, (*mediaAPI).handleLive), roles: rolesAll, edge: "id"},
	"GET /api/v1/live/{edge}/{camera}/ws": {serve: liveSocket, roles: rolesAll, edge: "edge", audit: auditRoute{action: audit.ActionView, soft: true, entry: func(r *http.Request, _ int, _ []byte) (string, any, bool) {
		return r.PathValue("edge") + "/" + r.PathValue("camera"), map[string]any{"what": "live"}, true
	}}},
	"POST /api/v1/enrolment-tokens": {serve: on(edgeAdminOf, (*edgeAdmin).handleCreateToken), roles: rolesEnrol, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			EdgeID string `json:"edge_id"`
			SiteID string `json:"site_id"`
			TTL    string `json:"ttl"`
		}
		_ = json.Unmarshal(body, &b) // never the token
		return b.EdgeID, map[string]any{"what": "enrolment_token", "site_id": b.SiteID, "ttl": b.TTL}, ok2xx(status)
	}}},
	"GET /api/v1/evidence/search":                               {serve: on(searchOf, (*evidenceSearch).handleEvidenceSearch), roles: rolesEvidence, auditedBy: "handler: search"},
	"GET /api/v1/evidence/key":                                  {serve: on(evidenceOf, (*evidenceAPI).handleEvidenceKey), roles: rolesAll},
	"POST /api/v1/evidence/requests":                            {serve: on(evidenceOf, (*evidenceAPI).handleCreateEvidenceRequest), roles: rolesExport, auditedBy: "handler: export, refused if not recorded"},
	"GET /api/v1/evidence/requests":                             {serve: on(evidenceOf, (*evidenceAPI).handleEvidenceRequests), roles: rolesEvidence, auditedBy: "handler: view"},
	"GET /api/v1/evidence/requests/{id}":                        {serve: on(evidenceOf, (*evidenceAPI).handleEvidenceRequest), roles: rolesEvidence, auditedBy: "handler: view"},
	"GET /api/v1/evidence/requests/{id}/items/{item}/video.mp4": {serve: on(evidenceOf, (*evidenceAPI).handleEvidenceVideo), roles: rolesEvidence, auditedBy: "handler: download, refused if not recorded"},
	"GET /api/v1/evidence/requests/{id}/bundle.zip":             {serve: on(evidenceOf, (*evidenceAPI).handleEvidenceBundle), roles: rolesEvidence, auditedBy: "handler: download, refused if not recorded"},
	"POST /api/v1/evidence/requests/{id}/share":                 {serve: on(evidenceOf, (*evidenceAPI).handleShareEvidence), roles: rolesExport, auditedBy: "handler: share, refused if not recorded"},
	"GET /api/v1/reports/shift":                                 {serve: on(reportsOf, (*shiftReport).handleShift), roles: rolesReport, audit: viewOf("shift_report", queryTarget("site"), "from", "to", "format")},
	"POST /api/v1/playback/sessions":                            {serve: on(playbackOf, (*playbackAPI).handleCreateSession), roles: rolesWatch, auditedBy: "handler: view (what playback, cameras, from, to) before the session exists, refused if not recorded"},
	"DELETE /api/v1/playback/sessions/{id}":                     {serve: on(playbackOf, (*playbackAPI).handleDeleteSession), roles: rolesWatch},
	"GET /api/v1/playback/sessions/{id}/video":                  {serve: on(playbackOf, (*playbackAPI).handleVideo), roles: rolesWatch, auditedBy: playbackWindows},
	"GET /api/v1/playback/sessions/{id}/timeline":               {serve: on(playbackOf, (*playbackAPI).handleTimeline), roles: rolesWatch, auditedBy: playbackWindows},
	"GET /api/v1/playback/sessions/{id}/overlay":                {serve: on(playbackOf, (*playbackAPI).handleOverlay), roles: rolesWatch, auditedBy: playbackWindows},
	"POST /api/v1/bookmarks":                                    {serve: on(bookmarksOf, (*bookmarksAPI).handleCreateBookmark), roles: rolesWatch, audit: auditRoute{action: actionBookmark, entry: bookmarkAudit}},
	"GET /api/v1/bookmarks":                                     {serve: on(bookmarksOf, (*bookmarksAPI).handleBookmarks), roles: rolesWatch},
	"GET /api/v1/me/layouts":                                    {serve: on(layoutsOf, (*layoutsAPI).handleLayouts), roles: rolesAll},
	"PUT /api/v1/me/layouts":                                    {serve: on(layoutsOf, (*layoutsAPI).handlePutLayouts), roles: rolesAll},
	"GET /api/v1/sensors":                                       {serve: on(sensorsOf, (*sensorsAPI).handleSensors), roles: rolesAll},
	"GET /api/v1/sensors/{edge}/{sensor}/history":               {serve: on(sensorsOf, (*sensorsAPI).handleHistory), roles: rolesAll},
	"GET /api/v1/healthz":                                       {serve: on(statusOf, (*statusAPI).handleHealthz), public: true},
	"GET /metrics":                                              {serve: func(s *Server) http.Handler { return promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}) }, roles: rolesMetrics},
	"POST /api/v1/login":                                        {serve: on(authOf, (*authAPI).handleLogin), public: true, auditedBy: "handler: login and login_failed (serveLoginAudited)"},
	"POST /api/v1/logout": {serve: on(authOf, (*authAPI).handleLogout), roles: rolesAll, audit: auditRoute{action: audit.ActionLogout, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
		p := principalOf(r)
		return "", nil, ok2xx(status) && p != nil && p.sess != nil
	}}},
	"GET /api/v1/session": {serve: on(authOf, (*authAPI).handleSession), roles: rolesAll},
	"GET /api/v1/users":   {serve: on(authOf, (*authAPI).handleUsers), roles: rolesAdmin},
	"POST /api/v1/users": {serve: on(authOf, (*authAPI).handleAddUser), roles: rolesAdmin, audit: auditRoute{action: audit.ActionUserChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
		var b struct {
			Name    string `json:"name"`
			Role    string `json:"role"`
			Replace bool   `json:"replace"`
		}
		_ = json.Unmarshal(body, &b) // never the password
		what := "add"
		if b.Replace {
			what = "replace"
		}
		return b.Name, map[string]any{"what": what, "role": b.Role}, ok2xx(status)
	}}},
	"DELETE /api/v1/users/{name}": {serve: on(authOf, (*authAPI).handleDeleteUser), roles: rolesAdmin, audit: auditRoute{action: audit.ActionUserChange, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
		return r.PathValue("name"), map[string]any{"what": "delete"}, ok2xx(status)
	}}},
	"GET /admin/": {serve: func(*Server) http.Handler { return adminHandler() }, roles: rolesAdmin},
	"GET /api/v1/admin/backup": {serve: on(backupOf, (*backupAPI).handleBackup), roles: rolesAdmin, audit: auditRoute{action: auditActionBackup, before: true, entry: func(r *http.Request, _ int, _ []byte) (string, any, bool) {
		return "central", map[string]any{"what": "backup"}, true
	}}},
	"POST /api/v1/replica/edges/{id}/request": {serve: func(s *Server) http.Handler { return s.policy.replicas.handleRelay(s.edges) }, roles: rolesReplica,
		auditedBy: "the replica the person asked: the route they used (this is that replica relaying to the edge's)"},
	"GET /api/v1/audit":        {serve: on(auditOf, (*auditAPI).handleAudit), roles: rolesAudit},
	"GET /api/v1/audit/verify": {serve: on(auditOf, (*auditAPI).handleAuditVerify), roles: rolesAdmin},
	"GET /":                    {serve: func(*Server) http.Handler { return staticHandler() }, public: true},
}

// routesMux registers the table's routes, each handled by its component,
// and puts the policy in front.
func routesMux(s *Server) (*http.ServeMux, http.Handler) {
	mux := http.NewServeMux()
	for pattern, rt := range routeTable {
		mux.Handle(pattern, rt.serve(s))
	}
	return mux, s.policy.withAuth(mux)
}
