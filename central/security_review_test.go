package central

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/wire"
)

// Tests of the security review's points: who may (re-)enrol an edge, who
// sees an evidence request, the bounds of times given to the API, and the
// edge websocket only on the edge hub.

// pubOf is a credential's public key.
func pubOf(c uplink.Credential) ed25519.PublicKey {
	return ed25519.PrivateKey(c.PrivateKey).Public().(ed25519.PublicKey)
}

// tokenAs asks for an enrolment token as b; it returns the status and,
// on 201, the token.
func tokenAs(t *testing.T, b *browser, edgeID string) (int, string, []byte) {
	t.Helper()
	resp, body := b.do(http.MethodPost, "/api/v1/enrolment-tokens", map[string]string{"edge_id": edgeID, "site_id": siteID})
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	return resp.StatusCode, tr.Token, body
}

// An installer enrols a new edge, but may not issue a token for an edge
// that is enrolled (it would cut the real box off and let whoever holds the
// token act as it); an admin may. A second token an installer made before
// the edge enrolled is refused once the edge has a key, and the real box
// stays connected.
func TestEnrolmentInstallerCannotReplaceAnEnrolledEdge(t *testing.T) {
	s := startServer(t)
	installer := signIn(t, s, "ivan", RoleInstaller)
	admin := signIn(t, s, "root", RoleAdmin)

	status, first, body := tokenAs(t, installer, "gate-east")
	if status != http.StatusCreated {
		t.Fatalf("installer's token for a new edge: %d %s", status, body)
	}
	status, spare, body := tokenAs(t, installer, "gate-east") // made while the edge is still new
	if status != http.StatusCreated {
		t.Fatalf("installer's second token for a new edge: %d %s", status, body)
	}
	cred, err := enrolWith(s, first)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	box := connectEnrolled(t, s, cred)

	status, _, body = tokenAs(t, installer, "gate-east")
	if status != http.StatusForbidden || !strings.Contains(string(body), "only an admin") {
		t.Fatalf("installer's token for an enrolled edge: %d %s, want 403 saying only an admin may", status, body)
	}
	if _, err := enrolWith(s, spare); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("installer's spare token after the edge enrolled: %v, want refused with 409", err)
	}
	box.sendAlert(testAlert("gate-east", "still-the-real-box")) // not cut off (no 4403)
	if !s.Enrolled("gate-east", pubOf(cred)) {
		t.Fatal("the real box's key was replaced")
	}

	status, replacement, body := tokenAs(t, admin, "gate-east")
	if status != http.StatusCreated {
		t.Fatalf("admin's token for an enrolled edge: %d %s", status, body)
	}
	if _, err := enrolWith(s, replacement); err != nil {
		t.Fatalf("re-enrolment with the admin's token: %v", err)
	}
	if ce := box.expectClosed(); ce == nil || ce.Code != wire.CloseRevoked {
		t.Fatalf("the replaced box's connection: %v, want %d", ce, wire.CloseRevoked)
	}
}

