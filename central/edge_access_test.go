package central

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// TestEdgeAccessToken: a signed-in user gets a token for an edge in their
// own name and role, which the edge's check accepts with the key central
// hands out, and which names nobody else, no other edge, and expires.
func TestEdgeAccessToken(t *testing.T) {
	s := startServer(t)
	guard := signIn(t, s, "wang", RoleGuard)
	resp, body := guard.do(http.MethodPost, "/api/v1/edges/"+northID+"/access-tokens", map[string]string{"ttl": "10m"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("access token: %d %s", resp.StatusCode, body)
	}
	var got struct {
		Token   string    `json:"token"`
		User    string    `json:"user"`
		Role    string    `json:"role"`
		Expires time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.User != "wang" || got.Role != RoleGuard || time.Until(got.Expires) > 10*time.Minute || time.Until(got.Expires) < 9*time.Minute {
		t.Errorf("token for %+v", got)
	}
	keys := []ed25519.PublicKey{s.edgeAdmin.accessKey()}
	c, err := wire.VerifyAccessToken(keys, northID, got.Token, time.Now())
	if err != nil || c.User != "wang" || c.Role != RoleGuard {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if _, err := wire.VerifyAccessToken(keys, southID, got.Token, time.Now()); !errors.Is(err, wire.ErrAccessEdge) {
		t.Errorf("token used on another edge: %v", err)
	}
	if _, err := wire.VerifyAccessToken(keys, northID, got.Token, time.Now().Add(11*time.Minute+wire.AccessSkew)); !errors.Is(err, wire.ErrAccessExpired) {
		t.Errorf("expired token: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := wire.VerifyAccessToken([]ed25519.PublicKey{other}, northID, got.Token, time.Now()); !errors.Is(err, wire.ErrAccessSignature) {
		t.Errorf("token checked with another central's key: %v", err)
	}
	// A token cannot be stretched by editing its claims.
	forged := []byte(got.Token)
	forged[len("vigil-access-1.")+3] ^= 1
	if _, err := wire.VerifyAccessToken(keys, northID, string(forged), time.Now()); err == nil {
		t.Error("an edited token verified")
	}

	for _, tc := range []struct {
		path, ttl string
		want      int
	}{
		{"/api/v1/edges/no-such-edge/access-tokens", "", http.StatusNotFound},
		{"/api/v1/edges/" + northID + "/access-tokens", "2h", http.StatusBadRequest},
		{"/api/v1/edges/" + northID + "/access-tokens", "1s", http.StatusBadRequest},
	} {
		if resp, body := guard.do(http.MethodPost, tc.path, map[string]string{"ttl": tc.ttl}); resp.StatusCode != tc.want {
			t.Errorf("%s ttl %q: %d %s, want %d", tc.path, tc.ttl, resp.StatusCode, body, tc.want)
		}
	}
	// Issuing is on the record, never the token itself.
	e := wantEntry(t, auditEntries(t, s, "action="+actionAccess), actionAccess, "wang", RoleGuard, northID, map[string]any{"ttl": "10m"})
	if bytes.Contains(e.Details, []byte(got.Token)) {
		t.Error("the audit log holds the token")
	}
}

// TestEdgeAccessRecordStoredOnce: an edge's report of a video read lands
// in the audit log once, however often the edge re-sends it (it does
// after every reconnect until the ack arrives), and the welcome carries
// the key the edge checks tokens with.
func TestEdgeAccessRecordStoredOnce(t *testing.T) {
	s := startServer(t)
	ws, _, err := dialEdge(s, northToken)
	if err != nil {
		t.Fatal(err)
	}
	e := &edgeClient{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	e.readChallenge()
	e.send(wire.TypeHello, wire.Hello{EdgeID: northID, SiteID: siteID, Software: "test", Time: time.Now().UTC()})
	env := e.read()
	var w wire.Welcome
	if env.Type != wire.TypeWelcome || wire.DecodeBody(env, &w) != nil {
		t.Fatalf("want welcome, got %s", env.Type)
	}
	if !bytes.Equal(w.AccessKey, s.edgeAdmin.accessKey()) {
		t.Fatalf("welcome's access key %x is not central's %x", w.AccessKey, []byte(s.edgeAdmin.accessKey()))
	}
	rec := wire.AccessRecord{ID: "acc-1", EdgeID: northID, Time: time.Now().UTC(), User: "wang", Role: RoleGuard,
		Action: "download", Target: northID + "/cam-gate", Client: "192.0.2.7",
		Details: json.RawMessage(`{"start":"2026-12-07T01:00:00Z","end":"2026-12-07T01:02:00Z"}`)}
	for range 3 {
		e.send(wire.TypeAccess, rec)
		e.expectAckSkipping(rec.ID)
	}
	var n int
	for _, en := range auditEntries(t, s, "action=download") {
		if en.Target == rec.Target {
			n++
			var d map[string]any
			_ = json.Unmarshal(en.Details, &d)
			if en.Actor.User != "wang" || en.Actor.Role != RoleGuard || d["edge"] != northID || d["client"] != "192.0.2.7" || d["via"] != "edge" {
				t.Errorf("entry %+v details %s", en, en.Details)
			}
			req, _ := d["request"].(map[string]any)
			if req["start"] != "2026-12-07T01:00:00Z" || req["end"] != "2026-12-07T01:02:00Z" {
				t.Errorf("the range read is not on the record: %s", en.Details)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d entries for one access sent three times, want 1", n)
	}
	// The same record ID from another edge is another record, but an edge
	// may not speak for another.
	bad := rec
	bad.EdgeID = southID
	e.send(wire.TypeAccess, bad)
	if ce := e.expectClosed(); ce == nil || ce.Code != 1008 {
		t.Errorf("a record for another edge: %v, want close 1008", ce)
	}
}

// expectAckSkipping waits for id's ack, passing over frames central may
// push at any time (audit checkpoints).
func (e *edgeClient) expectAckSkipping(id string) {
	e.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		env := e.read()
		if env.Type != wire.TypeAck {
			continue
		}
		var ack wire.Ack
		if wire.DecodeBody(env, &ack) != nil {
			e.t.Fatalf("bad ack %s", env.Body)
		}
		for _, a := range ack.IDs {
			if a == id {
				return
			}
		}
	}
	e.t.Fatalf("no ack for %s", id)
}

// edgeGet is http.Get on an edge's local API with an access token central
// issues to its admin token, as a tool on the LAN would get one.
func edgeGet(t *testing.T, s *Server, edgeID, u string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/edges/"+edgeID+"/access-tokens", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	var tok struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("access token for %s: %d %v", edgeID, resp.StatusCode, err)
	}
	req, _ = http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return http.DefaultClient.Do(req)
}
