// Package mosquittotest runs a real Mosquitto broker for tests, on
// 127.0.0.1 at a free port, and can restart it on the same port to test
// reconnection. Debian's mosquitto package provides the binary; a test
// fails (it does not skip) when it is missing.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	t    testing.TB
	bin  string
	conf string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
	out *syncBuffer
}

// Start runs a broker for the rest of the test.
func Start(t testing.TB) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // Debian installs it outside a user's PATH
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("mosquitto is not installed (apt-get install mosquitto)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &Broker{t: t, bin: bin, port: port, conf: filepath.Join(t.TempDir(), "mosquitto.conf")}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n", port)
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", b.out.String())
		}
	})
	return b
}

// URL is the broker address for MQTT clients, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", b.port) }

// Addr is 127.0.0.1:PORT.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *Broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == nil {
		b.out = &syncBuffer{}
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not listen on %s: %v\n%s", b.Addr(), err, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the broker (as a crash or power loss would) and waits for it.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.cmd = nil
}

// Restart stops the broker and starts a fresh one on the same port; like
// a real restart without persistence, it forgets sessions and retained
// messages.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// syncBuffer collects the broker's log from its output goroutines.
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
