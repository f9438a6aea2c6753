package central

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A backup taken from a running central restores into a new directory
// from which central starts with the same alerts, users and edge hub
// certificate (the one enrolled edges pinned).
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, testConfig(dir))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	admin := signIn(t, s, "root", RoleAdmin)
	edge := connectEdge(t, s, northID, northToken)
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		edge.sendAlert(testAlert(northID, id))
	}
	guard := signIn(t, s, "night-guard", RoleGuard)
	if resp, _ := guard.do(http.MethodGet, "/api/v1/admin/backup", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("guard: backup: %d, want 403", resp.StatusCode)
	}
	resp, body := admin.do(http.MethodGet, "/api/v1/admin/backup", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("backup: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("backup is not a zip: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if strings.HasSuffix(f.Name, ".vlog") || strings.HasSuffix(f.Name, ".sst") || strings.HasSuffix(f.Name, "LOCK") {
			t.Errorf("backup copies Badger's file %s instead of its backup stream", f.Name)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "files/tls/edge-hub.crt") || names[0] != backupStore {
		t.Fatalf("backup holds %v", names)
	}
	crt, err := os.ReadFile(filepath.Join(dir, "tls", "edge-hub.crt"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.zip")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}

	// Restoring over a directory in use is refused.
	if err := RestoreBackup(file, dir, AuditKeyPath(testConfig(dir))); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over the live store: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if err := RestoreBackup(file, restored, AuditKeyPath(testConfig(restored))); err != nil {
		t.Fatal(err)
	}
	// The audit key came back with the store: the log verifies, MACs and all.
	if key, err := os.ReadFile(AuditKeyPath(testConfig(restored))); err != nil || len(key) == 0 {
		t.Fatalf("audit key not restored: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(restored, "tls", "edge-hub.crt"))
	if err != nil || !bytes.Equal(got, crt) {
		t.Fatalf("edge hub certificate not restored as it was: %v", err)
	}
	r := newServer(t, testConfig(restored))
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		if _, err := r.store.Get(id); err != nil {
			t.Errorf("alert %s after restore: %v", id, err)
		}
	}
	if b, resp := login(t, r, "root", "password-of-root"); b == nil {
		t.Errorf("admin login after restore: %d", resp.StatusCode)
	}
	var v AuditVerification
	if resp := getJSON(t, r, "/api/v1/audit/verify", &v); resp.StatusCode != http.StatusOK || !v.OK || !v.MACs || v.Entries == 0 {
		t.Errorf("audit log after restore: %d %+v", resp.StatusCode, v)
	}
}

// A file that is not a backup is refused with a clear error and writes
// nothing.
func TestRestoreRefusesForeignZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("../../etc/passwd")
	io.WriteString(w, "x")
	zw.Close()
	file := filepath.Join(t.TempDir(), "evil.zip")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "d")
	err := RestoreBackup(file, dst, filepath.Join(t.TempDir(), "audit.key"))
	if err == nil || !strings.Contains(err.Error(), "not a Vigil central backup") {
		t.Fatalf("foreign zip: %v", err)
	}
}
