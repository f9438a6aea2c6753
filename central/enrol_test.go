package central

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// post sends a JSON body to s with an optional bearer token.
func post(t *testing.T, s *Server, path, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// The admin API hands out a one-time token; an edge spends it once over
// TLS pinned by the token; a second use and an expired token are refused.
func TestEnrolmentTokenIsOneTimeAndExpires(t *testing.T) {
	s := startServer(t)

	if resp, _ := post(t, s, "/api/v1/enrolment-tokens", "", map[string]string{"edge_id": "gate-east", "site_id": siteID, "actor": "ann"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token without admin auth: %d, want 401", resp.StatusCode)
	}
	if resp, _ := post(t, s, "/api/v1/enrolment-tokens", "wrong", map[string]string{"edge_id": "gate-east", "site_id": siteID, "actor": "ann"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token with a wrong admin token: %d, want 401", resp.StatusCode)
	}
	if resp, body := post(t, s, "/api/v1/enrolment-tokens", adminToken, map[string]string{"edge_id": northID, "site_id": siteID, "actor": "ann"}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("token for an edge configured with a bearer token: %d %s, want 409", resp.StatusCode, body)
	}
	resp, body := post(t, s, "/api/v1/enrolment-tokens", adminToken, map[string]string{"edge_id": "gate-east", "site_id": siteID, "actor": "ann", "ttl": "10m"})
	var tr tokenResponse
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &tr) != nil || tr.Token == "" ||
		time.Until(tr.ExpiresAt) < 9*time.Minute || time.Until(tr.ExpiresAt) > 11*time.Minute {
		t.Fatalf("create token: %d %s", resp.StatusCode, body)
	}
	if pin, err := wire.ParsePin(tr.Pin); err != nil || !bytes.Equal(pin, s.EdgePin()) {
		t.Fatalf("token response pin %q is not the edge hub's", tr.Pin)
	}

	cred, err := enrolWith(s, tr.Token)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if cred.EdgeID != "gate-east" || cred.SiteID != siteID || !strings.HasPrefix(cred.Central, "https://") {
		t.Fatalf("credential = %+v", cred)
	}
	if _, err := enrolWith(s, tr.Token); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("second use of a token: %v, want refused with 401", err)
	}

	// A token that expired a minute ago is refused the same way.
	old, _, err := s.reg.createToken("gate-west", siteID, "ann", false, time.Minute, s.EdgePin(), time.Now().Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enrolWith(s, old.String()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v, want refused", err)
	}
	if got := metricValue(t, s, "vigil_central_enrolments_total", "result", "refused"); got != 2 {
		t.Fatalf("enrolments{refused} = %v, want 2", got)
	}

	// The enrolled edge is listed with its enrolment time; the other is not.
	var edges struct{ Edges []EdgeStatus }
	getJSON(t, s, "/api/v1/edges", &edges)
	if n := len(edges.Edges); n != 3 || edges.Edges[2].ID != "gate-east" || edges.Edges[2].Kind != EdgeEnrolled || edges.Edges[2].EnrolledAt.IsZero() {
		t.Fatalf("edges after enrolment: %+v", edges.Edges)
	}
}

// An edge trusts only the central whose key is in its token: a token
// carrying another pin refuses the real central's certificate.
func TestEnrolmentRefusesAnUnpinnedCentral(t *testing.T) {
	s := startServer(t)
	tok, _, err := s.CreateEnrolmentToken("gate-east", siteID, "ann", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := wire.ParseEnrolToken(tok)
	parsed.Pin = bytes.Repeat([]byte{7}, 32)
	if _, err := enrolWith(s, parsed.String()); err == nil || !strings.Contains(err.Error(), "not the pinned") {
		t.Fatalf("enrolment with a foreign pin: %v, want a pin mismatch", err)
	}
	// The token was not spent by the failed attempt.
	if _, err := enrolWith(s, tok); err != nil {
		t.Fatalf("enrolment with the right pin after the refused one: %v", err)
	}
}

func TestEnrolmentNeedsAdminConfigured(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.AdminTokenSHA256 = ""
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := post(t, s, "/api/v1/enrolment-tokens", adminToken, map[string]string{"edge_id": "e", "site_id": siteID, "actor": "ann"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without admin_token_sha256: %d, want 403", resp.StatusCode)
	}
}

// An enrolled edge connects with a signed hello and delivers; its key is
// what identifies it, on every connection.
func TestEnrolledEdgeDelivers(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)
	e := connectEnrolled(t, s, cred)
	e.sendAlert(testAlert("gate-east", "east-1"))
	rec, err := s.store.Get("east-1")
	if err != nil || rec.EdgeID != "gate-east" || rec.State != StateRaised || rec.History[0].Actor != "edge:gate-east" {
		t.Fatalf("stored %+v, %v", rec, err)
	}
	var st EdgeStatus
	getJSON(t, s, "/api/v1/edges/gate-east", &st)
	if !st.Online || st.ConfigRevision != "r1" || st.Software != "test" {
		t.Fatalf("edge status %+v", st)
	}
}

// Someone without the edge's key gets nowhere: an unknown ID is refused
// before the upgrade; a known ID with a hello signed by another key, or not
// signed at all, is closed with 4401 and stores nothing.
func TestImpostorEdgeIsRefused(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)
	thief := enrol(t, s, "gate-thief", siteID) // a real key, but another edge's

	if _, resp, err := dialEnrolled(s, cred, "gate-nobody"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown edge id: resp %v err %v, want 401", resp, err)
	}
	if _, resp, err := dialEnrolled(s, cred, ""); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no edge id: resp %v err %v, want 401", resp, err)
	}

	forged := cred
	forged.PrivateKey = thief.PrivateKey
	tests := []struct {
		name  string
		hello func(nonce []byte) wire.Hello
	}{
		{"signed by another key", func(nonce []byte) wire.Hello { return signedHello(forged, nonce) }},
		{"unsigned", func(nonce []byte) wire.Hello {
			return wire.Hello{EdgeID: cred.EdgeID, SiteID: siteID, Time: time.Now(), Nonce: nonce}
		}},
		{"signature over other fields", func(nonce []byte) wire.Hello {
			h := signedHello(cred, nonce)
			h.Software = "tampered"
			return h
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := dialEnrolled(s, cred, cred.EdgeID)
			if err != nil {
				t.Fatal(err)
			}
			e := &edgeClient{t: t, ws: ws}
			defer ws.Close()
			nonce := e.readChallenge()
			e.send(wire.TypeHello, tc.hello(nonce))
			e.sendRaw(mustMarshal(t, wire.TypeAlert, testAlert(cred.EdgeID, "impostor")))
			if ce := e.expectClosed(); ce == nil || ce.Code != wire.CloseUnauthorized {
				t.Fatalf("close = %v, want %d", ce, wire.CloseUnauthorized)
			}
		})
	}
	if _, err := s.store.Get("impostor"); err == nil {
		t.Fatal("an impostor's alert was stored")
	}
	if got := metricValue(t, s, "vigil_central_edge_rejected_total", "reason", "unauthorized"); got != 5 {
		t.Fatalf("rejected{unauthorized} = %v, want 5", got)
	}
}

// A hello recorded on one connection is worthless on the next: it answers
// the old challenge.
func TestReplayedHelloIsRefused(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)

	ws, _, err := dialEnrolled(s, cred, cred.EdgeID)
	if err != nil {
		t.Fatal(err)
	}
	first := &edgeClient{t: t, ws: ws}
	recorded := signedHello(cred, first.readChallenge())
	first.send(wire.TypeHello, recorded)
	first.welcome(cred.EdgeID)
	ws.Close()

	ws, _, err = dialEnrolled(s, cred, cred.EdgeID)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	replay := &edgeClient{t: t, ws: ws}
	if nonce := replay.readChallenge(); bytes.Equal(nonce, recorded.Nonce) {
		t.Fatal("central repeated a challenge")
	}
	replay.send(wire.TypeHello, recorded)
	ce := replay.expectClosed()
	if ce == nil || ce.Code != wire.CloseUnauthorized || !strings.Contains(ce.Text, "challenge") {
		t.Fatalf("replayed hello: close %v, want %d about the challenge", ce, wire.CloseUnauthorized)
	}
}

