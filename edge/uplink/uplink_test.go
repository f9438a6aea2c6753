package uplink_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/central"
	"github.com/vigil-perimeter/vigil/edge/uplink"
	"github.com/vigil-perimeter/vigil/edge/uplink/linkproxy"
	"github.com/vigil-perimeter/vigil/wire"
)

// An enrolled edge stores its credential 0600, connects over pinned TLS
// with a signed hello (through the same "token" the edge config reads from
// token_file), delivers, and reports its health.
func TestEnrolledEdgeDeliversAndReportsHealth(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	cred := enrolEdge(t, s, "gate-a", "")
	path := filepath.Join(t.TempDir(), "id", "credential.json")
	if err := cred.Save(path); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Fatalf("credential mode %o, want 600", m)
	}
	if m := fileMode(t, filepath.Dir(path)); m != 0o700 {
		t.Fatalf("credential directory mode %o, want 700", m)
	}
	raw, _ := os.ReadFile(path)
	e := startEdge(t, "gate-a", uplink.Config{URL: cred.EdgeURL(), Token: string(raw), ConfigRevision: "rev-3", DataDir: t.TempDir()})
	var ids []string
	for i := range 20 {
		ids = append(ids, e.raise(t, i, wire.Yellow))
	}
	waitUntil(t, "outbox drained", func() bool { return e.box.Len() == 0 })
	if recs := allAlerts(t, s); len(recs) != 20 || recs[0].ID != ids[0] || recs[19].ID != ids[19] {
		t.Fatalf("central has %d alerts", len(recs))
	}
	e.mu.Lock()
	if len(e.acked) != 20 {
		t.Errorf("OnAck saw %d IDs", len(e.acked))
	}
	e.mu.Unlock()

	waitUntil(t, "a heartbeat with health", func() bool {
		var st central.EdgeStatus
		getJSON(t, s, "/api/v1/edges/gate-a", &st)
		return st.Online && st.ConfigRevision == "rev-3" && st.Disk != nil && st.Disk.FreeBytes > 0 && st.CPUPercent >= 0
	})
	if off := e.up.ClockOffset(); off > time.Second || off < -time.Second {
		t.Errorf("clock offset to a central on the same machine: %v", off)
	}
}

// The edge trusts only the pinned key: a credential with another pin never
// connects, and says why.
func TestWrongPinNeverConnects(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	cred := enrolEdge(t, s, "gate-a", "")
	cred.CentralPin = wire.FormatPin(bytes.Repeat([]byte{1}, 32))
	e := startEdge(t, "gate-a", uplink.Config{Credential: &cred})
	e.raise(t, 1, wire.Red)
	waitUntil(t, "a pin error", func() bool { return strings.Contains(e.up.LastError(), "not the pinned") })
	if e.up.Connected() || e.box.Len() != 1 {
		t.Fatalf("connected %v, pending %d", e.up.Connected(), e.box.Len())
	}
	// And the URL must be TLS, and the configured IDs the credential's.
	cred2 := enrolEdge(t, s, "gate-b", "")
	e2 := startEdge(t, "gate-b", uplink.Config{Credential: &cred2, URL: "ws://" + s.Addr() + wire.EdgePath})
	waitUntil(t, "a wss error", func() bool { return strings.Contains(e2.up.LastError(), "wss://") })
	e3 := startEdge(t, "gate-c", uplink.Config{Credential: &cred2})
	waitUntil(t, "an edge_id error", func() bool { return strings.Contains(e3.up.LastError(), "credential is for edge") })
}

