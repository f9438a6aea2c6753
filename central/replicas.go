package central

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Replicas: with store: postgres://… several centrals share one
// database, and an edge is connected to one of them. A request that
// needs a particular edge (live view, a clip or thumbnail, a config
// push: the routes whose table row names it, routeSpec.edge) is served
// by the replica holding that edge's connection: any other replica
// forwards it there (replicaRouter.forward), with the identity it
// authenticated signed by the key every replica shares (the evidence
// key), so the holder applies the route's roles and audit rule to the
// person who asked. Where each edge is connected is kept in the database
// (edgePresence).

// edgePresence is where edges are connected, shared by the replicas.
type edgePresence interface {
	// claim records that replica (at url) holds edge's connection now.
	claim(ctx context.Context, edge, replica, url string) error
	// release forgets the claim if replica still holds it.
	release(ctx context.Context, edge, replica string) error
	// holder is the URL of the replica holding edge (ok false: none).
	holder(ctx context.Context, edge string) (url string, ok bool, err error)
	// setStatus stores the status JSON of an edge replica holds;
	// statuses returns those of edges other replicas hold, by edge.
	setStatus(ctx context.Context, edge, replica string, status []byte) error
	statuses(ctx context.Context, except string) (map[string][]byte, error)
	// announcePresence tells every replica an edge came or went at
	// replica (watchPresence).
	announcePresence(ctx context.Context, replica string, p EdgePresence) error
}

// Headers of a forwarded request: the identity, and its signature.
const (
	hdrReplicaIdentity  = "X-Vigil-Replica-Identity"
	hdrReplicaSignature = "X-Vigil-Replica-Signature"
	// forwardSkew bounds the age of a forwarded identity (clock skew
	// between replicas included): a captured pair of headers is useless
	// after it, and for any other request.
	forwardSkew = 30 * time.Second
)

// forwardedIdentity is who a replica forwards a request for: bound to
// the request's method and path and to a moment.
type forwardedIdentity struct {
	User    string    `json:"user"`
	Role    string    `json:"role"`
	Addr    string    `json:"addr"` // the client's address as the first replica saw it
	Method  string    `json:"method"`
	URI     string    `json:"uri"`
	At      time.Time `json:"at"`
	Replica string    `json:"replica"`
}

// replicaRouter forwards edge requests to the replica holding the edge.
type replicaRouter struct {
	id       string // this process (random at start: a restarted replica is a new one)
	presence edgePresence
	local    func(edge string) bool // the edge is connected here
	key      ed25519.PrivateKey     // signs (and its public half checks) forwarded identities
	addr     func(*http.Request) string
	ctx      context.Context // the server's: Close ends forwarded websockets
	log      *slog.Logger

	// hearing: the other replicas' edge comings and goings reach this
	// one's consoles (its LISTEN is up).
	hearing atomic.Bool

	mu       sync.Mutex
	self     string               // this replica's console URL, known once it listens
	reported map[string]time.Time // when each edge's status was last written
}

// statusEvery bounds how often a replica writes an edge's status for the
// others (heartbeats come faster).
const statusEvery = 5 * time.Second

// reportStatus writes edge's status for the other replicas, at most once
// per statusEvery.
func (rr *replicaRouter) reportStatus(edge string, status func() (EdgeStatus, bool)) {
	now := time.Now()
	rr.mu.Lock()
	if rr.reported == nil {
		rr.reported = map[string]time.Time{}
	}
	due := now.Sub(rr.reported[edge]) >= statusEvery
	if due {
		rr.reported[edge] = now
	}
	rr.mu.Unlock()
	if !due {
		return
	}
	st, ok := status()
	if !ok {
		return
	}
	v, err := json.Marshal(st)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(rr.ctx, pgTimeout)
	defer cancel()
	if err := rr.presence.setStatus(ctx, edge, rr.id, v); err != nil {
		rr.log.Warn("writing an edge's status for the other replicas failed", "edge_id", edge, "err", err)
	}
}

