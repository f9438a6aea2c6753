package central

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/central/audit"
	"github.com/vigil-perimeter/vigil/wire"
)

// Access to an edge's local API (ARCHITECTURE.md, "Edge local API"):
// central signs a short-lived token for one edge, naming the console user
// and role that asked; the edge checks it with central's public key and
// reports every video or picture read back through its outbox, which
// lands here in the audit log once per record.

const (
	accessTokenTTL = 15 * time.Minute // default lifetime of an edge access token
	actionAccess   = "access_token"   // audit action: a token was issued
)

// handleAccessToken serves POST /api/v1/edges/{id}/access-tokens
// {"ttl":"15m"}: a token for the caller's own name and role on that edge.
func (ea *edgeAdmin) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	id := r.PathValue("id")
	rec, ok := ea.reg.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "id", "no edge "+id)
		return
	}
	if rec.Revoked() {
		writeError(w, http.StatusConflict, "id", "edge "+id+" is revoked")
		return
	}
	var body struct {
		TTL string `json:"ttl"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "", "body: want {\"ttl\":\"15m\"}")
			return
		}
	}
	ttl := accessTokenTTL
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d < time.Minute || d > wire.MaxAccessTokenTTL {
			writeError(w, http.StatusBadRequest, "ttl", fmt.Sprintf("ttl must be a duration from 1m to %s", wire.MaxAccessTokenTTL))
			return
		}
		ttl = d
	}
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	now := time.Now().UTC()
	c := wire.AccessClaims{EdgeID: id, User: p.Name, Role: p.Role, Issued: now, Expires: now.Add(ttl), Nonce: hex.EncodeToString(nonce[:])}
	tok, err := wire.SignAccessToken(ea.key, c)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "edge_id": id, "user": c.User, "role": c.Role,
		"expires_at": c.Expires, "nonce": c.Nonce})
}

// accessKey is the public key edges check access tokens and audit
// checkpoints with: central's evidence key.
func (ea *edgeAdmin) accessKey() ed25519.PublicKey {
	return ea.key.Public().(ed25519.PublicKey)
}

// recordEdgeAccess stores an edge's access record in the audit log once,
// however often the edge re-sends it. The actor is who the edge says its
// credential named; the entry says which edge vouched for it.
func (au *auditor) recordEdgeAccess(edgeID string, a wire.AccessRecord) error {
	if au == nil {
		return fmt.Errorf("central: no audit log")
	}
	d := map[string]any{"via": "edge", "edge": edgeID, "record": a.ID, "edge_time": a.Time.UTC().Format(time.RFC3339Nano)}
	if a.Client != "" {
		d["client"] = a.Client
	}
	if len(a.Details) > 0 {
		d["request"] = a.Details
	}
	details, err := json.Marshal(d)
	if err != nil {
		return err
	}
	target := a.Target
	if target == "" {
		target = edgeID
	}
	_, appended, err := au.log.AppendOnce("edge-access/"+edgeID+"/"+a.ID, audit.Entry{
		Actor: audit.Actor{User: a.User, Role: a.Role}, Action: a.Action, Target: target, Details: details,
	})
	if err != nil {
		au.failures.WithLabelValues(a.Action).Inc()
		return err
	}
	if appended {
		au.entries.WithLabelValues(a.Action).Inc()
	}
	return nil
}

// handleAccess takes an access record from the edge: stored (or found
// stored) before it is acknowledged.
func (c *edgeReader) handleAccess(env wire.Envelope) bool {
	var a wire.AccessRecord
	if err := wire.DecodeBody(env, &a); err != nil {
		c.reject(rejectFrame, websocket.CloseUnsupportedData, err.Error())
		return false
	}
	if err := a.Validate(); err != nil {
		c.reject(rejectAlert, websocket.CloseUnsupportedData, fmt.Sprintf("access %q rejected: %v", a.ID, err))
		return false
	}
	if a.EdgeID != c.edge.ID {
		c.reject(rejectEdgeMismatch, websocket.ClosePolicyViolation, fmt.Sprintf("access %s claims edge %q but this connection is edge %q", a.ID, a.EdgeID, c.edge.ID))
		return false
	}
	if c.h.onAccess == nil {
		c.stop(websocket.CloseInternalServerErr, "central keeps no audit log; retry later")
		return false
	}
	if err := c.h.onAccess(c.edge.ID, a); err != nil {
		c.log.Error("edge access record not stored; the edge re-sends it", "id", a.ID, "err", err)
		c.stop(websocket.CloseInternalServerErr, "central could not store the item; retry later")
		return false
	}
	c.acks.add(a.ID)
	return true
}
