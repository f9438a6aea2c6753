package tcplb

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// echoServer answers each connection with its name, then echoes; it
// hands every accepted connection to conns so a test can kill it.
type echoServer struct {
	ln    net.Listener
	conns chan net.Conn
}

func startEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: make(chan net.Conn, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
			go func() {
				c.Write([]byte(name + "\n"))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(s.conns)
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// greet connects through the balancer and returns the backend's name.
func greet(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("no greeting through the balancer: %v", err)
	}
	return c, line[:len(line)-1]
}

func TestRoundRobinSpread(t *testing.T) {
	a, b, c := startEcho(t, "a"), startEcho(t, "b"), startEcho(t, "c")
	lb, err := New(a.addr(), b.addr(), c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	count := map[string]int{}
	var order []string
	for range 9 {
		conn, name := greet(t, lb.Addr())
		conn.Close()
		count[name]++
		order = append(order, name)
	}
	for _, n := range []string{"a", "b", "c"} {
		if count[n] != 3 {
			t.Fatalf("9 connections over 3 backends: %v (order %v)", count, order)
		}
	}
	for i := 3; i < len(order); i++ {
		if order[i] != order[i-3] {
			t.Fatalf("not round-robin: %v", order)
		}
	}
	// SetBackends takes effect for the next connections.
	lb.SetBackends(c.addr())
	for range 3 {
		conn, name := greet(t, lb.Addr())
		conn.Close()
		if name != "c" {
			t.Fatalf("after SetBackends(c): %s", name)
		}
	}
}

func TestDeadBackendSkipped(t *testing.T) {
	a := startEcho(t, "a")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there: connections are refused
	lb, err := New(deadAddr, a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	for range 4 {
		conn, name := greet(t, lb.Addr())
		conn.Close()
		if name != "a" {
			t.Fatalf("got %q", name)
		}
	}
	// No backend answers: the client's connection is closed.
	lb.SetBackends(deadAddr)
	conn, err := net.Dial("tcp", lb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes with no backend alive", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection left open with no backend alive")
	}
}

func TestBytesBothWaysAndHalfClose(t *testing.T) {
	a := startEcho(t, "a")
	lb, err := New(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	conn, name := greet(t, lb.Addr())
	defer conn.Close()
	if name != "a" {
		t.Fatal(name)
	}
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go func() {
		conn.Write(msg)
		conn.(*net.TCPConn).CloseWrite() // the echo answers everything, then closes
	}()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echoed %d bytes, sent %d (or they differ)", len(got), len(msg))
	}
}

func TestBackendKilledClosesClient(t *testing.T) {
	a := startEcho(t, "a")
	lb, err := New(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	conn, _ := greet(t, lb.Addr())
	defer conn.Close()
	srv := <-a.conns
	// A killed process's sockets are reset.
	srv.(*net.TCPConn).SetLinger(0)
	srv.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("client connection still open after its backend was killed")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client connection still open after its backend was killed")
	}
	waitConns(t, lb, 0)
}

func TestCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	echoGoroutines := runtime.NumGoroutine() - before
	lb, err := New(a.addr(), b.addr())
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 6 {
		c, _ := greet(t, lb.Addr())
		clients = append(clients, c)
	}
	waitConns(t, lb, 12)
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client connection survived Close")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a client connection survived Close")
		}
		c.Close()
	}
	if _, err := net.DialTimeout("tcp", lb.Addr(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	// The echo servers' per-connection goroutines end once the balancer
	// closed their side; what is left must be the servers' accept loops.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+echoGoroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before+echoGoroutines, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitConns waits until the balancer tracks n connections (both sides).
func waitConns(t *testing.T, lb *LB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lb.mu.Lock()
		got := len(lb.conns)
		lb.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balancer holds %d connections, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