// Per-edge order holds whatever the link does: three edges raise alerts
// and updates while every connection is cut again and again; central ends
// up with each item exactly once, in each edge's order.
func TestOrderPerEdgeAcrossCutLinks(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	proxy, err := linkproxy.Start(s.EdgeAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	const perEdge = 150
	var edges []*testEdge
	for _, id := range []string{"gate-a", "gate-b", "gate-c"} {
		cred := enrolEdge(t, s, id, proxy.Addr())
		edges = append(edges, startEdge(t, id, uplink.Config{Credential: &cred, Window: 8}))
	}
	want := map[string][]string{}
	stop := make(chan struct{})
	cutDone := make(chan int)
	go func() {
		cuts := 0
		for {
			select {
			case <-stop:
				cutDone <- cuts
				return
			case <-time.After(40 * time.Millisecond):
				proxy.Drop()
				cuts++
			}
		}
	}()
	for i := range perEdge {
		for _, e := range edges {
			id := e.raise(t, i, []wire.Severity{wire.Red, wire.Yellow}[i%2])
			want[e.id] = append(want[e.id], id)
			if i%10 == 9 {
				up := wire.AlertUpdate{ID: id + "-u", AlertID: id, EdgeID: e.id, Time: time.Now().UTC(), Summary: "updated"}
				if err := e.box.AppendUpdate(up, wire.Red); err != nil {
					t.Fatal(err)
				}
			}
		}
		if i%20 == 0 {
			time.Sleep(15 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	t.Logf("cut every connection %d times while raising", <-cutDone)
	for _, e := range edges {
		waitUntil(t, e.id+" drained", func() bool { return e.box.Len() == 0 })
	}
	got := map[string][]string{}
	for _, r := range allAlerts(t, s) {
		got[r.EdgeID] = append(got[r.EdgeID], r.ID)
		if strings.HasSuffix(r.ID, "9") && (len(r.Updates) != 1 || r.Summary != "updated") {
			t.Errorf("%s: %d updates, summary %q; want the update applied once", r.ID, len(r.Updates), r.Summary)
		}
	}
	for _, e := range edges {
		if strings.Join(got[e.id], " ") != strings.Join(want[e.id], " ") {
			t.Fatalf("%s: central holds %d alerts, not in the edge's order (first %v)", e.id, len(got[e.id]), got[e.id][:min(5, len(got[e.id]))])
		}
	}
}

// Revoking a connected edge cuts it off at once; it keeps queueing
// alerts and keeps being refused.
func TestRevokedWhileConnected(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	cred := enrolEdge(t, s, "gate-a", "")
	e := startEdge(t, "gate-a", uplink.Config{Credential: &cred})
	e.raise(t, 1, wire.Red)
	waitUntil(t, "connected and drained", func() bool { return e.up.Connected() && e.box.Len() == 0 })
	start := time.Now()
	if _, err := s.Revoke("gate-a", "ann", "stolen"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "disconnected", func() bool { return !e.up.Connected() })
	t.Logf("edge off %v after revocation", time.Since(start).Round(time.Millisecond))
	e.raise(t, 2, wire.Red)
	waitUntil(t, "a revocation error", func() bool { return strings.Contains(e.up.LastError(), "revoked") })
	time.Sleep(200 * time.Millisecond)
	if e.up.Connected() || e.box.Len() != 1 {
		t.Fatalf("after revocation: connected %v, pending %d", e.up.Connected(), e.box.Len())
	}
}

// With central gone the edge keeps every alert in its outbox without
// waiting for anything; when central returns each arrives exactly once.
func TestCentralDownThenBack(t *testing.T) {
	dir := t.TempDir()
	s := startCentral(t, dir, "127.0.0.1:0")
	hub := s.EdgeAddr()
	cred := enrolEdge(t, s, "gate-a", "")
	e := startEdge(t, "gate-a", uplink.Config{Credential: &cred})
	e.raise(t, 0, wire.Red)
	waitUntil(t, "first alert delivered", func() bool { return e.box.Len() == 0 })
	s.Close()

	start := time.Now()
	for i := 1; i <= 200; i++ {
		e.raise(t, i, wire.Yellow)
	}
	t.Logf("200 alerts queued in %v with central down", time.Since(start).Round(time.Millisecond))
	if e.up.Connected() {
		t.Fatal("connected to a stopped central")
	}
	s = startCentral(t, dir, hub)
	waitUntil(t, "outbox drained after central returned", func() bool { return e.box.Len() == 0 })
	recs := allAlerts(t, s)
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.ID] {
			t.Fatalf("%s stored twice", r.ID)
		}
		seen[r.ID] = true
	}
	if len(recs) != 201 {
		t.Fatalf("central has %d alerts, want 201", len(recs))
	}
}

// clipRoutes serve a thumbnail and a multi-part clip; live view is routed
// but not available.
func clipRoutes(clip []byte) *uplink.Router {
	r := uplink.NewRouter()
	r.HandleFunc(wire.MethodThumbnail, func(_ context.Context, req wire.Request, out *uplink.Responder) {
		_ = out.Send("image/jpeg", []byte("jpeg-of-"+req.Camera+"-at-"+req.At.Format(time.RFC3339)), true)
	})
	r.HandleFunc(wire.MethodClip, func(_ context.Context, _ wire.Request, out *uplink.Responder) {
		_ = out.Send("video/mp4", clip, true) // split into parts by the responder
	})
	r.Handle(wire.MethodLiveStart, uplink.NotAvailable{})
	return r
}

// Central's requests travel down the edge's own connection: a thumbnail,
// a clip larger than one frame, and "not available" for the rest.
func TestRequestsOverTheUplink(t *testing.T) {
	s := startCentral(t, t.TempDir(), "127.0.0.1:0")
	cred := enrolEdge(t, s, "gate-a", "")
	clip := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16) // 5 MiB: three parts
	e := startEdge(t, "gate-a", uplink.Config{Credential: &cred, Routes: clipRoutes(clip)})
	waitUntil(t, "connected", e.up.Connected)

	get := func(path string) (int, string, []byte) {
		resp := adminGet(t, s, path)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	code, ct, body := get("/api/v1/edges/gate-a/cameras/cam-1/thumbnail?at=2026-11-22T03:00:00Z")
	if code != http.StatusOK || ct != "image/jpeg" || string(body) != "jpeg-of-cam-1-at-2026-11-22T03:00:00Z" {
		t.Fatalf("thumbnail: %d %q %q", code, ct, body)
	}
	code, ct, body = get("/api/v1/edges/gate-a/cameras/cam-1/clip?from=2026-11-22T03:00:00Z&to=2026-11-22T03:01:00Z")
	if code != http.StatusOK || ct != "video/mp4" || !bytes.Equal(body, clip) {
		t.Fatalf("clip: %d %q %d bytes, want %d", code, ct, len(body), len(clip))
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/v1/edges/gate-a/cameras/cam-1/live", strings.NewReader(`{"action":"start"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("live view on an edge without it: %d, want 404 not_available", resp.StatusCode)
	}
	if code, _, _ := get("/api/v1/edges/gate-zz/cameras/cam-1/thumbnail"); code != http.StatusServiceUnavailable {
		t.Fatalf("thumbnail from an offline edge: %d, want 503", code)
	}
	// Alerts still flow while requests are answered.
	e.raise(t, 1, wire.Red)
	waitUntil(t, "alert delivered", func() bool { return e.box.Len() == 0 })
}
