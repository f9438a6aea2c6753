package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// startReplica starts a central on the shared PostgreSQL database url,
// with a data directory of its own and the evidence and audit keys in
// keys, a directory the replicas of a test share (as they must).
func startReplica(t *testing.T, url, keys string) *Server {
	t.Helper()
	cfg := replicaConfig(t, url, keys)
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func replicaConfig(t *testing.T, url, keys string) Config {
	cfg := testConfig(t.TempDir())
	cfg.Store = url
	cfg.EvidenceKeyFile, cfg.AuditKeyFile = filepath.Join(keys, "evidence.key"), filepath.Join(keys, "audit.key")
	return cfg
}

// TestReplicasShareEveryAlertOnceInOrder runs two centrals on one
// PostgreSQL database: edges on either raise alerts at once, and a
// console on each gets every alert exactly once, numbered without a gap,
// whichever central the alert arrived at; a console that connects later
// to either gets the same history.
func TestReplicasShareEveryAlertOnceInOrder(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "replicas")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	onA, onB := dialConsole(t, a, 0), dialConsole(t, b, 0)
	onA.backlog()
	onB.backlog()

	const n = 60
	north, south := connectEdge(t, a, northID, northToken), connectEdge(t, b, southID, southToken)
	var wg sync.WaitGroup
	for _, e := range []struct {
		c  *edgeClient
		id string
	}{{north, northID}, {south, southID}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				e.c.send("alert", testAlert(e.id, fmt.Sprintf("%s-%d", e.id, i)))
			}
		}()
	}
	wg.Wait()
	for _, e := range []struct {
		c  *edgeClient
		id string
	}{{north, northID}, {south, southID}} {
		for i := range n {
			e.c.expectAck(fmt.Sprintf("%s-%d", e.id, i))
		}
	}

	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("%s-%d", northID, i)] = true
		want[fmt.Sprintf("%s-%d", southID, i)] = true
	}
	var orders [][]string
	for name, c := range map[string]*consoleClient{"A": onA, "B": onB} {
		seen := map[string]bool{}
		var order []string
		for seq := uint64(1); seq <= 2*n; seq++ {
			m := c.next()
			if m.Type != "alert" || m.Alert == nil || m.Seq != seq {
				t.Fatalf("console on %s: message %d is %+v, want alert seq %d", name, seq, m, seq)
			}
			if !want[m.Alert.ID] || seen[m.Alert.ID] {
				t.Fatalf("console on %s: alert %s unexpected or twice", name, m.Alert.ID)
			}
			seen[m.Alert.ID] = true
			order = append(order, m.Alert.ID)
		}
		if m, err := c.tryNext(waitFor / 10); err == nil {
			t.Fatalf("console on %s: more than the %d alerts: %+v", name, 2*n, m)
		}
		orders = append(orders, order)
	}
	if fmt.Sprint(orders[0]) != fmt.Sprint(orders[1]) {
		t.Fatalf("the consoles saw different orders:\nA %v\nB %v", orders[0], orders[1])
	}
	for _, s := range []*Server{a, b} {
		later := dialConsole(t, s, 0)
		recs, ready := later.backlog()
		if len(recs) != 2*n || ready != 2*n {
			t.Fatalf("a later console: %d records, ready %d; want %d", len(recs), ready, 2*n)
		}
		for i, r := range recs {
			if r.ID != orders[0][i] {
				t.Fatalf("a later console's history differs at %d: %s, want %s", i, r.ID, orders[0][i])
			}
		}
	}
}

