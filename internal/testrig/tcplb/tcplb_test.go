package tcplb

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// echoBackend answers each connection with its name, then echoes lines.
func echoBackend(t *testing.T, name string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, name+"\n")
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func hello(t *testing.T, addr string) (string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return "", nil
	}
	return line[:len(line)-1], c
}

// Connections go round robin; a dead backend is skipped; a backend that
// goes away ends its clients' connections; Close ends every goroutine.
func TestBalancer(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	lb, err := New(a.Addr().String(), deadAddr, b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var onB net.Conn
	for range 6 {
		name, c := hello(t, lb.Addr())
		if c == nil {
			t.Fatal("a connection through the balancer got no answer")
		}
		seen[name]++
		if name == "b" && onB == nil {
			onB = c
			continue
		}
		c.Close()
	}
	if seen["a"] < 2 || seen["b"] < 2 || seen["a"]+seen["b"] != 6 {
		t.Fatalf("spread over a, (dead), b: %v", seen)
	}
	b.Close() // b's listener goes; its open connection is ended by the backend closing it below
	lb.SetBackends(a.Addr().String())
	if name, c := hello(t, lb.Addr()); name != "a" {
		t.Fatalf("after SetBackends: %q", name)
	} else {
		c.Close()
	}
	// The client's connection ends when its backend does.
	_ = onB.SetReadDeadline(time.Now().Add(5 * time.Second))
	onB.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadAll(onB); err != nil {
		t.Fatalf("the client of a backend that ended: %v", err)
	}
	onB.Close()
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+4 {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}
