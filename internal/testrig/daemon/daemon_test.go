package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A shell that marks itself ready with a file and then sleeps: Start
// waits for the mark, Stop ends it, Start brings it back, and its output
// is kept across runs.
func TestStartStopRestart(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ready")
	d := New(t, Spec{Name: "sh", Addr: "nowhere", Path: "/bin/sh", Dir: dir,
		Args: []string{"-c", "echo run $$; touch ready; exec sleep 600"},
		Ready: func() error {
			_, err := os.Stat(mark)
			return err
		}})
	d.Start()
	if !d.Running() {
		t.Fatal("not running after Start")
	}
	d.Stop()
	if d.Running() || d.Exited() != nil {
		t.Fatal("running after Stop")
	}
	if err := os.Remove(mark); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	if _, err := os.Stat(mark); err != nil || !d.Running() {
		t.Fatalf("restart did not wait for the program: %v", err)
	}
	d.Kill()
	log := d.Log()
	if strings.Count(log, "--- vigil testrig: starting sh on nowhere") != 2 || strings.Count(log, "run ") != 2 {
		t.Errorf("log of two runs:\n%s", log)
	}
}

// A program that exits by itself reports its exit status.
func TestWaitExitStatus(t *testing.T) {
	d := New(t, Spec{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "echo bye; exit 3"}})
	d.Start()
	if code := d.Wait(); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	if !strings.Contains(d.Log(), "bye") {
		t.Errorf("output not captured:\n%s", d.Log())
	}
	if _, err := Binary("no-such-program-here", "nothing", "a test"); err == nil || !strings.Contains(err.Error(), "apt-get install nothing") {
		t.Errorf("missing binary: %v", err)
	}
	if p, err := FreePort(); err != nil || p == 0 {
		t.Errorf("free port %d: %v", p, err)
	}
}