// remoteStatuses fills in, for edges not connected here, what the
// replica holding them last wrote, then passes each to name.
func (rr *replicaRouter) remoteStatuses(out []EdgeStatus, name func(*EdgeStatus)) {
	ctx, cancel := context.WithTimeout(rr.ctx, pgTimeout)
	defer cancel()
	held, err := rr.presence.statuses(ctx, rr.id)
	if err != nil {
		rr.log.Warn("reading the other replicas' edges failed", "err", err)
		return
	}
	for i := range out {
		v, ok := held[out[i].ID]
		if !ok || out[i].Online {
			continue
		}
		var st EdgeStatus
		if json.Unmarshal(v, &st) != nil {
			continue
		}
		// The registry's facts are this replica's as well.
		st.EnrolledAt, st.RevokedAt, st.RevokedBy, st.Online = out[i].EnrolledAt, out[i].RevokedAt, out[i].RevokedBy, true
		name(&st)
		out[i] = st
	}
}

func newReplicaRouter(ctx context.Context, presence edgePresence, local func(string) bool, key ed25519.PrivateKey,
	addr func(*http.Request) string, self string, log *slog.Logger) *replicaRouter {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &replicaRouter{id: hex.EncodeToString(b), presence: presence, local: local, key: key, addr: addr,
		ctx: ctx, log: log, self: self}
}

// listening sets this replica's URL from the console listener's address
// when central.yaml does not give one (replica_url).
func (rr *replicaRouter) listening(a net.Addr) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.self != "" {
		return
	}
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	rr.self = "http://" + net.JoinHostPort(host, port)
}

func (rr *replicaRouter) url() string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.self
}

// connected and disconnected keep the edge's presence (edgeHub calls
// them as connections come and go).
func (rr *replicaRouter) connected(edge string) {
	ctx, cancel := context.WithTimeout(rr.ctx, pgTimeout)
	defer cancel()
	if err := rr.presence.claim(ctx, edge, rr.id, rr.url()); err != nil {
		rr.log.Error("recording where an edge is connected failed: other replicas cannot reach it", "edge_id", edge, "err", err)
	}
}

func (rr *replicaRouter) disconnected(edge string) {
	// Not rr.ctx: a central closing still says it let its edges go.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rr.presence.release(ctx, edge, rr.id); err != nil {
		rr.log.Warn("forgetting an edge's connection failed", "edge_id", edge, "err", err)
	}
}

// announce tells the other replicas' consoles that an edge came or went
// here.
func (rr *replicaRouter) announce(p EdgePresence) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rr.presence.announcePresence(ctx, rr.id, p); err != nil {
		rr.log.Warn("telling the other replicas an edge came or went failed", "edge_id", p.ID, "err", err)
	}
}

// heldElsewhere reports whether another replica holds edge's connection.
func (rr *replicaRouter) heldElsewhere(edge string) bool {
	if rr.local(edge) {
		return false
	}
	ctx, cancel := context.WithTimeout(rr.ctx, pgTimeout)
	defer cancel()
	url, ok, err := rr.presence.holder(ctx, edge)
	return err == nil && ok && url != rr.url()
}

