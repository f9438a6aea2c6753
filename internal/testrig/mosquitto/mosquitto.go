// Package mosquitto runs a real Mosquitto broker (Debian's
// /usr/sbin/mosquitto) for tests: on 127.0.0.1 at a free port, with a
// config written to the test's temp directory, and able to go down and
// come back on the same port so reconnection and "nothing lost while the
// broker was down" can be tested against a peer nobody here wrote.
//
// A test fails (it never skips) when mosquitto is not installed: the
// packages that use it exist to talk to brokers, and a skipped test would
// hide that they were never checked (apt-get install mosquitto).
//
//	b := mosquitto.Start(t)                         // anonymous, no persistence
//	b := mosquitto.Start(t, mosquitto.Persistent()) // sessions and retained messages survive Restart
//	client := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()))
//	b.Stop(); …; b.Start()                          // down and back on the same port
package mosquitto

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// debianPath is where Debian's package installs the broker, outside a
// normal user's PATH.
const debianPath = "/usr/sbin/mosquitto"

// startWait bounds how long Start waits for the broker to listen, and
// stopWait how long Stop waits for a clean exit before killing it.
const (
	startWait = 10 * time.Second
	stopWait  = 5 * time.Second
)

// Option changes the broker's configuration.
type Option func(*options)

type options struct {
	persistent bool
	extra      []string
}

// Persistent keeps sessions (clean_session=false clients, their
// subscriptions and queued QoS 1/2 messages) and retained messages across
// Stop and Start, in a file in the test's temp directory; Stop then shuts
// the broker down cleanly so it writes the file. Without it a restarted
// broker, like a real one without persistence, has forgotten everything.
func Persistent() Option { return func(o *options) { o.persistent = true } }

// Config appends lines to the broker's configuration (e.g. "max_queued_messages 10"
// or a password_file line); the listener line is always written by Start.
func Config(lines ...string) Option {
	return func(o *options) { o.extra = append(o.extra, lines...) }
}

// Broker is a mosquitto process owned by one test.
type Broker struct {
	t    testing.TB
	bin  string
	conf string
	port int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	out     syncBuffer
	stopped bool
}

// Start runs a broker for the rest of the test; it is stopped by the
// test's cleanup, and its log is printed if the test failed.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("mosquitto: no free port: %v", err)
	}
	dir := t.TempDir()
	b := &Broker{t: t, bin: bin, port: port, conf: filepath.Join(dir, "mosquitto.conf")}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"log_type information",
	}
	if os.Geteuid() == 0 {
		// Started as root, mosquitto switches to the user "mosquitto",
		// which may not write the test's temp directory.
		lines = append(lines, "user root")
	}
	if o.persistent {
		lines = append(lines,
			"persistence true",
			"persistence_location "+dir+string(filepath.Separator),
			"persistence_file mosquitto.db",
			"autosave_interval 0", // save only at shutdown: Stop is clean
		)
	} else {
		lines = append(lines, "persistence false")
	}
	lines = append(lines, o.extra...)
	if err := os.WriteFile(b.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			t.Logf("mosquitto log (%s):\n%s", b.Addr(), b.out.String())
		}
	})
	return b
}

// binary finds mosquitto on PATH or where Debian installs it.
func binary() (string, error) {
	if bin, err := exec.LookPath("mosquitto"); err == nil {
		return bin, nil
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", errors.New("mosquitto is not installed (apt-get install mosquitto): tests that need a real MQTT broker cannot run")
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before mosquitto binds it; start then fails loudly.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is the broker address for MQTT clients: tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is 127.0.0.1:PORT.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Log returns what the broker has logged so far (all its runs).
func (b *Broker) Log() string { return b.out.String() }

// Start brings a stopped broker back on the same port; it does nothing if
// the broker runs.
func (b *Broker) Start() {
	b.t.Helper()
	b.start()
}

func (b *Broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	fmt.Fprintf(&b.out, "--- vigil testrig: starting mosquitto on %s\n", b.Addr())
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = &b.out, &b.out
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.cmd, b.exited = cmd, exited
	deadline := time.Now().Add(startWait)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b.cmd = nil
			b.t.Fatalf("mosquitto exited before listening on %s (%s):\n%s", b.Addr(), cmd.ProcessState, b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not listen on %s within %v: %v\n%s", b.Addr(), startWait, err, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the broker down cleanly (SIGTERM, as systemd would) and waits
// for it to exit; a Persistent broker writes its sessions and retained
// messages first. Clients see their connection drop.
func (b *Broker) Stop() { b.stop(syscall.SIGTERM) }

// Kill ends the broker at once (SIGKILL), as a crash or a power cut would:
// nothing is saved.
func (b *Broker) Kill() { b.stop(syscall.SIGKILL) }

func (b *Broker) stop(sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(sig)
	select {
	case <-b.exited:
	case <-time.After(stopWait):
		b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd, b.exited = nil, nil
}

// Restart stops the broker cleanly and starts it again on the same port.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// Running reports whether the broker process is up.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}

// syncBuffer collects the broker's log from exec's copying goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
