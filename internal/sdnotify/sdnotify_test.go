package sdnotify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen is systemd's side: a unixgram socket that collects messages.
func listen(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	out := make(chan string, 64)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(out)
				return
			}
			out <- string(buf[:n])
		}
	}()
	return path, out
}

func TestReadyAndWatchdog(t *testing.T) {
	path, got := listen(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "200000")       // 200 ms: pings every 100 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(0)) // another process's watchdog
	if n := FromEnv(); n.Watchdog() != 0 {
		t.Fatalf("watchdog of another pid honoured: %v", n.Watchdog())
	}
	t.Setenv("WATCHDOG_PID", "")
	n := FromEnv()
	if !n.Enabled() || n.Watchdog() != 200*time.Millisecond {
		t.Fatalf("from env: %+v", n)
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "READY=1" {
		t.Fatalf("got %q", m)
	}

	// Healthy: pings arrive. Unhealthy: they stop, so systemd restarts us.
	var sick atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		n.KeepAlive(ctx, func(context.Context) error {
			if sick.Load() {
				return errors.New("store writer stuck")
			}
			return nil
		}, slog.New(slog.DiscardHandler))
		close(done)
	}()
	select {
	case m := <-got:
		if m != "WATCHDOG=1" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no watchdog ping")
	}
	sick.Store(true)
	time.Sleep(150 * time.Millisecond) // a ping in flight may still land
	for len(got) > 0 {
		<-got
	}
	select {
	case m := <-got:
		t.Fatalf("pinged %q while unhealthy", m)
	case <-time.After(400 * time.Millisecond):
	}
	cancel()
	<-done
}

func TestOutsideSystemdIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without a socket")
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	n.KeepAlive(context.Background(), nil, nil) // returns at once
}
