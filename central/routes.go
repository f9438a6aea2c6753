package central

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// routeSpec is one row of central's route table: the handler, who may use
// it and what it leaves in the audit log.
type routeSpec struct {
	serve  func(*Server) http.Handler
	public bool     // answers without a credential (nothing sensitive behind it)
	roles  []string // who may, otherwise
	// audit is what the wrapper records (serveAudited); auditedBy says
	// where a handler records its own entries instead (it knows what was
	// found or refused). Neither: the route shows no video, picture or
	// evidence and changes nothing worth an entry.
	audit     auditRoute
	auditedBy string
}

// hf adapts a handler method to the table.
func hf(f func(*Server, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(s, w, r) })
	}
}

// evidenceRoute adapts a handler method of the evidence component
// (evidence_api.go) to the table.
func evidenceRoute(f func(*evidenceAPI, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		api := s.evidence
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(api, w, r) })
	}
}

// edgeAdminRoute adapts a handler method of the edge-administration
// component (enrol.go) to the table.
func edgeAdminRoute(f func(*edgeAdmin, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		ea := s.edgeAdmin
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(ea, w, r) })
	}
}

// authRoute adapts a handler method of the account component (auth.go)
// to the table.
func authRoute(f func(*authAPI, http.ResponseWriter, *http.Request)) func(*Server) http.Handler {
	return func(s *Server) http.Handler {
		a := s.authAPI
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(a, w, r) })
	}
}

// roleScrape is the metrics scrape token's role (central.yaml
// metrics_token_sha256); no console user has it.
const roleScrape = "scrape"

var rolesMetrics = []string{roleScrape, RoleAdmin}

// routeTable is every route of the console port, by ServeMux pattern. The
// server registers exactly these (routesMux); withAuth (auth.go) enforces
// the roles and serveAudited (audit_hooks.go) the audit rule.
// TestAuthRoleMatrix walks it as nobody, with bad credentials and as each
// role. Set in init: the handlers refer back to the server's policy.
var routeTable map[string]routeSpec

