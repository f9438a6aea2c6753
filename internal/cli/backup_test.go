package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-perimeter/vigil/central"
)

// `vigil central backup` of a stopped central and `vigil central restore`
// into a fresh data_dir give a central that opens with the same users.
func TestCentralBackupRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	writeConf := func(name, data string) string {
		p := filepath.Join(dir, name)
		conf := "listen: 127.0.0.1:0\ndata_dir: " + data + "\nusers:\n  - name: chief\n    role: admin\n    password_argon2id: " + central.HashPassword("a long enough password") + "\n"
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	orig, copyDir := filepath.Join(dir, "orig"), filepath.Join(dir, "copy")
	origConf, copyConf := writeConf("orig.yaml", orig), writeConf("copy.yaml", copyDir)
	cfg, err := central.LoadConfig(origConf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := central.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	backup := filepath.Join(dir, "b.zip")
	var out, errOut bytes.Buffer
	if code := Main([]string{"central", "backup", "--config", origConf, "--out", backup}, &out, &errOut); code != 0 {
		t.Fatalf("backup: %d: %s", code, errOut.String())
	}
	if code := Main([]string{"central", "backup", "--config", origConf, "--out", backup}, &out, &errOut); code == 0 {
		t.Fatal("backup over an existing file succeeded")
	}
	errOut.Reset()
	if code := Main([]string{"central", "restore", "--config", origConf, "--from", backup}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "not empty") {
		t.Fatalf("restore into the live data_dir: %d %s", code, errOut.String())
	}
	if code := Main([]string{"central", "restore", "--config", copyConf, "--from", backup}, &out, &errOut); code != 0 {
		t.Fatalf("restore: %d: %s", code, errOut.String())
	}
	cfg2, err := central.LoadConfig(copyConf)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := central.New(cfg2, nil)
	if err != nil {
		t.Fatalf("central on the restored data: %v", err)
	}
	s2.Close()
}