// answerEdge plays the edge's side of north's connection: a thumbnail
// request gets jpeg; live_start gets ok, then an init segment and a
// fragment of live video; anything else not_available.
func answerEdge(t *testing.T, e *edgeClient, jpeg []byte) {
	answer(t, e, func(req wire.Request, send func(wire.Response)) {
		switch req.Method {
		case wire.MethodThumbnail:
			send(wire.Response{Status: wire.StatusOK, ContentType: "image/jpeg", Data: jpeg, Final: true})
		case wire.MethodLiveStart:
			send(wire.Response{Status: wire.StatusOK, Final: true})
			for _, f := range []wire.LiveFrame{
				{Kind: wire.LiveInit, Camera: req.Camera, Codec: "avc1.42e01e", Data: []byte("init")},
				{Kind: wire.LiveFragment, Camera: req.Camera, Key: true, Data: []byte("fragment")},
			} {
				b, _ := wire.MarshalLive(f)
				_ = e.ws.WriteMessage(websocket.BinaryMessage, b)
			}
		default:
			send(wire.Response{Status: wire.StatusNotAvailable, Final: true})
		}
	})
}

// TestReplicasServeAnEdgeFromItsReplica: north is connected to A; a
// thumbnail and a live view asked of B are served by A (B forwards them
// with the admin's identity signed), the view is in the audit log once,
// as the admin's, and a forged identity is refused.
func TestReplicasServeAnEdgeFromItsReplica(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "forward")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	onB := dialConsole(t, b, 0)
	onB.backlog()
	onB.raw = true
	eventually(t, "B to hear the other replicas' edges", b.policy.replicas.hearing.Load)
	north := connectEdge(t, a, northID, northToken)
	// B's consoles hear north come online at A.
	for {
		m := onB.next()
		if m.Type == consoleEdge && m.Edge != nil && m.Edge.ID == northID && m.Edge.Online {
			break
		}
	}
	north.send(wire.TypeHeartbeat, wire.Heartbeat{Time: time.Now().UTC(), Cameras: []wire.CameraStatus{{ID: "cam-1", Name: "Gate lane", Online: true}}})
	jpeg := testJPEG(t)
	answerEdge(t, north, jpeg)

	// B's fleet view shows north online, as A last reported it.
	eventually(t, "B to show north online with its camera", func() bool {
		var st EdgeStatus
		getJSON(t, b, "/api/v1/edges/"+northID, &st)
		return st.Online && len(st.Cameras) == 1 && st.Cameras[0].Name == "Gate lane"
	})

	path := "/api/v1/edges/" + northID + "/cameras/cam-1/thumbnail"
	resp, body := get(t, b, path)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, jpeg) {
		t.Fatalf("thumbnail through B: %d, %d bytes (%.200s); want 200 and the edge's JPEG", resp.StatusCode, len(body), body)
	}

	// What B's components ask of north (a playback window, an evidence
	// piece…) is relayed to A and answered by the edge.
	parts, forget, err := b.edges.request(context.Background(), northID, wire.Request{Method: wire.MethodThumbnail, Camera: "cam-1", At: time.Now().UTC()})
	if err != nil {
		t.Fatalf("B asking north: %v", err)
	}
	select {
	case p := <-parts:
		if p.Status != wire.StatusOK || !p.Final || !bytes.Equal(p.Data, jpeg) {
			t.Fatalf("B asking north: %+v", p)
		}
	case <-time.After(waitFor):
		t.Fatal("B asking north: no answer")
	}
	forget()
	if resp, _ := adminDo(t, a, http.MethodPost, relayPath(northID), wire.Request{Method: wire.MethodThumbnail, Camera: "cam-1", At: time.Now().UTC()}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the relay route as the admin: %d, want 403 (replicas only)", resp.StatusCode)
	}

	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, _, err := d.Dial(fmt.Sprintf("ws://%s/api/v1/live/%s/cam-1/ws", b.Addr(), northID), http.Header{"Authorization": {"Bearer " + adminToken}})
	if err != nil {
		t.Fatalf("live view through B: %v", err)
	}
	defer ws.Close()
	var got []string
	deadline := time.Now().Add(waitFor)
	for len(got) < 2 {
		_ = ws.SetReadDeadline(deadline)
		typ, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("live view through B: %v after %v", err, got)
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		f, err := wire.UnmarshalLive(m)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(f.Data))
	}
	if fmt.Sprint(got) != "[init fragment]" {
		t.Fatalf("live view through B got %v", got)
	}

	// The thumbnail is on A's record once, as the admin's.
	var entries struct {
		Entries []struct {
			Action, Target string
			Actor          struct{ User string }
		}
	}
	getJSON(t, a, "/api/v1/audit?limit=100", &entries)
	n := 0
	for _, e := range entries.Entries {
		if e.Target == northID+"/cam-1" && e.Action == "view" {
			n++
			if e.Actor.User != bearerActor {
				t.Errorf("view entry's actor %q, want %q", e.Actor.User, bearerActor)
			}
		}
	}
	if n != 2 { // the thumbnail and the live view
		t.Errorf("A's audit log holds %d view entries of north/cam-1, want 2: %+v", n, entries.Entries)
	}

	// An identity signed with another key is refused.
	_, other, _ := ed25519.GenerateKey(nil)
	rr := &replicaRouter{key: other}
	id, sig, _ := rr.sign(forwardedIdentity{User: "mallory", Role: RoleAdmin, Method: "GET", URI: path, At: time.Now().UTC()})
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr()+path, nil)
	req.Header.Set(hdrReplicaIdentity, id)
	req.Header.Set(hdrReplicaSignature, sig)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged forwarded identity: %d, want 401", r2.StatusCode)
	}
}

