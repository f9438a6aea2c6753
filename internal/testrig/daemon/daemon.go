// Package daemon runs an outside program for one test: the shared part of
// the test rigs that start real peers (mosquitto, kamailio, sipp). It
// starts the program in a process group of its own with its output
// captured, waits until the program says it is ready (a check the rig
// gives), stops it (SIGTERM to the group, SIGKILL after a grace period),
// starts it again on the same settings, and kills it in the test's
// cleanup, printing its log when the test failed.
//
//	d := daemon.New(t, daemon.Spec{Name: "mosquitto", Addr: addr, Path: bin, Args: args, Ready: dialTCP(addr)})
//	d.Start()   // fails the test when it exits or is not ready in time
//	d.Stop(); d.Start(); d.Kill(); d.Log()
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Spec describes the program and how to tell it is ready.
type Spec struct {
	// Name is the program's name in messages ("kamailio"); Addr where it
	// serves ("127.0.0.1:PORT"), also for messages.
	Name, Addr string
	// Path, Args, Env (added to the test's environment) and Dir (working
	// directory; empty: the test's) start it.
	Path string
	Args []string
	Env  []string
	Dir  string
	// Ready reports whether the program serves: nil means ready. Nil
	// Ready means ready at once.
	Ready func() error
	// StartWait bounds the wait for Ready (default 10 s); KeepSlowStart
	// lets a program that is not ready by then run on (SIPp, whose port
	// check is a courtesy). StopWait is the grace between
	// SIGTERM and SIGKILL (default 5 s); Poll the interval of Ready
	// checks (default 20 ms).
	StartWait, StopWait, Poll time.Duration
	KeepSlowStart             bool
	// Quiet leaves the log out of a failed test's output (the rig
	// reports it itself).
	Quiet bool
	// Credential runs the program as another user (PostgreSQL refuses
	// root); nil: as the test.
	Credential *syscall.Credential
}

// Daemon is a program owned by one test.
type Daemon struct {
	t    testing.TB
	spec Spec

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	out    buffer
}

// New prepares the program; Start runs it. The test's cleanup kills it.
func New(t testing.TB, spec Spec) *Daemon {
	t.Helper()
	if spec.StartWait == 0 {
		spec.StartWait = 10 * time.Second
	}
	if spec.StopWait == 0 {
		spec.StopWait = 5 * time.Second
	}
	if spec.Poll == 0 {
		spec.Poll = 20 * time.Millisecond
	}
	d := &Daemon{t: t, spec: spec}
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() && !spec.Quiet {
			t.Logf("%s log (%s):\n%s", spec.Name, spec.Addr, d.out.String())
		}
	})
	return d
}

// Start runs the program and waits until it is ready; it does nothing
// while the program runs. The test fails when the program exits first or
// (unless KeepSlowStart) is not ready within StartWait.
func (d *Daemon) Start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return
	}
	fmt.Fprintf(&d.out, "--- vigil testrig: starting %s on %s\n", d.spec.Name, d.spec.Addr)
	cmd := exec.Command(d.spec.Path, d.spec.Args...)
	cmd.Dir = d.spec.Dir
	if len(d.spec.Env) > 0 {
		cmd.Env = append(os.Environ(), d.spec.Env...)
	}
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: d.spec.Credential}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", d.spec.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.cmd, d.exited = cmd, exited
	if d.spec.Ready == nil {
		return
	}
	deadline := time.Now().Add(d.spec.StartWait)
	for {
		err := d.spec.Ready()
		if err == nil {
			return
		}
		select {
		case <-exited:
			d.cmd = nil
			d.t.Fatalf("%s exited before listening on %s (%s):\n%s", d.spec.Name, d.spec.Addr, cmd.ProcessState, d.out.String())
		default:
		}
		if time.Now().After(deadline) {
			if d.spec.KeepSlowStart {
				return
			}
			d.t.Fatalf("%s did not listen on %s within %v: %v\n%s", d.spec.Name, d.spec.Addr, d.spec.StartWait, err, d.out.String())
		}
		time.Sleep(d.spec.Poll)
	}
}

// Stop ends the program cleanly (SIGTERM to its process group, SIGKILL
// after StopWait) and waits for it.
func (d *Daemon) Stop() { d.stop(syscall.SIGTERM) }

// Kill ends the program at once (SIGKILL), as a crash would.
func (d *Daemon) Kill() { d.stop(syscall.SIGKILL) }

func (d *Daemon) stop(sig syscall.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, sig)
	select {
	case <-d.exited:
	case <-time.After(d.spec.StopWait):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
	}
	// Forked children may outlive the main process for a moment; a
	// restart must find the port free.
	syscall.Kill(-pgid, syscall.SIGKILL)
	d.cmd, d.exited = nil, nil
}

// Restart stops the program cleanly and starts it again.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.Stop()
	d.Start()
}

// Running reports whether the program was started and not stopped.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

// Wait waits until the program exits by itself and returns its exit
// status (-1 when it was never started or was stopped).
func (d *Daemon) Wait() int {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return -1
	}
	<-exited
	return cmd.ProcessState.ExitCode()
}

// Exited is closed once the running program has exited; nil when none runs.
func (d *Daemon) Exited() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exited
}

// Log returns what the program wrote so far (all its runs).
func (d *Daemon) Log() string { return d.out.String() }

// Binary finds a program on PATH or where Debian puts daemons; the error
// names the package to install and why the test needs it.
func Binary(name, pkg, why string) (string, error) {
	if bin, err := exec.LookPath(name); err == nil {
		return bin, nil
	}
	for _, dir := range []string{"/usr/sbin/", "/usr/bin/"} {
		if _, err := os.Stat(dir + name); err == nil {
			return dir + name, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (apt-get install %s): %s", name, pkg, why)
}

// FreePort finds a port free on 127.0.0.1 for both TCP and UDP. Another
// process could take it before the program binds it; Start then fails
// loudly.
func FreePort() (int, error) {
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP")
}

// DialTCP is a Ready check: addr accepts TCP connections.
func DialTCP(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// buffer collects the program's output from exec's copying goroutines.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
