package uplink

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vigil-perimeter/vigil/wire"
)

// identity is who this edge is to central and how it proves it: the
// credential in force (or an older config's bearer token), the configured
// IDs, the config revision hello reports, and where central is.
type identity struct {
	token, url     string // Config.Token, Config.URL
	edgeID, siteID string // as configured
	software       string
	pin            []byte                                                            // a bearer-token edge's pin of central's key
	netDial        func(ctx context.Context, network, addr string) (net.Conn, error) // Config.Dial
	credp          atomic.Pointer[Credential]                                        // swapped by SetCredential
	revision       atomic.Pointer[string]                                            // reported in hello (SetConfigRevision)
	swapped        atomic.Bool                                                       // SetCredential: dial the credential's central, not url
}

func newIdentity(cfg Config) *identity {
	id := &identity{token: cfg.Token, url: cfg.URL, edgeID: cfg.EdgeID, siteID: cfg.SiteID, software: cfg.Software,
		pin: cfg.Pin, netDial: cfg.Dial}
	rev := cfg.ConfigRevision
	id.revision.Store(&rev)
	id.credp.Store(cfg.Credential)
	return id
}

// credential is the credential in force (nil for a bearer-token edge).
func (id *identity) credential() *Credential { return id.credp.Load() }

// enrolled reports whether the edge has a credential or a token.
func (id *identity) enrolled() bool { return id.credential() != nil || id.token != "" }

// setCredential puts c in force; the next session dials c's central.
func (id *identity) setCredential(c *Credential) {
	id.credp.Store(c)
	id.swapped.Store(true)
}

func (id *identity) configRevision() string { return *id.revision.Load() }

func (id *identity) setConfigRevision(rev string) { id.revision.Store(&rev) }

// name is the edge's ID as central knows it.
func (id *identity) name() string {
	if c := id.credential(); c != nil && c.EdgeID != "" {
		return c.EdgeID
	}
	return id.edgeID
}

// target is the websocket address of central, checked against the
// credential.
func (id *identity) target() (string, error) {
	cred := id.credential()
	if cred == nil {
		if id.token == "" {
			return "", ErrNotEnrolled
		}
		return id.url, nil
	}
	if err := cred.Validate(); err != nil {
		return "", err
	}
	// Alerts carry the configured IDs; central would refuse every one.
	if id.edgeID != "" && id.edgeID != cred.EdgeID {
		return "", fmt.Errorf("edge_id is %q but the credential is for edge %q", id.edgeID, cred.EdgeID)
	}
	if id.siteID != "" && cred.SiteID != "" && id.siteID != cred.SiteID {
		return "", fmt.Errorf("site_id is %q but the edge was enrolled at site %q", id.siteID, cred.SiteID)
	}
	if id.url == "" || id.swapped.Load() {
		return cred.EdgeURL(), nil
	}
	if len(id.url) < 6 || id.url[:6] != "wss://" {
		return "", fmt.Errorf("central URL %s: an enrolled edge talks to central over TLS only (wss://)", id.url)
	}
	return id.url, nil
}

// dial opens the websocket, over TLS pinned to central's key for an
// enrolled edge, naming the edge (or presenting its bearer token).
func (id *identity) dial(ctx context.Context, target string) (*websocket.Conn, error) {
	dialer := websocket.Dialer{HandshakeTimeout: handshakeTimeout, NetDialContext: id.netDial}
	hdr := http.Header{}
	if cred := id.credential(); cred != nil {
		dialer.TLSClientConfig = cred.TLSConfig()
		hdr.Set(wire.EdgeIDHeader, cred.EdgeID)
	} else {
		if len(id.pin) > 0 {
			dialer.TLSClientConfig = pinnedTLS(id.pin)
		}
		hdr.Set("Authorization", "Bearer "+id.token)
	}
	conn, resp, err := dialer.DialContext(ctx, target, hdr)
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusForbidden:
				return nil, fmt.Errorf("dial %s: %w", target, ErrRevoked)
			case http.StatusUnauthorized:
				return nil, fmt.Errorf("dial %s: %w", target, ErrUnauthorized)
			}
			return nil, fmt.Errorf("dial %s: %s: %w", target, resp.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	limitSendBuffer(conn.NetConn())
	return conn, nil
}

// sendBuffer bounds the socket's send buffer (Linux lets it grow to 4 MiB):
// our keepalive ping then waits behind at most this much of a large
// answer, not seconds of clip on a slow uplink, and a healthy central's
// pong comes back within KeepaliveTimeout while a clip goes up.
const sendBuffer = 256 << 10

func limitSendBuffer(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(sendBuffer)
	}
}

// handshake answers central's challenge with a (signed) hello carrying
// the clock offset measured last time, and waits for welcome: it returns
// the offset measured now and the access key central announced.
func (id *identity) handshake(conn *websocket.Conn, offset time.Duration) (time.Duration, []byte, error) {
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var ch wire.Challenge
	if err := readTyped(conn, wire.TypeChallenge, &ch); err != nil {
		return 0, nil, fmt.Errorf("waiting for central's challenge: %w", err)
	}
	h := wire.Hello{EdgeID: id.name(), SiteID: id.siteID, Software: id.software, ConfigRevision: id.configRevision(),
		Time: time.Now().UTC(), ClockOffsetMS: offset.Milliseconds(), Nonce: ch.Nonce}
	if cred := id.credential(); cred != nil {
		h.Signature = ed25519.Sign(ed25519.PrivateKey(cred.PrivateKey), h.SigningBytes())
	}
	if err := write(conn, wire.TypeHello, h); err != nil {
		return 0, nil, err
	}
	var w wire.Welcome
	if err := readTyped(conn, wire.TypeWelcome, &w); err != nil {
		return 0, nil, fmt.Errorf("waiting for welcome: %w", err)
	}
	rtt := time.Since(h.Time)
	return w.Time.Sub(h.Time.Add(rtt / 2)), w.AccessKey, nil
}