// TestReplicasShareLogins: a guard logged in on A is logged in on B (a
// load balancer may send any request to either), also after A is gone;
// a logout on B ends the session on A at once, as does a new password
// set on A for a session B holds; a user added on A logs in on B.
func TestReplicasShareLogins(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "logins")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	status := func(br *browser) int {
		resp, _ := br.do(http.MethodGet, "/api/v1/session", nil)
		return resp.StatusCode
	}

	onA := signIn(t, a, "night", RoleGuard)
	onB := &browser{t: t, s: b, cookie: onA.cookie}
	if st := status(onB); st != http.StatusOK {
		t.Fatalf("A's session on B: %d, want 200", st)
	}
	if resp, body := onB.do(http.MethodPost, "/api/v1/logout", nil); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout on B: %d %s", resp.StatusCode, body)
	}
	eventually(t, "the session logged out on B to end on A", func() bool { return status(onA) == http.StatusUnauthorized })

	onA = signIn(t, a, "day", RoleGuard)
	onB = &browser{t: t, s: b, cookie: onA.cookie}
	if st := status(onB); st != http.StatusOK {
		t.Fatalf("A's session on B: %d, want 200", st)
	}
	req := map[string]any{"name": "day", "role": RoleGuard, "password": "a brand new password", "replace": true}
	if resp, body := adminDo(t, a, http.MethodPost, "/api/v1/users", req); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("new password on A: %d %s", resp.StatusCode, body)
	}
	eventually(t, "the session B holds to end after a new password on A", func() bool { return status(onB) == http.StatusUnauthorized })
	if br, _ := login(t, b, "day", "a brand new password"); br == nil {
		t.Fatal("the new password set on A does not log in on B")
	}

	// A gone: its sessions go on on B.
	onA = signIn(t, a, "late", RoleSupervisor)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := status(&browser{t: t, s: b, cookie: onA.cookie}); st != http.StatusOK {
		t.Fatalf("a session made on A, after A stopped, on B: %d, want 200", st)
	}
}

