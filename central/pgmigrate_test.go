package central

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/postgres"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestMigrateBadgerToPostgres moves a single-machine central with alerts
// (snapshots, updates, a resolved one, events), users, a signed-in guard,
// an enrolled edge and an unspent token, and its audit chain, to
// PostgreSQL; a central started there sees the same alerts, change log
// and snapshots, the guard stays signed in, the edge connects, numbering
// goes on, and the audit chain verifies as the same chain. A second
// migration into the same database is refused.
func TestMigrateBadgerToPostgres(t *testing.T) {
	keys := t.TempDir()
	cfg := testConfig(t.TempDir())
	cfg.AuditKeyFile, cfg.EvidenceKeyFile = filepath.Join(keys, "audit.key"), filepath.Join(keys, "evidence.key")
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e := connectEdge(t, s, northID, northToken)
	jpeg := testJPEG(t)
	for i := 1; i <= 5; i++ {
		a := testAlert(northID, fmt.Sprintf("m-%d", i))
		a.Snapshot = jpeg
		e.sendAlert(a)
	}
	now := time.Now()
	upd := wire.AlertUpdate{ID: "m-1-u1", AlertID: "m-1", EdgeID: northID, Time: now, Summary: "still there", Snapshot: jpeg, SnapshotTime: now}
	ev := wire.EventBatch{ID: "batch-1", EdgeID: northID, Events: []wire.Event{{Time: now, Source: "gate-1", Kind: "gate.opened"}, {ID: "ev-2", Time: now, Source: "gate-1", Kind: "gate.closed"}}}
	if _, err := s.store.apply([]*op{{update: &upd}, {events: &ev, site: siteID}}, now); err != nil {
		t.Fatal(err)
	}
	guard := signIn(t, s, "gina", RoleGuard)
	if resp, body := guard.do(http.MethodPost, "/api/v1/alerts/m-2/resolve", map[string]string{"note": "a cat"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	// The console's and the sensors' stores.
	e.send(wire.TypeHeartbeat, namedHeartbeat("r1", "Lane in", "Barrier arm"))
	sensorStart := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	e.send(wire.TypeSensorBatch, wire.SensorBatch{ID: "sb-1", Points: readings("gas-kitchen", sensorStart, 10*time.Second, 1, 2, 3)})
	e.expectAck("sb-1")
	if resp, body := guard.do(http.MethodPost, "/api/v1/bookmarks", map[string]any{"edge": northID, "camera": "cam-a", "at": now.Add(-time.Minute), "note": "the van"}); resp.StatusCode/100 != 2 {
		t.Fatalf("bookmark: %d %s", resp.StatusCode, body)
	}
	walls := Layouts{Layouts: []Layout{{Name: "Gates", Grid: 4, Tiles: []string{northID + "/cam-a", ""}}}, Current: "Gates"}
	if resp, body := guard.do(http.MethodPut, "/api/v1/me/layouts", walls); resp.StatusCode/100 != 2 {
		t.Fatalf("layouts: %d %s", resp.StatusCode, body)
	}
	eventually(t, "the device names stored", func() bool { return s.edges.names.name(northID, "", DeviceCamera, "cam-a") == "Lane in" })
	// A retrieved video (its request and file), as the retrieval leaves them.
	video := bytes.Repeat([]byte("mp4 "), 3<<20) // 12 MiB: several pieces
	evr := EvidenceRequest{ID: "ev-moved", CaseNumber: "2026-3", Reason: "moved", Requester: "admin-token", RequesterRole: RoleAdmin,
		From: now.Add(-time.Hour), To: now, CreatedAt: now, Status: RetrievalReady,
		Items: []RetrievalItem{{Edge: northID, Camera: "cam-a", Status: RetrievalReady, File: "evidence/ev-moved/north--cam-a.mp4", ReadyAt: now}}}
	if err := s.retr.add(evr); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "evidence", "ev-moved"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, evr.Items[0].File), video, 0o600); err != nil {
		t.Fatal(err)
	}
	cred := enrol(t, s, "gate-east", siteID)
	if _, _, err := s.CreateEnrolmentToken("gate-west", siteID, "test-admin", time.Hour); err != nil {
		t.Fatal(err)
	}
	var before []Record
	before, _, _ = s.store.Query(AlertQuery{Limit: 100})
	v := s.store.readView()
	frames, _ := v.changes(0, v.last(), 100)
	lastSeq := v.last()
	v.Discard()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	pg := postgres.Start(t)
	url := pg.CreateDB(t, "moved")
	rep, err := MigrateToPostgres(context.Background(), cfg, url, testLogger())
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Logf("moved: %+v", rep)
	if rep.Bookmarks != 1 || rep.Layouts != 1 || rep.DeviceLists != 1 || rep.SensorReadings != 3 || rep.SensorMinutes != 1 ||
		rep.EvidenceRequests != 1 || rep.EvidenceFiles != 1 || rep.EvidenceBytes != int64(len(video)) {
		t.Fatalf("migration report (console and sensor stores): %+v", rep)
	}
	if rep.Alerts != 5 || rep.Changes != int(lastSeq) || rep.Snapshots != 6 || rep.Events != 2 || rep.Users != 1 ||
		rep.Sessions != 1 || rep.Edges < 1 || rep.Tokens != 2 || rep.AuditBefore.Entries == 0 ||
		rep.AuditAfter.Entries != rep.AuditBefore.Entries || rep.AuditAfter.Head != rep.AuditBefore.Head || !rep.AuditAfter.MACs {
		t.Fatalf("migration report: %+v", rep)
	}

	moved := cfg
	moved.Store = url
	p := newServer(t, moved)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	after, _, err := p.alertStore.Query(AlertQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if b1, b2 := mustJSON(t, before), mustJSON(t, after); !bytes.Equal(b1, b2) {
		t.Fatalf("alerts after the move differ:\n%s\n%s", b1, b2)
	}
	v = p.alertStore.readView()
	moveFrames, _ := v.changes(0, v.last(), 100)
	v.Discard()
	if !slices.EqualFunc(frames, moveFrames, func(a, b consoleFrame) bool { return a.seq == b.seq && bytes.Equal(a.data, b.data) }) {
		t.Fatalf("the change log after the move differs: %d frames, want %d", len(moveFrames), len(frames))
	}
	if got, err := p.alertStore.Snapshot("m-3"); err != nil || !bytes.Equal(got, jpeg) {
		t.Fatalf("snapshot after the move: %d bytes, %v", len(got), err)
	}
	if got, err := p.alertStore.UpdateSnapshot("m-1", "m-1-u1"); err != nil || !bytes.Equal(got, jpeg) {
		t.Fatalf("update snapshot after the move: %d bytes, %v", len(got), err)
	}
	if evs, _, err := p.alertStore.Events(EventQuery{Limit: 10}); err != nil || len(evs) != 2 {
		t.Fatalf("events after the move: %+v, %v", evs, err)
	}
	if resp, _ := (&browser{t: t, s: p, cookie: guard.cookie}).do(http.MethodGet, "/api/v1/session", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the guard's session after the move: %d", resp.StatusCode)
	}
	asGuard := &browser{t: t, s: p, cookie: guard.cookie}
	if h := sensorHistory(t, asGuard, northID, "gas-kitchen", sensorStart, sensorStart.Add(time.Hour)); len(h.Points) != 3 {
		t.Fatalf("sensor history after the move: %+v", h)
	}
	if resp, body := asGuard.do(http.MethodGet, "/api/v1/bookmarks?edge="+northID, nil); resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("the van")) {
		t.Fatalf("bookmarks after the move: %d %s", resp.StatusCode, body)
	}
	if resp, body := asGuard.do(http.MethodGet, "/api/v1/me/layouts", nil); resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"Gates"`)) {
		t.Fatalf("layouts after the move: %d %s", resp.StatusCode, body)
	}
	if resp, got := get(t, p, "/api/v1/evidence/requests/ev-moved/items/0/video.mp4"); resp.StatusCode != http.StatusOK || !bytes.Equal(got, video) {
		t.Fatalf("the moved evidence video: %d, %d bytes; want %d", resp.StatusCode, len(got), len(video))
	}
	if n := p.edges.names.name(northID, "", DeviceCamera, "cam-a"); n != "Lane in" {
		t.Fatalf("device name after the move: %q", n)
	}
	east := connectEnrolled(t, p, cred)
	east.sendAlert(testAlert("gate-east", "after-move"))
	if r, err := p.alertStore.Get("after-move"); err != nil || r.Seq != lastSeq+1 {
		t.Fatalf("a new alert after the move: %+v, %v; want seq %d", r, err, lastSeq+1)
	}
	var ver AuditVerification
	getJSON(t, p, "/api/v1/audit/verify", &ver)
	if !ver.OK || !ver.MACs || ver.Entries < rep.AuditBefore.Entries {
		t.Fatalf("audit verify after the move: %+v", ver)
	}
	if _, err := MigrateToPostgres(context.Background(), cfg, url, testLogger()); err == nil {
		t.Fatal("a second migration into the same database was not refused")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
