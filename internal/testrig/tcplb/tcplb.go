// Package tcplb is a small TCP load balancer for tests and benchmarks on
// 127.0.0.1: each client connection goes to the next backend in turn
// (round-robin), skipping backends that refuse or do not answer within
// 300 ms, and its bytes are copied both ways untouched (TLS passes
// through). It stands in for the operator's load balancer in front of
// several centrals.
//
//	lb, err := tcplb.New(a, b)
//	url := "wss://" + lb.Addr() + path
//	lb.SetBackends(b) // later connections go to b only
//	lb.Close()        // listener and every proxied connection
package tcplb

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the dial of one backend: a backend that does not
// answer in this time is skipped for the next one.
const dialTimeout = 300 * time.Millisecond

// LB is a running load balancer.
type LB struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{} // both sides of every proxied connection
	closed   bool

	wg sync.WaitGroup // the accept loop and every connection's goroutines
}

// New listens on 127.0.0.1:0 and forwards to backends (host:port).
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

// Addr is the address clients connect to.
func (l *LB) Addr() string { return l.ln.Addr().String() }

// SetBackends replaces the backends for connections accepted from now
// on; connections already proxied stay where they are.
func (l *LB) SetBackends(backends ...string) {
	l.mu.Lock()
	l.backends = append([]string(nil), backends...)
	l.next = 0
	l.mu.Unlock()
}

// Close stops accepting, closes every proxied connection and waits until
// every goroutine of the balancer has ended.
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
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (too many open files): keep serving.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !l.track(c) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

// track registers a connection so Close can end it; false once closed.
func (l *LB) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *LB) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

// pick returns the backends in the order this connection tries them: the
// next one in turn first, then the others.
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

func (l *LB) serve(client net.Conn) {
	defer l.wg.Done()
	defer l.untrack(client)
	var backend net.Conn
	for _, addr := range l.pick() {
		c, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err == nil {
			backend = c
			break
		}
	}
	if backend == nil || !l.track(backend) {
		if backend != nil {
			backend.Close()
		}
		return // no backend answers: the client sees its connection closed
	}
	defer l.untrack(backend)
	done := make(chan struct{}, 2)
	go func() { pipe(backend, client); done <- struct{}{} }()
	go func() { pipe(client, backend); done <- struct{}{} }()
	// Half-close: one direction ending (EOF) is passed on as a write
	// close, and the other direction keeps flowing. A reset or error on
	// either side ends both: the peer must see its connection die, as it
	// would without the balancer.
	<-done
	<-done
}

// pipe copies src to dst; at src's EOF it closes dst for writing, and on
// an error it closes both so the other direction ends too.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			if cw.CloseWrite() == nil {
				return
			}
		}
	}
	dst.Close()
	src.Close()
}
