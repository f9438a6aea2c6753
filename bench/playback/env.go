package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vigil-perimeter/vigil/internal/footage"
	"github.com/vigil-perimeter/vigil/streams/sim"
)

const (
	benchEdge   = "edge-bench"
	benchSite   = "village/north"
	benchCamera = "cam-1"
	benchGuard  = "bench-guard"
)

// env is everything a run measures: the simulated camera, the server
// child (central and the edge) and a signed-in guard.
type env struct {
	dir      string
	rmDir    bool
	clip     *sim.Clip
	clipPath string
	sim      *sim.Server
	cfg      serverConfig
	ready    serverReady
	child    *exec.Cmd
	exited   chan struct{}
	guard    *client
	// recFrom..recTo is the camera's history written before the edge
	// started (the live recording follows after a short gap).
	recFrom, recTo time.Time
}

// setUp builds the footage, starts the camera, writes its history,
// starts the server child and signs in. On an error the env returned (if
// any) must still be closed.
func setUp(ctx context.Context, o options) (*env, error) {
	e := &env{dir: o.dir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "vigil-bench-playback-")
		if err != nil {
			return nil, err
		}
		e.dir, e.rmDir = d, true
	}
	path, err := footage.Cache{Dir: footage.DefaultDir()}.BenchCamera(ctx, 1080)
	if err != nil {
		return e, err
	}
	if e.clip, err = sim.LoadClip(path); err != nil {
		return e, err
	}
	e.clipPath = path
	if e.sim, err = sim.Start(sim.Config{Address: "127.0.0.1:0", Cameras: []sim.Camera{{Path: "cam", Clip: e.clip}}, Log: quietLog(o.logLevel)}); err != nil {
		return e, err
	}
	e.recTo = time.Now().UTC().Add(-5 * time.Second).Truncate(time.Second)
	e.recFrom = e.recTo.Add(-o.record)
	fmt.Fprintf(os.Stderr, "writing %v of camera history …\n", o.record)
	if err := prefill(ctx, filepath.Join(e.dir, "edge", "clips"), benchCamera, e.clip, e.recFrom, o.record, quietLog(o.logLevel)); err != nil {
		return e, fmt.Errorf("writing the camera's history: %w", err)
	}
	e.cfg = serverConfig{Dir: e.dir, CameraURL: e.sim.URL("cam"), EdgeToken: token(), AdminToken: token(),
		MetricsToken: token(), GuardPassword: token(), LogLevel: int(o.logLevel)}
	if err := e.startChild(); err != nil {
		return e, err
	}
	e.guard, err = login(ctx, e.ready.Central, benchGuard, e.cfg.GuardPassword)
	return e, err
}

func token() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startChild runs this command with -role server and waits for its ready
// line (central's and the edge's addresses, once the edge is connected).
func (e *env) startChild() error {
	cfgPath := filepath.Join(e.dir, "server.json")
	b, _ := json.Marshal(e.cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-role", "server", "-config", cfgPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	e.child, e.exited = cmd, make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
		cmd.Wait()
		close(e.exited)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			return fmt.Errorf("the server child ended before it was ready")
		}
		return json.Unmarshal([]byte(line), &e.ready)
	case <-time.After(90 * time.Second):
		return fmt.Errorf("the server child was not ready within 90 s")
	}
}

// serverPid is the child's process ID (for its CPU time).
func (e *env) serverPid() int { return e.child.Process.Pid }

func (e *env) close() {
	if e.child != nil {
		e.child.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(30 * time.Second):
			e.child.Process.Kill()
			<-e.exited
		}
	}
	if e.sim != nil {
		e.sim.Close()
	}
	if e.rmDir {
		os.RemoveAll(e.dir)
	}
}
