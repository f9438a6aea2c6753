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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-perimeter/vigil/internal/testrig/daemon"
)

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
	port int
	d    *daemon.Daemon
}

// Start runs a broker for the rest of the test; it is stopped by the
// test's cleanup, and its log is printed if the test failed.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := daemon.Binary("mosquitto", "mosquitto", "tests that need a real MQTT broker cannot run")
	if err != nil {
		t.Fatal(err)
	}
	port, err := daemon.FreePort()
	if err != nil {
		t.Fatalf("mosquitto: no free port: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	b := &Broker{t: t, port: port}
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
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.d = daemon.New(t, daemon.Spec{Name: "mosquitto", Addr: b.Addr(), Path: bin, Args: []string{"-c", conf},
		Ready: daemon.DialTCP(b.Addr()), StartWait: startWait, StopWait: stopWait})
	b.d.Start()
	return b
}

// URL is the broker address for MQTT clients: tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is 127.0.0.1:PORT.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Log returns what the broker has logged so far (all its runs).
func (b *Broker) Log() string { return b.d.Log() }

// Start brings a stopped broker back on the same port; it does nothing if
// the broker runs.
func (b *Broker) Start() {
	b.t.Helper()
	b.d.Start()
}

// Stop shuts the broker down cleanly (SIGTERM, as systemd would) and waits
// for it to exit; a Persistent broker writes its sessions and retained
// messages first. Clients see their connection drop.
func (b *Broker) Stop() { b.d.Stop() }

// Kill ends the broker at once (SIGKILL), as a crash or a power cut would:
// nothing is saved.
func (b *Broker) Kill() { b.d.Kill() }

// Restart stops the broker cleanly and starts it again on the same port.
func (b *Broker) Restart() {
	b.t.Helper()
	b.d.Restart()
}

// Running reports whether the broker process is up.
func (b *Broker) Running() bool { return b.d.Running() }