// A revoked edge gets no token and cannot enrol (with a token made before
// the revocation either) until an admin un-revokes it; un-revoking forgets
// the revoked box's key unless keep_key, and the edge enrols again with
// revoked_at cleared.
func TestEnrolmentRevokedEdgeNeedsUnrevoke(t *testing.T) {
	s := startServer(t)
	installer := signIn(t, s, "ivan", RoleInstaller)
	admin := signIn(t, s, "root", RoleAdmin)
	stolen := enrol(t, s, "gate-east", siteID)
	early, _, err := s.CreateEnrolmentToken("gate-east", siteID, "root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := admin.do(http.MethodPost, "/api/v1/edges/gate-east/revoke", map[string]string{"reason": "box stolen"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}

	if status, _, body := tokenAs(t, installer, "gate-east"); status != http.StatusForbidden || !strings.Contains(string(body), "only an admin") {
		t.Fatalf("installer's token for a revoked edge: %d %s, want 403", status, body)
	}
	if status, _, body := tokenAs(t, admin, "gate-east"); status != http.StatusConflict || !strings.Contains(string(body), "unrevoke") {
		t.Fatalf("admin's token for a revoked edge: %d %s, want 409 naming unrevoke", status, body)
	}
	if _, err := enrolWith(s, early); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("token made before the revocation: %v, want refused with 403", err)
	}
	var rec EdgeRecord
	getJSON(t, s, "/api/v1/edges/gate-east", &rec)
	if rec.RevokedAt.IsZero() {
		t.Fatalf("the edge is no longer revoked after a refused enrolment: %+v", rec)
	}

	if resp, _ := installer.do(http.MethodPost, "/api/v1/edges/gate-east/unrevoke", map[string]string{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("installer un-revoking: %d, want 403", resp.StatusCode)
	}
	resp, body := admin.do(http.MethodPost, "/api/v1/edges/gate-east/unrevoke", map[string]string{"reason": "replacement box"})
	rec = EdgeRecord{}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rec) != nil || !rec.RevokedAt.IsZero() || len(rec.PublicKey) != 0 {
		t.Fatalf("unrevoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := admin.do(http.MethodPost, "/api/v1/edges/gate-east/unrevoke", map[string]string{}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("unrevoking an edge that is not revoked: %d, want 409", resp.StatusCode)
	}
	if resp, _ := admin.do(http.MethodPost, "/api/v1/edges/nobody/unrevoke", map[string]string{}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unrevoking an unknown edge: %d, want 404", resp.StatusCode)
	}
	// The stolen box's key is gone: its hello is refused.
	ws, _, err := dialEnrolled(s, stolen, stolen.EdgeID)
	if err != nil {
		t.Fatal(err)
	}
	thief := &edgeClient{t: t, ws: ws}
	thief.send(wire.TypeHello, signedHello(stolen, thief.readChallenge()))
	if ce := thief.expectClosed(); ce == nil || ce.Code != wire.CloseUnauthorized {
		t.Fatalf("the revoked box after unrevoke: %v, want %d", ce, wire.CloseUnauthorized)
	}
	ws.Close()

	// Without a key the installer may enrol the replacement box.
	status, tok, body := tokenAs(t, installer, "gate-east")
	if status != http.StatusCreated {
		t.Fatalf("installer's token after unrevoke: %d %s", status, body)
	}
	fresh, err := enrolWith(s, tok)
	if err != nil {
		t.Fatal(err)
	}
	connectEnrolled(t, s, fresh).sendAlert(testAlert("gate-east", "replacement"))
	rec = EdgeRecord{}
	getJSON(t, s, "/api/v1/edges/gate-east", &rec)
	if !rec.RevokedAt.IsZero() || rec.RevokedBy != "" {
		t.Fatalf("re-enrolled edge: %+v", rec)
	}
}

// Every enrolment, re-enrolment, token, revocation and un-revoke is in
// the audit log; the enrolment itself names the edge as its actor.
func TestEnrolmentIsAudited(t *testing.T) {
	s := startServer(t)
	installer := signIn(t, s, "ivan", RoleInstaller)
	admin := signIn(t, s, "root", RoleAdmin)

	_, tok, _ := tokenAs(t, installer, "gate-east")
	first, err := enrolWith(s, tok)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, _ = tokenAs(t, admin, "gate-east")
	second, err := enrolWith(s, tok)
	if err != nil {
		t.Fatal(err)
	}
	admin.do(http.MethodPost, "/api/v1/edges/gate-east/revoke", map[string]string{"reason": "stolen"})
	admin.do(http.MethodPost, "/api/v1/edges/gate-east/unrevoke", map[string]any{"reason": "found", "keep_key": true})

	es := auditEntries(t, s, "")
	wantEntry(t, es, "config_change", "ivan", RoleInstaller, "gate-east", map[string]any{"what": "enrolment_token", "site_id": siteID})
	wantEntry(t, es, "config_change", "root", RoleAdmin, "gate-east", map[string]any{"what": "enrolment_token"})
	wantEntry(t, es, "enrol", "edge:gate-east", "edge", "gate-east", map[string]any{"what": "enrolment", "edge_id": "gate-east",
		"site_id": siteID, "replaced": false, "token_by": "ivan", "key_sha256": keyFingerprint(pubOf(first))})
	wantEntry(t, es, "enrol", "edge:gate-east", "edge", "gate-east", map[string]any{"what": "re-enrolment", "replaced": true,
		"token_by": "root", "key_sha256": keyFingerprint(pubOf(second)), "replaced_key_sha256": keyFingerprint(pubOf(first))})
	wantEntry(t, es, "config_change", "root", RoleAdmin, "gate-east", map[string]any{"what": "revoke", "reason": "stolen"})
	wantEntry(t, es, "config_change", "root", RoleAdmin, "gate-east", map[string]any{"what": "unrevoke", "reason": "found", "keep_key": true})
	// keep_key: the re-enrolled key works again.
	connectEnrolled(t, s, second)
}

// An evidence request is seen by its requester, the users it was shared
// with, supervisors and admins; another liaison gets 404 for it and its
// videos and bundle, exactly as for a request that does not exist, and
// does not see it listed.
func TestEvidenceOwnershipAndSharing(t *testing.T) {
	s := startServer(t)
	ann := signIn(t, s, "ann", RolePolice)
	bob := signIn(t, s, "bob", RolePolice)
	sup := signIn(t, s, "sue", RoleSupervisor)
	guard := signIn(t, s, "gus", RoleGuard)
	r := readyRequest(t, s, "ann")
	paths := []string{
		"/api/v1/evidence/requests/" + r.ID,
		"/api/v1/evidence/requests/" + r.ID + "/items/0/video.mp4",
		"/api/v1/evidence/requests/" + r.ID + "/bundle.zip",
	}
	listed := func(b *browser) bool {
		t.Helper()
		resp, body := b.do(http.MethodGet, "/api/v1/evidence/requests", nil)
		var list struct {
			Requests []EvidenceRequest `json:"requests"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		for _, x := range list.Requests {
			if x.ID == r.ID {
				return true
			}
		}
		return false
	}

	_, missing := bob.do(http.MethodGet, "/api/v1/evidence/requests/ev-no-such-request", nil)
	for _, p := range paths {
		resp, body := bob.do(http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("other liaison: GET %s: %d %s, want 404", p, resp.StatusCode, body)
		}
		if p == paths[0] && strings.ReplaceAll(string(body), r.ID, "X") != strings.ReplaceAll(string(missing), "ev-no-such-request", "X") {
			t.Errorf("another's request answers %s, a missing one %s: existence revealed", body, missing)
		}
	}
	if listed(bob) {
		t.Error("another liaison's request is listed")
	}
	if !listed(ann) || !listed(sup) {
		t.Error("the requester or a supervisor does not see the request listed")
	}
	for _, b := range []*browser{ann, sup} {
		if resp, body := b.do(http.MethodGet, paths[1], nil); resp.StatusCode != http.StatusOK || string(body) != "mp4 bytes" {
			t.Errorf("download by the requester or a supervisor: %d %s", resp.StatusCode, body)
		}
	}

	// Sharing: only the requester or an admin, only with users who may read evidence.
	share := func(b *browser, users ...string) (*http.Response, []byte) {
		return b.do(http.MethodPost, "/api/v1/evidence/requests/"+r.ID+"/share", map[string]any{"users": users})
	}
	if resp, _ := share(bob, "bob"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sharing another's request with oneself: %d, want 404", resp.StatusCode)
	}
	if resp, _ := share(sup, "bob"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("supervisor sharing: %d, want 403", resp.StatusCode)
	}
	if resp, _ := share(guard, "bob"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("guard sharing: %d, want 403", resp.StatusCode)
	}
	if resp, body := share(ann, "nobody"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("sharing with an unknown user: %d %s, want 400", resp.StatusCode, body)
	}
	if resp, body := share(ann, "gus"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("sharing with a guard: %d %s, want 400", resp.StatusCode, body)
	}
	resp, body := share(ann, "Bob")
	var got EvidenceRequest
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || len(got.SharedWith) != 1 || got.SharedWith[0] != "bob" {
		t.Fatalf("share with bob: %d %s", resp.StatusCode, body)
	}
	for _, p := range paths[:2] {
		if resp, body := bob.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("shared liaison: GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	if !listed(bob) {
		t.Error("a shared request is not listed")
	}
	signIn(t, s, "cy", RolePolice)
	if resp, _ := share(bob, "cy"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a shared-with liaison sharing on: %d, want 403", resp.StatusCode)
	}
	es := auditEntries(t, s, "action=share")
	wantEntry(t, es, "share", "ann", RolePolice, r.ID, map[string]any{"users": []any{"bob"}})
}

// A client's times lie between 1970 and a year from now: a range's open
// side clamps (from=0001-… is "from the beginning"), anything else
// outside is a 400 naming the parameter, never a silently empty answer.
func TestQueryTimeBounds(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ancient := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	forever := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, c := range []struct {
		kind    int
		in      time.Time
		want    time.Time
		wantErr bool
	}{
		{timeStart, ancient, minAPITime, false},
		{timeEnd, forever, now.Add(maxAPIFuture), false},
		{timeStart, forever, time.Time{}, true},
		{timeEnd, ancient, time.Time{}, true},
		{timePoint, ancient, time.Time{}, true},
		{timePoint, forever, time.Time{}, true},
		{timePoint, now, now, false},
		{timeStart, minAPITime, minAPITime, false},
	} {
		got, err := boundTime("x", c.kind, c.in, now)
		if (err != nil) != c.wantErr || !got.Equal(c.want) {
			t.Errorf("boundTime(kind %d, %v) = %v, %v; want %v (error %v)", c.kind, c.in, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "x must lie between") {
			t.Errorf("error %q does not name the parameter", err)
		}
	}

	s := startServer(t)
	e := connectEdge(t, s, northID, northToken)
	e.send(wire.TypeEventBatch, wire.EventBatch{ID: "b-1", EdgeID: northID, Events: []wire.Event{{Time: time.Now().Add(-time.Hour), Source: "barrier-a", Kind: "gate.opened"}}})
	e.expectAck("b-1")
	var page struct {
		Events []StoredEvent `json:"events"`
	}
	getJSON(t, s, "/api/v1/events?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", &page)
	if len(page.Events) != 1 {
		t.Errorf("events over all time: %+v, want the one event", page.Events)
	}
	for _, c := range []struct{ path, param string }{
		{"/api/v1/evidence/search?from=0001-01-01T00:00:00Z&to=0001-01-10T00:00:00Z", "to"},
		{"/api/v1/evidence/search?from=9000-01-01T00:00:00Z&to=9000-01-10T00:00:00Z", "from"},
		{"/api/v1/edges/" + northID + "/cameras/cam-1/thumbnail?at=9999-12-31T23:59:59Z", "at"},
		{"/api/v1/edges/" + northID + "/cameras/cam-1/clip?from=2026-01-01T00:00:00Z&to=1900-01-01T00:00:00Z", "to"},
		{"/api/v1/alerts?from=3000-01-01T00:00:00Z", "from"},
		{"/api/v1/events?to=1969-12-31T23:59:59Z", "to"},
		{"/api/v1/audit?from=3000-01-01T00:00:00Z", "from"},
	} {
		var e apiError
		if resp := getJSON(t, s, c.path, &e); resp.StatusCode != http.StatusBadRequest || e.Param != c.param {
			t.Errorf("GET %s: %d %+v, want 400 naming %s", c.path, resp.StatusCode, e, c.param)
		}
	}
	admin := signIn(t, s, "root", RoleAdmin)
	resp, body := admin.do(http.MethodPost, "/api/v1/evidence/requests", map[string]any{"case_number": "C", "reason": "r",
		"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T01:00:00Z", "cameras": []map[string]string{{"edge": northID, "camera": "cam-1"}}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"param":"to"`) {
		t.Errorf("evidence request in year 1: %d %s, want 400 naming to", resp.StatusCode, body)
	}
}

// The edge websocket is only on the TLS edge hub: the console port answers
// 404 to an edge's dial, even with a good bearer token; the hub takes it.
func TestEdgeWebsocketOnlyOnTheHub(t *testing.T) {
	s := startServer(t)
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, resp, err := d.Dial("ws://"+s.Addr()+wire.EdgePath, http.Header{"Authorization": {"Bearer " + northToken}})
	if err == nil {
		ws.Close()
		t.Fatal("the console port accepted an edge websocket")
	}
	if resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("edge dial on the console port: %v %v, want 404", resp, err)
	}
	u := url.URL{Scheme: "http", Host: s.Addr(), Path: wire.EdgePath}
	if r, err := http.Get(u.String()); err != nil || r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET %s: %v %v, want 404", u.String(), r, err)
	} else {
		r.Body.Close()
	}
	connectEdge(t, s, northID, northToken).sendAlert(testAlert(northID, "over-tls")) // the hub, over TLS
}