// adminDo sends a request with the admin bearer token.
func adminDo(t *testing.T, s *Server, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+s.Addr()+path, bytes.NewReader(j))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// TestReplicasShareTheEdgeRegistry: replicas that share the edge hub
// certificate are one central to an edge: enrolled through A, it
// connects to B; revoked through A, its connection on B is closed and B
// refuses it.
func TestReplicasShareTheEdgeRegistry(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "registry")
	keys := t.TempDir()
	a := startReplica(t, url, keys)
	tls := filepath.Join(a.cfg.DataDir, "tls")
	cfg := replicaConfig(t, url, keys)
	cfg.EdgeHub.CertFile, cfg.EdgeHub.KeyFile = filepath.Join(tls, "edge-hub.crt"), filepath.Join(tls, "edge-hub.key")
	cfg.EdgeHub.SelfSignedHosts = nil
	b := newServer(t, cfg)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}

	cred := enrol(t, a, "gate-east", siteID)
	east := connectEnrolled(t, b, cred)
	east.sendAlert(testAlert("gate-east", "via-b"))
	if _, err := a.alertStore.Get("via-b"); err != nil {
		t.Fatalf("an alert through B, read on A: %v", err)
	}

	resp, body := adminDo(t, a, http.MethodPost, "/api/v1/edges/gate-east/revoke", map[string]string{"reason": "box stolen"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke on A: %d %s", resp.StatusCode, body)
	}
	if ce := east.expectClosed(); ce == nil || ce.Code != wire.CloseRevoked {
		t.Fatalf("the connection on B after a revoke on A: %v, want close %d", ce, wire.CloseRevoked)
	}
	ws, _, err := dialEnrolled(b, cred, cred.EdgeID)
	if err == nil {
		e := &edgeClient{t: t, ws: ws}
		nonce := e.readChallenge()
		e.send(wire.TypeHello, signedHello(cred, nonce))
		if ce := e.expectClosed(); ce == nil {
			t.Fatal("B let the revoked edge in again")
		}
	}
}

// TestReplicasKeepOneAuditChain: what people do through either replica
// is on one audit chain; it verifies (hashes and MACs) through either
// replica and offline, and a replica started with another audit key does
// not start.
func TestReplicasKeepOneAuditChain(t *testing.T) {
	pg := postgres.Start(t)
	url := pg.CreateDB(t, "auditchain")
	keys := t.TempDir()
	a, b := startReplica(t, url, keys), startReplica(t, url, keys)
	var wg sync.WaitGroup
	for i, s := range []*Server{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := signIn(t, s, fmt.Sprintf("guard%d", i), RoleGuard)
			for range 10 {
				br.do(http.MethodGet, "/api/v1/alerts/none/snapshot.jpg", nil) // a view, refused or not, is recorded
				br.do(http.MethodPost, "/api/v1/console/mute", map[string]any{"minutes": 1})
			}
		}()
	}
	wg.Wait()

	var onA, onB AuditVerification
	getJSON(t, a, "/api/v1/audit/verify", &onA)
	getJSON(t, b, "/api/v1/audit/verify", &onB)
	if !onA.OK || !onB.OK || !onA.MACs || onA.Entries != onB.Entries || onA.Head != onB.Head || onA.Entries < 4*11 {
		t.Fatalf("audit verify: on A %+v, on B %+v; want one whole chain with MACs, the same through both", onA, onB)
	}
	var list struct {
		Entries []struct {
			Actor struct{ User string }
		}
	}
	getJSON(t, a, "/api/v1/audit?limit=500", &list)
	users := map[string]bool{}
	for _, e := range list.Entries {
		users[e.Actor.User] = true
	}
	for i := range 4 {
		if !users[fmt.Sprintf("guard%d", i)] {
			t.Errorf("A's audit list lacks guard%d (who used %s)", i, map[bool]string{true: "A", false: "B"}[i%2 == 0])
		}
	}
	off, err := VerifyAuditOffline(context.Background(), a.cfg, nil)
	if err != nil || !off.OK || off.Entries < onA.Entries {
		t.Fatalf("offline verify: %+v, %v", off, err)
	}

	other := replicaConfig(t, url, t.TempDir())
	if s, err := New(other, testLogger()); err == nil {
		s.Close()
		t.Fatal("a replica with another audit key started")
	} else {
		t.Logf("a replica with another audit key: %v", err)
	}
}
