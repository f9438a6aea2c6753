package central

import (
	"archive/zip"
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/kv"
	"github.com/vigil-perimeter/vigil/internal/kv/kvtest"
	"github.com/vigil-perimeter/vigil/wire"
)

// TestStoreDiskFilledByAnotherProcess runs central on a 640 MiB tmpfs
// (the store's default floor of 256 MiB plus a 64 MiB reserve plus
// Badger's preallocated files) that dd fills. Central keeps storing and
// acknowledging what edges send, from the reserve; a guard's
// acknowledgement is refused and leaves the alert as it was; a restart on
// the full disk works; once even the reserve is spent an edge's alert is
// not acknowledged (the edge keeps it) and a new store refuses to open
// with a DiskFullError instead of SIGBUS; once the fillers are deleted
// everything is written again.
func TestStoreDiskFilledByAnotherProcess(t *testing.T) {
	root, inside := kvtest.Tmpfs(t, "640m")
	if !inside {
		return
	}
	dir := filepath.Join(root, "central")
	cfg := testConfig(dir)
	s := newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.met.watchDisk(s.store.Disk) // what New does once server.go wires it
	if v := metricValue(t, s, "vigil_central_disk_refused_total"); v != 0 {
		t.Fatalf("refused before the disk filled: %v", v)
	}
	if v := metricValue(t, s, "vigil_central_disk_free_bytes"); v < DefaultMinFree {
		t.Fatalf("free bytes on an empty disk: %v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, kv.ReserveFile)); err != nil {
		t.Fatalf("no reserve on an empty disk: %v", err)
	}
	guard := signIn(t, s, "ann", RoleGuard)
	edge := connectEdge(t, s, northID, northToken)
	a1 := testAlert(northID, "a-1")
	a1.Snapshot = testJPEG(t)
	edge.sendAlert(a1)

	filler := filepath.Join(root, "filler")
	kvtest.Fill(t, filler)
	// The floor trusts a reading under a second old while far from the
	// floor; a box's disk does not fill in less.
	if st, err := s.store.Disk(); err != nil || !st.Full || st.ReserveHeld {
		t.Fatalf("filled disk: %+v %v", st, err)
	}

	// An edge's alert, of any severity, is stored and acknowledged.
	a2 := testAlert(northID, "a-2")
	a2.Severity = wire.Yellow
	a2.Snapshot = testJPEG(t)
	edge.sendAlert(a2)
	if rec, err := s.store.Get("a-2"); err != nil || rec.Severity != wire.Yellow {
		t.Fatalf("a-2 on a full disk: %+v %v", rec, err)
	}
	edge.send(wire.TypeAlertUpdate, wire.AlertUpdate{ID: "u-1", AlertID: "a-2", EdgeID: northID,
		Time: time.Now().UTC(), Severity: wire.Red, Summary: "now in the yard"})
	edge.expectAck("u-1")

	// A guard's step is refused, naming the disk, and changes nothing.
	resp, body := guard.do(http.MethodPost, "/api/v1/alerts/a-1/acknowledge", map[string]string{"note": "on my way"})
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "disk") {
		t.Fatalf("acknowledge on a full disk: %d %s, want 507 naming the disk", resp.StatusCode, body)
	}
	t.Logf("acknowledge on a full disk: %d %s", resp.StatusCode, body)
	if rec, _ := s.store.Get("a-1"); rec.State != StateRaised {
		t.Fatalf("a-1 changed on a full disk: %s", rec.State)
	}
	act := &op{action: &Action{Name: ActionAcknowledge, Actor: "ann"}, alertID: "a-1"}
	if _, err := s.store.apply([]*op{act}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var dfe *kv.DiskFullError
	if !errors.Is(act.err, kv.ErrDiskFull) || !errors.As(act.err, &dfe) || dfe.Dir != dir || act.committed {
		t.Fatalf("action on a full disk: %v", act.err)
	}
	if v := metricValue(t, s, "vigil_central_disk_refused_total"); v < 2 {
		t.Fatalf("refusals counted: %v", v)
	}
	if v := metricValue(t, s, "vigil_central_disk_below_floor"); v != 1 {
		t.Fatalf("below floor: %v", v)
	}

	// A restart on the full disk: Badger maps fresh files on open.
	edge.ws.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newServer(t, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	edge = connectEdge(t, s, northID, northToken)
	edge.sendAlert(testAlert(northID, "a-3"))
	guard = signInAgain(t, s, "ann")

	// Spend the reserve too: the edge's alert is not acknowledged, so
	// it stays in the edge's outbox; a new store refuses to open.
	filler2 := filepath.Join(root, "filler2")
	kvtest.Fill(t, filler2)
	if st, err := s.store.Disk(); err != nil || !st.Full || st.Free >= DefaultReserve/4 {
		t.Fatalf("reserve spent: %+v %v", st, err)
	}
	edge.send(wire.TypeAlert, testAlert(northID, "a-4"))
	if ce := edge.expectClosed(); ce == nil {
		t.Log("connection ended without a close frame")
	}
	if _, err := s.store.Get("a-4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a-4 with the reserve spent: %v", err)
	}
	_, err := OpenStoreWith(StoreOptions{Dir: filepath.Join(root, "other"), Log: testLogger(), MinFree: 16 << 20, Reserve: 8 << 20})
	if !errors.Is(err, kv.ErrDiskFull) || !errors.As(err, &dfe) {
		t.Fatalf("opening a store with no room at all: %v", err)
	}
	t.Logf("refused to open: %v", err)

	// Space back: the edge's re-send is stored, the guard's step too.
	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	edge = connectEdge(t, s, northID, northToken)
	edge.sendAlert(testAlert(northID, "a-4"))
	if _, err := s.store.Get("a-4"); err != nil {
		t.Fatalf("a-4 once space is back: %v", err)
	}
	resp, body = guard.do(http.MethodPost, "/api/v1/alerts/a-1/acknowledge", map[string]string{"note": "on my way"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledge once space is back: %d %s", resp.StatusCode, body)
	}
	st, err := s.store.Disk()
	if err != nil || st.Full || !st.ReserveHeld {
		t.Fatalf("disk once space is back: %+v %v", st, err)
	}
}

// signInAgain logs in as a user added before a restart.
func signInAgain(t *testing.T, s *Server, name string) *browser {
	t.Helper()
	b, resp := login(t, s, name, "password-of-"+name)
	if b == nil {
		t.Fatalf("login %s: %d", name, resp.StatusCode)
	}
	return b
}

// TestBackupLeavesOutDiskReserve: the floor's reserve is empty space, not
// data: a backup does not carry it and a restore does not bring it back.
func TestBackupLeavesOutDiskReserve(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStoreWith(StoreOptions{Dir: dir, Log: testLogger(), MinFree: 1 << 20, Reserve: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(testAlert(northID, "a-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, kv.ReserveFile)); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	zipPath := filepath.Join(t.TempDir(), "backup.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBackup(st.db, dir, "", f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st.Close()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range zr.File {
		if path.Base(e.Name) == kv.ReserveFile {
			t.Fatalf("backup holds %s", e.Name)
		}
	}
	zr.Close()
	restored := filepath.Join(t.TempDir(), "restored")
	if err := RestoreBackup(zipPath, restored, filepath.Join(t.TempDir(), "audit.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(restored, kv.ReserveFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reserve restored: %v", err)
	}
	st, err = OpenStore(restored, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get("a-1"); err != nil {
		t.Fatalf("restored alert: %v", err)
	}
}
