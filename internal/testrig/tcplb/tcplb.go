// Package tcplb is a small TCP load balancer on 127.0.0.1 for tests and
// benchmarks: it stands for whatever balancer an operator puts in front
// of several centrals. Each connection goes to the next backend, round
// robin; a backend that refuses (or does not answer in dialTimeout) is
// skipped for that connection. It parses nothing, so TLS passes through.
package tcplb

import (
	"io"
	"net"
	"sync"
	"time"
)

const dialTimeout = 300 * time.Millisecond

// LB is a running balancer.
type LB struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// New listens on 127.0.0.1 at a free port and balances over backends.
func New(backends ...string) (*LB, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &LB{ln: ln, backends: append([]string(nil), backends...), conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the balancer's host:port.
func (l *LB) Addr() string { return l.ln.Addr().String() }

// SetBackends replaces the backends for new connections.
func (l *LB) SetBackends(backends ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.backends = append([]string(nil), backends...)
}

// Close stops listening and closes every proxied connection; it returns
// when every goroutine has ended.
func (l *LB) Close() error {
	err := l.ln.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (l *LB) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		if !l.track(c) {
			return
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

// track remembers c for Close; false once closed.
func (l *LB) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *LB) forget(cs ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		delete(l.conns, c)
		c.Close()
	}
}

// pick returns the backends to try, starting at the next in turn.
func (l *LB) pick() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.backends)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, l.backends[(l.next+i)%n])
	}
	if n > 0 {
		l.next = (l.next + 1) % n
	}
	return out
}

func (l *LB) serve(c net.Conn) {
	defer l.wg.Done()
	var b net.Conn
	for _, addr := range l.pick() {
		var err error
		if b, err = net.DialTimeout("tcp", addr, dialTimeout); err == nil {
			break
		}
	}
	if b == nil || !l.track(b) {
		l.forget(c)
		return
	}
	done := make(chan struct{}, 2)
	go func() { halfCopy(b, c); done <- struct{}{} }()
	go func() { halfCopy(c, b); done <- struct{}{} }()
	// One direction ending (a backend killed, a client gone) ends the
	// connection both ways once the other has nothing more to say; a
	// reset ends both at once.
	<-done
	<-done
	l.forget(c, b)
}

// halfCopy copies src to dst, then half-closes dst's write side (or
// closes it, when it is not TCP).
func halfCopy(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok && err == nil {
		_ = tc.CloseWrite()
		return
	}
	dst.Close()
	src.Close()
}