// forward serves r from the replica holding edge, if that is another
// one, and reports whether it did. A request that was forwarded already
// is never forwarded again (the edge moved meanwhile: it is answered
// here, as for an edge that is offline).
func (rr *replicaRouter) forward(w http.ResponseWriter, r *http.Request, p *principal, edge string) bool {
	if p.forwarded || rr.local(edge) {
		return false
	}
	target, ok, err := rr.presence.holder(r.Context(), edge)
	if err != nil {
		rr.log.Error("looking up where an edge is connected failed", "edge_id", edge, "err", err)
		return false
	}
	if !ok || target == rr.url() {
		return false
	}
	u, err := url.Parse(target)
	if err != nil {
		rr.log.Error("an edge's replica has a bad URL", "edge_id", edge, "url", target, "err", err)
		return false
	}
	id, sig, err := rr.sign(forwardedIdentity{User: p.Name, Role: p.Role, Addr: rr.addr(r), Method: r.Method,
		URI: r.URL.RequestURI(), At: time.Now().UTC(), Replica: rr.id})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "could not sign the forwarded request")
		return true
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the holder's origin check sees what the browser sent
			// The holder trusts the signed identity, not the browser's
			// credentials: they stay here.
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set(hdrReplicaIdentity, id)
			pr.Out.Header.Set(hdrReplicaSignature, sig)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rr.log.Warn("forwarding to the edge's replica failed", "edge_id", edge, "replica", target, "err", err)
			writeError(w, http.StatusBadGateway, "", "the central holding edge "+edge+" does not answer; the edge reconnects to another within seconds, try again")
		},
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(rr.ctx, cancel) // central closing ends a forwarded live view too
	defer stop()
	proxy.ServeHTTP(w, r.WithContext(ctx))
	return true
}

// sign encodes and signs a forwarded identity.
func (rr *replicaRouter) sign(fi forwardedIdentity) (id, sig string, err error) {
	b, err := json.Marshal(fi)
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(ed25519.Sign(rr.key, b)), nil
}

// errForward is why a forwarded identity is refused.
var errForward = errors.New("forwarded request refused")

// forwardedPrincipal checks a forwarded request's identity: signed by the
// replicas' key, for this very request, recent.
func forwardedPrincipal(r *http.Request, pub ed25519.PublicKey, now time.Time) (*principal, error) {
	b, err := base64.RawURLEncoding.DecodeString(r.Header.Get(hdrReplicaIdentity))
	if err != nil {
		return nil, fmt.Errorf("%w: identity: %v", errForward, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(r.Header.Get(hdrReplicaSignature))
	if err != nil || pub == nil || !ed25519.Verify(pub, b, sig) {
		return nil, fmt.Errorf("%w: bad signature (do the replicas share evidence_key_file?)", errForward)
	}
	var fi forwardedIdentity
	if err := json.Unmarshal(b, &fi); err != nil {
		return nil, fmt.Errorf("%w: identity: %v", errForward, err)
	}
	switch {
	case fi.Method != r.Method || fi.URI != r.URL.RequestURI():
		return nil, fmt.Errorf("%w: signed for another request", errForward)
	case now.Sub(fi.At) > forwardSkew || fi.At.Sub(now) > forwardSkew:
		return nil, fmt.Errorf("%w: identity from %s, too old (are the replicas' clocks in sync?)", errForward, fi.At.Format(time.RFC3339))
	case fi.User == "" || fi.Role == "":
		return nil, fmt.Errorf("%w: no user", errForward)
	}
	return &principal{Name: fi.User, Role: fi.Role, forwarded: true, clientAddr: fi.Addr}, nil
}

// setPathValues sets r's path values from its route pattern, as the mux
// will: what runs before the mux (the policy, audit rules written before
// the handler) reads them too.
func setPathValues(pattern string, r *http.Request) {
	_, p, _ := strings.Cut(pattern, " ")
	for _, seg := range strings.Split(p, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(name, "}")
			r.SetPathValue(name, pathValue(pattern, r.URL.Path, name))
		}
	}
}

// pathValue is the value of {name} in path for a route pattern such as
// "GET /api/v1/edges/{id}/cameras/{camera}/clip" ("" if none): the policy
// runs before the mux has set the request's path values.
func pathValue(pattern, path, name string) string {
	_, p, _ := strings.Cut(pattern, " ")
	ps, xs := strings.Split(p, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return ""
	}
	for i, seg := range ps {
		if seg == "{"+name+"}" {
			return xs[i]
		}
	}
	return ""
}