func init() {
	routeTable = map[string]routeSpec{
		"GET /api/v1/console/ws":                             {serve: hf((*Server).handleConsoleWS), roles: rolesWatch},
		"GET /api/v1/alerts":                                 {serve: hf((*Server).handleAlerts), roles: rolesWatch},
		"GET /api/v1/alerts/{id}":                            {serve: hf((*Server).handleAlert), roles: rolesWatch, audit: viewOf("alert", pathTarget("id"))},
		"GET /api/v1/alerts/{id}/snapshot.jpg":               {serve: hf((*Server).handleSnapshot), roles: rolesWatch, audit: viewOf("snapshot", pathTarget("id"))},
		"GET /api/v1/alerts/{id}/updates/{uid}/snapshot.jpg": {serve: hf((*Server).handleUpdateSnapshot), roles: rolesWatch, audit: viewOf("snapshot", pathTarget("id", "uid"))},
		"POST /api/v1/alerts/{id}/{action}": {serve: hf((*Server).handleAction), roles: rolesWorkflow, audit: auditRoute{action: audit.ActionWorkflow, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
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
		"GET /api/v1/events":     {serve: hf((*Server).handleEvents), roles: rolesWatch},
		"GET /api/v1/sites":      {serve: hf((*Server).handleSites), roles: rolesAll},
		"GET /api/v1/edges":      {serve: edgeAdminRoute((*edgeAdmin).handleEdges), roles: rolesAll},
		"GET /api/v1/edges/{id}": {serve: edgeAdminRoute((*edgeAdmin).handleEdge), roles: rolesAll},
		"POST /api/v1/edges/{id}/revoke": {serve: edgeAdminRoute((*edgeAdmin).handleRevoke), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
			var b struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(body, &b)
			return r.PathValue("id"), map[string]any{"what": "revoke", "reason": b.Reason}, ok2xx(status)
		}}},
		"POST /api/v1/edges/{id}/unrevoke": {serve: edgeAdminRoute((*edgeAdmin).handleUnrevoke), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
			var b struct {
				Reason  string `json:"reason"`
				KeepKey bool   `json:"keep_key"`
			}
			_ = json.Unmarshal(body, &b)
			return r.PathValue("id"), map[string]any{"what": "unrevoke", "reason": b.Reason, "keep_key": b.KeepKey}, ok2xx(status)
		}}},
		"POST /api/v1/edges/{id}/config": {serve: edgeAdminRoute((*edgeAdmin).handlePushConfig), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
			var b struct {
				Revision string          `json:"revision"`
				Config   json.RawMessage `json:"config"`
			}
			_ = json.Unmarshal(body, &b)
			sum := sha256.Sum256(b.Config)
			return r.PathValue("id"), map[string]any{"what": "config_push", "revision": b.Revision, "config_sha256": hex.EncodeToString(sum[:]), "status": status}, status < 400
		}}},
		"POST /api/v1/edges/{id}/setup/reopen": {serve: edgeAdminRoute((*edgeAdmin).handleSetupReopen), roles: rolesAdmin, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
			return r.PathValue("id"), map[string]any{"what": "setup_reopen"}, ok2xx(status)
		}}},
		"POST /api/v1/edges/{id}/access-tokens": {serve: edgeAdminRoute((*edgeAdmin).handleAccessToken), roles: rolesAll, audit: auditRoute{action: actionAccess, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
			var b struct {
				TTL string `json:"ttl"`
			}
			_ = json.Unmarshal(body, &b) // never the token
			return r.PathValue("id"), map[string]any{"ttl": b.TTL}, ok2xx(status)
		}}},
		"GET /api/v1/edges/{id}/cameras/{camera}/thumbnail": {serve: hf((*Server).handleThumbnail), roles: rolesAll, audit: viewOf("thumbnail", pathTarget("id", "camera"))},
		"GET /api/v1/edges/{id}/cameras/{camera}/clip":      {serve: hf((*Server).handleClip), roles: rolesWatch, audit: viewOf("clip", pathTarget("id", "camera"), "from", "to")},
		"POST /api/v1/edges/{id}/cameras/{camera}/live":     {serve: hf((*Server).handleLive), roles: rolesAll},
		"GET /api/v1/live/{edge}/{camera}/ws": {serve: hf((*Server).handleLiveWS), roles: rolesAll, audit: auditRoute{action: audit.ActionView, soft: true, entry: func(r *http.Request, _ int, _ []byte) (string, any, bool) {
			return r.PathValue("edge") + "/" + r.PathValue("camera"), map[string]any{"what": "live"}, true
		}}},
		"POST /api/v1/enrolment-tokens": {serve: edgeAdminRoute((*edgeAdmin).handleCreateToken), roles: rolesEnrol, audit: auditRoute{action: audit.ActionConfigChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
			var b struct {
				EdgeID string `json:"edge_id"`
				SiteID string `json:"site_id"`
				TTL    string `json:"ttl"`
			}
			_ = json.Unmarshal(body, &b) // never the token
			return b.EdgeID, map[string]any{"what": "enrolment_token", "site_id": b.SiteID, "ttl": b.TTL}, ok2xx(status)
		}}},
		"GET /api/v1/evidence/search":                               {serve: evidenceRoute((*evidenceAPI).handleEvidenceSearch), roles: rolesEvidence, auditedBy: "handler: search"},
		"GET /api/v1/evidence/key":                                  {serve: evidenceRoute((*evidenceAPI).handleEvidenceKey), roles: rolesAll},
		"POST /api/v1/evidence/requests":                            {serve: evidenceRoute((*evidenceAPI).handleCreateEvidenceRequest), roles: rolesExport, auditedBy: "handler: export, refused if not recorded"},
		"GET /api/v1/evidence/requests":                             {serve: evidenceRoute((*evidenceAPI).handleEvidenceRequests), roles: rolesEvidence, auditedBy: "handler: view"},
		"GET /api/v1/evidence/requests/{id}":                        {serve: evidenceRoute((*evidenceAPI).handleEvidenceRequest), roles: rolesEvidence, auditedBy: "handler: view"},
		"GET /api/v1/evidence/requests/{id}/items/{item}/video.mp4": {serve: evidenceRoute((*evidenceAPI).handleEvidenceVideo), roles: rolesEvidence, auditedBy: "handler: download, refused if not recorded"},
		"GET /api/v1/evidence/requests/{id}/bundle.zip":             {serve: evidenceRoute((*evidenceAPI).handleEvidenceBundle), roles: rolesEvidence, auditedBy: "handler: download, refused if not recorded"},
		"POST /api/v1/evidence/requests/{id}/share":                 {serve: evidenceRoute((*evidenceAPI).handleShareEvidence), roles: rolesExport, auditedBy: "handler: share, refused if not recorded"},
		"GET /api/v1/healthz":                                       {serve: hf((*Server).handleHealthz), public: true},
		"GET /metrics":                                              {serve: func(s *Server) http.Handler { return promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}) }, roles: rolesMetrics},
		"POST /api/v1/login":                                        {serve: authRoute((*authAPI).handleLogin), public: true, auditedBy: "handler: login and login_failed (serveLoginAudited)"},
		"POST /api/v1/logout": {serve: authRoute((*authAPI).handleLogout), roles: rolesAll, audit: auditRoute{action: audit.ActionLogout, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
			p := principalOf(r)
			return "", nil, ok2xx(status) && p != nil && p.sess != nil
		}}},
		"GET /api/v1/session": {serve: authRoute((*authAPI).handleSession), roles: rolesAll},
		"GET /api/v1/users":   {serve: authRoute((*authAPI).handleUsers), roles: rolesAdmin},
		"POST /api/v1/users": {serve: authRoute((*authAPI).handleAddUser), roles: rolesAdmin, audit: auditRoute{action: audit.ActionUserChange, entry: func(r *http.Request, status int, body []byte) (string, any, bool) {
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
		"DELETE /api/v1/users/{name}": {serve: authRoute((*authAPI).handleDeleteUser), roles: rolesAdmin, audit: auditRoute{action: audit.ActionUserChange, entry: func(r *http.Request, status int, _ []byte) (string, any, bool) {
			return r.PathValue("name"), map[string]any{"what": "delete"}, ok2xx(status)
		}}},
		"GET /admin/": {serve: func(*Server) http.Handler { return adminHandler() }, roles: rolesAdmin},
		"GET /api/v1/admin/backup": {serve: hf((*Server).handleBackup), roles: rolesAdmin, audit: auditRoute{action: auditActionBackup, before: true, entry: func(r *http.Request, _ int, _ []byte) (string, any, bool) {
			return "central", map[string]any{"what": "backup"}, true
		}}},
		"GET /api/v1/audit":        {serve: hf((*Server).handleAudit), roles: rolesAudit},
		"GET /api/v1/audit/verify": {serve: hf((*Server).handleAuditVerify), roles: rolesAdmin},
		"GET /":                    {serve: func(*Server) http.Handler { return staticHandler() }, public: true},
	}
}

// routesMux registers the table's routes and puts the policy in front.
func (s *Server) routesMux() (*http.ServeMux, http.Handler) {
	mux := http.NewServeMux()
	for pattern, rt := range routeTable {
		mux.Handle(pattern, rt.serve(s))
	}
	return mux, s.withAuth(mux)
}
