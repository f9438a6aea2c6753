package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScriptIntoThrowawayRoot runs the real install script against
// a directory prefix: install, upgrade (config kept, previous binary kept)
// and rollback.
func TestInstallScriptIntoThrowawayRoot(t *testing.T) {
	root := t.TempDir()
	// A minimal system: the account databases useradd --prefix edits.
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	for f, body := range map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group":   "root:x:0:\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	v1 := fakeBinary(t, "v1")
	run(t, "edge", "--root", root, "--binary", v1)

	for _, p := range []string{"usr/local/bin/vigil", "etc/vigil/edge.yaml", "etc/systemd/system/vigil-edge.service", "var/lib/vigil"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("missing after install: %s", p)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "vigil:") || !strings.Contains(string(passwd), "/usr/sbin/nologin") {
		t.Errorf("no vigil system user:\n%s", passwd)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/vigil-edge.service"))
	for _, want := range []string{"Restart=always", "User=vigil", "ExecStartPre=/usr/local/bin/vigil edge --check",
		"Type=notify", "WatchdogSec=", "ReadWritePaths=/var/lib/vigil /etc/vigil"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}

	// The edge replaces its own config (revisions): its directory is the
	// service group's to write.
	if st, err := os.Stat(filepath.Join(root, "etc/vigil")); err != nil || st.Mode().Perm() != 0o770 {
		t.Errorf("/etc/vigil mode %v (%v), want 0770 for the edge's revisions", st.Mode().Perm(), err)
	}

	// Upgrade: the installer's edited config survives, v1 is kept.
	conf := filepath.Join(root, "etc/vigil/edge.yaml")
	os.WriteFile(conf, []byte("# edited by the installer\n"), 0o640)
	run(t, "edge", "--root", root, "--binary", fakeBinary(t, "v2"))
	if b, _ := os.ReadFile(conf); string(b) != "# edited by the installer\n" {
		t.Error("upgrade overwrote the config")
	}
	if version(t, root, "vigil") != "v2" || version(t, root, "vigil.prev") != "v1" {
		t.Error("upgrade did not install v2 and keep v1")
	}
	run(t, "rollback", "--root", root)
	if version(t, root, "vigil") != "v1" {
		t.Error("rollback did not restore v1")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("bash", append([]string{"install.sh"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("install.sh %v:\n%s", args, out)
}

func fakeBinary(t *testing.T, v string) string {
	p := filepath.Join(t.TempDir(), "vigil")
	os.WriteFile(p, []byte("#!/bin/sh\necho "+v+"\n"), 0o755)
	return p
}

func version(t *testing.T, root, name string) string {
	out, err := exec.Command(filepath.Join(root, "usr/local/bin", name)).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
