// Package e2e holds Vigil's end-to-end tests. The Go tests start a real
// central and real edges in one process (internal/testrig/rig) and judge
// them only through their exported API and HTTP APIs: alerts from camera
// to console, GStreamer cameras, gates, live view, config pushes, edge access and evidence
// retrieval. The console's tests build vigil, start `vigil demo` on a free
// port and run every e2e/*.test.mjs with Node.js (playwright-core driving
// Debian's Chromium at /usr/bin/chromium; no browser is downloaded). Each
// script gets VIGIL_URL, VIGIL_DATA, VIGIL_BIN and VIGIL_SCREENSHOTS and
// fails by exiting non-zero.
//
// A script named *.bg.mjs (queue_watch.bg.mjs: the queue over a
// 10-minute shift) starts in the background as soon as the demo is ready
// and runs alongside the others; the test waits for it after them and
// fails if it failed.
//
// VIGIL_SCREENSHOTS defaults to a temporary directory; refresh the
// committed pictures with
//
//	VIGIL_SCREENSHOTS=$PWD/docs/screenshots go test -run TestConsoleInBrowser ./e2e/
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig"
)

const (
	chromium     = "/usr/bin/chromium"
	demoStartup  = 3 * time.Minute // the first run converts the demo footage
	scriptLimit  = 4 * time.Minute
	bgLimit      = 13 * time.Minute // queue_watch.bg.mjs watches for 10
	stopDeadline = 20 * time.Second
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd) // this package is <root>/e2e
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestConsoleInBrowser(t *testing.T) {
	root := repoRoot(t)
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "node_modules/playwright-core (npm ci)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if len(missing) > 0 {
		t.Fatalf("browser tests need %s; `make test` installs them", strings.Join(missing, ", "))
	}
	scripts, _ := filepath.Glob(filepath.Join(root, "e2e", "*.test.mjs"))
	background, _ := filepath.Glob(filepath.Join(root, "e2e", "*.bg.mjs"))
	sort.Strings(background)
	sort.Strings(scripts)
	if len(scripts) == 0 {
		t.Fatal("no e2e/*.test.mjs scripts")
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "vigil")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addr := freePort(t)
	data := filepath.Join(tmp, "data")
	var demoOut testrig.LogBuffer // the demo's output, for the failure report
	demo := exec.Command(bin, "demo", "--listen", addr, "--data", data)
	demo.Dir = root
	demo.Stdout, demo.Stderr = &demoOut, &demoOut
	demo.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- demo.Wait() }()
	t.Cleanup(func() {
		_ = demo.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(stopDeadline):
			_ = syscall.Kill(-demo.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("vigil demo output (last 8 KiB):\n%s", tail(demoOut.String(), 8<<10))
		}
	})
	waitReady(t, addr, data, exited, &demoOut)

	shots := os.Getenv("VIGIL_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(tmp, "screenshots")
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join(root, shots)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	node := func(ctx context.Context, script string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "node", script)
		cmd.Dir = root
		cmd.Env = append(os.Environ(),
			"VIGIL_URL=http://"+addr,
			"VIGIL_DATA="+data,
			"VIGIL_BIN="+bin,
			"VIGIL_SCREENSHOTS="+shots,
		)
		return cmd
	}
	// The background scripts start first and run while the others do.
	type bgRun struct {
		script string
		start  time.Time
		out    *testrig.LogBuffer
		done   chan error
	}
	var bgs []*bgRun
	for _, script := range background {
		ctx, cancel := context.WithTimeout(context.Background(), bgLimit)
		t.Cleanup(cancel) // ends it if the test stops early
		b := &bgRun{script: script, start: time.Now(), out: &testrig.LogBuffer{}, done: make(chan error, 1)}
		cmd := node(ctx, script)
		cmd.Stdout, cmd.Stderr = b.out, b.out
		if err := cmd.Start(); err != nil {
			t.Fatalf("node %s: %v", filepath.Base(script), err)
		}
		go func() { b.done <- cmd.Wait() }()
		bgs = append(bgs, b)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".test.mjs")
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), scriptLimit)
			defer cancel()
			cmd := node(ctx, script)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node %s: %v after %s\n%s", filepath.Base(script), err, time.Since(start).Round(time.Millisecond), out)
			}
			t.Logf("node %s passed in %s\n%s", filepath.Base(script), time.Since(start).Round(time.Millisecond), out)
		})
	}
	for _, b := range bgs {
		t.Run(strings.TrimSuffix(filepath.Base(b.script), ".bg.mjs"), func(t *testing.T) {
			err := <-b.done
			if err != nil {
				t.Fatalf("node %s (background): %v after %s\n%s", filepath.Base(b.script), err, time.Since(b.start).Round(time.Millisecond), b.out.String())
			}
			t.Logf("node %s (background) passed in %s\n%s", filepath.Base(b.script), time.Since(b.start).Round(time.Millisecond), b.out.String())
		})
	}
}

// waitReady waits until central answers, the edge is online and demo.json
// (the demo's gate) and credentials.json (its users) are written.
func waitReady(t *testing.T, addr, data string, exited <-chan error, out *testrig.LogBuffer) {
	t.Helper()
	deadline := time.Now().Add(demoStartup)
	for {
		select {
		case err := <-exited:
			t.Fatalf("vigil demo exited early: %v\n%s", err, tail(out.String(), 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil demo not ready after %s\n%s", demoStartup, tail(out.String(), 8<<10))
		}
		if ready(addr, data) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func ready(addr, data string) bool {
	for _, f := range []string{"demo.json", "credentials.json"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			return false
		}
	}
	resp, err := http.Get("http://" + addr + "/api/v1/healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		EdgesOnline int `json:"edges_online"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.EdgesOnline > 0
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("…%s", s[len(s)-n:])
}
