// Package linkproxy is a TCP proxy on 127.0.0.1 whose link can be cut and
// restored, so tests and benchmarks can partition real edges from a real
// central without touching either.
package linkproxy

import (
	"net"
	"sync"
)

// Proxy forwards every accepted connection to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	down   bool
	frozen chan struct{} // non-nil while frozen; closed by Thaw
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// Start listens on 127.0.0.1 (any port) and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections go (a restarted central).
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Cut drops every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.down = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Drop closes every open connection once but leaves the link up: a blip.
func (p *Proxy) Drop() {
	p.Cut()
	p.Restore()
}

// Freeze stops forwarding without closing anything, which is what a peer
// paused with SIGSTOP looks like: new connections are accepted (the kernel
// queues them) and bytes are taken in, but nothing reaches the other side
// until Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
	p.mu.Unlock()
}

// Thaw forwards again what Freeze held, then everything that follows.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
	p.mu.Unlock()
}

// gate blocks while the proxy is frozen (Close thaws it).
func (p *Proxy) gate() {
	p.mu.Lock()
	f := p.frozen
	p.mu.Unlock()
	if f != nil {
		<-f
	}
}

// Close stops the proxy and ends every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.Thaw()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, target := p.down, p.target
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.pipe(c, target)
	}
}

func (p *Proxy) pipe(c net.Conn, target string) {
	defer p.wg.Done()
	p.gate() // frozen: hold the accepted connection, dial on Thaw
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	// Either direction ending ends both: a half-closed link would keep a
	// cut connection half alive.
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go cp(up, c)
	cp(c, up)
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track registers both ends so Cut can close them; false if the link went
// down meanwhile.
func (p *Proxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[a] = struct{}{}
	p.conns[b] = struct{}{}
	return true
}
