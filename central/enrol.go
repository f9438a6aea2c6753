package central

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// edgeAdmin is the edge-administration component: enrolment tokens and
// enrolment, revoking and un-revoking, the edge list, config pushes,
// reopening an edge's setup, and access tokens for an edge's local API.
// It holds only what those need; New (server.go) builds it.
type edgeAdmin struct {
	reg      *registry       // enrolled and configured edges (registry.go)
	hub      edgeRequester   // the connected edges (edgehub.go)
	pin      []byte          // the edge hub certificate's pin; nil: no edge hub
	township *TownshipConfig // entrances a token may name (nil: any)
	tokenTTL time.Duration   // edge_hub.token_ttl (0: the default)
	key      ed25519.PrivateKey
	rec      actorAuditor
	// allowed reports whether the request's principal has one of roles,
	// answering 401 or 403 if not (auth.go).
	allowed       func(w http.ResponseWriter, r *http.Request, roles ...string) bool
	internalError func(http.ResponseWriter, *http.Request, error)
	enrolments    *prometheus.CounterVec // by result
	rejected      *prometheus.CounterVec // edge connections refused, by reason
	log           *slog.Logger
}

// edgeRequester is what edge administration asks of the edge hub.
type edgeRequester interface {
	statuses() []EdgeStatus
	kick(id string, code int, reason string)
	request(ctx context.Context, edgeID string, req wire.Request) (<-chan wire.Response, func(), error)
}

// actorAuditor records an entry for an explicit actor (audit_hooks.go).
type actorAuditor interface {
	auditAs(r *http.Request, act audit.Actor, action, target string, details any) error
}

// tokenRequest is the body of POST /api/v1/enrolment-tokens.
type tokenRequest struct {
	EdgeID string `json:"edge_id"`
	SiteID string `json:"site_id"`       // the entrance, e.g. lotus/north/wall/gate-a
	TTL    string `json:"ttl,omitempty"` // Go duration, e.g. "30m"; default edge_hub.token_ttl
	Actor  string `json:"actor"`
}