// Revoking an edge closes its open connection at once and refuses it from
// then on, for enrolled and bearer-token edges alike; enrolling it again
// with a new key lets the new key in and cuts the old one off.
func TestRevocationIncludingOpenConnection(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)
	east := connectEnrolled(t, s, cred)
	north := connectEdge(t, s, northID, northToken)
	east.sendAlert(testAlert("gate-east", "before-revoke"))

	if resp, _ := post(t, s, "/api/v1/edges/gate-east/revoke", "", map[string]string{"actor": "ann"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoke without admin: %d", resp.StatusCode)
	}
	start := time.Now()
	resp, body := post(t, s, "/api/v1/edges/gate-east/revoke", adminToken, map[string]string{"actor": "ann", "reason": "box stolen"})
	var rec EdgeRecord
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rec) != nil || rec.RevokedBy != bearerActor || rec.RevokedAt.IsZero() {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if ce := east.expectClosed(); ce == nil || ce.Code != wire.CloseRevoked {
		t.Fatalf("open connection after revoke: %v, want %d", ce, wire.CloseRevoked)
	}
	t.Logf("open connection closed %v after the revoke request", time.Since(start).Round(time.Millisecond))
	if _, resp, err := dialEnrolled(s, cred, cred.EdgeID); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked edge reconnecting: resp %v err %v, want 403", resp, err)
	}

	// A bearer-token edge is revoked the same way.
	if resp, _ := post(t, s, "/api/v1/edges/"+northID+"/revoke", adminToken, map[string]string{"actor": "ann"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke north: %d", resp.StatusCode)
	}
	if ce := north.expectClosed(); ce == nil || ce.Code != wire.CloseRevoked {
		t.Fatalf("north after revoke: %v", ce)
	}
	if _, resp, err := dialEdge(s, northToken); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked token edge reconnecting: %v %v", resp, err)
	}
	if resp, _ := post(t, s, "/api/v1/edges/nobody/revoke", adminToken, map[string]string{"actor": "ann"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("revoke unknown: %d", resp.StatusCode)
	}

	// Re-enrolment, after an admin lifted the revocation: the new key works,
	// and a connection on it is cut off if the edge is enrolled yet again.
	if resp, body := post(t, s, "/api/v1/edges/gate-east/unrevoke", adminToken, map[string]string{"reason": "replacement box"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("unrevoke: %d %s", resp.StatusCode, body)
	}
	fresh := enrol(t, s, "gate-east", siteID)
	again := connectEnrolled(t, s, fresh)
	again.sendAlert(testAlert("gate-east", "after-reenrol"))
	if _, _, err := dialEnrolled(s, cred, cred.EdgeID); err != nil {
		t.Fatalf("dial with the old key (refused at hello, not at dial): %v", err)
	}
	newest := enrol(t, s, "gate-east", siteID)
	if ce := again.expectClosed(); ce == nil || ce.Code != wire.CloseRevoked {
		t.Fatalf("connection on a replaced key: %v", ce)
	}
	connectEnrolled(t, s, newest).sendAlert(testAlert("gate-east", "newest"))
	if _, err := s.store.Get("before-revoke"); err != nil {
		t.Fatal("an alert acknowledged before the revocation is gone")
	}
}

// Before an edge has proved who it is, a frame above the hello limit
// closes that connection only.
func TestOversizedHelloClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t)
	cred := enrol(t, s, "gate-east", siteID)
	other := connectEnrolled(t, s, enrol(t, s, "gate-west", siteID))
	ws, _, err := dialEnrolled(s, cred, cred.EdgeID)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	e := &edgeClient{t: t, ws: ws}
	e.readChallenge()
	e.sendRaw(bytes.Repeat([]byte("x"), wire.MaxHelloBytes+1))
	if ce := e.expectClosed(); ce != nil && ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized hello: %v", ce)
	}
	other.sendAlert(testAlert("gate-west", "still-fine"))
}

func mustMarshal(t *testing.T, typ string, body any) []byte {
	t.Helper()
	b, err := wire.Marshal(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
