package central

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client addresses behind a reverse proxy.
//
// Behind the TLS proxy of deploy/TLS.md every request comes from the
// proxy's address, so the login limits would count every browser as one
// client and the audit log would name the proxy. trusted_proxies lists the
// proxies (IP or CIDR) whose X-Forwarded-For central believes. clientAddrs
// (addr) is the one place that decides a request's client address; the login
// limiter, the audit log and the request logs all use it.

// trustedProxy parses one trusted_proxies entry: an IP (a prefix of one
// address) or a CIDR. A CIDR with host bits set and one that covers every
// address (/0: any client could then choose its own address) are refused.
func trustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR (e.g. 127.0.0.1, 10.0.0.0/8, ::1)", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR (e.g. 127.0.0.1, 10.0.0.0/8, ::1)", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped prefix shorter than /96; write the IPv4 CIDR", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q trusts every address: any client could then choose its own address; list the proxy's address", s)
	}
	return p, nil
}

// trustedProxies parses a validated trusted_proxies list (Validate
// refused bad entries; any left are skipped).
func trustedProxies(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := trustedProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func trusts(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one X-Forwarded-For entry: an IP, as proxies write it,
// tolerating a port ("203.0.113.7:5120", "[2001:db8::1]:443") and
// an IPv4-mapped IPv6 form.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap(), true
}

// remoteAddr is the IP of the connection's peer (r.RemoteAddr).
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// clientAddrs decides client addresses with the trusted_proxies list
// (parsed by Validate; New makes this from the validated config).
type clientAddrs struct {
	proxies []netip.Prefix
}

func newClientAddrs(trusted []string) clientAddrs {
	return clientAddrs{proxies: trustedProxies(trusted)}
}

// addr is the address of the client that made r: the connection's
// peer, unless the peer is in trusted_proxies; then the right-most
// X-Forwarded-For entry that is not itself a trusted proxy. Entries to the
// left of that one were written by the client or by proxies we do not
// know, so they are ignored (a client can put anything there). If every
// entry is a trusted proxy the left-most is taken; if the chain holds an
// entry that is not an address, the nearest trusted proxy is the client
// (a misconfigured proxy, never a choice of the client's). Without
// trusted_proxies X-Forwarded-For is ignored. The zero Addr means
// r.RemoteAddr is not an IP (not over TCP).
func (c clientAddrs) addr(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	proxies := c.proxies
	if len(proxies) == 0 || !peer.IsValid() {
		return peer
	}
	if !trusts(proxies, peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") { // several headers are one list, in order
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client
		}
		client = a
		if !trusts(proxies, a) {
			return a
		}
	}
	return client
}

// text is addr for logs and audit entries: the address, or r.RemoteAddr
// as given when it is not an IP.
func (c clientAddrs) text(r *http.Request) string {
	if p := principalOf(r); p != nil && p.forwarded && p.clientAddr != "" {
		return p.clientAddr // as the replica that forwarded r saw it
	}
	if a := c.addr(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}
