// Package kvtest helps tests run stores on a small file system of their
// own, filled by another process, the way a full disk happens on a box.
package kvtest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const envDir = "VIGIL_TMPFS_DIR"

// Tmpfs runs the calling top-level test again in a mount namespace of its
// own (`unshare -m`; without root, in a user namespace too: `unshare -r
// -m`) with a tmpfs of size (e.g. "96m") mounted on a fresh directory.
// Outside it returns inside=false once the namespaced run has passed (the
// caller just returns); inside it returns the mounted directory.
func Tmpfs(t *testing.T, size string) (dir string, inside bool) {
	t.Helper()
	name := strings.SplitN(t.Name(), "/", 2)[0]
	if d := os.Getenv(envDir); d != "" {
		return d, true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("no unshare (util-linux; make deps installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	ns := []string{"-m"}
	if os.Geteuid() != 0 {
		ns = []string{"-r", "-m"} // needs unprivileged user namespaces (Debian's default)
	}
	script := `mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$0" -test.run="$3" -test.v -test.count=1`
	cmd := exec.Command("unshare", append(ns, "--", "sh", "-c", script, exe, size, dir, "^"+regexp.QuoteMeta(name)+"$")...)
	cmd.Env = append(os.Environ(), envDir+"="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("on a %s tmpfs in a mount namespace:\n%s", size, out)
	if err != nil {
		t.Fatalf("namespaced run: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatal("namespaced run did not pass")
	}
	return "", false
}

// Fill writes zeros to path from another process (dd) until the file
// system is full, as a runaway log or download would.
func Fill(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("dd", "if=/dev/zero", "of="+path, "bs=1M").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left") {
		t.Fatalf("dd did not fill the disk: %v\n%s", err, out)
	}
}