// tokenResponse carries the one-time token; central keeps only its hash.
type tokenResponse struct {
	Token     string    `json:"token"`
	EdgeID    string    `json:"edge_id"`
	SiteID    string    `json:"site_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Pin       string    `json:"pin"`
	Command   string    `json:"command"` // what the installer runs on the edge box
}

// CreateEnrolmentToken makes a one-time token for edgeID at siteID that
// expires after ttl (0: the configured default). It needs an edge hub.
// It acts with an admin's rights: the token may replace the key of an
// enrolled edge; a revoked edge gets none (ErrEdgeRevoked).
func (s *Server) CreateEnrolmentToken(edgeID, siteID, actor string, ttl time.Duration) (string, time.Time, error) {
	return s.edgeAdmin.createEnrolmentToken(edgeID, siteID, actor, true, ttl)
}

// createEnrolmentToken is CreateEnrolmentToken; replace (an admin's token)
// allows a token for an edge that already has a key (ErrEdgeEnrolled).
func (ea *edgeAdmin) createEnrolmentToken(edgeID, siteID, actor string, replace bool, ttl time.Duration) (string, time.Time, error) {
	if ea.pin == nil {
		return "", time.Time{}, errors.New("central has no edge hub (edge_hub.listen); edges enrol over its TLS port")
	}
	if !siteIDPattern.MatchString(edgeID) {
		return "", time.Time{}, errors.New("edge_id must be 1-63 lower-case letters, digits, '.', '_' or '-'")
	}
	if siteID == "" {
		return "", time.Time{}, errors.New("site_id is required")
	}
	if ea.township != nil {
		if tree, _ := buildSiteTree(ea.township); !tree.isEntrance(siteID) {
			return "", time.Time{}, errors.New("site_id must be an entrance of the township (township/village/zone/entrance)")
		}
	}
	if ttl == 0 {
		ttl = ea.tokenTTL
	}
	if ttl == 0 {
		ttl = defaultTokenTTL
	}
	if ttl < time.Minute || ttl > maxTokenTTL {
		return "", time.Time{}, errors.New("ttl must be between 1m and 168h")
	}
	tok, exp, err := ea.reg.createToken(edgeID, siteID, actor, replace, ttl, ea.pin, time.Now())
	if err != nil {
		return "", time.Time{}, err
	}
	ea.log.Info("enrolment token created", "edge_id", edgeID, "site_id", siteID, "by", actor, "expires_at", exp)
	return tok.String(), exp, nil
}

// handleCreateToken serves POST /api/v1/enrolment-tokens (installer, admin).
// Only an admin may issue a token for an edge that is already enrolled
// (it replaces the box's key); a revoked edge gets none until an admin
// un-revokes it.
func (ea *edgeAdmin) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	if !ea.allowed(w, r, rolesEnrol...) {
		return
	}
	var req tokenRequest
	if !readBody(w, r, &req) {
		return
	}
	actor, err := actorOf(r, req.Actor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "actor", err.Error())
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			writeError(w, http.StatusBadRequest, "ttl", "ttl must be a duration such as 30m or 24h")
			return
		}
	}
	isAdmin := principalOf(r).Role == RoleAdmin
	tok, exp, err := ea.createEnrolmentToken(req.EdgeID, req.SiteID, actor, isAdmin, ttl)
	switch {
	case errors.Is(err, ErrEdgeEnrolled) || (errors.Is(err, ErrEdgeRevoked) && !isAdmin):
		writeError(w, http.StatusForbidden, "edge_id", "edge "+req.EdgeID+" is already enrolled or revoked: only an admin may issue a token for it (a token replaces the box's key)")
		return
	case errors.Is(err, ErrEdgeConflict) || errors.Is(err, ErrEdgeRevoked):
		writeError(w, http.StatusConflict, "edge_id", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, tokenResponse{Token: tok, EdgeID: req.EdgeID, SiteID: req.SiteID, ExpiresAt: exp,
		Pin: wire.FormatPin(ea.pin), Command: "vigil edge enroll --central https://<edge hub address> --token " + tok})
}

// handleEnrol serves POST /api/v1/enrol on the edge hub: a new edge trades
// its token for the registration of its public key.
func (ea *edgeAdmin) handleEnrol(w http.ResponseWriter, r *http.Request) {
	var req wire.EnrolRequest
	if !readBody(w, r, &req) {
		return
	}
	refuse := func(status int, msg, why string) {
		ea.enrolments.WithLabelValues("refused").Inc()
		ea.log.Warn("enrolment refused", "remote", r.RemoteAddr, "reason", msg, "detail", why)
		writeError(w, status, "", msg)
	}
	if len(req.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(req.PublicKey, req.SigningBytes(), req.Signature) {
		refuse(http.StatusBadRequest, "public key missing or request not signed with it", "")
		return
	}
	done, why, err := ea.reg.enrol(req, time.Now())
	switch {
	case errors.Is(err, ErrTokenInvalid):
		refuse(http.StatusUnauthorized, err.Error(), why)
		return
	case errors.Is(err, ErrEdgeRevoked):
		refuse(http.StatusForbidden, err.Error(), why)
		return
	case errors.Is(err, ErrEdgeConflict) || errors.Is(err, ErrEdgeEnrolled):
		refuse(http.StatusConflict, err.Error(), why)
		return
	case err != nil:
		ea.internalError(w, r, err)
		return
	}
	rec := done.Record
	// A connection still using an earlier key of this edge ends now.
	ea.hub.kick(rec.ID, wire.CloseRevoked, "edge enrolled again with a new key")
	ea.auditEnrolment(r, done)
	ea.enrolments.WithLabelValues("ok").Inc()
	ea.log.Info("edge enrolled", "edge_id", rec.ID, "site_id", rec.SiteID, "hostname", rec.Hostname, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, wire.EnrolResponse{EdgeID: rec.ID, SiteID: rec.SiteID, Time: time.Now().UTC(), AccessKey: ea.accessKey()})
}

// auditEnrolment records an edge's enrolment. The actor is the edge
// itself (user "edge:<id>", role "edge", as its alerts name it): it is
// the one that redeemed the token, over the edge hub, with no console
// session; who made the token is in the details (token_by), and that
// person's own entry is the token's creation.
func (ea *edgeAdmin) auditEnrolment(r *http.Request, e enrolled) {
	what := "enrolment"
	if e.Replaced {
		what = "re-enrolment"
	}
	d := map[string]any{"what": what, "edge_id": e.Record.ID, "site_id": e.Record.SiteID,
		"key_sha256": keyFingerprint(e.Record.PublicKey), "replaced": e.Replaced, "token_by": e.TokenBy,
		"hostname": e.Record.Hostname}
	if e.Replaced {
		d["replaced_key_sha256"] = e.OldKeySum
	}
	_ = ea.rec.auditAs(r, audit.Actor{User: "edge:" + e.Record.ID, Role: auditRoleEdge}, auditActionEnrol, e.Record.ID, d)
}

// Revoke refuses an edge from now on and closes its open connection.
func (s *Server) Revoke(edgeID, actor, reason string) (EdgeRecord, error) {
	return s.edgeAdmin.revoke(edgeID, actor, reason)
}

// revoke is Revoke.
func (ea *edgeAdmin) revoke(edgeID, actor, reason string) (EdgeRecord, error) {
	rec, err := ea.reg.revoke(edgeID, actor, reason, time.Now())
	if err != nil {
		return rec, err
	}
	ea.rejected.WithLabelValues(rejectRevoked).Inc()
	ea.hub.kick(edgeID, wire.CloseRevoked, "edge revoked")
	ea.log.Warn("edge revoked", "edge_id", edgeID, "by", actor, "reason", reason)
	return rec, nil
}

// handleRevoke serves POST /api/v1/edges/{id}/revoke (admin) with
// {"actor": "...", "reason": "..."}.
func (ea *edgeAdmin) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !ea.allowed(w, r, RoleAdmin) {
		return
	}
	var req struct {
		Actor  string `json:"actor"`
		Reason string `json:"reason"`
	}
	if !readBody(w, r, &req) {
		return
	}
	actor, err := actorOf(r, req.Actor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "actor", err.Error())
		return
	}
	rec, err := ea.revoke(r.PathValue("id"), actor, req.Reason)
	if errors.Is(err, ErrEdgeUnknown) {
		writeError(w, http.StatusNotFound, "", "edge not found")
		return
	}
	if err != nil {
		ea.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// handleUnrevoke serves POST /api/v1/edges/{id}/unrevoke (admin) with
// {"reason": "...", "keep_key": false}: the edge is no longer refused.
// An enrolled edge's key is forgotten unless keep_key (a revocation by
// mistake): the revoked box stays out, and the edge enrols again with a
// token. Answers 409 for an edge that is not revoked.
func (ea *edgeAdmin) handleUnrevoke(w http.ResponseWriter, r *http.Request) {
	if !ea.allowed(w, r, RoleAdmin) {
		return
	}
	var req struct {
		Actor   string `json:"actor"`
		Reason  string `json:"reason"`
		KeepKey bool   `json:"keep_key"`
	}
	if !readBody(w, r, &req) {
		return
	}
	actor, err := actorOf(r, req.Actor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "actor", err.Error())
		return
	}
	prev, rec, err := ea.reg.unrevoke(r.PathValue("id"), req.KeepKey)
	switch {
	case errors.Is(err, ErrEdgeUnknown):
		writeError(w, http.StatusNotFound, "", "edge not found")
		return
	case errors.Is(err, ErrNotRevoked):
		writeError(w, http.StatusConflict, "", err.Error())
		return
	case err != nil:
		ea.internalError(w, r, err)
		return
	}
	ea.log.Warn("edge un-revoked", "edge_id", rec.ID, "by", actor, "reason", req.Reason, "key_kept", len(rec.PublicKey) > 0,
		"revoked_at", prev.RevokedAt, "revoked_by", prev.RevokedBy)
	writeJSON(w, http.StatusOK, rec)
}

// Enrolled reports whether edgeID is enrolled, not revoked, with publicKey.
func (s *Server) Enrolled(edgeID string, publicKey []byte) bool {
	rec, ok := s.reg.get(edgeID)
	return ok && rec.Kind == EdgeEnrolled && len(publicKey) > 0 && s.reg.active(edgeID, publicKey)
}
